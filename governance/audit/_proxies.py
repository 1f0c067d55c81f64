"""Proxy detection: which model inputs predict a sensitive attribute?

A feature is a proxy when knowing it tells you the sensitive attribute. We score each
(feature, sensitive attribute) pair by the ROC AUC of a univariate predictor, one-vs-rest over
the attribute's groups and macro-averaged:

* numeric feature: the value itself is the score, folded (``max(auc, 1 - auc)``), since a proxy
  may predict a group by being low as well as high;
* categorical feature: out-of-fold target encoding (the group's share among training rows of
  the same category, computed on the other folds), so a feature with many rare categories
  cannot score well by memorising them.

Both are cheap (no model fitting) and easy to explain in a report: "age predicts age_group
with AUC 0.98".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ProxyScore", "detect_proxies", "univariate_auc"]

#: Groups with fewer rows than this are left out of the one-vs-rest average (AUC would be noise).
MIN_GROUP_ROWS = 5


@dataclass(frozen=True)
class ProxyScore:
    """How well one feature predicts one sensitive attribute."""

    sensitive: str
    feature: str
    auc: float
    method: str
    declared: bool
    is_proxy: bool

    def to_row(self) -> dict[str, object]:
        return {
            "sensitive": self.sensitive,
            "feature": self.feature,
            "auc": self.auc,
            "method": self.method,
            "declared": self.declared,
            "proxy": self.is_proxy,
        }


def _out_of_fold_encoding(values: np.ndarray, target: np.ndarray, folds: int, seed: int) -> np.ndarray:
    import pandas as pd

    rng = np.random.default_rng(seed)
    fold = rng.permutation(len(values)) % folds
    prior = float(target.mean())
    score = np.empty(len(values), dtype=np.float64)
    keys = pd.Series(values).astype(str).to_numpy()
    for k in range(folds):
        fit = fold != k
        rates = pd.Series(target[fit]).groupby(keys[fit]).mean()
        score[~fit] = pd.Series(keys[~fit]).map(rates).fillna(prior).to_numpy()
    return score


def univariate_auc(
    values: np.ndarray, groups: np.ndarray, *, categorical: bool, folds: int = 5, seed: int = 0
) -> float | None:
    """Macro one-vs-rest AUC of predicting ``groups`` from ``values`` alone (None if undefined)."""
    from sklearn.metrics import roc_auc_score

    groups = np.asarray(groups).astype(str)
    levels, counts = np.unique(groups, return_counts=True)
    usable = [g for g, c in zip(levels, counts) if MIN_GROUP_ROWS <= c <= len(groups) - MIN_GROUP_ROWS]
    if len(levels) == 2 and usable:
        usable = usable[:1]  # both one-vs-rest problems are the same problem
    aucs = []
    for group in usable:
        y = (groups == group).astype(np.int64)
        if categorical:
            score = _out_of_fold_encoding(values, y.astype(np.float64), folds, seed)
            aucs.append(float(roc_auc_score(y, score)))
        else:
            score = np.asarray(values, dtype=np.float64)
            if not np.all(np.isfinite(score)):
                score = np.where(np.isfinite(score), score, np.nanmedian(score))
            auc = float(roc_auc_score(y, score))
            aucs.append(max(auc, 1.0 - auc))
    return float(np.mean(aucs)) if aucs else None


def detect_proxies(
    frame: pd.DataFrame,
    features: Sequence[str],
    sensitive: Sequence[str],
    declared: Mapping[str, Sequence[str]],
    *,
    threshold: float = 0.7,
    seed: int = 0,
) -> list[ProxyScore]:
    """Score every feature against every sensitive attribute present in ``frame``.

    A declared proxy is always counted; a detected one when its AUC reaches ``threshold``.
    Sensitive attributes that are model inputs themselves are not listed here (they count
    directly).
    """
    import pandas as pd

    scores: list[ProxyScore] = []
    for attr in sensitive:
        if attr not in frame.columns:
            continue
        groups = frame[attr].astype(str).to_numpy()
        declared_here = set(declared.get(attr, ()))
        for feature in features:
            if feature == attr or feature in sensitive or feature not in frame.columns:
                continue
            column = frame[feature]
            categorical = not pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column)
            values = column.to_numpy() if categorical else column.to_numpy(dtype=np.float64)
            auc = univariate_auc(values, groups, categorical=categorical, seed=seed)
            is_declared = feature in declared_here
            scores.append(
                ProxyScore(
                    sensitive=attr,
                    feature=feature,
                    auc=float("nan") if auc is None else auc,
                    method="target_encoding_oof" if categorical else "value_rank",
                    declared=is_declared,
                    is_proxy=is_declared or (auc is not None and auc >= threshold),
                )
            )
        for feature in sorted(declared_here - set(features)):
            # Declared but not a model input: listed so a reader sees it was considered.
            scores.append(ProxyScore(attr, feature, float("nan"), "declared", True, False))
    return scores
