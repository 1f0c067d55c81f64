"""fairlearn's ``ThresholdOptimizer`` fit, vectorised, for a whole tolerance sweep at once.

fairlearn builds each group's trade-off curve by walking the sorted scores in Python, one row at a
time, then takes its upper convex hull row by row through a data-frame iterator: about 25 µs per
calibration row and fit, so a ten-point sweep over 500,000 rows takes minutes. Here the curve's
points come from one sort and two cumulative sums per group, and the hull, which depends on the
group's rows but not on the tolerance, is computed once per group and shared by every point of
the sweep. Everything after the hull (interpolation on the grid, the best grid point, the
tolerance window, equalized odds' ``p_ignore``) is grid-sized and follows fairlearn line by line.

The aim is identity, not approximation: every floating-point value is computed by the same IEEE
operations, in the same order, as fairlearn 0.15 does it (integer counts divided once, the
hull's slope test as written there), so the rule is the same to the last bit.
tests/mitigation/test_fast_threshold.py holds it to ``ThresholdOptimizer`` on generated data
(ties, constant scores, two-row groups); :func:`threshold_fitter` also checks it against fairlearn
on the data in front of it before a sweep, and runs fairlearn itself where that check fails or
the installed fairlearn is not the version replicated.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from governance.mitigation._codes import present
from governance.models.decision_rule import DecisionRule, GroupThreshold

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "CHECK_EXACT_ROWS",
    "CHECK_SAMPLE_ROWS",
    "CHECK_TOL",
    "REPLICATED_FAIRLEARN",
    "ThresholdFitter",
    "fit_group_thresholds",
    "threshold_fitter",
]

#: The fairlearn releases whose ThresholdOptimizer this module replicates (major.minor).
REPLICATED_FAIRLEARN: tuple[str, ...] = ("0.15",)
#: Up to this many calibration rows the runtime check fits fairlearn on all of them (about 0.5 s a
#: fit on the development machine).
CHECK_EXACT_ROWS = 20_000
#: Above it, on a seeded subsample of this many rows, stratified by group × label.
CHECK_SAMPLE_ROWS = 5_000
#: Agreement required between this module and fairlearn (probabilities and thresholds).
CHECK_ATOL = 1e-9
#: The tolerance also checked when the spec sets none (the sweep's tolerance windows).
CHECK_TOL = 0.05

#: fairlearn's x metric per constraint (the constrained rate); the y metric is the objective.
_X_METRIC: dict[str, str] = {
    "demographic_parity": "selection_rate",
    "true_positive_rate_parity": "true_positive_rate",
    "equalized_odds": "false_positive_rate",
}
DEGENERATE_LABELS = "Degenerate labels for sensitive feature value {}"


@dataclass(frozen=True)
class _Hull:
    """One group's upper convex hull of (x metric, y metric) points and their thresholds."""

    x: NDArray[np.float64]
    y: NDArray[np.float64]
    threshold: NDArray[np.float64]


@dataclass(frozen=True)
class _Curve:
    """A hull interpolated on fairlearn's grid: per grid x, the two hull points and their weights."""

    y: NDArray[np.float64]
    p0: NDArray[np.float64]
    index0: NDArray[np.int64]
    p1: NDArray[np.float64]
    hull: _Hull


def _tradeoff_points(
    scores: NDArray[np.float64], labels: NDArray[np.int64], x_metric: str, y_metric: str
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """fairlearn's ``_calculate_tradeoff_points`` (flip=False) for one group, unsorted.

    One point per threshold: +inf (nothing selected), then between each pair of consecutive
    distinct scores (descending), then -inf (everything selected).
    """
    n = len(scores)
    n_positive = int(labels.sum())
    n_negative = n - n_positive
    order = np.argsort(-scores, kind="stable")
    s = scores[order]
    positives_so_far = np.cumsum(labels[order], dtype=np.int64)
    last_of_tie = np.flatnonzero(np.r_[s[1:] != s[:-1], True])
    distinct = s[last_of_tie]
    # counts selected (true positives, false positives) after each threshold, the first selects none
    tp = np.r_[0, positives_so_far[last_of_tie]].astype(np.int64)
    fp = np.r_[0, last_of_tie + 1].astype(np.int64) - tp
    tn = n_negative - fp
    threshold = np.r_[np.inf, (distinct + np.r_[distinct[1:], -np.inf]) / 2]
    metric: dict[str, Callable[[], NDArray[np.float64]]] = {
        "selection_rate": lambda: (tp + fp) / n,
        "true_positive_rate": lambda: tp / n_positive,
        "false_positive_rate": lambda: fp / n_negative,
        "accuracy_score": lambda: (tp + tn) / n,
    }
    return metric[x_metric](), metric[y_metric](), threshold


def _upper_hull(x: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.int64]:
    """Indices of fairlearn's upper hull of points sorted by (x, y): its loop, on plain floats.

    Sequential by nature (Andrew's monotone chain). The slope test is fairlearn's, operand for
    operand, so that nearly collinear points, common on these integer-count curves, go the same
    way; the two top points of the stack are kept in locals (the loop runs once per distinct score).
    """
    xs, ys = x.tolist(), y.tolist()
    kept = list(range(min(2, len(xs))))
    hx, hy = xs[:2], ys[:2]
    if len(xs) <= 2:
        return np.asarray(kept, dtype=np.int64)
    x0, y0, x1, y1 = hx[0], hy[0], hx[1], hy[1]
    for i in range(2, len(xs)):
        x2, y2 = xs[i], ys[i]
        # r1 = (x1, y1) on top of the stack, r0 = (x0, y0) under it; drop r1 while it is not above r0→r2
        while (y1 - y0) * (x2 - x0) <= (y2 - y0) * (x1 - x0):
            kept.pop()
            hx.pop()
            hy.pop()
            x1, y1 = x0, y0
            if len(kept) < 2:
                break
            x0, y0 = hx[-2], hy[-2]
        kept.append(i)
        hx.append(x2)
        hy.append(y2)
        x0, y0, x1, y1 = x1, y1, x2, y2
    return np.asarray(kept, dtype=np.int64)


def _hull(
    scores: NDArray[np.float64], labels: NDArray[np.int64], group: str, x_metric: str, y_metric: str
) -> _Hull:
    n_positive = int(labels.sum())
    if n_positive == 0 or n_positive == len(labels):
        raise ValueError(DEGENERATE_LABELS.format(group))
    x, y, threshold = _tradeoff_points(scores, labels, x_metric, y_metric)
    order = np.lexsort((y, x))  # fairlearn sorts by x, then y; no two points share both
    x, y, threshold = x[order], y[order], threshold[order]
    kept = _upper_hull(x, y)
    return _Hull(x=x[kept], y=y[kept], threshold=threshold[kept])


def _interpolate(hull: _Hull, grid: NDArray[np.float64]) -> _Curve:
    """fairlearn's ``_interpolate_curve`` and ``_get_interpolation_indices``."""
    x = hull.x
    index = np.searchsorted(x, grid, side="right") - 1
    index[1:] = np.where(grid[1:] == x[index[1:]], index[1:] - 1, index[1:])
    p0 = (x[index + 1] - grid) / (x[index + 1] - x[index])
    p1 = 1 - p0
    y = p0 * hull.y[index] + p1 * hull.y[index + 1]
    return _Curve(y=y, p0=p0, index0=index, p1=p1, hull=hull)


def _threshold(curve: _Curve, i: int, p_ignore: float = 0.0, constant: float = 0.0) -> GroupThreshold:
    hull, j = curve.hull, int(curve.index0[i])
    return GroupThreshold(
        p0=float(curve.p0[i]),
        operator0=">",
        threshold0=float(hull.threshold[j]),
        p1=float(curve.p1[i]),
        operator1=">",
        threshold1=float(hull.threshold[j + 1]),
        p_ignore=float(p_ignore),
        constant=float(constant),
    )


def _maximize_with_tolerance(
    curves: Sequence[_Curve], weights: Sequence[float], x: NDArray[np.float64], tol: float
) -> list[int]:
    """fairlearn's ``maximize_objective_with_tolerance``: a sliding window over the grid (≤ tol wide)."""
    y_columns = [c.y * w for c, w in zip(curves, weights, strict=True)]
    m = len(y_columns)
    deques: list[deque[int]] = [deque() for _ in range(m)]
    best: list[int] = []
    max_objective = float("-inf")
    min_violation = float("inf")
    start = 0
    for end in range(len(x)):
        for k in range(m):
            while deques[k] and (y_columns[k][deques[k][-1]] <= y_columns[k][end]):
                deques[k].pop()
            deques[k].append(end)
        while x[end] - x[start] > tol:
            for k in range(m):
                if deques[k] and (deques[k][0] == start):
                    deques[k].popleft()
            start += 1
        current = [deques[k][0] for k in range(m)]
        objective = sum(y_columns[k][current[k]] for k in range(m))
        violation = np.ptp(x[current])
        if objective > max_objective or (objective == max_objective and violation <= min_violation):
            max_objective = objective
            best = current
            min_violation = violation
    return best


@dataclass
class _Groups:
    """The calibration rows split by group, in fairlearn's order (sorted group values)."""

    names: list[str]
    proportions: list[float]
    curves: list[_Curve]
    n_positive: int
    n: int


def _prepare(
    scores: NDArray[np.float64],
    labels: NDArray[np.int64],
    codes: NDArray[np.int64],
    names: Sequence[str],
    constraint: str,
    grid_size: int,
) -> tuple[_Groups, NDArray[np.float64]]:
    """Every group's hull, interpolated on the grid; ``names`` sorted, as fairlearn's groupby sorts."""
    x_metric = _X_METRIC[constraint]
    y_metric = "true_positive_rate" if constraint == "equalized_odds" else "accuracy_score"
    grid = np.linspace(0, 1, grid_size + 1)
    n = len(labels)
    out = _Groups(names=list(names), proportions=[], curves=[], n_positive=int(labels.sum()), n=n)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
    for k, name in enumerate(out.names):
        rows = order[bounds[k] : bounds[k + 1]]
        out.proportions.append(len(rows) / n)
        out.curves.append(_interpolate(_hull(scores[rows], labels[rows], name, x_metric, y_metric), grid))
    return out, grid


def fit_group_thresholds(
    prepared: _Groups, grid: NDArray[np.float64], constraint: str, tol: float | None
) -> dict[str, GroupThreshold]:
    """The rule fairlearn's ``ThresholdOptimizer`` fits for ``tol``, from the prepared hulls."""
    import pandas as pd

    curves = prepared.curves
    if constraint == "equalized_odds":
        return _equalized_odds(prepared, grid)
    if not tol:
        overall = pd.concat(
            [p * pd.Series(c.y) for c, p in zip(curves, prepared.proportions, strict=True)], axis=1
        ).sum(axis=1)
        best = [int(overall.idxmax())] * len(curves)
    else:
        best = _maximize_with_tolerance(curves, prepared.proportions, grid, tol)
    return {name: _threshold(c, i) for name, c, i in zip(prepared.names, curves, best, strict=True)}


def _equalized_odds(prepared: _Groups, grid: NDArray[np.float64]) -> dict[str, GroupThreshold]:
    """fairlearn's ``_threshold_optimization_for_equalized_odds`` (accuracy objective) on the grid."""
    y_min = np.amin(np.column_stack([c.y for c in prepared.curves]), axis=1)
    n_positive = np.int64(prepared.n_positive)
    n_negative = prepared.n - n_positive
    tp = n_positive * y_min
    tn = n_negative * (1.0 - grid)
    fp = n_negative * grid
    fn = n_positive * (1.0 - y_min)
    objective = np.around((tp + tn) / (tp + tn + fp + fn), 15)
    i = int(np.argmax(objective))
    x_best, y_best = grid[i], y_min[i]
    out = {}
    for name, curve in zip(prepared.names, prepared.curves, strict=True):
        y, x = curve.y[i], grid[i]
        p_ignore = 0 if y == x else (y - y_best) / (y - x)
        out[name] = _threshold(curve, i, p_ignore=p_ignore, constant=x_best)
    return out


@dataclass
class ThresholdFitter:
    """Fits the rule for any tolerance of a sweep; says which engine ran and what checked it.

    ``engine`` is ``"vectorised"`` (this module, checked against fairlearn) or ``"fairlearn"``.
    """

    scores: NDArray[np.float64]
    positive: NDArray[np.int64]
    codes: NDArray[np.int64]
    names: tuple[str, ...]
    attribute: str
    constraint: str
    classes: tuple[str, str]
    random_state: int = 0
    grid_size: int = 1000
    engine: str = "fairlearn"
    check: str = ""
    _prepared: tuple[_Groups, NDArray[np.float64]] | None = field(default=None, repr=False)

    def __call__(self, tol: float | None) -> DecisionRule:
        if self.engine == "vectorised":
            assert self._prepared is not None
            thresholds = fit_group_thresholds(*self._prepared, self.constraint, tol)
            return DecisionRule(
                attribute=self.attribute,
                constraint=self.constraint,
                tol=tol,
                classes=self.classes,
                groups=thresholds,
                random_state=self.random_state,
            )
        return self._fairlearn(tol)

    def _fairlearn(self, tol: float | None) -> DecisionRule:
        from governance.mitigation.threshold import fit_threshold_rule

        return fit_threshold_rule(
            self.scores,
            self.positive,
            np.asarray(self.names, dtype=object)[self.codes],
            attribute=self.attribute,
            constraint=self.constraint,
            classes=self.classes,
            tol=tol,
            random_state=self.random_state,
            grid_size=self.grid_size,
        )


def _same(a: DecisionRule, b: DecisionRule) -> bool:
    if set(a.groups) != set(b.groups):
        return False
    for name, t in a.groups.items():
        u = b.groups[name]
        if (t.operator0, t.operator1) != (u.operator0, u.operator1):
            return False
        ours = (t.p0, t.threshold0, t.p1, t.threshold1, t.p_ignore, t.constant)
        theirs = (u.p0, u.threshold0, u.p1, u.threshold1, u.p_ignore, u.constant)
        if not np.allclose(ours, theirs, rtol=0, atol=CHECK_ATOL, equal_nan=False):
            return False
    return True


def _check_rows(labels: NDArray[np.int64], codes: NDArray[np.int64], seed: int) -> NDArray[np.int64]:
    """All rows when few, else a seeded sample stratified by group × label (every cell kept)."""
    n = len(labels)
    if n <= CHECK_EXACT_ROWS:
        return np.arange(n, dtype=np.int64)
    cell = codes * 2 + labels
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(cell).tolist():
        rows = np.flatnonzero(cell == c)
        take = max(1, round(CHECK_SAMPLE_ROWS * len(rows) / n))
        picked.append(rng.choice(rows, size=min(take, len(rows)), replace=False))
    return np.sort(np.concatenate(picked))


def threshold_fitter(
    scores: Sequence[float] | NDArray[Any],
    positive: Sequence[bool] | NDArray[Any],
    groups: Sequence[Any] | NDArray[Any],
    *,
    attribute: str,
    constraint: str,
    classes: tuple[str, str],
    tol: float | None = None,
    random_state: int = 0,
    grid_size: int = 1000,
) -> ThresholdFitter:
    """A fitter for a sweep: vectorised where it is shown to equal fairlearn here, else fairlearn.

    The check fits fairlearn's ``ThresholdOptimizer`` at ``tol`` (and at :data:`CHECK_TOL` when
    ``tol`` is unset, for the sweep's tolerance windows) on the calibration rows (all of them up
    to :data:`CHECK_EXACT_ROWS`, else a stratified sample of :data:`CHECK_SAMPLE_ROWS`) and
    requires the same rule from this module on the same rows, to :data:`CHECK_ATOL`. The hulls,
    the costly part, do not depend on the tolerance.

    Raises
    ------
    ValueError
        A NaN score, or a group whose calibration rows all have one label (fairlearn's message).
    """
    import fairlearn

    from governance.mitigation._codes import group_codes

    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    y = np.asarray(positive).astype(np.int64).reshape(-1)
    codes, names = group_codes(groups)
    if np.isnan(s).any():
        # fairlearn never ends its walk over a NaN score; say so instead.
        raise ValueError("a score is NaN; threshold mitigation needs a number for every row")
    positives = np.bincount(codes, weights=y, minlength=len(names))
    sizes = np.bincount(codes, minlength=len(names))
    for name, k, size in zip(names, positives, sizes, strict=True):
        if k == 0 or k == size:
            only = classes[1] if k else classes[0]
            raise ValueError(
                f"group {name!r} of {attribute!r} has only label {only!r} in its {size} calibration row(s): "
                "fairlearn's ThresholdOptimizer needs both labels in every group"
            )
    fitter = ThresholdFitter(s, y, codes, names, attribute, constraint, classes, random_state, grid_size)
    version = ".".join(fairlearn.__version__.split(".")[:2])
    if version not in REPLICATED_FAIRLEARN:
        fitter.check = f"fairlearn {fairlearn.__version__} is not a version this replica was made from"
        return fitter
    if not np.isfinite(s).all():
        fitter.check = "an infinite score: fairlearn runs as it is"
        return fitter
    rows = _check_rows(y, codes, random_state)
    sample = (
        fitter
        if len(rows) == len(s)
        else ThresholdFitter(
            s[rows],
            y[rows],
            *present(codes[rows], names),
            attribute,
            constraint,
            classes,
            random_state,
            grid_size,
        )
    )
    # The spec's tolerance, and one tolerance window where the sweep uses them (simple constraints).
    checked = (tol,) if constraint == "equalized_odds" or tol else (tol, CHECK_TOL)
    theirs = [sample._fairlearn(t) for t in checked]
    sample._prepared = _prepare(
        sample.scores, sample.positive, sample.codes, sample.names, constraint, grid_size
    )
    sample.engine = "vectorised"
    where = (
        f"all {len(s):,} calibration rows"
        if len(rows) == len(s)
        else f"a stratified sample of {len(rows):,} of the {len(s):,} calibration rows"
    )
    if not all(_same(sample(t), rule) for t, rule in zip(checked, theirs, strict=True)):
        fitter.engine, fitter._prepared = "fairlearn", None
        fitter.check = f"the vectorised fit differed from fairlearn's on {where}: fairlearn runs"
        return fitter
    if sample is not fitter:
        fitter._prepared = _prepare(s, y, codes, names, constraint, grid_size)
        fitter.engine = "vectorised"
    fitter.check = (
        f"vectorised replica of fairlearn {fairlearn.__version__} ThresholdOptimizer; "
        f"the same rule as fairlearn at tol={' and '.join(str(t) for t in checked)} on {where}"
    )
    return fitter
