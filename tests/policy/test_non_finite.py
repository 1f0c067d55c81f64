"""results.json never holds a non-finite number; `check` fails closed when one is there anyway."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from governance.cli import main
from governance.policy.engine import FINITE_RULE_ID, check
from governance.policy.outcome import Status
from governance.results import AuditSection, Results, RunInfo, load_results, save_results
from tests.conftest import BASE_RESULTS

POLICY = """name: p
version: 1
rules:
  - {id: r.le, metric: performance.accuracy, op: "<=", threshold: 0.9, severity: blocking}
  - {id: r.ne, metric: performance.balanced_accuracy, op: "!=", threshold: 0.5, severity: major}
  - {id: r.ge, metric: fairness.*.demographic_parity_ratio, op: ">=", threshold: 0.0, severity: major}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "results.json"
    path.write_text(text)
    return path


@pytest.mark.parametrize("token", ["-Infinity", "Infinity", "NaN", "-1e999", "1e999"])
@pytest.mark.parametrize("op_metric", ["performance.accuracy", "performance.balanced_accuracy"])
def test_a_non_finite_metric_is_error_for_every_op(tmp_path: Path, token: str, op_metric: str) -> None:
    doc = json.dumps(BASE_RESULTS).replace(f'"{op_metric}": ', f'"{op_metric}": {token}, "_x": ', 1)
    doc = doc.replace('"_x": ', '"performance.rows": ', 1)  # keep the old value under another ID
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY)
    report = check(_write(tmp_path, doc), policy)
    ruled = [o for o in report.outcomes if o.metric == op_metric and o.rule_id != FINITE_RULE_ID]
    assert [o.status for o in ruled] == [Status.ERROR]
    assert "not a finite number" in ruled[0].message
    assert report.outcomes[0].rule_id == FINITE_RULE_ID and report.outcomes[0].status is Status.ERROR
    assert not report.passed


def test_minus_infinity_no_longer_passes_le_through_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The case of issue 12: `-Infinity` passed a `<=` rule and NaN passed `!=`, exit 0."""
    doc = json.dumps(BASE_RESULTS)
    doc = doc.replace('"performance.accuracy": 0.74', '"performance.accuracy": -Infinity')
    doc = doc.replace('"performance.balanced_accuracy": 0.66', '"performance.balanced_accuracy": NaN')
    policy = tmp_path / "p.yaml"
    policy.write_text(POLICY)
    code = main(["check", str(_write(tmp_path, doc)), "--policy", str(policy), "--format", "json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1
    statuses = {o["rule"]: o["status"] for o in out["outcomes"]}
    assert statuses == {FINITE_RULE_ID: "ERROR", "r.le": "ERROR", "r.ne": "ERROR", "r.ge": "PASS"}


def test_non_finite_anywhere_in_the_file_fails_closed(tmp_path: Path) -> None:
    raw = json.loads(json.dumps(BASE_RESULTS))
    raw["sections"] = {"fairness": {"status": "ok", "metrics": {}, "tables": {"groups": [{"rate": 0.5}]}}}
    text = json.dumps(raw).replace('"rate": 0.5', '"rate": NaN')
    results = load_results(_write(tmp_path, text))
    assert results.non_finite == ("sections.fairness.tables.groups[0].rate",)
    report = check(results, "baseline")
    assert report.outcomes[0].rule_id == FINITE_RULE_ID
    assert "sections.fairness.tables.groups[0].rate" in report.outcomes[0].message
    assert not report.passed


def test_writers_never_write_a_non_finite_number(tmp_path: Path) -> None:
    section = AuditSection(
        name="performance",
        metrics={"performance.accuracy": math.inf, "performance.f1": math.nan, "performance.rows": 3.0},
        tables={"t": [{"v": -math.inf}]},
        details={"curve": [math.nan, 1.0]},
    )
    run = RunInfo("0", "s", 0, "a", "b", extra={"x": math.inf})
    path = tmp_path / "results.json"
    save_results(Results.from_sections(run, [section]), path)

    def refuse(token: str) -> float:
        raise AssertionError(f"non-finite token {token} written")

    raw = json.loads(path.read_text(), parse_constant=refuse)
    assert raw["metrics"]["performance.accuracy"] is None and raw["metrics"]["performance.f1"] is None
    assert raw["sections"]["performance"]["tables"]["t"] == [{"v": None}]
    # What was written reads back finite, and a rule on the undefined metric is ERROR, never PASS.
    report = check(load_results(path), _policy(tmp_path))
    assert [o.status for o in report.outcomes if o.rule_id == "r.le"] == [Status.ERROR]
    assert all(o.rule_id != FINITE_RULE_ID for o in report.outcomes)


def _policy(tmp_path: Path) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(POLICY)
    return path


def test_results_built_in_memory_are_judged_rule_by_rule(tmp_path: Path) -> None:
    """The audit run checks its Results before writing them: a NaN there is an undefined metric
    (written as null), ERROR for a rule on it, and no file-level failure for the others."""
    section = AuditSection(
        name="performance",
        metrics={"performance.accuracy": math.nan, "performance.balanced_accuracy": 0.7},
        tables={"t": [{"ci_low": math.nan}]},
    )
    results = Results.from_sections(RunInfo("0", "s", 0, "a", "b"), [section])
    report = check(results, _policy(tmp_path))
    statuses = {o.rule_id: o.status for o in report.outcomes}
    assert statuses == {"r.le": Status.ERROR, "r.ne": Status.PASS, "r.ge": Status.FAIL}
