"""Group rates and disparity metrics from confusion counts, with fairlearn's exact conventions.

Everything is vectorised over leading batch axes, so the same code computes the point estimate
(no batch axis) and a thousand bootstrap replicates (one batch axis) at once.

Conventions, read off fairlearn 0.15 (``fairlearn/metrics/_base_metrics.py``) and scikit-learn:

- TPR/FPR/FNR come from ``confusion_matrix(normalize="true")`` followed by ``nan_to_num``: a rate
  whose denominator is zero (a group with no actual positives, or no actual negatives) is **0**,
  not undefined.
- precision is scikit-learn's ``precision_score`` with its default ``zero_division``: 0 when the
  group has no predicted positives.
- A group with no rows (an empty intersection, or a group absent from a bootstrap replicate) is
  NaN, and ``difference``/``ratio`` skip NaN, as ``MetricFrame`` does after reindexing the
  intersection grid.
- ``difference`` is max − min; ``ratio`` is min / max (NaN when max is 0, as pandas divides 0/0).
- ``equalized_odds_difference`` (``agg="worst_case"``) is the larger of the TPR and FPR differences.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["DISPARITIES", "GROUP_RATES", "RATIO_METRICS", "disparities", "group_rates"]

#: Per-group figures, in table order.
GROUP_RATES: tuple[str, ...] = (
    "selection_rate",
    "true_positive_rate",
    "false_positive_rate",
    "false_negative_rate",
    "precision",
    "accuracy",
)

#: Aggregate metrics (CONTRACT §4), in output order.
DISPARITIES: tuple[str, ...] = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equal_opportunity_difference",
    "accuracy_difference",
)

#: Metrics where smaller is worse (the rest: larger is worse).
RATIO_METRICS: frozenset[str] = frozenset({"demographic_parity_ratio"})


def _div(num: NDArray[np.floating], den: NDArray[np.floating], empty: float) -> NDArray[np.float64]:
    """num / den, with ``empty`` where den == 0."""
    out = np.full(np.broadcast(num, den).shape, empty, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def group_rates(counts: NDArray[np.integer], cls: int) -> dict[str, NDArray[np.float64]]:
    """Per-group rates for class index ``cls`` taken as positive (one-vs-rest when multiclass).

    Parameters
    ----------
    counts
        ``(..., G, K, K)`` confusion counts indexed ``[..., group, true, pred]``.
    cls
        Index of the positive class.

    Returns
    -------
    dict
        ``GROUP_RATES`` name → ``(..., G)`` float array; NaN for groups with no rows.
    """
    c = counts.astype(np.float64, copy=False)
    n = c.sum(axis=(-2, -1))
    tp = c[..., cls, cls]
    actual_pos = c[..., cls, :].sum(axis=-1)
    pred_pos = c[..., :, cls].sum(axis=-1)
    actual_neg = n - actual_pos
    fp = pred_pos - tp
    fn = actual_pos - tp
    correct = np.trace(c, axis1=-2, axis2=-1)
    rates = {
        "selection_rate": _div(pred_pos, n, np.nan),
        "true_positive_rate": _div(tp, actual_pos, 0.0),
        "false_positive_rate": _div(fp, actual_neg, 0.0),
        "false_negative_rate": _div(fn, actual_pos, 0.0),
        "precision": _div(tp, pred_pos, 0.0),
        "accuracy": _div(correct, n, np.nan),
    }
    empty = n == 0
    for values in rates.values():
        values[empty] = np.nan
    return rates


def _spread(values: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: every group empty
        return np.nanmin(values, axis=-1), np.nanmax(values, axis=-1)


def _ratio(lo: NDArray[np.float64], hi: NDArray[np.float64]) -> NDArray[np.float64]:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(lo / hi, dtype=np.float64)


def disparities(counts: NDArray[np.integer], cls: int) -> dict[str, NDArray[np.float64]]:
    """The CONTRACT §4 disparity metrics over the groups of one table, class ``cls`` positive.

    Parameters
    ----------
    counts
        ``(..., G, K, K)`` confusion counts.
    cls
        Index of the positive class.

    Returns
    -------
    dict
        ``DISPARITIES`` name → ``(...)`` float array.
    """
    rates = group_rates(counts, cls)
    sel_lo, sel_hi = _spread(rates["selection_rate"])
    tpr_lo, tpr_hi = _spread(rates["true_positive_rate"])
    fpr_lo, fpr_hi = _spread(rates["false_positive_rate"])
    acc_lo, acc_hi = _spread(rates["accuracy"])
    tpr_diff = tpr_hi - tpr_lo
    return {
        "demographic_parity_difference": sel_hi - sel_lo,
        "demographic_parity_ratio": _ratio(sel_lo, sel_hi),
        "equalized_odds_difference": np.fmax(tpr_diff, fpr_hi - fpr_lo),
        "equal_opportunity_difference": tpr_diff,
        "accuracy_difference": acc_hi - acc_lo,
    }


def worst(metric: str, values: NDArray[np.float64], axis: int = 0) -> NDArray[np.float64]:
    """The worst of ``values`` along ``axis``: min for ratios, max for differences (NaN skipped)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if metric in RATIO_METRICS:
            return np.asarray(np.nanmin(values, axis=axis), dtype=np.float64)
        return np.asarray(np.nanmax(values, axis=axis), dtype=np.float64)
