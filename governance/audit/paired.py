"""Paired comparison of two prediction sets on the same eval rows, overall and per group.

Privacy cost (private model vs its non-private twin), compression cost (a compressed variant vs
fp32) and mitigation (after vs before) all ask one question: on the *same* rows, how do two sets of
decisions differ, and for whom? Comparing two independent audits would ignore that both models saw
the same rows, and so overstate the uncertainty of the difference by a wide margin. Here every
number comes from one joint count table ``[group_1, ..., group_m, true, reference, candidate]``:

- metric values and their differences are ratios of those counts (exact, no row loop);
- the paired bootstrap resamples *rows*, each row carrying both models' decisions, which is the
  same as drawing the whole table from ``Multinomial(N, counts / N)`` (see
  :mod:`governance.audit._bootstrap`): one replicate costs O(cells), not O(rows);
- the disagreement rate and McNemar's test read the discordant cells directly.

``difference`` is always ``candidate − reference``; a ``drop`` is ``reference − candidate`` of a
metric where higher is better (accuracy), the quantity the privacy-cost and compression audits
report. Numpy and scipy only: importing this module never imports torch.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING

import numpy as np

from governance.audit._bootstrap import percentile_interval, resample_counts

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "DisparityComparison",
    "GroupComparison",
    "MetricComparison",
    "PairedComparison",
    "compare_codes",
    "compare_predictions",
    "mcnemar_exact_p",
    "metrics_from_cells",
]

#: Metrics computed for every group; the rate metrics of a binary task need the positive class.
BINARY_METRICS: tuple[str, ...] = ("accuracy", "selection_rate", "true_positive_rate", "false_positive_rate")
MULTICLASS_METRICS: tuple[str, ...] = ("accuracy",)

# Beyond this many cells the joint table would outgrow the rows it summarises.
MAX_CELLS = 20_000_000


@dataclass(frozen=True)
class MetricComparison:
    """One metric of one group (or overall) under both models.

    Attributes
    ----------
    attribute
        The attribute (``sex``, ``sex*age_group`` for an intersection) or ``"overall"``.
    group
        The group value (``"female"``, ``"female*young"``) or ``"overall"``.
    metric
        ``accuracy``, ``selection_rate``, ``true_positive_rate`` or ``false_positive_rate``.
    reference, candidate
        The metric under each model; NaN when undefined for the group (e.g. TPR without positives).
    difference
        ``candidate − reference``.
    ci_low, ci_high
        Paired bootstrap percentile interval of the difference (None when undefined).
    """

    attribute: str
    group: str
    metric: str
    reference: float
    candidate: float
    difference: float
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class GroupComparison:
    """How often two models decide differently within one group, and McNemar's test on accuracy.

    Attributes
    ----------
    attribute, group
        As in :class:`MetricComparison`.
    rows
        Eval rows in the group.
    disagreement_rate
        Share of the group's rows where the two models predict different classes (the rows Hooker
        et al. 2020 call compression-identified exemplars when the candidate is a compressed model).
    reference_only_correct, candidate_only_correct
        The discordant pairs: rows only the reference (resp. only the candidate) classifies right.
    mcnemar_p
        Exact two-sided McNemar p-value (binomial test on the discordant pairs); 1.0 without any.
    """

    attribute: str
    group: str
    rows: int
    disagreement_rate: float
    reference_only_correct: int
    candidate_only_correct: int
    mcnemar_p: float


@dataclass(frozen=True)
class DisparityComparison:
    """One disparity metric of one attribute (fairness audit definitions) under both models.

    Attributes
    ----------
    attribute
        The attribute or intersection (``sex*age_group``).
    metric
        One of :data:`governance.audit._disparity.DISPARITIES` (fairlearn's conventions).
    reference, candidate, difference, ci_low, ci_high
        As in :class:`MetricComparison`.
    """

    attribute: str
    metric: str
    reference: float
    candidate: float
    difference: float
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True)
class PairedComparison:
    """The whole comparison: every metric of every group, and the per-group agreement.

    Attributes
    ----------
    metrics
        One row per (attribute, group, metric), the ``overall`` rows first.
    groups
        One row per (attribute, group), ``overall`` first.
    worst_group_drop
        Per attribute: ``(group, drop, ci_low, ci_high)`` of the group whose accuracy dropped most
        (reference − candidate); the interval is that of the bootstrap maximum over groups. Groups
        under ``min_group_share`` of the rows are left out (see :func:`compare_predictions`).
    drop_gap
        Per attribute: ``(gap, ci_low, ci_high)``, the largest minus the smallest accuracy drop
        over the attribute's groups (the same groups).
    confidence
        The confidence level of the intervals.
    n_boot
        Bootstrap replicates.
    """

    metrics: tuple[MetricComparison, ...]
    groups: tuple[GroupComparison, ...]
    worst_group_drop: Mapping[str, tuple[str, float, float | None, float | None]]
    drop_gap: Mapping[str, tuple[float, float | None, float | None]]
    confidence: float
    n_boot: int
    #: Binary tasks: every disparity metric of every attribute, with paired intervals.
    disparities: tuple[DisparityComparison, ...] = ()

    def metric(self, metric: str, attribute: str = "overall", group: str = "overall") -> MetricComparison:
        """The row of one metric; raises KeyError when the comparison has none."""
        for row in self.metrics:
            if (row.metric, row.attribute, row.group) == (metric, attribute, group):
                return row
        raise KeyError((metric, attribute, group))


def _ratio(num: NDArray[np.float64], den: NDArray[np.float64]) -> NDArray[np.float64]:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def metrics_from_cells(
    cells: NDArray[np.integer], *, positive: int | None
) -> dict[str, tuple[NDArray[np.float64], NDArray[np.float64]]]:
    """Each metric under the reference and the candidate, from ``(..., K, K, K)`` cell counts.

    The last three axes are ``[true, reference prediction, candidate prediction]``; any leading axes
    (replicates, groups) are kept. ``positive`` is the positive class index of a binary task (None
    for multiclass: accuracy only).
    """
    c = np.asarray(cells, dtype=np.float64)
    k = c.shape[-1]
    n = c.sum(axis=(-3, -2, -1))
    eye = np.eye(k, dtype=bool)
    # correct under the reference: true == reference prediction, summed over the candidate's axis.
    ref_correct = (c.sum(axis=-1) * eye).sum(axis=(-2, -1))
    cand_correct = (c.sum(axis=-2) * eye).sum(axis=(-2, -1))
    out = {"accuracy": (_ratio(ref_correct, n), _ratio(cand_correct, n))}
    if positive is None:
        return out
    ref_pos = c[..., :, positive, :].sum(axis=(-2, -1))
    cand_pos = c[..., :, :, positive].sum(axis=(-2, -1))
    out["selection_rate"] = (_ratio(ref_pos, n), _ratio(cand_pos, n))
    positives = c[..., positive, :, :].sum(axis=(-2, -1))
    negatives = n - positives
    ref_tp = c[..., positive, positive, :].sum(axis=-1)
    cand_tp = c[..., positive, :, positive].sum(axis=-1)
    out["true_positive_rate"] = (_ratio(ref_tp, positives), _ratio(cand_tp, positives))
    ref_fp = ref_pos - ref_tp
    cand_fp = cand_pos - cand_tp
    out["false_positive_rate"] = (_ratio(ref_fp, negatives), _ratio(cand_fp, negatives))
    return out


def mcnemar_exact_p(reference_only: int, candidate_only: int) -> float:
    """Exact two-sided McNemar p-value: a binomial test of the discordant pairs against ½."""
    from scipy.stats import binomtest

    discordant = reference_only + candidate_only
    if discordant == 0:
        return 1.0
    return float(binomtest(reference_only, discordant, 0.5, alternative="two-sided").pvalue)


def _discordant(cells: NDArray[np.integer]) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """(rows, reference-only-correct, candidate-only-correct) and disagreements from cell counts."""
    c = np.asarray(cells, dtype=np.int64)
    k = c.shape[-1]
    idx = np.arange(k)
    ref_ok = np.zeros((k, k, k), dtype=bool)
    ref_ok[idx, idx, :] = True
    cand_ok = np.zeros((k, k, k), dtype=bool)
    cand_ok[idx, :, idx] = True
    agree = np.zeros((k, k, k), dtype=bool)
    agree[:, idx, idx] = True
    ref_only = (c * (ref_ok & ~cand_ok)).sum(axis=(-3, -2, -1))
    cand_only = (c * (cand_ok & ~ref_ok)).sum(axis=(-3, -2, -1))
    disagree = (c * ~agree).sum(axis=(-3, -2, -1))
    return ref_only, cand_only, disagree


def _joint_cells(
    codes: Sequence[NDArray[np.integer]],
    sizes: Sequence[int],
    y_true: NDArray[np.integer],
    reference: NDArray[np.integer],
    candidate: NDArray[np.integer],
    k: int,
) -> NDArray[np.int64]:
    shape = (*sizes, k, k, k)
    n_cells = int(np.prod(shape, dtype=np.int64))
    if n_cells > MAX_CELLS:
        raise ValueError(f"{n_cells} joint cells exceed {MAX_CELLS}; compare fewer attributes at once")
    index = np.zeros(len(y_true), dtype=np.int64)
    for column, size in zip((*codes, y_true, reference, candidate), (*sizes, k, k, k)):
        index *= size
        index += column
    return np.bincount(index, minlength=n_cells).astype(np.int64).reshape(shape)


def _reduce(joint: NDArray[np.int64], n_attr: int, keep: Sequence[int]) -> NDArray[np.int64]:
    """Sum the joint table down to the attributes ``keep``; groups flattened, leading axes kept."""
    lead = joint.ndim - n_attr - 3
    drop = tuple(lead + i for i in range(n_attr) if i not in keep)
    reduced = joint.sum(axis=drop) if drop else joint
    return reduced.reshape((*joint.shape[:lead], -1, *joint.shape[-3:]))


def compare_predictions(
    y_true: Sequence[object] | NDArray[np.generic],
    reference: Sequence[object] | NDArray[np.generic],
    candidate: Sequence[object] | NDArray[np.generic],
    sensitive: Mapping[str, Sequence[object] | NDArray[np.generic]],
    *,
    classes: Sequence[object] | None = None,
    positive: object | None = None,
    intersections: bool = True,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    min_group_share: float = 0.02,
) -> PairedComparison:
    """Compare two prediction sets on the same rows, overall and per group, with paired intervals.

    Parameters
    ----------
    y_true, reference, candidate
        True labels and the two models' predicted labels, one per eval row.
    sensitive
        Attribute name → group value per row (values are compared as strings).
    classes
        The class labels (default: the sorted union of all labels seen).
    positive
        The positive class of a binary task (default: the last of ``classes`` when there are two);
        rate metrics (selection rate, TPR, FPR) are computed only for binary tasks.
    intersections
        Also compare every pair of attributes (``a*b``).
    n_boot
        Paired bootstrap replicates (0 for no intervals).
    confidence
        Level of the percentile intervals.
    seed
        Seed of the bootstrap; the same seed gives the same intervals.
    min_group_share
        Groups under this share of the rows are left out of the worst-group drop and the drop gap
        (one misclassified row of a 3-row group is a 33-point "drop"); they keep their rows in
        ``metrics`` and ``groups``. The fairness audit flags groups under the same 2% default.

    Examples
    --------
    >>> cmp = compare_predictions([1, 0, 1, 1], [1, 0, 1, 0], [1, 1, 1, 0], {"sex": ["f", "m", "f", "m"]},
    ...                           n_boot=0)
    >>> cmp.metric("accuracy", "sex", "m").difference
    -0.5
    """
    import pandas as pd

    columns = [pd.Series(np.asarray(v)).astype(str) for v in (y_true, reference, candidate)]
    if len({len(c) for c in columns}) != 1:
        raise ValueError(f"lengths differ: {[len(c) for c in columns]} (labels, reference, candidate)")
    seen = sorted(set().union(*(c.unique().tolist() for c in columns)))
    labels = tuple(str(c) for c in classes) if classes is not None else tuple(seen)
    k = len(labels)
    lookup = {label: i for i, label in enumerate(labels)}
    unknown = set(seen) - set(labels)
    if unknown:
        raise ValueError(f"labels {sorted(unknown)[:5]} are not among the classes {list(labels)}")
    y, a, b = (pd.Categorical(c, categories=labels).codes.astype(np.int64) for c in columns)
    default_positive = 1 if k == 2 else None
    pos = lookup[str(positive)] if positive is not None else default_positive
    names = list(sensitive)
    codes: list[NDArray[np.int64]] = []
    categories: list[tuple[str, ...]] = []
    for name in names:
        values = pd.Categorical(pd.Series(np.asarray(sensitive[name])).astype(str))
        if len(values) != len(y):
            raise ValueError(f"attribute {name!r} has {len(values)} values for {len(y)} rows")
        codes.append(values.codes.astype(np.int64))
        categories.append(tuple(str(c) for c in values.categories))

    return compare_codes(
        y,
        a,
        b,
        k,
        dict(zip(names, zip(codes, categories))),
        positive=pos,
        intersections=intersections,
        n_boot=n_boot,
        confidence=confidence,
        seed=seed,
        min_group_share=min_group_share,
    )


def compare_codes(
    y_true: NDArray[np.integer],
    reference: NDArray[np.integer],
    candidate: NDArray[np.integer],
    k: int,
    groups: Mapping[str, tuple[NDArray[np.integer], Sequence[str]]],
    *,
    positive: int | None,
    intersections: bool = True,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    min_group_share: float = 0.02,
) -> PairedComparison:
    """:func:`compare_predictions` on integer codes (class indices in ``range(k)``, group codes).

    The predictions-only path keeps labels as codes from loading on; this entry point needs
    neither pandas nor a pass over strings. ``groups`` maps an attribute to ``(codes, names)``.
    """
    names = list(groups)
    codes = [np.asarray(groups[n][0], dtype=np.int64) for n in names]
    categories = [tuple(str(c) for c in groups[n][1]) for n in names]
    for name, column in zip(names, codes):
        if len(column) != len(y_true):
            raise ValueError(f"attribute {name!r} has {len(column)} values for {len(y_true)} rows")
    y, a, b = (np.asarray(v, dtype=np.int64) for v in (y_true, reference, candidate))
    pos = positive
    joint = _joint_cells(codes, [len(c) for c in categories], y, a, b, k)
    replicates = resample_counts(joint, n_boot, seed) if n_boot > 0 else None

    tables: list[tuple[str, tuple[int, ...], tuple[str, ...]]] = [("overall", (), ("overall",))]
    for i, name in enumerate(names):
        tables.append((name, (i,), categories[i]))
    if intersections:
        for i, j in combinations(range(len(names)), 2):
            pairs = tuple(f"{gi}*{gj}" for gi in categories[i] for gj in categories[j])
            tables.append((f"{names[i]}*{names[j]}", (i, j), pairs))

    metric_rows: list[MetricComparison] = []
    group_rows: list[GroupComparison] = []
    disparity_rows: list[DisparityComparison] = []
    worst: dict[str, tuple[str, float, float | None, float | None]] = {}
    gaps: dict[str, tuple[float, float | None, float | None]] = {}
    for attribute, keep, group_names in tables:
        cells = _reduce(joint, len(names), keep)
        boot = _reduce(replicates, len(names), keep) if replicates is not None else None
        values = metrics_from_cells(cells, positive=pos)
        boot_values = metrics_from_cells(boot, positive=pos) if boot is not None else None
        sizes = cells.sum(axis=(-3, -2, -1))
        for metric, (ref, cand) in values.items():
            diff = cand - ref
            boot_diff = boot_values[metric][1] - boot_values[metric][0] if boot_values is not None else None
            for g, group in enumerate(group_names):
                if sizes[g] == 0:
                    continue
                lo, hi = (
                    percentile_interval(boot_diff[:, g], confidence)
                    if boot_diff is not None
                    else (None, None)
                )
                metric_rows.append(
                    MetricComparison(
                        attribute=attribute,
                        group=group,
                        metric=metric,
                        reference=float(ref[g]),
                        candidate=float(cand[g]),
                        difference=float(diff[g]),
                        ci_low=lo,
                        ci_high=hi,
                    )
                )
        ref_only, cand_only, disagree = _discordant(cells)
        for g, group in enumerate(group_names):
            if sizes[g] == 0:
                continue
            group_rows.append(
                GroupComparison(
                    attribute=attribute,
                    group=group,
                    rows=int(sizes[g]),
                    disagreement_rate=float(disagree[g] / sizes[g]),
                    reference_only_correct=int(ref_only[g]),
                    candidate_only_correct=int(cand_only[g]),
                    mcnemar_p=mcnemar_exact_p(int(ref_only[g]), int(cand_only[g])),
                )
            )
        if attribute == "overall":
            continue
        if pos is not None:
            disparity_rows.extend(_disparity_rows(attribute, cells, boot, pos, confidence))
        occupied = sizes >= max(min_group_share * len(y), 1)
        ref_acc, cand_acc = values["accuracy"]
        drops = np.where(occupied, ref_acc - cand_acc, np.nan)
        if not np.isfinite(drops).any():
            continue
        g_worst = int(np.nanargmax(drops))
        gap = float(np.nanmax(drops) - np.nanmin(drops))
        if boot_values is not None:
            b_ref, b_cand = boot_values["accuracy"]
            b_drops = np.where(occupied, b_ref - b_cand, np.nan)
            # A group absent from a replicate has no accuracy there; the max/min run over the
            # groups present, as they do on the data itself.
            with np.errstate(invalid="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                b_max = np.nanmax(b_drops, axis=1)
                b_min = np.nanmin(b_drops, axis=1)
            w_lo, w_hi = percentile_interval(b_max, confidence)
            g_lo, g_hi = percentile_interval(b_max - b_min, confidence)
        else:
            w_lo = w_hi = g_lo = g_hi = None
        worst[attribute] = (group_names[g_worst], float(drops[g_worst]), w_lo, w_hi)
        gaps[attribute] = (gap, g_lo, g_hi)

    return PairedComparison(
        metrics=tuple(metric_rows),
        groups=tuple(group_rows),
        worst_group_drop=worst,
        drop_gap=gaps,
        confidence=confidence,
        n_boot=n_boot,
        disparities=tuple(disparity_rows),
    )


def _disparity_rows(
    attribute: str,
    cells: NDArray[np.int64],
    boot: NDArray[np.int64] | None,
    positive: int,
    confidence: float,
) -> list[DisparityComparison]:
    """The fairness audit's disparity metrics for both models, from the joint cells.

    ``cells[..., true, reference, candidate]`` summed over the candidate's axis is the reference's
    confusion table ``[true, pred]`` and over the reference's axis the candidate's; the fairness
    audit's own :func:`~governance.audit._disparity.disparities` reads both.
    """
    from governance.audit._disparity import disparities

    ref = disparities(cells.sum(axis=-1), positive)
    cand = disparities(cells.sum(axis=-2), positive)
    if boot is not None:
        boot_ref = disparities(boot.sum(axis=-1), positive)
        boot_cand = disparities(boot.sum(axis=-2), positive)
    rows = []
    for metric in ref:
        lo = hi = None
        if boot is not None:
            lo, hi = percentile_interval(boot_cand[metric] - boot_ref[metric], confidence)
        r, c = float(ref[metric]), float(cand[metric])
        rows.append(DisparityComparison(attribute, metric, r, c, c - r, lo, hi))
    return rows
