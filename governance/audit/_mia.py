"""Membership-inference statistics: ROC, AUC, TPR at low FPR, Clopper–Pearson, empirical ε.

Convention: a higher score means "more likely a training member". Members are the positives.

The empirical ε lower bound follows Jagielski et al. (2020) and Nasr et al. (2021): an
(ε, δ)-DP mechanism forces every membership test to satisfy
``FPR + e^ε · FNR ≥ 1 − δ`` and ``FNR + e^ε · FPR ≥ 1 − δ``. Replacing the rates by their
Clopper–Pearson *upper* bounds (each one-sided at 1 − α/2, so both hold jointly with
probability ≥ 1 − α) gives ``ε ≥ max(log((1 − δ − FNR⁺)/FPR⁺), log((1 − δ − FPR⁺)/FNR⁺))``.
The threshold is chosen on separate data from the rates it is bounded with, so the bound is not
inflated by picking the luckiest threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "EpsilonBound",
    "bootstrap_ci",
    "clopper_pearson",
    "clopper_pearson_upper",
    "empirical_epsilon",
    "epsilon_from_rates",
    "mia_auc",
    "roc_curve",
    "tpr_at_fpr",
]


def roc_curve(members: np.ndarray, nonmembers: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) for "member if score >= threshold", thresholds descending.

    scikit-learn's :func:`~sklearn.metrics.roc_curve` with every point kept
    (``drop_intermediate=False``): starts at (0, 0) with threshold +inf, one point per distinct
    score.
    """
    from sklearn.metrics import roc_curve as sklearn_roc_curve

    scores, labels = _scored(members, nonmembers)
    fpr, tpr, thresholds = sklearn_roc_curve(labels, scores, drop_intermediate=False)
    return fpr, tpr, thresholds


def mia_auc(members: np.ndarray, nonmembers: np.ndarray) -> float:
    """ROC AUC (scikit-learn's :func:`~sklearn.metrics.roc_auc_score`; ties count one half)."""
    from sklearn.metrics import roc_auc_score

    scores, labels = _scored(members, nonmembers)
    return float(roc_auc_score(labels, scores))


def _scored(members: np.ndarray, nonmembers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scores of both sides in one array, and labels with members as the positives."""
    scores = np.concatenate([members, nonmembers]).astype(np.float64)
    labels = np.concatenate([np.ones(len(members)), np.zeros(len(nonmembers))])
    return scores, labels


def tpr_at_fpr(members: np.ndarray, nonmembers: np.ndarray, target_fpr: float) -> float:
    """The highest TPR of any threshold whose FPR is at most ``target_fpr``."""
    fpr, tpr, _ = roc_curve(members, nonmembers)
    return float(tpr[fpr <= target_fpr + 1e-12].max())


def clopper_pearson(k: int, n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Exact two-sided (1 − α) interval for a binomial proportion k/n.

    The closed form by quantiles of scipy's beta distribution. Why not
    ``scipy.stats.binomtest(k, n).proportion_ci(method="exact")``: it finds the same bounds by
    root-finding and agrees only to ~3e-13 (``tests/audit/test_privacy.py`` pins both), while
    the beta quantiles are the definition and keep results.json bit-identical.
    """
    from scipy.stats import beta

    low = 0.0 if k == 0 else float(beta.ppf(alpha / 2, k, n - k + 1))
    high = 1.0 if k == n else float(beta.ppf(1 - alpha / 2, k + 1, n - k))
    return low, high


def clopper_pearson_upper(k: int, n: int, alpha: float) -> float:
    """Exact one-sided (1 − α) upper bound for a binomial proportion k/n (beta quantile, as above)."""
    from scipy.stats import beta

    return 1.0 if k >= n else float(beta.ppf(1 - alpha, k + 1, n - k))


def epsilon_from_rates(fpr_upper: float, fnr_upper: float, delta: float) -> float:
    """The ε that (upper bounds on) FPR and FNR imply at δ; 0 when they imply nothing."""
    best = 0.0
    for a, b in ((fnr_upper, fpr_upper), (fpr_upper, fnr_upper)):
        numerator = 1.0 - delta - a
        if numerator > 0 and b > 0:
            best = max(best, math.log(numerator / b))
        elif numerator > 0 and b == 0:
            return math.inf
    return best


@dataclass(frozen=True)
class EpsilonBound:
    """An empirical ε lower bound and the counts it rests on."""

    epsilon: float
    threshold: float
    false_positives: int
    nonmembers: int
    false_negatives: int
    members: int
    alpha: float


def _bound_at(
    members: np.ndarray, nonmembers: np.ndarray, threshold: float, delta: float, alpha: float
) -> EpsilonBound:
    fp = int((nonmembers >= threshold).sum())
    fn = int((members < threshold).sum())
    eps = epsilon_from_rates(
        clopper_pearson_upper(fp, len(nonmembers), alpha / 2),
        clopper_pearson_upper(fn, len(members), alpha / 2),
        delta,
    )
    return EpsilonBound(eps, float(threshold), fp, len(nonmembers), fn, len(members), alpha)


def empirical_epsilon(
    select_members: np.ndarray,
    select_nonmembers: np.ndarray,
    eval_members: np.ndarray,
    eval_nonmembers: np.ndarray,
    *,
    delta: float,
    alpha: float = 0.05,
) -> EpsilonBound:
    """Pick the threshold with the largest bound on the ``select_*`` scores, bound on ``eval_*``.

    The bound on ``eval_*`` holds with probability ≥ 1 − α for that one threshold.
    """
    _, _, thresholds = roc_curve(select_members, select_nonmembers)
    best_t, best_eps = math.inf, -1.0
    for t in thresholds[1:]:
        eps = _bound_at(select_members, select_nonmembers, t, delta, alpha).epsilon
        if eps > best_eps:
            best_t, best_eps = float(t), eps
    return _bound_at(eval_members, eval_nonmembers, best_t, delta, alpha)


def bootstrap_ci(
    members: np.ndarray,
    nonmembers: np.ndarray,
    statistic: str,
    *,
    n_boot: int = 200,
    level: float = 0.95,
    seed: int = 0,
    target_fpr: float = 0.01,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``auc`` or ``tpr_at_fpr``, resampling each side.

    Our loop, not :func:`scipy.stats.bootstrap`: scipy draws its resamples from its own index
    stream, so the intervals in results.json would change with no gain in accuracy; the
    percentile interval itself is :func:`numpy.quantile`.
    """
    rng = np.random.default_rng(seed)
    values = np.empty(n_boot)
    for b in range(n_boot):
        m = members[rng.integers(0, len(members), len(members))]
        n = nonmembers[rng.integers(0, len(nonmembers), len(nonmembers))]
        values[b] = mia_auc(m, n) if statistic == "auc" else tpr_at_fpr(m, n, target_fpr)
    tail = (1 - level) / 2
    return float(np.quantile(values, tail)), float(np.quantile(values, 1 - tail))
