"""JUnit XML: one testcase per rule outcome, so CI systems show each rule as a test."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from governance.policy.outcome import CheckReport, Status
from governance.report.check_formats._common import expectation, refs_text, value_text, waiver_text


def render(report: CheckReport) -> str:
    failures = sum(1 for o in report.outcomes if o.status is not Status.ERROR and o.is_red(report.fail_on))
    errors = sum(1 for o in report.outcomes if o.status is Status.ERROR)
    suite = ET.Element(
        "testsuite",
        {
            "name": f"governance policy {report.policy_name} {report.policy_version}",
            "tests": str(len(report.outcomes)),
            "failures": str(failures),
            "errors": str(errors),
            "skipped": str(report.counts.get("SKIPPED", 0)),
        },
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("policy.source", report.policy_source),
        ("policy.sha256", report.policy_sha256),
        ("results", report.results_source),
        ("fail_on", report.fail_on.value),
        ("verdict", "passed" if report.passed else "failed"),
    ):
        ET.SubElement(props, "property", {"name": name, "value": value})

    for outcome in report.outcomes:
        case = ET.SubElement(
            suite,
            "testcase",
            {"classname": f"policy.{report.policy_name}", "name": f"{outcome.rule_id} [{outcome.metric}]"},
        )
        detail = "\n".join(
            line
            for line in (
                f"{outcome.title}",
                f"status {outcome.status.value}, severity {outcome.severity.value}",
                f"value {value_text(outcome)}, expected {expectation(outcome)}",
                outcome.message,
                waiver_text(outcome),
                f"refs: {refs_text(outcome)}" if outcome.refs or outcome.threshold_note else "",
            )
            if line
        )
        if outcome.status is Status.ERROR:
            ET.SubElement(
                case, "error", {"message": outcome.message, "type": outcome.severity.value}
            ).text = detail
        elif outcome.is_red(report.fail_on):
            ET.SubElement(
                case, "failure", {"message": outcome.message, "type": outcome.severity.value}
            ).text = detail
        elif outcome.status is Status.SKIPPED:
            ET.SubElement(case, "skipped", {"message": outcome.message})
        else:
            ET.SubElement(case, "system-out").text = detail
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
