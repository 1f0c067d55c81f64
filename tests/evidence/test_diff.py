"""`governance diff` and `check --baseline`: regressions by interval or by the policy's tolerance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from governance.cli import main
from governance.errors import InputError
from governance.evidence.diff import Verdict, diff_results, format_diff, intervals
from governance.evidence.store import record_audit
from governance.policy.loader import load_policy
from tests.evidence.conftest import results_doc

POLICY = """
name: regress
version: 1.0.0
rules:
  - id: perf.accuracy
    metric: performance.accuracy
    op: ">="
    threshold: 0.6
    max_regression: 0.02
    severity: blocking
  - id: fair.ratio
    metric: fairness.*.demographic_parity_ratio
    op: ">="
    threshold: 0.8
  - id: priv.epsilon
    metric: privacy.epsilon
    op: "<="
    threshold: 5
    max_regression: 0.5
"""


def _with_ci(value: float, lo: float, hi: float, **metrics: float) -> dict[str, Any]:
    doc = results_doc({"fairness.sex.demographic_parity_ratio": value, **metrics})
    doc["sections"] = {
        "fairness": {
            "status": "ok",
            "metrics": {},
            "tables": {
                "disparities": [
                    {
                        "attribute": "sex",
                        "metric": "demographic_parity_ratio",
                        "value": value,
                        "ci_low": lo,
                        "ci_high": hi,
                    }
                ]
            },
            "details": {},
            "findings": [],
        }
    }
    return doc


@pytest.fixture
def policy(tmp_path: Path) -> Any:
    path = tmp_path / "regress.yaml"
    path.write_text(POLICY)
    return load_policy(path)


def test_intervals_are_read_from_the_tables() -> None:
    assert intervals(_with_ci(0.9, 0.8, 0.95)) == {"fairness.sex.demographic_parity_ratio": (0.8, 0.95)}


def test_overlapping_intervals_are_no_change_apart_ones_are(policy: Any) -> None:
    old = _with_ci(0.90, 0.85, 0.95)
    near = _with_ci(0.86, 0.80, 0.90)  # overlaps: within the noise
    far = _with_ci(0.70, 0.60, 0.80)  # apart and lower: worse under `>=`
    up = _with_ci(0.99, 0.96, 1.0)
    verdict = {
        name: {c.metric: c.verdict for c in diff_results(old, new, policy=policy).changes}[
            "fairness.sex.demographic_parity_ratio"
        ]
        for name, new in (("near", near), ("far", far), ("up", up))
    }
    assert verdict == {"near": Verdict.WITHIN, "far": Verdict.REGRESSION, "up": Verdict.IMPROVEMENT}


def test_without_intervals_the_rules_tolerance_and_direction_apply(policy: Any) -> None:
    old = results_doc(
        {"performance.accuracy": 0.80, "privacy.epsilon": 3.0, "data_quality.missing_rate": 0.1}
    )
    new = results_doc(
        {"performance.accuracy": 0.79, "privacy.epsilon": 3.6, "data_quality.missing_rate": 0.2}
    )
    by = {c.metric: c for c in diff_results(old, new, policy=policy).changes}
    assert by["performance.accuracy"].verdict is Verdict.WITHIN  # -0.01, allowed 0.02
    assert by["performance.accuracy"].delta == pytest.approx(-0.01)
    assert by["privacy.epsilon"].verdict is Verdict.REGRESSION  # +0.6 where lower is better, allowed 0.5
    assert by["data_quality.missing_rate"].verdict is Verdict.CHANGED  # no rule: no direction
    worse = results_doc(
        {"performance.accuracy": 0.75, "privacy.epsilon": 2.0, "data_quality.missing_rate": 0.1}
    )
    by = {c.metric: c for c in diff_results(old, worse, policy=policy).changes}
    assert by["performance.accuracy"].verdict is Verdict.REGRESSION
    assert by["privacy.epsilon"].verdict is Verdict.IMPROVEMENT
    assert by["data_quality.missing_rate"].verdict is Verdict.UNCHANGED


def test_added_and_removed_metrics(policy: Any) -> None:
    old = results_doc({"performance.accuracy": 0.8, "privacy.epsilon": 3.0})
    new = results_doc({"performance.accuracy": 0.8, "performance.f1": 0.7})
    by = {c.metric: c.verdict for c in diff_results(old, new, policy=policy).changes}
    assert by == {
        "performance.accuracy": Verdict.UNCHANGED,
        "performance.f1": Verdict.ADDED,
        "privacy.epsilon": Verdict.REMOVED,
    }


def test_diff_cli_text_json_markdown_and_history_ids(
    tmp_path: Path, policy: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _with_ci(0.90, 0.85, 0.95, **{"performance.accuracy": 0.80})
    new = _with_ci(0.70, 0.60, 0.80, **{"performance.accuracy": 0.81})
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(new))
    args = [
        str(tmp_path / "old.json"),
        str(tmp_path / "new.json"),
        "--policy",
        str(tmp_path / "regress.yaml"),
    ]
    assert main(["diff", *args]) == 0
    text = capsys.readouterr().out
    line = next(x for x in text.splitlines() if x.startswith("fairness.sex.demographic_parity_ratio"))
    assert "0.9 [0.85, 0.95] → 0.7 [0.6, 0.8]" in line and line.endswith("REGRESSION")
    assert main(["diff", *args, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["counts"]["regression"] == 1
    ratio = next(c for c in doc["changes"] if c["metric"] == "fairness.sex.demographic_parity_ratio")
    assert ratio["delta"] == pytest.approx(-0.2) and ratio["old_interval"] == [0.85, 0.95]
    assert main(["diff", *args, "--format", "markdown"]) == 0
    md = capsys.readouterr().out
    assert (
        "| `fairness.sex.demographic_parity_ratio` | 0.9 [0.85, 0.95] | 0.7 [0.6, 0.8] | -0.2 | **regression** |"
        in md
    )
    store = tmp_path / "h.sqlite"
    first = record_audit(old, "PASSED", store=store)
    second = record_audit(new, "FAILED", store=store)
    assert (
        main(
            [
                "diff",
                str(first),
                f"#{second}",
                "--store",
                str(store),
                "--format",
                "json",
                "--policy",
                str(tmp_path / "regress.yaml"),
            ]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["counts"]["regression"] == 1
    assert main(["diff", "999", str(second), "--store", str(store)]) == 2
    assert "no audit recorded with this id" in capsys.readouterr().err


def test_format_refuses_unknown_formats(policy: Any) -> None:
    report = diff_results(results_doc(), results_doc(), policy=policy)
    with pytest.raises(InputError):
        format_diff(report, "yaml")


def test_check_baseline_fails_a_regression_the_absolute_threshold_lets_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "regress.yaml").write_text(POLICY)
    old = results_doc(
        {"performance.accuracy": 0.80, "fairness.sex.demographic_parity_ratio": 0.9, "privacy.epsilon": 3.0}
    )
    new = results_doc(
        {"performance.accuracy": 0.75, "fairness.sex.demographic_parity_ratio": 0.9, "privacy.epsilon": 3.2}
    )
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(new))
    gate = [str(tmp_path / "new.json"), "--policy", str(tmp_path / "regress.yaml"), "--format", "json"]
    assert main(["check", *gate]) == 0  # 0.75 >= 0.6: the absolute rule passes
    capsys.readouterr()
    assert main(["check", *gate, "--baseline", str(tmp_path / "old.json")]) == 1
    report = json.loads(capsys.readouterr().out)
    reg = {o["rule"]: o for o in report["outcomes"] if o["rule"].endswith(".regression")}
    assert reg["perf.accuracy.regression"]["status"] == "FAIL"
    assert reg["perf.accuracy.regression"]["value"] == pytest.approx(0.05)
    assert reg["perf.accuracy.regression"]["threshold"] == 0.02
    assert reg["priv.epsilon.regression"]["status"] == "PASS"  # +0.2 where 0.5 is allowed
    assert "fair.ratio.regression" not in reg  # no max_regression: no regression rule
    # A history id as the baseline.
    store = tmp_path / "h.sqlite"
    rid = record_audit(old, "PASSED", store=store)
    assert main(["check", *gate, "--baseline", str(rid), "--store", str(store)]) == 1


def test_max_regression_is_validated(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(POLICY.replace("max_regression: 0.02", "max_regression: -1"))
    with pytest.raises(InputError, match=r"rules\[perf.accuracy\].max_regression"):
        load_policy(bad)
    bad.write_text(POLICY.replace('op: ">="\n    threshold: 0.6', 'op: "=="\n    threshold: 0.6'))
    with pytest.raises(InputError, match="max_regression"):
        load_policy(bad)
