"""Is the model better than trivial? Two baselines on the same features and split.

A credit model scoring 0.70 accuracy where 70% of applicants are "good" has learned nothing; only
a baseline says so. Both baselines are fitted on the train split and scored on the eval rows the
model is scored on:

- ``majority``: always the most frequent train label (eval's, when no train split exists: then
  the baseline has seen the eval labels and is optimistic, and the table says so);
- ``logistic``: scikit-learn's ``LogisticRegression`` (seeded, L2, C=1) on the model's features:
  numeric columns median-imputed and standardised, categorical ones one-hot encoded; the text
  column as TF-IDF for text tasks; pixels as they are for image tasks. Absent when the eval rows
  carry no features (a decision log) or there is no train split.

Whether the model beats a baseline is a paired question on the same rows, answered by
:func:`governance.audit.paired.compare_predictions`: the model beats the majority class only when
the lower end of the paired interval of its accuracy lift is above zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

    from governance.data.bundle import DataBundle
    from governance.results import Finding

__all__ = [
    "Baseline",
    "BaselineAssessment",
    "assess_baselines",
    "logistic_predictions",
    "majority_predictions",
]


@dataclass(frozen=True)
class Baseline:
    """One baseline's eval predictions and how they were obtained.

    Attributes
    ----------
    name
        ``majority`` or ``logistic``.
    y_pred
        Predicted labels (strings) for each eval row.
    fitted_on
        ``train`` or ``eval`` (majority class without a train split).
    """

    name: str
    y_pred: np.ndarray
    fitted_on: str


def majority_predictions(data: DataBundle, y_eval: np.ndarray) -> Baseline:
    """The most frequent label of the train split (eval without one), for every eval row.

    Ties go to the label that sorts first, so the baseline is deterministic.
    """
    train = data.train
    has_train = train is not None and data.label in train.columns
    labels = (
        train[data.label].astype(str).to_numpy()
        if train is not None and has_train
        else np.asarray(y_eval).astype(str)
    )
    values, counts = np.unique(labels, return_counts=True)
    label = str(values[np.flatnonzero(counts == counts.max())[0]])
    return Baseline(
        name="majority",
        y_pred=np.full(len(y_eval), label, dtype=object),
        fitted_on="train" if has_train else "eval",
    )


def _design(data: DataBundle) -> object | None:
    """An unfitted sklearn transformer for the model's inputs, or None when there are none."""
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    if data.text is not None:
        return ColumnTransformer([("text", TfidfVectorizer(min_df=1), data.text)])
    numeric = [c for c in data.features if c in data.numeric]
    categorical = [c for c in data.features if c not in data.numeric]
    parts = []
    if numeric:
        steps = [SimpleImputer(strategy="median")]
        if data.image_shape is None:
            steps.append(StandardScaler())
        parts.append(("numeric", make_pipeline(*steps), numeric))
    if categorical:
        parts.append(
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="(missing)"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                categorical,
            )
        )
    return ColumnTransformer(parts) if parts else None


def _as_inputs(frame: pd.DataFrame, data: DataBundle) -> pd.DataFrame:
    columns = [data.text] if data.text is not None else list(data.features)
    out = frame[columns].copy()
    for column in columns:
        if column not in data.numeric:
            out[column] = out[column].astype("string").astype(object).where(out[column].notna())
    return out


def logistic_predictions(data: DataBundle, seed: int) -> Baseline | None:
    """A seeded logistic regression on the train split's features, predicting every eval row.

    Returns None when the baseline cannot be fitted honestly: no train split, eval rows without
    the feature columns, or a single class in train.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    if data.train is None or data.eval is None or data.label not in data.train.columns:
        return None
    needed = [data.text] if data.text is not None else list(data.features)
    if not needed or any(c not in data.eval.columns or c not in data.train.columns for c in needed):
        return None
    y_train = data.train[data.label].astype(str).to_numpy()
    if len(set(y_train.tolist())) < 2:
        return None
    design = _design(data)
    if design is None:
        return None
    model = make_pipeline(design, LogisticRegression(max_iter=2000, random_state=seed))
    model.fit(_as_inputs(data.train, data), y_train)
    return Baseline(
        name="logistic",
        y_pred=np.asarray(model.predict(_as_inputs(data.eval, data)), dtype=object),
        fitted_on="train",
    )


@dataclass(frozen=True)
class BaselineAssessment:
    """What the performance audit adds: metrics, the ``baselines`` table, and findings."""

    metrics: dict[str, float]
    rows: list[dict[str, object]]
    findings: tuple[Finding, ...]


def assess_baselines(
    data: DataBundle, y_true: np.ndarray, y_pred: np.ndarray, seed: int
) -> BaselineAssessment:
    """Score both baselines on the eval rows and compare the model with them, paired.

    Emits ``performance.baseline.majority_accuracy``, ``performance.baseline.logistic_accuracy``
    (when fitted), ``performance.lift_over_majority`` (model − majority accuracy) and, with the
    logistic baseline, ``performance.lift_over_logistic``. A MAJOR finding when the paired 95%
    interval of the lift over the majority class reaches zero: the model may be no better than
    answering the most frequent label for everyone.
    """
    from governance.audit.paired import compare_predictions
    from governance.results import Finding, Severity

    y_true = np.asarray(y_true).astype(str)
    y_pred = np.asarray(y_pred).astype(str)
    classes = sorted(set(y_true.tolist()) | set(y_pred.tolist()) | set(data.classes))
    metrics: dict[str, float] = {}
    rows: list[dict[str, object]] = []
    findings: list[Finding] = []
    baselines = [majority_predictions(data, y_true), logistic_predictions(data, seed)]
    for baseline in baselines:
        if baseline is None:
            continue
        base_pred = baseline.y_pred.astype(str)
        classes = sorted(set(classes) | set(base_pred.tolist()))
        cmp = compare_predictions(y_true, base_pred, y_pred, {}, classes=classes, n_boot=1000, seed=seed)
        acc = cmp.metric("accuracy")
        metrics[f"performance.baseline.{baseline.name}_accuracy"] = acc.reference
        metrics[f"performance.lift_over_{baseline.name}"] = acc.difference
        rows.append(
            {
                "baseline": baseline.name,
                "fitted_on": baseline.fitted_on,
                "accuracy": acc.reference,
                "model_accuracy": acc.candidate,
                "lift": acc.difference,
                "lift_ci_low": acc.ci_low,
                "lift_ci_high": acc.ci_high,
            }
        )
        if baseline.name == "majority" and (acc.ci_low is None or acc.ci_low <= 0.0):
            findings.append(
                Finding(
                    id="performance.no_lift_over_majority",
                    severity=Severity.MAJOR,
                    message=(
                        f"the model's accuracy {acc.candidate:.3f} does not beat always answering the most "
                        f"frequent label ({acc.reference:.3f}) beyond chance: the paired 95% interval of "
                        f"the lift is [{acc.ci_low:.3f}, {acc.ci_high:.3f}]"
                        if acc.ci_low is not None and acc.ci_high is not None
                        else f"the model's accuracy {acc.candidate:.3f} does not beat the majority class "
                        f"({acc.reference:.3f})"
                    ),
                    audit="performance",
                )
            )
    return BaselineAssessment(metrics=metrics, rows=rows, findings=tuple(findings))
