"""`governance check` end to end through the CLI: exit codes, formats, one-line errors."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from governance.cli import main
from governance.report.check_formats import format_names, get_format, register_format

POLICY = """
name: ci-policy
version: 2.0.0
rules:
  - id: perf.accuracy
    title: Accuracy floor
    metric: performance.accuracy
    op: ">="
    threshold: 0.7
    threshold_source: pack
    severity: blocking
    refs: ["EU AI Act Art. 15(1)"]
  - id: fair.four_fifths
    metric: fairness.*.demographic_parity_ratio
    op: ">="
    threshold: 0.8
    threshold_source: regulation
    severity: major
    refs: ["EEOC 29 CFR 1607.4(D)"]
"""


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def policy_path(write_file):
    return write_file("policy.yaml", POLICY)


def test_pass(capsys, write_results, policy_path):
    results = write_results(
        {
            "fairness.age_group.demographic_parity_ratio": 0.9,
            "fairness.sex*age_group.demographic_parity_ratio": 0.81,
        }
    )
    code, out, err = run_cli(capsys, "check", str(results), "--policy", str(policy_path))
    assert code == 0
    assert "PASS" in out and "FAIL" not in out
    assert err.strip() == "policy ci-policy 2.0.0: PASSED (4 pass)"


def test_violation(capsys, write_results, policy_path):
    code, out, err = run_cli(capsys, "check", str(write_results()), "--policy", str(policy_path))
    assert code == 1
    assert "fairness.age_group.demographic_parity_ratio" in out and "0.7 is not >= 0.8" in out
    assert "EEOC 29 CFR 1607.4(D)" in out  # refs of a red outcome are shown
    assert "FAILED" in err and len(err.strip().splitlines()) == 1


def test_missing_metric_fails(capsys, write_results, policy_path):
    code, out, _ = run_cli(
        capsys, "check", str(write_results({"performance.accuracy": None})), "--policy", str(policy_path)
    )
    assert code == 1 and "ERROR" in out
    results = write_results(name="r2.json")
    doc = json.loads(results.read_text())
    del doc["metrics"]["performance.accuracy"]
    results.write_text(json.dumps(doc))
    code, out, _ = run_cli(capsys, "check", str(results), "--policy", str(policy_path))
    assert code == 1 and "metric not in results" in out


def waivers_file(write_file, expires):
    return write_file(
        "waivers.yaml",
        f"- rule: fair.four_fifths\n  reason: rebinning ages\n  approver: Jane Doe\n  expires: {expires}\n"
        f"- rule: fair.four_fifths\n  metric: fairness.sex*age_group.demographic_parity_ratio\n  reason: small cells\n"
        f"  approver: Jane Doe\n  expires: {expires}\n",
    )


def test_valid_waiver_passes_and_shows_in_every_format(capsys, write_results, policy_path, write_file):
    waivers = waivers_file(write_file, "2999-01-01")
    for fmt in format_names():
        code, out, _ = run_cli(
            capsys,
            "check",
            str(write_results()),
            "--policy",
            str(policy_path),
            "--waivers",
            str(waivers),
            "--format",
            fmt,
        )
        assert code == 0, fmt
        assert "Jane Doe" in out and "2999-01-01" in out, fmt
        assert "WAIVED" in out or "waived" in out, fmt


def test_expired_waiver_fails(capsys, write_results, policy_path, write_file):
    waivers = waivers_file(write_file, "2001-01-01")
    code, out, _ = run_cli(
        capsys, "check", str(write_results()), "--policy", str(policy_path), "--waivers", str(waivers)
    )
    assert code == 1 and "expired on 2001-01-01" in out


def test_fail_on_warn(capsys, write_results, write_file):
    policy = write_file(
        "minor.yaml",
        "name: m\nrules:\n  - {id: r, metric: performance.accuracy, op: '>=', threshold: 0.99, threshold_source: pack, severity: minor}\n",
    )
    assert run_cli(capsys, "check", str(write_results()), "--policy", str(policy))[0] == 0
    assert (
        run_cli(capsys, "check", str(write_results()), "--policy", str(policy), "--fail-on", "warn")[0] == 1
    )


def test_builtin_pack_by_name(capsys, write_results):
    code, out, _ = run_cli(capsys, "check", str(write_results()), "--policy", "employment-four-fifths")
    assert code == 1 and "fair.four_fifths" in out


def test_json_format(capsys, write_results, policy_path):
    code, out, _ = run_cli(
        capsys, "check", str(write_results()), "--policy", str(policy_path), "--format", "json"
    )
    doc = json.loads(out)
    assert code == 1 and doc["passed"] is False
    assert doc["policy"]["name"] == "ci-policy" and len(doc["policy"]["sha256"]) == 64
    statuses = {(o["rule"], o["metric"]): o["status"] for o in doc["outcomes"]}
    assert statuses[("fair.four_fifths", "fairness.age_group.demographic_parity_ratio")] == "FAIL"
    assert statuses[("perf.accuracy", "performance.accuracy")] == "PASS"


def test_junit_one_testcase_per_outcome(capsys, write_results, policy_path, tmp_path):
    target = tmp_path / "out" / "junit.xml"
    code, out, err = run_cli(
        capsys,
        "check",
        str(write_results()),
        "--policy",
        str(policy_path),
        "--format",
        "junit",
        "--output",
        str(target),
    )
    assert code == 1 and out == "" and "FAILED" in err
    suite = ET.parse(target).getroot()
    cases = suite.findall("testcase")
    assert len(cases) == 4 == int(suite.get("tests"))
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert failed == [
        "fair.four_fifths [fairness.age_group.demographic_parity_ratio]",
        "fair.four_fifths [fairness.sex*age_group.demographic_parity_ratio]",
    ]
    assert suite.get("failures") == "2"


def test_markdown_table(capsys, write_results, policy_path):
    _code, out, _ = run_cli(
        capsys, "check", str(write_results()), "--policy", str(policy_path), "--format", "markdown"
    )
    assert out.startswith("## Policy `ci-policy` 2.0.0: ❌ failed")
    assert "| Status | Severity | Rule | Metric | Value | Expected | Refs |" in out
    assert "`fairness.sex*age_group.demographic_parity_ratio`" in out


def test_every_format_choice_renders(write_results, policy_path):
    from governance.policy.engine import check

    report = check(write_results(), policy_path)
    for name in format_names():
        text = get_format(name)(report)
        assert "fair.four_fifths" in text, name


def test_format_registry_rejects_duplicates_and_unknowns():
    with pytest.raises(ValueError, match="already registered"):
        register_format("text", lambda r: "")
    with pytest.raises(ValueError, match="unknown check format"):
        get_format("yaml")


def test_output_file_is_written_atomically(capsys, write_results, policy_path, tmp_path):
    target = tmp_path / "report.txt"
    target.write_text("previous")
    code, *_ = run_cli(
        capsys,
        "check",
        str(write_results()),
        "--policy",
        str(tmp_path / "missing.yaml"),
        "--output",
        str(target),
    )
    assert code == 2 and target.read_text() == "previous"  # nothing overwritten on bad input
    assert not list(tmp_path.glob(".report.txt.*"))


@pytest.mark.parametrize(
    ("make_args", "expected"),
    [
        (lambda r, p, t: [str(t / "absent.json"), "--policy", str(p)], "absent.json: file not found"),
        (lambda r, p, t: [str(r), "--policy", str(t / "absent.yaml")], "absent.yaml: file not found"),
        (
            lambda r, p, t: [str(r), "--policy", str(p), "--waivers", str(t / "absent.yaml")],
            "absent.yaml: file not found",
        ),
    ],
)
def test_missing_files_exit_2(capsys, write_results, policy_path, tmp_path, make_args, expected):
    code, out, err = run_cli(capsys, "check", *make_args(write_results(), policy_path, tmp_path))
    assert code == 2 and out == ""
    assert expected in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize(
    ("results_text", "policy_text", "waivers_text", "expected"),
    [
        ("{not json", None, None, "results.json: line 1 column 2: not valid JSON"),
        ('{"schema_version": 9, "metrics": {}}', None, None, "schema_version 9 is not supported"),
        (
            None,
            "name: x\nrules:\n  - {id: a, op: '>=', threshold: 1}\n",
            None,
            "rules[a].metric: required field is missing",
        ),
        (
            None,
            "name: x\nrules:\n  - {id: a, metric: performance.accuracy, threshold: 1}\n",
            None,
            "rules[a].op: required",
        ),
        (
            None,
            "name: x\nrules:\n  - {id: a, metric: performance.accuracy, op: '~', threshold: 1}\n",
            None,
            "expected one of < <= > >= == !=",
        ),
        (
            None,
            "name: x\nrules:\n  - {id: a, metric: performance.accuracy, op: '>', threshold: lots}\n",
            None,
            "threshold: expected a number",
        ),
        (
            None,
            "name: x\nrules:\n  - {id: a, metric: performance.accuracy, op: '>', threshold: 1, threshold_source: pack}\n  - {id: a, metric: performance.f1, op: '>', threshold: 1, threshold_source: pack}\n",
            None,
            "duplicate rule id 'a'",
        ),
        (None, "name: x\nextends: policy\nrules: []\n", None, "policy.yaml: extends: extends cycle"),
        (
            None,
            "name: x\nextends: nowhere\nrules: []\n",
            None,
            "policy.yaml: extends: unknown policy pack 'nowhere'",
        ),
        (None, "name: x\n  rules: - [\n", None, "policy.yaml: line"),
        (
            None,
            None,
            "- {rule: a, reason: b, approver: c}\n",
            "waivers.yaml: waivers[0].expires: required field is missing",
        ),
        (
            None,
            None,
            "- {rule: a, reason: b, approver: c, expires: 31/12/2026}\n",
            "waivers[0].expires: expected a date YYYY-MM-DD",
        ),
    ],
)
def test_bad_input_exit_2_one_line(
    capsys, write_file, write_results, policy_path, results_text, policy_text, waivers_text, expected
):
    results = write_file("results.json", results_text) if results_text else write_results()
    policy = write_file("policy.yaml", policy_text) if policy_text else policy_path
    args = ["check", str(results), "--policy", str(policy)]
    if waivers_text:
        args += ["--waivers", str(write_file("waivers.yaml", waivers_text))]
    code, _out, err = run_cli(capsys, *args)
    assert code == 2
    assert expected in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_usage_errors_exit_2_one_line(capsys, write_results):
    with pytest.raises(SystemExit) as info:
        main(["check", str(write_results())])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--policy" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as info:
        main(["check", str(write_results()), "--policy", "baseline", "--format", "yaml"])
    assert info.value.code == 2
