"""`governance audit` through the CLI: exit codes, outputs, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from governance.cli import main
from tests.test_pipeline import _decision_log, write_spec


def test_audit_predictions_only_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(tmp_path, _decision_log())
    assert main(["audit", str(spec), "--out", str(tmp_path / "out")]) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["schema_version"] == 1
    assert results["metrics"]["fairness.worst.demographic_parity_ratio"] is not None
    assert (tmp_path / "out" / "manifest.json").is_file()
    assert "wrote" in capsys.readouterr().err


def test_single_group_is_exit_2_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(tmp_path, _decision_log().assign(race="a"))
    assert main(["audit", str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("governance audit: error: ") and "data.sensitive.race" in err
    assert not (tmp_path / "out").exists()


def test_mismatched_lengths_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame = _decision_log()
    spec = write_spec(tmp_path, frame)
    preds = tmp_path / "preds.csv"
    frame[["y_pred"]].iloc[:-3].to_csv(preds, index=False)
    eval_csv = tmp_path / "eval.csv"
    frame.drop(columns=["y_pred", "y_score"]).assign(income=np.arange(len(frame))).to_csv(
        eval_csv, index=False
    )
    spec.write_text(
        spec.read_text()
        .replace("eval: log.parquet", "eval: eval.csv")
        .replace("predictions: log.parquet", "predictions: preds.csv")
    )
    assert main(["audit", str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "preds.csv" in err and "397 rows" in err and "400" in err


def test_bad_option_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(tmp_path, _decision_log(), audits="{fairness: {bootstrap: many}}")
    assert main(["audit", str(spec), "--out", str(tmp_path / "out")]) == 2
    assert "audits.fairness.bootstrap" in capsys.readouterr().err


def test_policy_violation_is_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    frame = _decision_log(1000)
    # M is selected far more often than F: the four-fifths rule fails
    frame["y_pred"] = np.where(
        frame["sex"] == "M", (rng.random(1000) < 0.8), (rng.random(1000) < 0.2)
    ).astype(int)
    spec = write_spec(tmp_path, frame)
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "name: t\nversion: 1.0.0\nrules:\n  - id: fair.sex\n    metric: fairness.sex.demographic_parity_ratio\n"
        "    op: '>='\n    threshold: 0.8\n    severity: blocking\n"
    )
    code = main(["audit", str(spec), "--out", str(tmp_path / "out"), "--policy", str(policy)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert "FAILED" in err
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert "policy" in manifest["inputs"]


def test_missing_spec_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", str(tmp_path / "nope.yaml"), "--out", str(tmp_path / "o")]) == 2
    assert "nope.yaml" in capsys.readouterr().err


def test_unknown_predictions_suffix_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(tmp_path, _decision_log())
    (tmp_path / "log.xlsx").write_text("x")
    spec.write_text(spec.read_text().replace("log.parquet", "log.xlsx"))
    assert main(["audit", str(spec), "--out", str(tmp_path / "o")]) == 2
    assert "unsupported file type '.xlsx'" in capsys.readouterr().err


def test_help_lists_audit(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["audit", "--help"])
    assert "--policy" in capsys.readouterr().out


def test_bad_policy_is_exit_2_before_any_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(tmp_path, _decision_log())
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "name: t\nversion: 1.0.0\nrules:\n  - id: r\n    metric: fairness.sex.x\n    op: '=>'\n    threshold: 1\n"
    )
    assert main(["audit", str(spec), "--out", str(tmp_path / "out"), "--policy", str(policy)]) == 2
    assert "policy.yaml" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_option_typo_exits_2_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A typo in a model audit's options names the spec field at once, not after training."""
    import governance.train.api as train_api

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("trained before validating the audit options")

    monkeypatch.setattr(train_api, "train", no_training)
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x1": rng.normal(size=60), "sex": ["F", "M"] * 30, "y": ["no", "yes"] * 30})
    frame.to_csv(tmp_path / "train.csv", index=False)
    frame.to_csv(tmp_path / "eval.csv", index=False)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "name: tiny\ntask: binary_classification\n"
        "data: {train: train.csv, eval: eval.csv, label: y, sensitive: [sex]}\n"
        "model: {architecture: mlp}\ntrain: {epochs: 1, batch_size: 8, lr: 0.1}\n"
        "audits: {performance: {}, robustness: {epsilons: [0.1]}}\n"
    )
    assert main(["audit", str(spec), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"{spec}: audits.robustness.epsilons: unknown option" in err
    assert not (tmp_path / "out").exists()
