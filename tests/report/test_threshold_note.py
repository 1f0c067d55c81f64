"""Reports say when a rule's number is the pack's choice, not the regulation's (issue 19 item 4)."""

from __future__ import annotations

import json
import re

import pytest

from governance.policy.engine import check
from governance.policy.outcome import CheckReport
from governance.report.render import render
from governance.results import Results

PACK_NOTE = "threshold chosen by this pack"


@pytest.fixture
def four_fifths(results: Results) -> CheckReport:
    """The employment pack: its four-fifths rule is EEOC's number, its selection-gap rule is not."""
    report = check(results, "employment-four-fifths")
    sources = {o.rule_id: o.threshold_source.value for o in report.outcomes}
    assert sources["fair.four_fifths"] == "regulation" and sources["eeoc.selection_gap"] == "pack"
    return report


def _rows(html: str, rule_id: str) -> list[str]:
    rows = re.findall(r"<tr>\s*<td><strong class=\"rule-id\">(.*?)</tr>", html, flags=re.S)
    return [r for r in rows if r.startswith(f"{rule_id}</strong>")]


def test_html_prints_the_note_in_the_refs_cell_only_for_pack_numbers(results, four_fifths):
    html = render(results, "html", check_report=four_fifths).decode()
    (gap,) = _rows(html, "eeoc.selection_gap")
    assert PACK_NOTE in gap
    law = _rows(html, "fair.four_fifths")
    assert law and all(PACK_NOTE not in row and "EEOC 29 CFR 1607.4(D)" in row for row in law)


def test_markdown_prints_the_note_beside_the_refs(results, four_fifths):
    md = render(results, "markdown", check_report=four_fifths).decode()
    table = [
        line
        for line in md.splitlines()
        if line.startswith("| eeoc.selection\\_gap") or line.startswith("| fair.four\\_fifths")
    ]
    assert table
    for line in table:
        if line.startswith("| eeoc"):
            assert line.endswith(f"({PACK_NOTE}) |")
        else:
            assert PACK_NOTE not in line
    # The blocking list says it too, for a failing pack-chosen rule.
    eu = check(results, "eu-ai-act-high-risk")
    md = render(results, "markdown", check_report=eu).decode()
    blocking = md.split("### Failures that block release", 1)[1].split("### Waivers", 1)[0]
    assert "`fair.demographic_parity_ratio`" in blocking and "(Threshold chosen by this pack.)" in blocking


def test_json_report_carries_the_source(results, four_fifths):
    doc = json.loads(render(results, "json", check_report=four_fifths))
    sources = {o["rule"]: o["threshold_source"] for o in doc["policy"]["outcomes"]}
    assert sources["fair.four_fifths"] == "regulation" and sources["eeoc.selection_gap"] == "pack"
