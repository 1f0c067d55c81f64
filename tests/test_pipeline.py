"""The audit runner in predictions-only mode: outputs, provenance, ERROR sections, bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from governance._io import sha256_file
from governance.audit import registry
from governance.audit.base import Audit, AuditContext
from governance.audit.predictions import load_prediction_inputs
from governance.errors import InputError
from governance.pipeline import run_audit
from governance.results import AuditSection, SectionStatus, load_results
from governance.spec import load_spec


def _decision_log(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    return pd.DataFrame(
        {
            "outcome": y,
            "sex": rng.choice(["F", "M"], n),
            "race": rng.choice(["a", "b", "c", "d", "e"], n),
            "y_pred": np.where(rng.random(n) < 0.8, y, 1 - y),
            "y_score": rng.random(n),
        }
    )


def write_spec(
    tmp: Path,
    frame: pd.DataFrame,
    *,
    fmt: str = "parquet",
    audits: str = "{fairness: {bootstrap: 50}, performance: {}}",
    extra: str = "",
) -> Path:
    data = tmp / f"log.{fmt}"
    if fmt == "parquet":
        frame.to_parquet(data)
    else:
        frame.to_csv(data, index=False)
    spec = tmp / "spec.yaml"
    spec.write_text(
        f"name: log\ntask: binary_classification\nseed: 3\n"
        f"data: {{eval: {data.name}, label: outcome, sensitive: [sex, race], source: hr-system, license: internal{extra}}}\n"
        f"model: {{predictions: {data.name}}}\naudits: {audits}\n"
    )
    return spec


def test_predictions_only_run_writes_results_and_manifest(tmp_path: Path) -> None:
    spec_path = write_spec(tmp_path, _decision_log())
    outcome = run_audit(load_spec(spec_path), tmp_path / "out", progress=False)
    assert outcome.exit_code == 0
    results = load_results(tmp_path / "out" / "results.json")
    assert (
        results.run.spec_name == "log"
        and results.run.seed == 3
        and results.run.task == "binary_classification"
    )
    assert "numpy" in results.run.libraries and results.run.started_at.endswith("+00:00")
    assert results.subject["data_source"] == "hr-system" and results.subject["data_license"] == "internal"
    assert results.subject["predictions"]["sha256"] == sha256_file(tmp_path / "log.parquet")
    assert "fairness.sex*race.demographic_parity_ratio" in results.metrics
    assert "performance.roc_auc" in results.metrics
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["inputs"]["spec"]["sha256"] == sha256_file(spec_path)
    assert manifest["outputs"]["results"]["sha256"] == sha256_file(tmp_path / "out" / "results.json")
    # no model: the predictions-only path never imports torch
    assert results.run.device == "cpu"


def test_predictions_only_never_imports_torch(tmp_path: Path) -> None:
    import subprocess

    spec_path = write_spec(tmp_path, _decision_log())
    code = (
        "import sys; from governance.pipeline import run_audit; from governance.spec import load_spec; "
        f"run_audit(load_spec({str(spec_path)!r}), {str(tmp_path / 'o')!r}, progress=False); "
        "print('torch' in sys.modules, 'sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False"


def test_a_failing_audit_is_an_error_section_and_others_still_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Boom(Audit):
        name = "performance"
        requires_model = False

        def run(self, context: AuditContext) -> AuditSection:
            raise RuntimeError("disk on fire")

    monkeypatch.setitem(registry._AUDITS._entries, "performance", Boom)
    outcome = run_audit(load_spec(write_spec(tmp_path, _decision_log())), tmp_path / "out", progress=False)
    assert outcome.exit_code == 1 and outcome.errored == ("performance",)
    saved = load_results(tmp_path / "out" / "results.json")
    assert saved.sections["performance"].status is SectionStatus.ERROR
    assert saved.sections["performance"].error == "RuntimeError: disk on fire"
    assert saved.sections["fairness"].status is SectionStatus.OK


def test_model_audits_are_skipped_without_a_model(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, _decision_log(), audits="{fairness: {bootstrap: 0}, robustness: {}}")
    outcome = run_audit(load_spec(spec), tmp_path / "out", progress=False)
    assert outcome.results.sections["robustness"].status is SectionStatus.SKIPPED
    assert outcome.exit_code == 0


def test_csv_log_and_separate_prediction_file_align(tmp_path: Path) -> None:
    frame = _decision_log()
    spec = load_spec(write_spec(tmp_path, frame, fmt="csv"))
    bundle, preds = load_prediction_inputs(spec)
    assert bundle.classes == ("0", "1")
    assert list(preds.y_pred[:5]) == [str(v) for v in frame["y_pred"][:5]]
    assert preds.y_score is not None and np.allclose(preds.y_score, frame["y_score"])


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (
            lambda f: f.assign(y_pred=f["y_pred"].where(f.index != 7, 2)),
            r"log\.parquet: y_pred: value '2' \(row 7\) is not in the label set",
        ),
        (
            lambda f: f.assign(y_pred=f["y_pred"].astype(float).where(f.index != 3, np.nan)),
            r"y_pred: 1 missing value\(s\), first at row 3",
        ),
        (
            lambda f: f.assign(y_score=f["y_score"].where(f.index != 5, 1.5)),
            r"y_score: value 1\.5 \(row 5\) is outside \[0, 1\]",
        ),
        (lambda f: f.assign(y_score=f["y_score"].where(f.index != 2, np.nan)), r"y_score: 1 missing value"),
        (lambda f: f.drop(columns="y_pred"), r"log\.parquet: y_pred: column is missing"),
        (lambda f: f.assign(sex="F"), r"data\.sensitive\.sex: has a single group"),
    ],
)
def test_bad_prediction_files_are_input_errors(tmp_path: Path, mutate, match: str) -> None:
    spec = write_spec(tmp_path, mutate(_decision_log()))
    with pytest.raises(InputError, match=match):
        run_audit(load_spec(spec), tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "results.json").exists()


def test_data_positive_orders_classes(tmp_path: Path) -> None:
    spec = load_spec(write_spec(tmp_path, _decision_log()))
    if "positive" not in type(spec.data).model_fields:
        pytest.skip("data.positive not in this spec schema")
    spec = spec.model_copy(update={"data": spec.data.model_copy(update={"positive": "0"})})
    bundle, preds = load_prediction_inputs(spec)
    assert bundle.classes == ("1", "0")
    assert (np.asarray(bundle.classes)[preds.y_true_codes] == preds.y_true).all()


@pytest.mark.slow
def test_trains_then_audits_a_model_and_reuses_it(tmp_path: Path) -> None:
    """The model path: train (spec has a train section), predict once, audit; then --model reuses it."""
    from fairlearn.metrics import demographic_parity_ratio

    from governance.models.handle import load_handle

    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.choice(["u", "v"], n),
            "sex": rng.choice(["F", "M"], n),
            "y": rng.choice(["no", "yes"], n),
        }
    )
    frame.iloc[:200].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[200:].to_csv(tmp_path / "eval.csv", index=False)
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(
        "name: tiny\ntask: binary_classification\nseed: 1\n"
        "data: {train: train.csv, eval: eval.csv, label: y, sensitive: [sex]}\n"
        "model: {architecture: mlp}\ntrain: {epochs: 2, batch_size: 32}\n"
        "audits: {performance: {}, fairness: {bootstrap: 20}}\n"
    )
    spec = load_spec(spec_path)
    first = run_audit(spec, tmp_path / "out", device="cpu", progress=False)
    assert first.exit_code == 0
    model_dir = first.paths["model"]
    assert (model_dir / "training.json").is_file()
    assert set(first.results.subject["model"]["files"]) >= {"model.safetensors", "training.json"}
    assert "performance.train.accuracy" in first.results.metrics
    # results.json stands on its own: the ledger and purpose travel in run, for the Annex IV report.
    stored = json.loads((model_dir / "training.json").read_text())
    assert first.results.run.extra["training"]["steps"] == stored["steps"]
    assert first.results.run.extra["intended_purpose"] is None
    handle = load_handle(model_dir, "cpu")
    eval_frame = frame.iloc[200:]
    y_pred = handle.predict(eval_frame)
    ref = demographic_parity_ratio(
        (eval_frame["y"] == "yes").to_numpy(), y_pred == "yes", sensitive_features=eval_frame["sex"]
    )
    got = first.results.metrics["fairness.sex.demographic_parity_ratio"]
    assert (got is None and np.isnan(ref)) or abs(got - ref) < 1e-9
    second = run_audit(spec, tmp_path / "out2", model_dir=model_dir, progress=False)
    assert second.results.metrics == first.results.metrics
    assert not (tmp_path / "out2" / "model").exists()


def test_separate_prediction_file_gives_the_same_numbers(tmp_path: Path) -> None:
    frame = _decision_log()
    together = run_audit(load_spec(write_spec(tmp_path, frame)), tmp_path / "a", progress=False)
    frame.drop(columns=["y_pred", "y_score"]).assign(income=np.arange(len(frame))).to_csv(
        tmp_path / "eval.csv", index=False
    )
    frame[["y_pred", "y_score"]].to_csv(tmp_path / "preds.csv", index=False)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        spec.read_text()
        .replace("eval: log.parquet", "eval: eval.csv")
        .replace("predictions: log.parquet", "predictions: preds.csv")
    )
    apart = run_audit(load_spec(spec), tmp_path / "b", progress=False)
    assert apart.results.metrics == pytest.approx(together.results.metrics, abs=1e-12)
    assert set(apart.results.subject["data"]) == {"eval"}


def test_bad_fairness_input_fails_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """preflight() runs right after loading the data: a one-group attribute never waits for training."""
    import governance.train.api as train_api

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("trained before validating the audits")

    monkeypatch.setattr(train_api, "train", no_training)
    frame = pd.DataFrame({"x1": np.arange(40.0), "sex": "F", "y": ["no", "yes"] * 20})
    frame.to_csv(tmp_path / "train.csv", index=False)
    frame.to_csv(tmp_path / "eval.csv", index=False)
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(
        "name: tiny\ntask: binary_classification\n"
        "data: {train: train.csv, eval: eval.csv, label: y, sensitive: [sex]}\n"
        "model: {architecture: mlp}\ntrain: {epochs: 1}\naudits: {fairness: {}}\n"
    )
    with pytest.raises(InputError, match=r"data\.sensitive\.sex: has a single group"):
        run_audit(load_spec(spec_path), tmp_path / "out", progress=False)


def test_report_formats_are_written_and_listed_in_the_manifest(tmp_path: Path) -> None:
    spec = load_spec(write_spec(tmp_path, _decision_log()))
    outcome = run_audit(spec, tmp_path / "out", progress=False, report_formats=("html", "markdown"))
    assert {"html", "markdown"} <= set(outcome.paths)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    for fmt in ("html", "markdown"):
        assert manifest["outputs"][fmt]["sha256"] == sha256_file(outcome.paths[fmt])
    bare = run_audit(spec, tmp_path / "bare", progress=False, report_formats=())
    assert not (tmp_path / "bare" / "report.html").exists() and "html" not in bare.paths
