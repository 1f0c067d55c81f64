"""The packs treat a seeded-noise run as not private and warn on anything outside the scope.

Metrics (from the privacy audit, read off the ledger): ``privacy.noise_seeded`` (1 when the DP
noise came from the published seed) and ``privacy.scope.outside_count`` (items the model folder
publishes about the private rows outside the guarantee).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from governance.policy.engine import check
from governance.policy.outcome import Status
from governance.results import Results, RunInfo

PACKS = {
    "eu-ai-act-high-risk": ("priv.noise_not_seeded", "priv.scope_outside"),
    "nist-ai-rmf": ("measure_2_10.noise_not_seeded", "measure_2_10.scope_outside"),
}


def _results(metrics: dict[str, float]) -> Results:
    run = RunInfo(tool_version="t", spec_name="s", seed=0, started_at="", finished_at="")
    return Results(run=run, metrics=metrics)


def _status(report: Any, rule_id: str) -> Status:
    return next(o.status for o in report.outcomes if o.rule_id == rule_id)


@pytest.mark.parametrize("pack", sorted(PACKS))
def test_seeded_noise_fails_and_a_non_empty_scope_warns(pack: str) -> None:
    noise_rule, scope_rule = PACKS[pack]
    bad = check(_results({"privacy.noise_seeded": 1.0, "privacy.scope.outside_count": 2.0}), pack)
    assert _status(bad, noise_rule) is Status.FAIL and _status(bad, scope_rule) is Status.WARN
    good = check(_results({"privacy.noise_seeded": 0.0, "privacy.scope.outside_count": 0.0}), pack)
    assert _status(good, noise_rule) is Status.PASS and _status(good, scope_rule) is Status.PASS
    plain = check(_results({}), pack)  # not trained privately: nothing to judge here
    assert _status(plain, noise_rule) is Status.SKIPPED and _status(plain, scope_rule) is Status.SKIPPED


@pytest.mark.slow
def test_seeded_run_end_to_end(tmp_path: Path) -> None:
    """A reproducible_noise run without a schema: the privacy audit reports the seeded noise and
    the scope, the report says the guarantee does not hold against the seed's holders, and the
    eu-ai-act-high-risk pack fails it."""
    import torch

    from governance.cli import main
    from tests.data.helpers import spec_dict, write_spec, write_split

    torch.set_num_threads(1)
    write_split(tmp_path)
    spec = spec_dict(
        train__privacy={"target_epsilon": 5.0, "delta": 1e-3, "reproducible_noise": True},
        audits={"data_quality": {}, "performance": {}, "privacy": {"n_boot": 0}},
    )
    out = tmp_path / "out"
    with pytest.warns(UserWarning, match="reproducible_noise"):
        assert main(["audit", str(write_spec(tmp_path, spec)), "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    metrics = results["metrics"]
    assert metrics["privacy.noise_seeded"] == 1.0
    assert metrics["privacy.scope.outside_count"] == 2.0  # mean/std and categories, fitted on train
    assert metrics["privacy.scope.report_count"] == 2.0  # data-quality figures and MIA scores
    scope = results["sections"]["privacy"]["details"]["scope"]
    assert [i["name"] for i in scope["report"]] == ["data_quality", "privacy.membership_inference"]
    ledger = results["run"]["training"]["privacy"]
    assert ledger["noise_source"] == "seeded" and ledger["scope"]["noise_source"] == "seeded"

    report = check(out / "results.json", "eu-ai-act-high-risk")
    assert _status(report, "priv.noise_not_seeded") is Status.FAIL and not report.passed
    assert main(["check", str(out / "results.json"), "--policy", "eu-ai-act-high-risk"]) == 1
    markdown = tmp_path / "report.md"
    assert main(["report", str(out / "results.json"), "--format", "markdown", "--output", str(markdown)]) == 0
    text = markdown.read_text()
    assert "does not hold against anyone holding the seed" in text
    assert "preprocessing.mean" in text and "Mironov" in text
