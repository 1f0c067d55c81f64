"""Markdown: a table fit for a CI step summary or a pull-request comment."""

from __future__ import annotations

from governance.policy.outcome import CheckReport, Status
from governance.report.check_formats._common import expectation, refs_text, value_text
from governance.report.escape import md_code, md_text

_ICON = {
    Status.PASS: "✅ PASS",
    Status.FAIL: "❌ FAIL",
    Status.WARN: "⚠️ WARN",
    Status.WAIVED: "📝 WAIVED",
    Status.SKIPPED: "⏭️ SKIPPED",
    Status.ERROR: "💥 ERROR",
}


def _cell(text: str) -> str:
    # Every user-controlled string (titles, ids, refs, waiver text, paths) goes through here.
    return md_text(text)


def render(report: CheckReport) -> str:
    verdict = "✅ passed" if report.passed else "❌ failed"
    counts = ", ".join(f"{n} {s}" for s, n in report.counts.items() if n) or "no rules"
    out = [
        f"## Policy {md_code(report.policy_name)} {_cell(report.policy_version)}: {verdict}",
        "",
        f"{counts} · fail on: {report.fail_on.value} · results: {md_code(report.results_source)}",
        "",
        "| Status | Severity | Rule | Metric | Value | Expected | Refs |",
        "| --- | --- | --- | --- | ---: | --- | --- |",
    ]
    for o in report.outcomes:
        out.append(
            f"| {_ICON[o.status]} | {o.severity.value} | {_cell(o.title)} ({md_code(o.rule_id)}) | {md_code(o.metric)} "
            f"| {value_text(o)} | {_cell(expectation(o))} | {_cell(refs_text(o))} |"
        )
    waived = report.waived
    if waived:
        out += [
            "",
            "### Waivers",
            "",
            "| Rule | Metric | Approver | Expires | State | Reason |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for o in waived:
            w = o.waiver
            assert w is not None
            state = "expired" if w.expired else "valid"
            out.append(
                f"| {md_code(o.rule_id)} | {md_code(o.metric)} | {_cell(w.approver)} | {w.expires} | {state} | {_cell(w.reason)} |"
            )
    problems = [o for o in report.outcomes if o.status not in {Status.PASS, Status.WAIVED}]
    if problems:
        out += ["", "### Details", ""]
        out += [f"- {md_code(o.rule_id)} ({_cell(o.metric)}): {_cell(o.message)}" for o in problems]
    for unused in report.unused_waivers:
        out.append(f"\n> Waiver for unknown rule {_cell(unused)} waives nothing.")
    return "\n".join(out) + "\n"
