"""The default format: a readable table for a terminal or a CI log."""

from __future__ import annotations

from governance.policy.outcome import CheckReport
from governance.report.check_formats._common import expectation, refs_text, value_text, waiver_text


def render(report: CheckReport) -> str:
    header = ("STATUS", "SEVERITY", "RULE", "METRIC", "VALUE", "EXPECTED")
    rows = [
        (o.status.value, o.severity.value, o.rule_id, o.metric, value_text(o), expectation(o))
        for o in report.outcomes
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()

    out = [f"Policy {report.policy_name} {report.policy_version} ({report.policy_source})", ""]
    out += [line(header), line(tuple("-" * w for w in widths))]
    for outcome, row in zip(report.outcomes, rows):
        out.append(line(row))
        if outcome.status.value not in {"PASS"}:
            out.append(f"    {outcome.message}")
        if outcome.waiver is not None:
            out.append(f"    {waiver_text(outcome)}")
        if outcome.is_red(report.fail_on) and (outcome.refs or outcome.threshold_note):
            out.append(f"    refs: {refs_text(outcome)}")
    for unused in report.unused_waivers:
        out.append(f"note: waiver for unknown rule {unused} waives nothing")
    out += ["", report.summary_line()]
    return "\n".join(out) + "\n"
