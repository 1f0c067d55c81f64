"""The gate sees the audits' findings: a blocking finding is a FAIL, waivable as ``finding.<id>``.

Round 1 let the privacy audit's own blocking finding ("membership inference proves ε ≥ …, the
private training is broken") change neither ``check`` nor the exit code of ``audit --policy``.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml

from governance.cli import main
from governance.policy.engine import check
from governance.policy.outcome import Status
from governance.policy.schema import Policy, Rule
from governance.policy.waivers import Waiver
from governance.results import Finding, Results, RunInfo, Severity

TODAY = dt.date(2026, 11, 23)
FINDING_ID = "privacy.empirical_epsilon_exceeds_claim"
MESSAGE = (
    "membership inference proves ε ≥ 1.53 (confidence 95%) but the training ledger claims "
    "ε = 0.05: the private training is broken"
)
#: A policy whose one rule passes: any failure below comes from the findings.
PASSING_RULE = Rule(
    id="priv.mia", title="t", metric="privacy.membership_inference.auc", op="<=", threshold=1.0
)


def _results(*findings: Finding) -> Results:
    run = RunInfo(tool_version="t", spec_name="s", seed=0, started_at="", finished_at="")
    return Results(run=run, metrics={"privacy.membership_inference.auc": 0.7}, findings=findings)


def _policy() -> Policy:
    return Policy(name="p", version="1", rules=(PASSING_RULE,), source="p.yaml", sha256="0" * 64)


def _finding(severity: Severity = Severity.BLOCKING, finding_id: str = FINDING_ID) -> Finding:
    return Finding(id=finding_id, severity=severity, message=MESSAGE, audit="privacy")


def test_blocking_finding_fails_the_gate_with_its_id_and_message() -> None:
    report = check(_results(_finding()), _policy(), today=TODAY)
    failed = [o for o in report.outcomes if o.status is Status.FAIL]
    assert [o.rule_id for o in failed] == [f"finding.{FINDING_ID}"]
    assert failed[0].message == MESSAGE and failed[0].severity is Severity.BLOCKING
    assert not report.passed


@pytest.mark.parametrize("severity", [Severity.MAJOR, Severity.MINOR, Severity.INFO])
def test_only_blocking_findings_gate(severity: Severity) -> None:
    report = check(_results(_finding(severity)), _policy(), today=TODAY)
    assert report.passed and [o.rule_id for o in report.outcomes] == ["priv.mia"]


def test_a_waiver_accepts_the_finding_until_it_expires() -> None:
    waiver = Waiver(
        rule=f"finding.{FINDING_ID}", reason="known: ledger under review", approver="dpo", expires=TODAY
    )
    waived = check(_results(_finding()), _policy(), [waiver], today=TODAY)
    outcome = next(o for o in waived.outcomes if o.rule_id == f"finding.{FINDING_ID}")
    assert outcome.status is Status.WAIVED and outcome.waiver is not None and waived.passed
    assert "dpo" in outcome.message and not waived.unused_waivers

    expired = check(_results(_finding()), _policy(), [waiver], today=TODAY + dt.timedelta(days=1))
    assert not expired.passed
    assert any(o.status is Status.FAIL and o.waiver is not None for o in expired.outcomes)
    # A stale waiver for a finding no longer reported still fails once expired, as for rules.
    gone = check(_results(), _policy(), [waiver], today=TODAY + dt.timedelta(days=1))
    assert not gone.passed


def test_check_command_exits_1_on_a_blocking_finding_and_0_when_waived(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    results.write_text(json.dumps(_results(_finding()).to_dict()), encoding="utf-8")
    policy = tmp_path / "p.yaml"
    policy.write_text(yaml.safe_dump(_policy_dict()), encoding="utf-8")
    assert main(["check", str(results), "--policy", str(policy)]) == 1
    waivers = tmp_path / "w.yaml"
    waivers.write_text(
        yaml.safe_dump(
            [
                {
                    "rule": f"finding.{FINDING_ID}",
                    "reason": "accepted",
                    "approver": "dpo",
                    "expires": "2999-12-31",
                }
            ]
        ),
        encoding="utf-8",
    )
    assert main(["check", str(results), "--policy", str(policy), "--waivers", str(waivers)]) == 0


def _policy_dict() -> dict[str, object]:
    return {
        "name": "only-mia",
        "version": "1.0.0",
        "rules": [
            {
                "id": "priv.mia",
                "title": "attack AUC at most 1",
                "metric": "privacy.membership_inference.auc",
                "op": "<=",
                "threshold": 1.0,
                "severity": "major",
            }
        ],
    }


@pytest.mark.slow
def test_audit_exits_1_on_the_privacy_audits_blocking_finding(tmp_path: Path) -> None:
    """End to end: an overfit model whose ledger claims ε = 0.05; the privacy audit proves
    ε ≥ ~1.5 and reports it as blocking; `audit --policy` and `check` exit 1 on it alone."""
    import torch

    torch.set_num_threads(1)
    data = Path(__file__).resolve().parents[2] / "audits" / "data"
    spec = {
        "name": "overfit",
        "task": "binary_classification",
        "seed": 0,
        "data": {
            "train": str(data / "german_credit_train.csv"),
            "eval": str(data / "german_credit_eval.csv"),
            "label": "risk",
            "positive": "good",
            "sensitive": ["sex", "age_group"],
        },
        "model": {"architecture": "mlp", "options": {"hidden": [256, 256]}},
        "train": {"epochs": 150, "batch_size": 32, "lr": 0.05, "optimizer": "adam"},
        "audits": {"privacy": {"n_boot": 0}},
    }
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    model = tmp_path / "model"
    assert main(["train", str(spec_path), "--out", str(model)]) == 0
    ledger_path = model / "training.json"
    ledger = json.loads(ledger_path.read_text())
    ledger["privacy"] = {"epsilon": 0.05, "delta": 1e-5, "accountant": "prv"}  # a false claim
    ledger_path.write_text(json.dumps(ledger), encoding="utf-8")
    policy = tmp_path / "p.yaml"
    policy.write_text(yaml.safe_dump(_policy_dict()), encoding="utf-8")

    out = tmp_path / "audit"
    code = main(["audit", str(spec_path), "--model", str(model), "--out", str(out), "--policy", str(policy)])
    results = json.loads((out / "results.json").read_text())
    assert [f["id"] for f in results["findings"]] == [FINDING_ID]
    assert results["findings"][0]["message"].startswith("membership inference proves ε ≥")
    assert code == 1
    assert main(["check", str(out / "results.json"), "--policy", str(policy)]) == 1
