"""Threshold mitigation end to end, on scores and labels: split, sweep, pick, before and after.

Everything a reviewer needs comes out of one call: the rule that will be deployed, which eval rows
fitted it and which measured it, the frontier of the sweep with the chosen point, and every
performance and fairness metric before and after on the held-out rows, each change with a paired
bootstrap interval (:mod:`governance.audit.paired`), the targeted metric marked and every metric
that got worse flagged (fairlearn #1201: a mitigation that fixes one metric can break another).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from governance.audit.paired import PairedComparison, compare_codes
from governance.mitigation._codes import group_codes, label_codes, present
from governance.mitigation.fast_threshold import threshold_fitter
from governance.mitigation.frontier import (
    DEFAULT_TARGETS,
    Frontier,
    FrontierPoint,
    Target,
)
from governance.mitigation.threshold import TARGET_METRIC, CalibrationSplit, split_coded
from governance.models.decision_rule import DecisionRule

__all__ = ["TOL_GRID", "MetricChange", "MitigationOutcome", "mitigate_threshold"]

#: The tolerances swept where fairlearn supports one (demographic parity, TPR parity).
TOL_GRID: tuple[float, ...] = (0.0, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3)
#: The blend shares swept where it does not (equalized odds): rule vs the model's own decision.
BLEND_GRID: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
#: Metrics where higher is better (for the "worse after" flag); the rest: lower is better.
HIGHER_IS_BETTER = frozenset({"accuracy", "demographic_parity_ratio"})


@dataclass(frozen=True)
class MetricChange:
    """One metric before and after mitigation on the held-out rows."""

    metric: str
    before: float
    after: float
    difference: float
    ci_low: float | None
    ci_high: float | None
    targeted: bool
    worse: bool


@dataclass(frozen=True)
class MitigationOutcome:
    """What threshold mitigation produced (see the module docstring)."""

    rule: DecisionRule
    split: CalibrationSplit
    frontier: Frontier
    comparison: PairedComparison
    changes: tuple[MetricChange, ...]
    before: np.ndarray
    after: np.ndarray
    #: Which engine fitted the thresholds and what checked it against fairlearn (fast_threshold).
    engine: str = ""


def _is_worse(metric_name: str, difference: float) -> bool:
    leaf = metric_name.rsplit(".", 1)[-1]
    if difference != difference or difference == 0:
        return False
    return difference < 0 if leaf in HIGHER_IS_BETTER else difference > 0


def _disparity_values(comparison: PairedComparison, attribute: str) -> dict[str, tuple[float, float]]:
    return {r.metric: (r.reference, r.candidate) for r in comparison.disparities if r.attribute == attribute}


def _point(
    knob: str,
    value: float | None,
    y: np.ndarray,
    before: np.ndarray,
    after: np.ndarray,
    groups: tuple[np.ndarray, tuple[str, ...]],
    constraint: str,
    target: Target,
) -> FrontierPoint:
    cmp = compare_codes(y, before, after, 2, {"a": groups}, positive=1, n_boot=0, intersections=False)
    disparity = _disparity_values(cmp, "a")
    accuracy = cmp.metric("accuracy").candidate
    target_value = disparity[target.metric][1]
    return FrontierPoint(
        knob=knob,
        value=value,
        accuracy=accuracy,
        disparity=disparity[TARGET_METRIC[constraint]][1],
        target_value=target_value,
        meets_target=target.met(target_value),
    )


def mitigate_threshold(
    y_true: Sequence[Any] | np.ndarray,
    scores: Sequence[float] | np.ndarray,
    y_pred: Sequence[Any] | np.ndarray,
    sensitive: Mapping[str, Sequence[Any] | np.ndarray],
    *,
    classes: tuple[str, str],
    attribute: str,
    constraint: str,
    tol: float | None = None,
    target: Target | None = None,
    calibration_share: float = 0.5,
    seed: int = 0,
    n_boot: int = 1000,
) -> MitigationOutcome:
    """Fit, sweep and apply threshold mitigation; compare before and after on the held-out rows.

    Parameters
    ----------
    y_true, scores, y_pred
        Eval labels, the model's positive-class scores and its own decisions (labels).
    sensitive
        Every sensitive attribute (the report compares all of them, not just the targeted one).
    classes
        ``(negative, positive)`` labels.
    attribute, constraint, tol
        What to mitigate: fairlearn's constraint on ``attribute``, with ``tol`` where supported.
    target
        The threshold to reach (default: :data:`DEFAULT_TARGETS` of the constraint).
    """
    # Codes once (labels into classes, groups by name): the sweep then never touches a string.
    y = label_codes(y_true, classes, "y_true")
    model = label_codes(y_pred, classes, "y_pred")
    s = np.asarray(scores, dtype=np.float64)
    groups = {name: group_codes(values) for name, values in sensitive.items()}
    if attribute not in groups:
        raise ValueError(f"attribute {attribute!r} is not among the sensitive attributes {sorted(groups)}")
    if constraint == "equalized_odds" and tol is not None:
        raise ValueError("fairlearn supports no tolerance for equalized odds; omit mitigation.tol")
    target = target or DEFAULT_TARGETS[constraint]
    g, g_names = groups[attribute]
    split = split_coded(y, classes, g, g_names, share=calibration_share, seed=seed, attribute=attribute)
    cal, held = split.calibration, split.held_out
    # One fitter for the whole sweep: the per-group hulls are computed once (fast_threshold).
    fit = threshold_fitter(
        s[cal],
        y[cal] == 1,
        np.asarray(g_names, dtype=object)[g[cal]],
        attribute=attribute,
        constraint=constraint,
        classes=classes,
        tol=tol,
        random_state=seed,
    )
    held_groups = {name: present(codes[held], names) for name, (codes, names) in groups.items()}
    y_held, before, s_held, g_held = y[held], model[held], s[held], held_groups[attribute]

    def decide(rule: DecisionRule) -> np.ndarray:
        return rule.decide_coded(s_held, *g_held)

    points = [_point("none", None, y_held, before, before, g_held, constraint, target)]
    rules: list[DecisionRule | None] = [None]
    if constraint == "equalized_odds":
        fitted = fit(None)
        for share in BLEND_GRID:
            rule = replace(fitted, blend=share)
            points.append(_point("blend", share, y_held, before, decide(rule), g_held, constraint, target))
            rules.append(rule)
    else:
        grid = sorted({*TOL_GRID, *(() if tol is None else (tol,))})
        for t in grid:
            rule = fit(t)
            points.append(_point("tol", t, y_held, before, decide(rule), g_held, constraint, target))
            rules.append(rule)
    frontier = Frontier.of(
        points, constraint=constraint, disparity_metric=TARGET_METRIC[constraint], target=target
    )
    chosen = frontier.chosen
    if chosen == 0:
        # The model as it is already meets the target: the rule is the model's own decision.
        picked = replace(fit(tol), blend=0.0, uses_sensitive_attribute=False)
    elif chosen is not None:
        picked = rules[chosen] or fit(tol)
    else:
        # Infeasible: deploy what the spec asked for (its tol, or exact parity), and say so.
        picked = fit(tol) if constraint != "equalized_odds" else replace(rules[-1] or fit(None), blend=1.0)
    after = decide(picked)
    comparison = compare_codes(y_held, before, after, 2, held_groups, positive=1, n_boot=n_boot, seed=seed)
    labels = np.asarray(classes, dtype=object)
    changes = _changes(comparison, attribute, TARGET_METRIC[constraint], target.metric)
    return MitigationOutcome(
        rule=picked,
        split=split,
        frontier=frontier,
        comparison=comparison,
        changes=changes,
        before=labels[before],
        after=labels[after],
        engine=fit.check,
    )


def mitigate_eval_predictions(block: Any, predictions: Any, bundle: Any, *, seed: int) -> MitigationOutcome:
    """:func:`mitigate_threshold` for the spec's ``mitigation:`` ``block`` on a model's eval
    ``predictions`` (with scores) and the data ``bundle``: what ``mitigate`` and the mitigation
    audit both run."""
    return mitigate_threshold(
        predictions.y_true,
        predictions.y_score,
        predictions.y_pred,
        {a: bundle.eval[a] for a in bundle.sensitive},
        classes=(bundle.classes[0], bundle.classes[1]),
        attribute=block.attribute,
        constraint=block.constraint,
        tol=block.tol,
        calibration_share=block.calibration_share,
        seed=seed,
    )


def _changes(
    comparison: PairedComparison, attribute: str, disparity_metric: str, target_metric: str
) -> tuple[MetricChange, ...]:
    out = []
    for row in comparison.metrics:
        if row.attribute != "overall":
            continue
        name = f"performance.{row.metric}"
        out.append(
            MetricChange(
                name,
                row.reference,
                row.candidate,
                row.difference,
                row.ci_low,
                row.ci_high,
                False,
                _is_worse(name, row.difference),
            )
        )
    for d in comparison.disparities:
        name = f"fairness.{d.attribute}.{d.metric}"
        targeted = d.attribute == attribute and d.metric in (disparity_metric, target_metric)
        out.append(
            MetricChange(
                name,
                d.reference,
                d.candidate,
                d.difference,
                d.ci_low,
                d.ci_high,
                targeted,
                _is_worse(name, d.difference),
            )
        )
    return tuple(out)


def metric_changes(
    comparison: PairedComparison, attribute: str, disparity_metric: str, target_metric: str
) -> tuple[MetricChange, ...]:
    """The before/after table of ``comparison`` (every performance and fairness metric, the
    targeted ones marked, worse ones flagged): what threshold mitigation reports, for reweighing."""
    return _changes(comparison, attribute, disparity_metric, target_metric)
