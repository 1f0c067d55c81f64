"""The performance audit against scikit-learn."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm

from governance.audit.base import AuditContext, Predictions
from governance.audit.performance import PerformanceAudit, confusion_matrix, roc_auc, scores_from_confusion
from governance.data.bundle import DataBundle
from governance.errors import InputError
from governance.spec import Spec


def _context(
    classes: tuple[str, ...],
    eval_pred: Predictions,
    train_pred: Predictions | None = None,
    options: dict | None = None,
) -> AuditContext:
    spec = Spec.model_validate(
        {
            "name": "t",
            "task": "binary_classification" if len(classes) == 2 else "multiclass_classification",
            "data": {"eval": "e.csv", "label": "y"},
            "model": {"predictions": "p.csv"},
        }
    ).model_copy(update={"source": Path("spec.yaml")})
    bundle = DataBundle(
        task=spec.task.value,
        label="y",
        classes=classes,
        features=(),
        sensitive=(),
        train=None,
        eval=None,  # type: ignore[arg-type]
    )
    return AuditContext(
        spec=spec,
        data=bundle,
        model=None,
        eval_predictions=eval_pred,
        train_predictions=train_pred,
        options=options or {},
    )


@pytest.mark.parametrize("seed", range(4))
def test_binary_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 500
    y = rng.integers(0, 2, n)
    score = np.clip(0.3 * y + rng.random(n) * 0.7, 0, 1).round(2)  # rounding makes ties
    pred = (score > 0.5).astype(int)
    section = PerformanceAudit().run(
        _context(("0", "1"), Predictions(y_true=y.astype(str), y_pred=pred.astype(str), y_score=score))
    )
    m = section.metrics
    assert m["performance.accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    assert m["performance.balanced_accuracy"] == pytest.approx(
        skm.balanced_accuracy_score(y, pred), abs=1e-12
    )
    assert m["performance.precision"] == pytest.approx(skm.precision_score(y, pred), abs=1e-12)
    assert m["performance.recall"] == pytest.approx(skm.recall_score(y, pred), abs=1e-12)
    assert m["performance.f1"] == pytest.approx(skm.f1_score(y, pred), abs=1e-12)
    assert m["performance.roc_auc"] == pytest.approx(skm.roc_auc_score(y, score), abs=1e-12)
    cm = skm.confusion_matrix(y, pred)
    rows = {(r["true"], r["pred"]): r["count"] for r in section.tables["confusion_matrix_eval"]}
    assert rows[("1", "0")] == cm[1, 0] and rows[("0", "1")] == cm[0, 1]


def test_multiclass_macro_matches_sklearn_including_absent_class() -> None:
    rng = np.random.default_rng(9)
    n = 400
    y = rng.integers(0, 3, n)
    pred = np.where(rng.random(n) < 0.6, y, rng.integers(0, 3, n))
    proba = rng.dirichlet(np.ones(4), n)
    proba[:, 3] = 0.0  # class "d" never occurs
    proba /= proba.sum(axis=1, keepdims=True)
    classes = ("a", "b", "c", "d")
    names = np.array(classes, dtype=object)
    section = PerformanceAudit().run(
        _context(classes, Predictions(y_true=names[y], y_pred=names[pred], proba=proba))
    )
    m = section.metrics
    for ours, ref in (
        ("precision", skm.precision_score(y, pred, average="macro")),
        ("recall", skm.recall_score(y, pred, average="macro")),
        ("f1", skm.f1_score(y, pred, average="macro")),
        ("balanced_accuracy", skm.balanced_accuracy_score(y, pred)),
    ):
        assert m[f"performance.{ours}"] == pytest.approx(ref, abs=1e-12), ours
    ref_auc = np.mean([skm.roc_auc_score(y == c, proba[:, c]) for c in range(3)])
    assert m["performance.roc_auc"] == pytest.approx(ref_auc, abs=1e-12)


def test_train_eval_gap_is_a_finding() -> None:
    y = np.array(["0", "1"] * 50)
    wrong = np.where(np.arange(100) < 40, np.where(y == "0", "1", "0"), y)
    section = PerformanceAudit().run(
        _context(
            ("0", "1"),
            Predictions(y_true=y, y_pred=wrong),
            Predictions(y_true=y, y_pred=y),
            options={"baselines": False},
        )
    )
    assert section.metrics["performance.train.accuracy"] == 1.0
    assert section.metrics["performance.train_eval_gap.accuracy"] == pytest.approx(0.4)
    assert [f.id for f in section.findings] == ["performance.train_eval_gap"]
    assert "performance.roc_auc" not in section.metrics  # no scores: absent, not null


def test_auc_undefined_with_one_class_and_helpers() -> None:
    assert roc_auc(np.ones(5, dtype=bool), np.linspace(0, 1, 5)) is None
    cm = confusion_matrix(np.array([0, 0, 1]), np.array([0, 1, 1]), 2)
    assert cm.tolist() == [[1, 1], [0, 1]]
    assert scores_from_confusion(np.zeros((2, 2), dtype=np.int64), 1)["precision"] == 0.0


def test_bad_option_is_input_error() -> None:
    y = np.array(["0", "1"])
    with pytest.raises(InputError, match=r"audits\.performance\.max_gap"):
        PerformanceAudit().run(_context(("0", "1"), Predictions(y_true=y, y_pred=y), options={"max_gap": -1}))
