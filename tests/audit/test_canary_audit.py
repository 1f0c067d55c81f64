"""The canary part of the privacy audit (issue 18): the ledger's scores become privacy.canary.*,
a bound above the claimed ε is a blocking finding that the gate fails on, and a canary run's model
is flagged as not the release candidate unless the spec says so."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from governance.audit.canary_audit import canary_row, canary_section
from governance.audit.canary_bound import one_run_bound
from governance.policy.engine import check
from governance.policy.outcome import Status
from governance.policy.schema import Policy, Rule
from governance.results import Results, RunInfo, Severity


def _ledger(
    separation: float, *, claimed: float = 1.0, release: bool = False, seed: int = 0
) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    included = rng.random(1000) < 0.5
    scores = rng.standard_normal(1000) + separation * included
    return {
        "epsilon": claimed,
        "delta": 1e-5,
        "canaries": {
            "kind": "gradient",
            "count": 1000,
            "scores": scores.tolist(),
            "included": included.tolist(),
            "engine": "fused-mlp",
            "release_candidate": release,
        },
    }


def test_metrics_are_the_bound_of_the_ledgers_scores() -> None:
    ledger = _ledger(0.5)
    metrics, details, _ = canary_section(ledger, alpha=0.05)
    expected = one_run_bound(ledger["canaries"]["scores"], ledger["canaries"]["included"], delta=1e-5)
    assert metrics["privacy.canary.epsilon_lower_bound"] == expected.epsilon
    assert metrics["privacy.canary.count"] == 1000.0
    assert metrics["privacy.canary.release_candidate"] == 0.0
    assert details["correct"] == expected.correct and details["claimed_epsilon"] == 1.0
    # The idealised figure for the claimed ε = 1 with 1000 canaries is a small fraction of it.
    assert 0 < metrics["privacy.canary.reference_bound"] < 1.0  # type: ignore[operator]
    row = canary_row(details)
    assert row["claimed ε"] == 1.0 and row["canary ε lower bound"] == expected.epsilon


def test_a_bound_above_the_claim_is_blocking_and_fails_the_gate() -> None:
    metrics, _, findings = canary_section(_ledger(6.0, claimed=1.0), alpha=0.05)
    assert metrics["privacy.canary.epsilon_lower_bound"] > 1.0  # type: ignore[operator]
    blocking = [f for f in findings if f.severity is Severity.BLOCKING]
    assert [f.id for f in blocking] == ["privacy.canary_epsilon_exceeds_claim"]
    run = RunInfo(tool_version="t", spec_name="s", seed=0, started_at="", finished_at="")
    results = Results(run=run, metrics={k: v for k, v in metrics.items() if v is not None}, findings=findings)
    rule = Rule(id="r", title="t", metric="privacy.canary.count", op=">=", threshold=1.0)
    policy = Policy(name="p", version="1", rules=(rule,), source="p.yaml", sha256="0" * 64)
    report = check(results, policy)
    failed = [o.rule_id for o in report.outcomes if o.status is Status.FAIL]
    assert failed == ["finding.privacy.canary_epsilon_exceeds_claim"] and not report.passed


@pytest.mark.parametrize("release", [False, True])
def test_release_candidate_only_when_the_spec_says_so(release: bool) -> None:
    _, _, findings = canary_section(_ledger(0.0, release=release), alpha=0.05)
    ids = [f.id for f in findings]
    assert ("privacy.canary_model_not_release_candidate" in ids) is not release
    assert "privacy.canary_epsilon_exceeds_claim" not in ids


def test_a_ledger_without_canaries_says_so() -> None:
    metrics, details, findings = canary_section({"epsilon": 1.0, "delta": 1e-5}, alpha=0.05)
    assert metrics == {} and details["present"] is False
    assert [f.id for f in findings] == ["privacy.canaries_missing"]
