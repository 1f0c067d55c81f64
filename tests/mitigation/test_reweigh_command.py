"""``governance mitigate --method reweigh`` end to end on German Credit, private and not."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from governance.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _spec(tmp: Path, *, private: bool, epochs: int = 3, **changes: object) -> Path:
    raw = yaml.safe_load((ROOT / "audits" / "german-credit.yaml").read_text())
    raw["train"]["epochs"] = epochs
    if not private:
        raw["train"].pop("privacy")
    raw["audits"] = {}
    raw.pop("deployment", None)
    raw["mitigation"] = {"constraint": "demographic_parity", "attribute": "age_group"}
    for split in ("train", "eval"):
        raw["data"][split] = str(ROOT / "audits" / raw["data"][split])
    raw.update(changes)
    path = tmp / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.slow
@pytest.mark.parametrize("private", [True, False])
def test_reweigh_retrains_sweeps_and_delivers_the_chosen_model(tmp_path, capsys, monkeypatch, private):
    from governance.models.handle import load_handle
    from governance.train.dp import epsilon_for

    monkeypatch.setenv("GOVERNANCE_STORE", str(tmp_path / "store.sqlite"))
    spec = _spec(tmp_path, private=private)
    out = tmp_path / "out"
    argv = ["mitigate", str(spec), "--method", "reweigh", "--out", str(out), "--no-progress"]
    assert main(argv) == 0
    assert "governance mitigate: " in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "model", "report.html", "results.json"]
    results = json.loads((out / "results.json").read_text())
    section = results["sections"]["mitigation"]
    details, metrics = section["details"], results["metrics"]
    frontier = section["tables"]["frontier"]
    assert len(frontier) >= 9 and [p["value"] for p in frontier] == details["strengths"]
    assert details["strengths"][0] == 0.0 and details["strengths"][-1] == 1.0
    chosen = frontier[details["chosen"]] if details["chosen"] is not None else None
    strength = details["strength"]
    if chosen is not None:
        assert chosen["chosen"] and chosen["value"] == strength
    assert metrics["mitigation.reweigh.strength"] == strength
    assert metrics["mitigation.reweigh.uses_sensitive_attribute"] == 0.0
    for name in (
        "performance.accuracy",
        "fairness.age_group.demographic_parity_ratio",
        "fairness.sex.equalized_odds_difference",
    ):
        assert f"mitigation.reweigh.{name}" in metrics and f"mitigation.reweigh.before.{name}" in metrics
    assert any(row["targeted"] for row in section["tables"]["changes"])
    assert {(c["group"], c["label"]) for c in section["tables"]["weights"]} >= {
        ("<25", "good"),
        ("60+", "bad"),
    }
    ids = {f["id"] for f in section["findings"]}
    assert "mitigation.reweigh.decision_time" in ids
    # The delivered model is the chosen strength's, trained with its weights, and it decides alone.
    ledger = json.loads((out / "model" / "training.json").read_text())
    assert not (out / "model" / "decision_rule.json").exists()
    assert ledger["sample_weights"]["strength"] == strength  # s = 0: the sweep's unweighted run
    assert ledger["sample_weights"]["normalised_to_max_1"] is private
    eval_frame = pd.read_csv(ROOT / "audits" / "data" / "german_credit_eval.csv")
    handle = load_handle(out / "model")
    after = handle.predict(eval_frame)
    assert metrics["mitigation.reweigh.performance.accuracy"] == pytest.approx(
        float((after.astype(str) == eval_frame["risk"].astype(str)).mean()), abs=1e-12
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert "model/model.safetensors" in manifest["files"]
    sweep = details["sweep"]
    assert [r["strength"] for r in sweep] == details["strengths"]
    if not private:
        assert details["sweep_epsilon"] is None and "privacy" not in ledger
        return
    # ε: weights ≤ 1 after clipping do not change the accounting. Each run spends what the plain
    # (unweighted) `governance train` run of the same spec spends; the sweep composes them.
    assert main(["train", str(spec), "--out", str(tmp_path / "plain"), "--no-progress"]) == 0
    plain = json.loads((tmp_path / "plain" / "training.json").read_text())["privacy"]
    assert {r["epsilon"] for r in sweep} == {plain["epsilon"]}
    assert ledger["privacy"]["epsilon"] == plain["epsilon"]
    assert ledger["privacy"]["noise_multiplier"] == plain["noise_multiplier"]
    outside = {item["name"] for item in ledger["privacy"]["scope"]["outside"]}
    assert {"reweighing_weights", "reweighing_selection"} <= outside
    assert "w_i·clip(g_i)" in ledger["privacy"]["scope"]["sample_weights"]
    history = [tuple(h) for h in plain["accountant_history"]] * len(sweep)
    assert details["sweep_epsilon"] == pytest.approx(
        epsilon_for(history, plain["delta"], plain["accountant"])
    )
    assert metrics["mitigation.reweigh.sweep_epsilon"] > plain["epsilon"]
    assert "mitigation.reweigh.sweep_privacy" in ids


@pytest.mark.slow
def test_employment_pack_does_not_flag_a_reweighed_model_as_race_norming(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GOVERNANCE_STORE", str(tmp_path / "store.sqlite"))
    spec = _spec(tmp_path, private=False, epochs=2)
    out = tmp_path / "out"
    assert main(["mitigate", str(spec), "--method", "reweigh", "--out", str(out), "--no-progress"]) == 0
    capsys.readouterr()
    main(["check", str(out / "results.json"), "--policy", "employment-four-fifths", "--format", "json"])
    outcomes = json.loads(capsys.readouterr().out)
    rule = next(o for o in outcomes["outcomes"] if o["rule"] == "eeoc.no_race_norming")
    assert rule["status"] == "PASS", rule
    assert "decision time" in (out / "report.html").read_text()


@pytest.mark.parametrize(
    ("changes", "expect"),
    [
        ({"task": "multiclass_classification"}, "task"),
        ({"train": None}, "train"),
    ],
)
def test_reweigh_bad_input_is_one_line_and_exit_2(tmp_path, capsys, changes, expect):
    spec = _spec(tmp_path, private=False, **changes)
    code = main(
        ["mitigate", str(spec), "--method", "reweigh", "--out", str(tmp_path / "out"), "--no-progress"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and expect in err[0], err
    assert not (tmp_path / "out").exists()
