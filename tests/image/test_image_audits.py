"""The audits on a real (tiny, DP-trained) digits CNN: per-class performance, fairness skipped,
heatmaps reshaped to the image, a mismatched model exits 2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from governance.audit.attribution import AttributionAudit
from governance.audit.fairness import SKIP_NO_SENSITIVE, FairnessAudit
from governance.audit.performance import PerformanceAudit
from governance.cli import main
from governance.results import SectionStatus
from tests.image.helpers import file_spec, write_digit_csvs, write_spec


def test_fairness_without_sensitive_attribute_is_skipped_with_reason(digits_context: Any) -> None:
    context = digits_context()
    FairnessAudit().preflight(context.spec, context.data, {})  # no InputError: nothing to reject
    section = FairnessAudit().run(context)
    assert section.status is SectionStatus.SKIPPED
    assert section.reason == SKIP_NO_SENSITIVE and "data.sensitive" in section.reason
    assert dict(section.metrics) == {}


def test_per_class_table_matches_scikit_learn(digits_context: Any) -> None:
    from sklearn.metrics import precision_recall_fscore_support

    context = digits_context()
    section = PerformanceAudit().run(context)
    rows = section.tables["per_class"]
    classes = list(context.data.classes)
    assert [r["class"] for r in rows] == classes
    pred = context.eval_predictions
    precision, recall, f1, support = precision_recall_fscore_support(
        pred.y_true, pred.y_pred, labels=classes, average=None, zero_division=0
    )
    np.testing.assert_allclose([r["precision"] for r in rows], precision, atol=1e-12)
    np.testing.assert_allclose([r["recall"] for r in rows], recall, atol=1e-12)
    np.testing.assert_allclose([r["f1"] for r in rows], f1, atol=1e-12)
    assert [r["support"] for r in rows] == support.tolist()
    assert section.metrics["performance.worst_class.recall"] == pytest.approx(recall.min())
    assert section.metrics["performance.worst_class.f1"] == pytest.approx(f1.min())


def test_heatmaps_are_image_shaped_signed_and_complete(digits_context: Any) -> None:
    context = digits_context({"max_rows": 60, "n_steps": 32, "heatmap_shown": 1, "infidelity_rows": 0})
    section = AttributionAudit().run(context)
    maps = section.details["heatmaps"]
    assert maps and all(np.asarray(m).shape == (8, 8) for m in maps.values())
    assert any(np.asarray(m).min() < 0 < np.asarray(m).max() for m in maps.values())  # signed
    examples = section.details["heatmap_examples"]
    assert len(examples) == len(maps) and {e["class"] for e in examples} == set(maps)
    assert section.details["heatmap_info"]["image_shape"] == [1, 8, 8]

    # Each example's map is IG of its own row: its sum is f(x) - f(0) on the predicted logit,
    # and its input is that eval row in pixel units.
    handle = context.model
    frame = context.data.eval
    from governance.audit._inputs import sample_frame

    sample = sample_frame(frame, 60, context.seed)
    for example in examples[:3]:
        row = sample.iloc[[example["row"]]]
        x = handle.encode(row)
        np.testing.assert_allclose(np.asarray(example["input"]).ravel(), x.numpy().ravel(), atol=1e-4)
        with torch.no_grad():
            logits = handle.module(x)[0]
            zero = handle.module(torch.zeros_like(x))[0]
        target = handle.classes.index(example["class"])
        assert int(logits.argmax()) == target
        assert np.sum(example["attribution"]) == pytest.approx(float(logits[target] - zero[target]), abs=0.05)


def test_model_for_other_image_shape_is_exit_2(
    digits_model: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, model_dir = digits_model
    write_digit_csvs(tmp_path, n_pixels=63)
    spec = write_spec(tmp_path, file_spec(tmp_path, [1, 9, 7]))
    assert main(["audit", str(spec), "--out", str(tmp_path / "out"), "--model", str(model_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "eval.csv: px63: column missing" in err


def test_model_for_other_image_layout_is_exit_2(
    digits_model: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, model_dir = digits_model
    write_digit_csvs(tmp_path)
    spec = write_spec(tmp_path, file_spec(tmp_path, [4, 4, 4]))
    assert main(["audit", str(spec), "--out", str(tmp_path / "out"), "--model", str(model_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert "spec.yaml: model.options.input_shape:" in err and "shape [1, 8, 8]" in err
