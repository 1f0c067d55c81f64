"""Post-processing mitigation with fairlearn's ``ThresholdOptimizer`` on the model's scores.

The thresholds are fitted on a calibration part of the eval rows and every number is reported on
the rest, so that no mitigated figure is measured on the rows that chose it. The split is seeded
and stratified by group × label (:func:`calibration_split`); a group that the calibration part
would not contain is bad input, since the rule could not decide for it.

fairlearn needs an estimator: :class:`_Scores` is the identity on a column of scores, ``prefit``
(post-processing on the model's own scores, predictions-only decision logs included). Post-
processing reads no training row, so a DP model stays exactly as private after it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from governance.models.decision_rule import DecisionRule, GroupThreshold

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "CONSTRAINTS",
    "TARGET_METRIC",
    "CalibrationSplit",
    "calibration_split",
    "fit_threshold_rule",
    "split_coded",
]

#: The constraints offered, and the disparity metric each one targets.
CONSTRAINTS: tuple[str, ...] = ("demographic_parity", "equalized_odds", "true_positive_rate_parity")
TARGET_METRIC: dict[str, str] = {
    "demographic_parity": "demographic_parity_difference",
    "equalized_odds": "equalized_odds_difference",
    "true_positive_rate_parity": "equal_opportunity_difference",
}

ERR_GROUP_MISSING = (
    "group {group!r} of {attribute!r} has {n} eval row(s): too few to give it rows in both the "
    "calibration split (to fit its threshold) and the held-out split (to measure it)"
)


@dataclass(frozen=True)
class CalibrationSplit:
    """Which eval rows fit the thresholds and which measure them (row positions in the eval split)."""

    calibration: NDArray[np.int64]
    held_out: NDArray[np.int64]
    share: float
    seed: int


def calibration_split(
    labels: Sequence[Any] | np.ndarray,
    groups: Sequence[Any] | np.ndarray,
    *,
    share: float = 0.5,
    seed: int = 0,
    attribute: str = "",
) -> CalibrationSplit:
    """A seeded split of the eval rows, stratified by group × label (values compared as strings).

    Raises
    ------
    ValueError
        When a group cannot have rows on both sides (fewer than two rows).
    """
    from governance.mitigation._codes import group_codes

    y, y_names = group_codes(labels)
    g, g_names = group_codes(groups)
    return split_coded(y, y_names, g, g_names, share=share, seed=seed, attribute=attribute)


def split_coded(
    labels: NDArray[np.integer],
    label_names: Sequence[str],
    groups: NDArray[np.integer],
    group_names: Sequence[str],
    *,
    share: float = 0.5,
    seed: int = 0,
    attribute: str = "",
) -> CalibrationSplit:
    """:func:`calibration_split` on integer codes (groups, then labels, taken in name order)."""
    rng = np.random.default_rng(seed)
    calibration: list[NDArray[np.int64]] = []
    present_groups = np.flatnonzero(np.bincount(groups, minlength=len(group_names)))
    for code in sorted(present_groups.tolist(), key=lambda c: group_names[c]):
        rows = np.flatnonzero(groups == code)
        if len(rows) < 2:
            raise ValueError(
                ERR_GROUP_MISSING.format(group=group_names[code], attribute=attribute, n=len(rows))
            )
        chosen: list[NDArray[np.int64]] = []
        row_labels = labels[rows]
        for label in sorted(np.unique(row_labels).tolist(), key=lambda c: label_names[c]):
            cell = rows[row_labels == label]
            take = round(share * len(cell))
            chosen.append(rng.permutation(cell)[:take])
        picked = np.concatenate(chosen) if chosen else np.zeros(0, dtype=np.int64)
        # Both sides must hold the group whatever the rounding did.
        if not len(picked):
            picked = np.asarray([int(rng.choice(rows))], dtype=np.int64)
        if len(picked) == len(rows):
            picked = picked[:-1]
        calibration.append(picked)
    cal = (
        np.sort(np.concatenate(calibration)).astype(np.int64) if calibration else np.zeros(0, dtype=np.int64)
    )
    outside = np.ones(len(labels), dtype=bool)
    outside[cal] = False
    held = np.flatnonzero(outside).astype(np.int64)
    return CalibrationSplit(calibration=cal, held_out=held, share=share, seed=seed)


def _score_estimator() -> Any:
    from sklearn.base import BaseEstimator, ClassifierMixin

    class _Scores(ClassifierMixin, BaseEstimator):
        """The identity on one column of positive-class scores (already fitted)."""

        def fit(self, X: Any, y: Any) -> _Scores:
            return self

        def predict_proba(self, X: Any) -> np.ndarray:
            s = np.asarray(X, dtype=np.float64).reshape(-1)
            return np.column_stack([1.0 - s, s])

        def predict(self, X: Any) -> np.ndarray:
            return (np.asarray(X, dtype=np.float64).reshape(-1) > 0.5).astype(np.int64)

    estimator = _Scores()
    estimator.classes_ = np.array([0, 1])
    estimator.fitted_ = True
    return estimator


def fit_threshold_rule(
    scores: Sequence[float] | np.ndarray,
    positive: Sequence[bool] | np.ndarray,
    groups: Sequence[Any] | np.ndarray,
    *,
    attribute: str,
    constraint: str,
    classes: tuple[str, str],
    tol: float | None = None,
    random_state: int = 0,
    grid_size: int = 1000,
) -> DecisionRule:
    """Fit fairlearn's ``ThresholdOptimizer`` (accuracy objective) and return its rule as data.

    Parameters
    ----------
    scores
        The model's positive-class score per calibration row.
    positive
        Whether each calibration row's true label is the positive class.
    groups
        The sensitive attribute's value per row.
    constraint, tol
        fairlearn's ``constraints`` and ``tol`` (None: exact parity).
    """
    from fairlearn.postprocessing import ThresholdOptimizer

    if constraint not in CONSTRAINTS:
        raise ValueError(f"unknown constraint {constraint!r}; expected one of {list(CONSTRAINTS)}")
    x = np.asarray(scores, dtype=np.float64).reshape(-1, 1)
    y = np.asarray(positive, dtype=np.int64)
    g = np.asarray([str(v) for v in groups], dtype=object)
    optimizer = ThresholdOptimizer(
        estimator=_score_estimator(),
        constraints=constraint,
        objective="accuracy_score",
        prefit=True,
        predict_method="predict_proba",
        grid_size=grid_size,
        tol=tol,
    )
    optimizer.fit(x, y, sensitive_features=g)
    thresholds = {}
    for value, interpolation in optimizer.interpolated_thresholder_.interpolation_dict.items():
        thresholds[str(value)] = GroupThreshold(
            p0=float(interpolation.p0),
            operator0=interpolation.operation0.operator,
            threshold0=float(interpolation.operation0.threshold),
            p1=float(interpolation.p1),
            operator1=interpolation.operation1.operator,
            threshold1=float(interpolation.operation1.threshold),
            p_ignore=float(interpolation.get("p_ignore", 0.0)),
            constant=float(interpolation.get("prediction_constant", 0.0)),
        )
    return DecisionRule(
        attribute=attribute,
        constraint=constraint,
        tol=tol,
        classes=classes,
        groups=thresholds,
        random_state=random_state,
    )
