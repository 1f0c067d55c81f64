"""Reweighing (Kamiran & Calders 2012): training weights that make the label independent of the group.

Each training row of group ``a`` and label ``y`` gets ``w(a, y) = P(A=a)·P(Y=y) / P(A=a, Y=y)``
(the frequencies of the train rows): cells rarer than independence would make them weigh more.
The model is then retrained with those per-sample weights (:mod:`governance.train.sample_weights`:
a weighted loss, or under DP ``w_i·clip(g_i)`` with the weights divided by their maximum). The
deployed model decides from its features alone: unlike threshold post-processing, reweighing
never reads the sensitive attribute at decision time (it is not a model input unless
``data.features`` lists it).

The frontier sweeps the weights' strength ``s`` (weights ``w^s``: ``s = 0`` is the unweighted model,
``s = 1`` full Kamiran-Calders), one retrained model per point, each measured on the eval rows
(accuracy against the targeted disparity); the pick and the before/after table are those of
threshold mitigation (:mod:`governance.mitigation.frontier`, :func:`governance.mitigation.run.
metric_changes`). This module never trains: the pipeline hands it each point's eval decisions.
AIF360's ``Reweighing`` is the test oracle for the weights (``tests/mitigation/test_reweigh.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from governance.audit.paired import PairedComparison, compare_predictions
from governance.mitigation.frontier import (
    DEFAULT_TARGETS,
    Frontier,
    FrontierPoint,
    Target,
)
from governance.mitigation.run import MetricChange, metric_changes
from governance.mitigation.threshold import TARGET_METRIC

__all__ = [
    "STRENGTHS",
    "KamiranCalders",
    "ReweighOutcome",
    "WeightCell",
    "kamiran_calders",
    "mitigate_reweigh",
]

#: The strengths swept besides ``s = 0`` (the unweighted model, the frontier's first point):
#: nine points of [0, 1] in all, eight retrained models.
STRENGTHS: tuple[float, ...] = (0.125, 0.25, 0.375, 0.5, 0.625, 0.75, 0.875, 1.0)


@dataclass(frozen=True)
class WeightCell:
    """One group × label cell of the train rows and its Kamiran-Calders weight."""

    group: str
    label: str
    rows: int
    weight: float


@dataclass(frozen=True)
class KamiranCalders:
    """The weights of the train rows (in their order) and the cell table they come from."""

    attribute: str
    label: str
    cells: tuple[WeightCell, ...]
    weights: np.ndarray

    def at(self, strength: float) -> np.ndarray:
        """``w^s``: 0 gives every row weight 1, 1 the full Kamiran-Calders weights."""
        return np.power(self.weights, float(strength))


def kamiran_calders(
    groups: Sequence[Any] | np.ndarray,
    labels: Sequence[Any] | np.ndarray,
    *,
    attribute: str = "",
    label: str = "",
) -> KamiranCalders:
    """``w(a, y) = P(A=a)·P(Y=y) / P(A=a, Y=y) = n_a·n_y / (N·n_ay)`` for every row.

    Values are compared as strings (as the fairness audit compares groups). Raises ValueError on
    no rows or a missing value in either column.
    """
    g = _strings(groups, attribute or "the attribute")
    y = _strings(labels, label or "the label")
    n = len(g)
    if n == 0 or n != len(y):
        raise ValueError(f"reweighing needs one group and one label per train row (got {n} and {len(y)})")
    group_values, group_idx = np.unique(g, return_inverse=True)
    label_values, label_idx = np.unique(y, return_inverse=True)
    joint = np.zeros((len(group_values), len(label_values)), dtype=np.int64)
    np.add.at(joint, (group_idx, label_idx), 1)
    n_a = joint.sum(axis=1, keepdims=True)
    n_y = joint.sum(axis=0, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        table = np.where(joint > 0, (n_a * n_y) / (n * joint.astype(np.float64)), 0.0)
    cells = tuple(
        WeightCell(str(group_values[i]), str(label_values[j]), int(joint[i, j]), float(table[i, j]))
        for i in range(len(group_values))
        for j in range(len(label_values))
        if joint[i, j] > 0
    )
    return KamiranCalders(attribute, label, cells, table[group_idx, label_idx])


def _strings(values: Sequence[Any] | np.ndarray, what: str) -> np.ndarray:
    import pandas as pd

    series = pd.Series(values)
    if bool(series.isna().any()):
        raise ValueError(f"{what} has a missing value in the train rows; reweighing needs every cell")
    return series.astype(str).to_numpy(dtype=object)


@dataclass(frozen=True)
class ReweighOutcome:
    """What reweighing produced: the weights, the frontier and the chosen strength (None: the
    unweighted model), and every metric before and after on the eval rows."""

    weights: KamiranCalders
    frontier: Frontier
    strength: float
    comparison: PairedComparison
    changes: tuple[MetricChange, ...]
    before: np.ndarray
    after: np.ndarray
    constraint: str


def mitigate_reweigh(
    y_true: Sequence[Any] | np.ndarray,
    before: Sequence[Any] | np.ndarray,
    candidates: Mapping[float, Sequence[Any] | np.ndarray],
    sensitive: Mapping[str, Sequence[Any] | np.ndarray],
    *,
    weights: KamiranCalders,
    classes: tuple[str, str],
    attribute: str,
    constraint: str,
    target: Target | None = None,
    seed: int = 0,
    n_boot: int = 1000,
) -> ReweighOutcome:
    """The frontier over the strengths, the pick, and every metric before and after.

    Parameters
    ----------
    y_true, before
        Eval labels and the unmitigated model's decisions (strength 0).
    candidates
        Strength → the eval decisions of the model retrained with weights ``w^s``.
    sensitive
        Every sensitive attribute (the table compares all of them, not only the targeted one).
    constraint, target
        The targeted disparity (:data:`governance.mitigation.threshold.TARGET_METRIC`) and the
        threshold to reach (default: :data:`DEFAULT_TARGETS` of the constraint).

    When no strength reaches the target, the full weights (``s = 1``, what reweighing means) are
    deployed and the frontier says so; when the unweighted model already does, it is kept.
    """
    y = np.asarray([str(v) for v in y_true], dtype=object)
    model = np.asarray([str(v) for v in before], dtype=object)
    groups = {name: np.asarray([str(v) for v in values], dtype=object) for name, values in sensitive.items()}
    if attribute not in groups:
        raise ValueError(f"attribute {attribute!r} is not among the sensitive attributes {sorted(groups)}")
    if not candidates:
        raise ValueError("reweighing needs at least one retrained model")
    target = target or DEFAULT_TARGETS[constraint]
    g = groups[attribute]
    strengths = sorted(candidates)
    decisions = {s: np.asarray([str(v) for v in candidates[s]], dtype=object) for s in strengths}
    # The unweighted model (s = 0) is the frontier's "model as it is" point.
    points = [_point("none", 0.0, y, model, model, g, constraint, target, classes)]
    points += [
        _point("strength", s, y, model, decisions[s], g, constraint, target, classes) for s in strengths
    ]
    frontier = Frontier.of(
        points, constraint=constraint, disparity_metric=TARGET_METRIC[constraint], target=target
    )
    chosen = frontier.chosen
    # Infeasible (None): deploy the full weights (s = 1, what reweighing means); the reason says so.
    strength = max(strengths) if chosen is None else [0.0, *strengths][chosen]
    after = model if strength == 0.0 else decisions[strength]
    comparison = compare_predictions(y, model, after, groups, classes=classes, n_boot=n_boot, seed=seed)
    changes = metric_changes(comparison, attribute, TARGET_METRIC[constraint], target.metric)
    return ReweighOutcome(
        weights=weights,
        frontier=frontier,
        strength=strength,
        comparison=comparison,
        changes=changes,
        before=model,
        after=after,
        constraint=constraint,
    )


def _point(
    knob: str,
    value: float,
    y: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
    groups: np.ndarray,
    constraint: str,
    target: Target,
    classes: Sequence[str],
) -> FrontierPoint:
    cmp = compare_predictions(y, before, after, {"a": groups}, classes=classes, n_boot=0, intersections=False)
    disparity = {r.metric: r.candidate for r in cmp.disparities if r.attribute == "a"}
    value_at_target = disparity[target.metric]
    return FrontierPoint(
        knob=knob,
        value=value,
        accuracy=cmp.metric("accuracy").candidate,
        disparity=disparity[TARGET_METRIC[constraint]],
        target_value=value_at_target,
        meets_target=target.met(value_at_target),
    )
