"""The policy engine: every status, glob expansion, waivers, and --fail-on."""

from __future__ import annotations

import datetime as dt

import pytest

from governance.policy.engine import check
from governance.policy.outcome import FailOn, Status
from governance.policy.schema import OPS, OnMissing, Policy, Rule
from governance.policy.waivers import Waiver
from governance.results import AuditSection, Results, RunInfo, SectionStatus, Severity

TODAY = dt.date(2026, 11, 23)


def results(metrics, sections=()):
    run = RunInfo(tool_version="t", spec_name="s", seed=0, started_at="", finished_at="")
    return Results(run=run, metrics=metrics, sections={s.name: s for s in sections})


def policy(*rules):
    return Policy(name="p", version="1", rules=tuple(rules), source="p.yaml", sha256="0" * 64)


def rule(metric="performance.accuracy", op=">=", threshold=0.7, **kw):
    return Rule(id=kw.pop("id", "r"), title="t", metric=metric, op=op, threshold=threshold, **kw)


@pytest.mark.parametrize(
    ("op", "value", "threshold", "holds"),
    [
        ("<", 0.1, 0.2, True),
        ("<", 0.2, 0.2, False),
        ("<=", 0.2, 0.2, True),
        ("<=", 0.3, 0.2, False),
        (">", 0.3, 0.2, True),
        (">", 0.2, 0.2, False),
        (">=", 0.2, 0.2, True),
        (">=", 0.1, 0.2, False),
        ("==", 0.1 + 0.2, 0.3, True),
        ("==", 0.31, 0.3, False),
        ("!=", 0.31, 0.3, True),
        ("!=", 0.1 + 0.2, 0.3, False),
    ],
)
def test_all_six_operators(op, value, threshold, holds):
    assert set(OPS) == {"<", "<=", ">", ">=", "==", "!="}
    report = check(
        results({"performance.accuracy": value}), policy(rule(op=op, threshold=threshold)), today=TODAY
    )
    assert report.outcomes[0].status is (Status.PASS if holds else Status.FAIL)
    assert report.passed is holds


@pytest.mark.parametrize(
    ("severity", "status", "red_on_fail", "red_on_warn"),
    [
        (Severity.BLOCKING, Status.FAIL, True, True),
        (Severity.MAJOR, Status.FAIL, True, True),
        (Severity.MINOR, Status.WARN, False, True),
        (Severity.INFO, Status.WARN, False, False),
    ],
)
def test_severity_decides_status_and_gate(severity, status, red_on_fail, red_on_warn):
    r = rule(threshold=0.9, severity=severity)
    data = results({"performance.accuracy": 0.5})
    assert check(data, policy(r), today=TODAY).outcomes[0].status is status
    assert check(data, policy(r), fail_on=FailOn.FAIL, today=TODAY).passed is not red_on_fail
    assert check(data, policy(r), fail_on="warn", today=TODAY).passed is not red_on_warn


def test_glob_expands_to_one_outcome_per_metric_naming_it():
    data = results(
        {
            "fairness.sex.demographic_parity_ratio": 0.9,
            "fairness.age.demographic_parity_ratio": 0.5,
            "fairness.sex*age.demographic_parity_ratio": 0.85,
            "fairness.sex.demographic_parity_difference": 0.3,
        }
    )
    report = check(data, policy(rule("fairness.*.demographic_parity_ratio", ">=", 0.8)), today=TODAY)
    got = {o.metric: o.status for o in report.outcomes}
    assert got == {
        "fairness.age.demographic_parity_ratio": Status.FAIL,
        "fairness.sex.demographic_parity_ratio": Status.PASS,
        "fairness.sex*age.demographic_parity_ratio": Status.PASS,
    }
    intersections = check(data, policy(rule("fairness.*[*]*.demographic_parity_ratio", ">=", 0)), today=TODAY)
    assert [o.metric for o in intersections.outcomes] == ["fairness.sex*age.demographic_parity_ratio"]


@pytest.mark.parametrize(
    ("on_missing", "severity", "status"),
    [
        ("fail", Severity.MAJOR, Status.FAIL),
        ("fail", Severity.MINOR, Status.WARN),
        ("warn", Severity.BLOCKING, Status.WARN),
        ("skip", Severity.BLOCKING, Status.SKIPPED),
    ],
)
def test_missing_metric(on_missing, severity, status):
    r = rule("privacy.epsilon", "<=", 8, on_missing=OnMissing(on_missing), severity=severity)
    report = check(results({}), policy(r), today=TODAY)
    (outcome,) = report.outcomes
    assert outcome.status is status and outcome.value is None
    assert "metric not in results" in outcome.message and "privacy audit did not run" in outcome.message


def test_glob_with_no_match_is_missing():
    report = check(results({}), policy(rule("robustness.*.eps_0.1.accuracy_drop", "<=", 0.1)), today=TODAY)
    assert report.outcomes[0].status is Status.FAIL
    assert "no metric matches the pattern" in report.outcomes[0].message


def test_missing_metric_of_an_errored_audit_is_error_even_with_skip():
    crashed = AuditSection(name="robustness", status=SectionStatus.ERROR, error="CUDA out of memory")
    r = rule("robustness.pgd.eps_0.1.accuracy", ">=", 0.5, on_missing=OnMissing.SKIP)
    (outcome,) = check(results({}, [crashed]), policy(r), today=TODAY).outcomes
    assert outcome.status is Status.ERROR and "CUDA out of memory" in outcome.message


def test_null_metric_is_error_and_fails_gate():
    report = check(
        results({"fairness.sex.demographic_parity_ratio": None}),
        policy(rule("fairness.sex.demographic_parity_ratio")),
        today=TODAY,
    )
    assert report.outcomes[0].status is Status.ERROR
    assert not report.passed


def test_exception_inside_one_rule_is_error_for_that_rule_only():
    class Exploding(Rule):
        def holds(self, value: float) -> bool:
            raise ZeroDivisionError("boom")

    bad = Exploding(id="bad", title="t", metric="performance.accuracy", op=">=", threshold=0.1)
    good = rule(id="good", threshold=0.1)
    report = check(results({"performance.accuracy": 0.5}), policy(bad, good), today=TODAY)
    assert [(o.rule_id, o.status) for o in report.outcomes] == [("bad", Status.ERROR), ("good", Status.PASS)]
    assert "boom" in report.outcomes[0].message


def waiver(expires, rule_id="r", metric=None):
    return Waiver(rule=rule_id, reason="fix in Q1", approver="Jane", expires=expires, metric=metric)


def test_valid_waiver_passes_and_is_shown():
    report = check(
        results({"performance.accuracy": 0.5}), policy(rule()), [waiver(dt.date(2027, 1, 1))], today=TODAY
    )
    (o,) = report.outcomes
    assert o.status is Status.WAIVED and report.passed
    assert o.waiver is not None and o.waiver.approver == "Jane" and not o.waiver.expired
    assert "waived by Jane until 2027-01-01" in o.message


def test_expired_waiver_fails():
    report = check(
        results({"performance.accuracy": 0.5}), policy(rule()), [waiver(dt.date(2026, 11, 22))], today=TODAY
    )
    (o,) = report.outcomes
    assert o.status is Status.FAIL and not report.passed
    assert o.waiver is not None and o.waiver.expired and "expired on 2026-11-22" in o.message


def test_expired_waiver_of_a_passing_rule_is_its_own_failure():
    report = check(
        results({"performance.accuracy": 0.9}), policy(rule()), [waiver(dt.date(2020, 1, 1))], today=TODAY
    )
    assert [o.status for o in report.outcomes] == [Status.PASS, Status.FAIL]
    assert "renew or remove it" in report.outcomes[1].message
    assert not report.passed


def test_waiver_scoped_to_one_metric_of_a_glob():
    data = results({"fairness.a.demographic_parity_ratio": 0.5, "fairness.b.demographic_parity_ratio": 0.5})
    r = rule("fairness.*.demographic_parity_ratio", ">=", 0.8)
    report = check(
        data,
        policy(r),
        [waiver(dt.date(2027, 1, 1), metric="fairness.a.demographic_parity_ratio")],
        today=TODAY,
    )
    assert [o.status for o in report.outcomes] == [Status.WAIVED, Status.FAIL]


def test_waiver_for_unknown_rule_is_reported_as_unused():
    report = check(
        results({"performance.accuracy": 0.9}),
        policy(rule()),
        [waiver(dt.date(2027, 1, 1), rule_id="typo")],
        today=TODAY,
    )
    assert report.passed and report.unused_waivers and "typo" in report.unused_waivers[0]


def test_counts_and_summary():
    report = check(
        results({"performance.accuracy": 0.5}), policy(rule(id="a"), rule(id="b", threshold=0.1)), today=TODAY
    )
    assert report.counts["PASS"] == 1 and report.counts["FAIL"] == 1
    assert report.summary_line() == "policy p 1: FAILED (1 pass, 1 fail)"
