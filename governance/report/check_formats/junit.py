"""JUnit XML: one testcase per rule outcome, so CI systems show each rule as a test."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from governance.policy.outcome import CheckReport, Status
from governance.report.check_formats._common import expectation, refs_text, value_text, waiver_text
from governance.report.escape import xml_text


def _attrs(**values: str) -> dict[str, str]:
    # Every attribute and text value passes xml_text: ElementTree escapes markup characters but
    # writes characters XML 1.0 forbids (a control character in a policy title) as they are.
    return {key: xml_text(value) for key, value in values.items()}


def render(report: CheckReport) -> str:
    failures = sum(1 for o in report.outcomes if o.status is not Status.ERROR and o.is_red(report.fail_on))
    errors = sum(1 for o in report.outcomes if o.status is Status.ERROR)
    suite = ET.Element(
        "testsuite",
        _attrs(
            name=f"governance policy {report.policy_name} {report.policy_version}",
            tests=str(len(report.outcomes)),
            failures=str(failures),
            errors=str(errors),
            skipped=str(report.counts.get("SKIPPED", 0)),
        ),
    )
    props = ET.SubElement(suite, "properties")
    for name, value in (
        ("policy.source", report.policy_source),
        ("policy.sha256", report.policy_sha256),
        ("results", report.results_source),
        ("fail_on", report.fail_on.value),
        ("verdict", "passed" if report.passed else "failed"),
    ):
        ET.SubElement(props, "property", _attrs(name=name, value=value))

    for outcome in report.outcomes:
        case = ET.SubElement(
            suite,
            "testcase",
            _attrs(classname=f"policy.{report.policy_name}", name=f"{outcome.rule_id} [{outcome.metric}]"),
        )
        detail = xml_text(
            "\n".join(
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
        )
        if outcome.status is Status.ERROR:
            ET.SubElement(
                case, "error", _attrs(message=outcome.message, type=outcome.severity.value)
            ).text = detail
        elif outcome.is_red(report.fail_on):
            ET.SubElement(
                case, "failure", _attrs(message=outcome.message, type=outcome.severity.value)
            ).text = detail
        elif outcome.status is Status.SKIPPED:
            ET.SubElement(case, "skipped", _attrs(message=outcome.message))
        else:
            ET.SubElement(case, "system-out").text = detail
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
