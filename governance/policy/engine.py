"""Evaluate a policy against results: one :class:`Outcome` per rule, per metric for globs.

The engine never raises for a rule that cannot be evaluated: that rule becomes ERROR and the
others are still evaluated, so one broken rule cannot hide the rest of the verdict.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import math
from collections.abc import Iterable, Mapping, Sequence
from os import PathLike

from governance.policy.findings import blocking_findings, finding_rule, is_finding_rule
from governance.policy.loader import load_policy
from governance.policy.outcome import FINITE_RULE_ID, CheckReport, FailOn, Outcome, Status, WaiverNote
from governance.policy.schema import OnMissing, Policy, Rule
from governance.policy.waivers import Waiver, load_waivers
from governance.results import Results, SectionStatus, Severity, load_results

__all__ = ["FINITE_RULE_ID", "check", "evaluate_rule"]

# FINITE_RULE_ID: JSON has no NaN or Infinity, so a file holding them was not written by
# governance as it is; check fails closed on it.
ERR_NON_FINITE = (
    "{n} non-finite number(s) (NaN or ±Infinity) in the results, first at {first}; failing closed"
)
ERR_NON_FINITE_METRIC = "metric is not a finite number ({value}) in the results"

# A failed comparison is FAIL for rules that can block a release and WARN for the others.
_FAILED_STATUS: Mapping[Severity, Status] = {
    Severity.BLOCKING: Status.FAIL,
    Severity.MAJOR: Status.FAIL,
    Severity.MINOR: Status.WARN,
    Severity.INFO: Status.WARN,
}
_MISSING_STATUS: Mapping[OnMissing, Status | None] = {
    OnMissing.FAIL: None,  # decided by severity, as a failed comparison
    OnMissing.WARN: Status.WARN,
    OnMissing.SKIP: Status.SKIPPED,
}


def check(
    results: Results | str | PathLike[str],
    policy: Policy | str | PathLike[str],
    waivers: Sequence[Waiver] | str | PathLike[str] | None = None,
    *,
    fail_on: FailOn | str = FailOn.FAIL,
    today: dt.date | None = None,
) -> CheckReport:
    """Evaluate ``policy`` against ``results``.

    Parameters
    ----------
    results
        A :class:`Results` or the path of a ``results.json``.
    policy
        A :class:`Policy`, a policy YAML path, or a built-in pack name.
    waivers
        Waivers, or the path of a waivers file.
    fail_on
        ``"fail"``: blocking/major FAIL or ERROR turn the gate red; ``"warn"``: minor ones and
        WARN outcomes too.
    today
        The date waivers are checked against (default: today, UTC).

    Examples
    --------
    >>> report = check("out/demo/results.json", "eu-ai-act-high-risk")  # doctest: +SKIP
    >>> report.passed, report.counts["FAIL"]                            # doctest: +SKIP
    (True, 0)
    """
    results_source = "<results>"
    if not isinstance(results, Results):
        results_source = str(results)
        results = load_results(results)
    policy = load_policy(policy)
    if waivers is None:
        waiver_list: tuple[Waiver, ...] = ()
    elif isinstance(waivers, str | PathLike):
        waiver_list = load_waivers(waivers)
    else:
        waiver_list = tuple(waivers)
    today = today or dt.datetime.now(dt.UTC).date()

    outcomes: list[Outcome] = []
    for rule in policy.rules:
        try:
            outcomes.extend(evaluate_rule(rule, results))
        except Exception as exc:
            outcomes.append(
                _outcome(rule, rule.metric, None, Status.ERROR, f"rule could not be evaluated: {exc}")
            )
    # The audits' blocking findings are implicit rules of every policy (policy/findings.py).
    finding_ids = set()
    for finding in blocking_findings(results):
        rule = finding_rule(finding.id, audit=finding.audit)
        finding_ids.add(rule.id)
        outcomes.append(_outcome(rule, rule.metric, None, Status.FAIL, finding.message))
    outcomes = _apply_waivers(outcomes, policy, waiver_list, today)
    if results.non_finite:
        # Only a file can hold NaN/Infinity (results built in memory are written with null for
        # an undefined number, and each rule on one is ERROR below): fail closed on the file.
        outcomes.insert(0, _non_finite_outcome(results.non_finite))

    rule_ids = {r.id for r in policy.rules} | finding_ids
    unused = tuple(sorted({f"{w.rule} ({w.source})" for w in waiver_list if w.rule not in rule_ids}))
    return CheckReport(
        policy_name=policy.name,
        policy_version=policy.version,
        policy_source=policy.source,
        policy_sha256=policy.sha256,
        results_source=results_source,
        outcomes=tuple(outcomes),
        fail_on=FailOn(fail_on),
        unused_waivers=unused,
        evaluated_on=today.isoformat(),
        spec_name=results.run.spec_name,
    )


def evaluate_rule(rule: Rule, results: Results) -> list[Outcome]:
    """The outcomes of one rule: one for a plain metric, one per matching metric for a glob."""
    metrics = results.metrics
    if rule.is_glob:
        names = sorted(m for m in metrics if fnmatch.fnmatchcase(m, rule.metric))
        if not names:
            return [_missing(rule, rule.metric, results, what="no metric matches the pattern")]
    elif rule.metric in metrics:
        names = [rule.metric]
    else:
        return [_missing(rule, rule.metric, results, what="metric not in results")]

    outcomes = []
    for name in names:
        value = metrics[name]
        if value is None:
            # An undefined metric (e.g. a ratio over a zero rate) cannot be judged either way.
            outcomes.append(
                _outcome(rule, name, None, Status.ERROR, "metric is undefined (null) in the results")
            )
        elif not math.isfinite(value):
            # NaN compares false and -inf passes every `<=`: no comparison with it means anything.
            outcomes.append(
                _outcome(rule, name, None, Status.ERROR, ERR_NON_FINITE_METRIC.format(value=value))
            )
        elif rule.holds(value):
            outcomes.append(
                _outcome(rule, name, value, Status.PASS, f"{_fmt(value)} {rule.op} {_fmt(rule.threshold)}")
            )
        else:
            outcomes.append(
                _outcome(
                    rule,
                    name,
                    value,
                    _FAILED_STATUS[rule.severity],
                    f"{_fmt(value)} is not {rule.op} {_fmt(rule.threshold)}",
                )
            )
    return outcomes


def _non_finite_outcome(paths: Sequence[str]) -> Outcome:
    return Outcome(
        rule_id=FINITE_RULE_ID,
        title="results.json holds only finite numbers",
        status=Status.ERROR,
        severity=Severity.BLOCKING,
        metric=paths[0].removeprefix("metrics."),
        op="==",
        threshold=0.0,
        value=None,
        message=ERR_NON_FINITE.format(n=len(paths), first=paths[0]),
    )


def _missing(rule: Rule, metric: str, results: Results, *, what: str) -> Outcome:
    audit = metric.split(".", 1)[0]
    section = results.sections.get(audit)
    if section is not None and section.status is SectionStatus.ERROR:
        # The audit that produces this metric crashed: never let on_missing=skip hide that.
        return _outcome(
            rule, metric, None, Status.ERROR, f"{what}: the {audit} audit ended in ERROR ({section.error})"
        )
    why = what
    if section is None:
        if not any(m.startswith(f"{audit}.") for m in results.metrics):
            why += f" (the {audit} audit did not run)"
    elif section.status is SectionStatus.SKIPPED:
        why += f" (the {audit} audit was skipped: {section.reason})"
    status = _MISSING_STATUS[rule.on_missing] or _FAILED_STATUS[rule.severity]
    return _outcome(rule, metric, None, status, f"{why}; on_missing: {rule.on_missing.value}")


def _apply_waivers(
    outcomes: list[Outcome], policy: Policy, waivers: Iterable[Waiver], today: dt.date
) -> list[Outcome]:
    waivers = tuple(waivers)
    used: set[Waiver] = set()
    out: list[Outcome] = []
    for outcome in outcomes:
        waiver = next((w for w in waivers if w.covers(outcome.rule_id, outcome.metric)), None)
        if waiver is None or outcome.status not in {Status.FAIL, Status.WARN}:
            out.append(outcome)
            continue
        used.add(waiver)
        note = _note(waiver, today)
        if note.expired:
            message = f"{outcome.message}; waiver by {waiver.approver} expired on {note.expires}"
            out.append(_replace(outcome, status=Status.FAIL, message=message, waiver=note))
        else:
            message = f"{outcome.message}; waived by {waiver.approver} until {note.expires}: {waiver.reason}"
            out.append(_replace(outcome, status=Status.WAIVED, message=message, waiver=note))
    # An expired waiver is itself a failure, even when its rule now passes: it must be renewed
    # or removed, so stale exceptions do not pile up unseen.
    for waiver in waivers:
        rule = policy.rule(waiver.rule)
        if rule is None and is_finding_rule(waiver.rule):
            # A finding no longer reported: its expired waiver still fails, as for rules.
            rule = finding_rule(waiver.rule.removeprefix("finding."))
        if waiver in used or rule is None or not waiver.is_expired(today):
            continue
        note = _note(waiver, today)
        message = f"waiver by {waiver.approver} expired on {note.expires}: renew or remove it"
        out.append(
            Outcome(
                rule_id=rule.id,
                title=rule.title,
                status=Status.FAIL,
                severity=rule.severity,
                metric=waiver.metric or rule.metric,
                op=rule.op,
                threshold=rule.threshold,
                value=None,
                message=message,
                refs=rule.refs,
                rationale=rule.rationale,
                waiver=note,
                threshold_source=rule.threshold_source,
            )
        )
    return out


def _note(waiver: Waiver, today: dt.date) -> WaiverNote:
    return WaiverNote(
        rule=waiver.rule,
        metric=waiver.metric,
        reason=waiver.reason,
        approver=waiver.approver,
        expires=waiver.expires.isoformat(),
        expired=waiver.is_expired(today),
    )


def _outcome(rule: Rule, metric: str, value: float | None, status: Status, message: str) -> Outcome:
    return Outcome(
        rule_id=rule.id,
        title=rule.title,
        status=status,
        severity=rule.severity,
        metric=metric,
        op=rule.op,
        threshold=rule.threshold,
        value=value,
        message=message,
        refs=rule.refs,
        rationale=rule.rationale,
        threshold_source=rule.threshold_source,
    )


def _replace(outcome: Outcome, **changes: object) -> Outcome:
    from dataclasses import replace

    return replace(outcome, **changes)  # type: ignore[arg-type]


def _fmt(value: float) -> str:
    return f"{value:.6g}"
