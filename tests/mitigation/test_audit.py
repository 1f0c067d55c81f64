"""``audits: {mitigation: {}}``: the mitigate command's numbers inside an audit, as a proposal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from governance.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _spec(tmp: Path, audits: str, mitigation: str | None, n: int = 2000) -> Path:
    rng = np.random.default_rng(0)
    sex = rng.choice(["F", "M"], n, p=[0.4, 0.6])
    y = (rng.random(n) < np.where(sex == "M", 0.7, 0.45)).astype(int)
    score = np.clip(0.4 * y + 0.45 * rng.random(n) + np.where(sex == "M", 0.12, 0.0), 0, 1)
    frame = pd.DataFrame(
        {
            "outcome": y,
            "sex": sex,
            "age": rng.choice(["young", "old"], n),
            "y_score": score,
            "y_pred": (score > 0.5).astype(int),
        }
    )
    frame.to_csv(tmp / "log.csv", index=False)
    path = tmp / "spec.yaml"
    path.write_text(
        "name: log\ntask: binary_classification\nseed: 4\n"
        "data: {eval: log.csv, label: outcome, sensitive: [sex, age]}\n"
        f"model: {{predictions: log.csv}}\naudits: {audits}\n"
        + (f"mitigation: {mitigation}\n" if mitigation else "")
    )
    return path


def test_the_audit_reports_what_mitigate_would_do_and_deploys_nothing(tmp_path, capsys):
    spec = _spec(
        tmp_path, "{fairness: {}, mitigation: {}}", "{constraint: demographic_parity, attribute: sex}"
    )
    assert main(["audit", str(spec), "--out", str(tmp_path / "audit"), "--no-progress"]) == 0
    argv = ["mitigate", str(spec), "--method", "threshold", "--out", str(tmp_path / "mit"), "--no-progress"]
    assert main(argv) == 0
    capsys.readouterr()
    audited = json.loads((tmp_path / "audit" / "results.json").read_text())
    mitigated = json.loads((tmp_path / "mit" / "results.json").read_text())
    ours, theirs = audited["sections"]["mitigation"], mitigated["sections"]["mitigation"]
    # the same split, sweep, pick and before/after numbers as the mitigate command
    assert ours["tables"] == theirs["tables"]
    assert ours["details"]["reason"] == theirs["details"]["reason"]
    expected = {k: v for k, v in theirs["metrics"].items() if not k.endswith("uses_sensitive_attribute")}
    assert ours["metrics"] == expected
    assert "mitigation.threshold.uses_sensitive_attribute" in theirs["metrics"]
    # a proposal: no rule, no split file in the audit folder, and it says so
    assert ours["details"]["deployed"] is False and ours["details"]["split_file"] is None
    assert "governance mitigate --method threshold" in ours["details"]["note"]
    assert not (tmp_path / "audit" / "decision_rule.json").exists()
    assert not (tmp_path / "audit" / "mitigation_split.csv").exists()
    finding = next(f for f in ours["findings"] if f["id"].endswith("sensitive_at_decision_time"))
    assert finding["message"].startswith("The proposed rule would read 'sex'")
    assert ours["details"]["threshold_engine"].startswith("vectorised replica of fairlearn")
    # the frontier chart is drawn in the audit's report
    assert "The frontier of mitigation settings" in (tmp_path / "audit" / "report.html").read_text()


def test_a_proposal_is_not_race_norming_for_the_employment_pack(tmp_path, capsys):
    spec = _spec(
        tmp_path, "{fairness: {}, mitigation: {}}", "{constraint: demographic_parity, attribute: sex}"
    )
    assert main(["audit", str(spec), "--out", str(tmp_path / "audit"), "--no-progress"]) == 0
    capsys.readouterr()
    results = str(tmp_path / "audit" / "results.json")
    main(["check", results, "--policy", "employment-four-fifths", "--format", "json"])
    outcomes = json.loads(capsys.readouterr().out)["outcomes"]
    rule = next(o for o in outcomes if o["rule"] == "eeoc.no_race_norming")
    assert rule["status"] == "SKIPPED"


def test_the_audit_without_a_mitigation_block_is_bad_input(tmp_path, capsys):
    spec = _spec(tmp_path, "{mitigation: {}}", None, n=200)
    assert main(["audit", str(spec), "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "audits.mitigation" in err[0] and "mitigation block" in err[0], err
    assert not (tmp_path / "out" / "results.json").exists()


def test_the_demo_spec_runs_the_mitigation_audit_on_the_failing_attribute():
    from governance.spec import load_spec

    spec = load_spec(ROOT / "audits" / "german-credit.yaml")
    assert "mitigation" in spec.audits
    assert spec.mitigation is not None
    assert (spec.mitigation.constraint, spec.mitigation.attribute) == ("demographic_parity", "age_group")


@pytest.mark.slow
def test_german_credit_mitigation_section_shows_the_frontier_and_the_pick(tmp_path):
    """The demo's spec (few epochs): the section holds the frontier and a pick reaching 0.8, or says none does."""
    import yaml

    from governance.pipeline import run_audit
    from governance.spec import load_spec

    raw = yaml.safe_load((ROOT / "audits" / "german-credit.yaml").read_text())
    raw["train"]["epochs"] = 3
    raw["audits"] = {"fairness": {}, "mitigation": {}}
    raw.pop("deployment", None)
    for split in ("train", "eval"):
        raw["data"][split] = str(ROOT / "audits" / raw["data"][split])
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(raw))
    outcome = run_audit(load_spec(spec_path), tmp_path / "out", progress=False)
    section = outcome.results.sections["mitigation"]
    frontier = section.tables["frontier"]
    assert len(frontier) >= 9
    chosen = [p for p in frontier if p["chosen"]]
    if chosen:
        assert chosen[0]["target_value"] >= 0.8
        assert section.details["reason"].startswith("the most accurate setting")
    else:
        assert section.details["reason"].startswith("infeasible at this accuracy")
        assert any(f.id == "mitigation.threshold.infeasible" for f in section.findings)
