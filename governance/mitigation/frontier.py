"""The frontier of mitigation choices: accuracy against the targeted disparity, and the pick.

A reviewer choosing a mitigation wants the whole menu: how much accuracy each level of parity
costs, which settings are dominated (another is both more accurate and fairer), and which one was
chosen and why. The pick is the most accurate point that meets the target (the policy's threshold
on the targeted metric), or none, said plainly, when no point meets it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

__all__ = ["DEFAULT_TARGETS", "Frontier", "FrontierPoint", "Target", "choose", "mark_dominated"]

_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True)
class Target:
    """What the mitigation must reach: ``metric op threshold`` on the held-out rows."""

    metric: str
    op: str
    threshold: float
    #: Where the threshold comes from: a policy rule id, or "default".
    source: str = "default"

    def met(self, value: float) -> bool:
        return value == value and _OPS[self.op](value, self.threshold)  # NaN never meets it


#: Per constraint, the target when no policy names one: the packs' own thresholds
#: (four-fifths for demographic parity, 0.1 for the odds and opportunity differences).
DEFAULT_TARGETS: dict[str, Target] = {
    "demographic_parity": Target("demographic_parity_ratio", ">=", 0.8),
    "equalized_odds": Target("equalized_odds_difference", "<=", 0.1),
    "true_positive_rate_parity": Target("equal_opportunity_difference", "<=", 0.1),
}


@dataclass(frozen=True)
class FrontierPoint:
    """One setting of the sweep, measured on the held-out rows.

    Attributes
    ----------
    knob, value
        What was varied (``tol``, ``blend``; ``none`` for the unmitigated model) and its value.
    accuracy
        Held-out accuracy.
    disparity
        The constraint's disparity (e.g. demographic parity difference): lower is fairer.
    target_value
        The target metric's value (e.g. the demographic parity ratio).
    meets_target, dominated
        Whether the point meets the target; whether another point is at least as accurate and at
        least as fair, and strictly better in one.
    """

    knob: str
    value: float | None
    accuracy: float
    disparity: float
    target_value: float
    meets_target: bool
    dominated: bool = False


@dataclass(frozen=True)
class Frontier:
    """The sweep, the chosen point (index into ``points``, None when none qualifies) and why."""

    constraint: str
    disparity_metric: str
    target: Target
    points: tuple[FrontierPoint, ...]
    chosen: int | None
    reason: str

    @classmethod
    def of(
        cls, points: Sequence[FrontierPoint], *, constraint: str, disparity_metric: str, target: Target
    ) -> Frontier:
        """The frontier of a sweep: dominated points marked, the choice made and explained."""
        marked = mark_dominated(points)
        chosen, reason = choose(marked, target)
        return cls(constraint, disparity_metric, target, tuple(marked), chosen, reason)


def mark_dominated(points: Sequence[FrontierPoint]) -> list[FrontierPoint]:
    """Flag every point another point beats on accuracy and disparity (Pareto dominance)."""
    out = []
    for i, p in enumerate(points):
        dominated = any(
            q.accuracy >= p.accuracy
            and q.disparity <= p.disparity
            and (q.accuracy > p.accuracy or q.disparity < p.disparity)
            for j, q in enumerate(points)
            if j != i
        )
        out.append(replace(p, dominated=dominated))
    return out


def choose(points: Sequence[FrontierPoint], target: Target) -> tuple[int | None, str]:
    """The most accurate point meeting the target (ties: the fairer one), with the reason."""
    meeting = [i for i, p in enumerate(points) if p.meets_target]
    if not meeting:
        best = max(range(len(points)), key=lambda i: points[i].accuracy) if points else None
        at = (
            f" (the most accurate point, {points[best].accuracy:.3f}, has {target.metric} "
            if best is not None
            else ""
        )
        tail = f"{points[best].target_value:.3f})" if best is not None else ""
        return None, (
            f"infeasible at this accuracy: no setting reaches {target.metric} {target.op} {target.threshold:g}"
            f"{at}{tail}"
        )
    best = max(meeting, key=lambda i: (points[i].accuracy, -points[i].disparity))
    p = points[best]
    return best, (
        f"the most accurate setting ({p.knob} = {p.value}) that reaches {target.metric} {target.op} "
        f"{target.threshold:g} ({p.target_value:.3f}), at accuracy {p.accuracy:.3f}"
    )
