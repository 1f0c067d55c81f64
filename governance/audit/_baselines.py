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
        Predicted class codes (indices into the audit's classes) for each eval row.
    fitted_on
        ``train`` or ``eval`` (majority class without a train split).
    """

    name: str
    y_pred: np.ndarray
    fitted_on: str


def majority_predictions(data: DataBundle, names: tuple[str, ...], y_eval_codes: np.ndarray) -> Baseline:
    """The most frequent label of the train split (eval without one), for every eval row.

    Labels are class codes into ``names``; ties go to the lowest code, so the baseline is
    deterministic. Without a train split only the eval codes are read (no pandas).
    """
    train = data.train
    if train is not None and data.label in train.columns:
        labels = train[data.label].astype(str).to_numpy()
        counts = np.asarray([(labels == name).sum() for name in names])
        fitted_on = "train"
    else:
        counts = np.bincount(np.asarray(y_eval_codes, dtype=np.int64), minlength=len(names))
        fitted_on = "eval"
    code = int(np.argmax(counts))
    return Baseline(
        name="majority", y_pred=np.full(len(y_eval_codes), code, dtype=np.int64), fitted_on=fitted_on
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


def logistic_predictions(data: DataBundle, names: tuple[str, ...], seed: int) -> Baseline | None:
    """A seeded logistic regression on the train split's features, predicting every eval row.

    Returns None when the baseline cannot be fitted honestly: no train split, eval rows without
    the feature columns, or a single class in train.
    """
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
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    model = make_pipeline(design, LogisticRegression(max_iter=2000, random_state=seed))
    model.fit(_as_inputs(data.train, data), y_train)
    lookup = {name: i for i, name in enumerate(names)}
    predicted = [lookup[str(label)] for label in model.predict(_as_inputs(data.eval, data))]
    return Baseline(name="logistic", y_pred=np.asarray(predicted, dtype=np.int64), fitted_on="train")


@dataclass(frozen=True)
class BaselineAssessment:
    """What the performance audit adds: metrics, the ``baselines`` table, and findings."""

    metrics: dict[str, float]
    rows: list[dict[str, object]]
    findings: tuple[Finding, ...]


def assess_baselines(
    data: DataBundle,
    names: tuple[str, ...],
    y_true_codes: np.ndarray,
    y_pred_codes: np.ndarray,
    positive: int | None,
    seed: int,
) -> BaselineAssessment:
    """Score both baselines on the eval rows and compare the model with them, paired.

    ``names`` are the classes, ``y_true_codes``/``y_pred_codes`` the eval labels and the model's
    predictions as indices into them. Emits ``performance.baseline.majority_accuracy``,
    ``performance.baseline.logistic_accuracy`` (when fitted), ``performance.lift_over_majority``
    (model − majority accuracy) and, with the logistic baseline, ``performance.lift_over_logistic``.
    A MAJOR finding when the paired 95% interval of the lift over the majority class reaches zero:
    the model may be no better than answering the most frequent label for everyone.
    """
    from governance.audit.paired import compare_codes
    from governance.results import Finding, Severity

    metrics: dict[str, float] = {}
    rows: list[dict[str, object]] = []
    findings: list[Finding] = []
    baselines = [majority_predictions(data, names, y_true_codes), logistic_predictions(data, names, seed)]
    for baseline in baselines:
        if baseline is None:
            continue
        cmp = compare_codes(
            y_true_codes, baseline.y_pred, y_pred_codes, len(names), {}, positive=positive, seed=seed
        )
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
