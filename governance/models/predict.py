"""The model's predictions on one split, computed once and shared by every audit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from governance.errors import InputError
from governance.models.base import ModelHandle, Predictions

__all__ = ["ERR_OUTPUT_SIZE", "predict"]

ERR_OUTPUT_SIZE = "model outputs {got} classes {model_classes} but the eval labels include {missing}"


def predict(handle: ModelHandle, frame: Any, label: str, *, source: Path | None = None) -> Predictions:
    """The model's predictions on one split, encoded against the model's classes.

    ``y_score`` is the probability of the last class for binary models.

    Raises
    ------
    InputError
        If the model's output size does not match its classes, or a label is not a model class.
    """
    import pandas as pd

    classes = tuple(str(c) for c in handle.classes)
    proba = np.asarray(handle.predict_proba(frame), dtype=np.float64)
    if proba.ndim != 2 or proba.shape[1] != len(classes):
        raise InputError(
            source,
            "classes",
            f"model outputs {proba.shape[-1]} columns but declares {len(classes)} classes {list(classes)}",
        )
    true_codes = np.asarray(
        pd.Categorical(frame[label].astype(str), categories=list(classes)).codes, dtype=np.int64
    )
    if (true_codes < 0).any():
        missing = sorted(set(frame[label].astype(str)) - set(classes))
        raise InputError(
            source,
            "classes",
            ERR_OUTPUT_SIZE.format(got=len(classes), model_classes=list(classes), missing=missing),
        )
    pred_codes = proba.argmax(axis=1).astype(np.int64)
    rule = getattr(handle, "decision_rule", None)
    if rule is not None:
        # A mitigated model decides by its per-group thresholds (governance mitigate).
        if rule.attribute not in frame.columns:
            raise InputError(source, rule.attribute, "column missing: the model's decision rule reads it")
        pred_codes = rule.decide(proba[:, 1], frame[rule.attribute].tolist())
    names = np.asarray(classes, dtype=object)
    return Predictions(
        y_true=names[true_codes],
        y_pred=names[pred_codes],
        y_score=proba[:, 1] if len(classes) == 2 else None,
        proba=proba,
        classes=classes,
        y_true_codes=true_codes,
        y_pred_codes=pred_codes,
    )
