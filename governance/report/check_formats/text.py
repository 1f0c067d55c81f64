"""The default format: a readable table for a terminal or a CI log."""

from __future__ import annotations

from governance.policy.outcome import CheckReport
from governance.report.check_formats._common import expectation, refs_text, value_text, waiver_text
from governance.report.escape import plain_text


def render(report: CheckReport) -> str:
    header = ("STATUS", "SEVERITY", "RULE", "METRIC", "VALUE", "EXPECTED")
    rows = [
        (
            o.status.value,
            o.severity.value,
            plain_text(o.rule_id),
            plain_text(o.metric),
            value_text(o),
            expectation(o),
        )
        for o in report.outcomes
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()

    name, version, source = (
        plain_text(v) for v in (report.policy_name, report.policy_version, report.policy_source)
    )
    out = [f"Policy {name} {version} ({source})", ""]
    out += [line(header), line(tuple("-" * w for w in widths))]
    for outcome, row in zip(report.outcomes, rows):
        out.append(line(row))
        if outcome.status.value not in {"PASS"}:
            out.append(f"    {plain_text(outcome.message)}")
        if outcome.waiver is not None:
            out.append(f"    {plain_text(waiver_text(outcome))}")
        if outcome.is_red(report.fail_on) and (outcome.refs or outcome.threshold_note):
            out.append(f"    refs: {plain_text(refs_text(outcome))}")
    for unused in report.unused_waivers:
        out.append(f"note: waiver for unknown rule {plain_text(unused)} waives nothing")
    out += ["", plain_text(report.summary_line())]
    return "\n".join(out) + "\n"
