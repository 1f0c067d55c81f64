"""The PDF a reviewer files: no text drawn over other text, on any page (issue 19, item 1).

The report is rendered from the German Credit fixture and the eu-ai-act-high-risk pack run by
the real engine, so the "Failures that block release" table holds the demo's long IDs
(``fair.demographic_parity_ratio``, ``fairness.sex*age_group.…``), plus outcomes with every
status badge, a waiver and an ID with no dot to wrap at.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from governance.policy.engine import check
from governance.policy.outcome import CheckReport, Outcome, Status
from governance.policy.waivers import Waiver
from governance.report.render import render
from governance.results import Results, Severity

from ._pdf_boxes import overlapping_glyphs
from .conftest import RESULTS_FILE

pytest.importorskip("weasyprint")
pytest.importorskip("pdfplumber")

LONG_ID = "org_wide_selection_rate_ratio_for_every_protected_characteristic_and_intersection"


def demo_like_check(results: Results) -> CheckReport:
    waiver = Waiver(
        "fair.equalized_odds", "Remediation plan RP-12 in progress", "Dana Approver", dt.date(2099, 1, 1)
    )
    report = check(results, "eu-ai-act-high-risk", [waiver], today=dt.date(2025, 1, 10))
    extra = [
        Outcome(
            LONG_ID,
            "A rule whose ID has no dot to wrap at",
            status,
            Severity.BLOCKING,
            "fairness.sex*age_group*foreign_worker.demographic_parity_ratio",
            ">=",
            0.8,
            0.5,
            "0.5 is not >= 0.8",
            ("EEOC 29 CFR 1607.4(D)",),
        )
        for status in (Status.FAIL, Status.SKIPPED, Status.ERROR)
    ]
    return dataclasses.replace(report, outcomes=(*report.outcomes, *extra))


@pytest.fixture(scope="module")
def demo_like_pdf() -> bytes:
    results = Results.from_dict(json.loads(RESULTS_FILE.read_text()), source=str(RESULTS_FILE))
    return render(results, "pdf", check_report=demo_like_check(results))


def test_the_check_holds_the_long_ids_the_demo_shows() -> None:
    results = Results.from_dict(json.loads(RESULTS_FILE.read_text()))
    report = demo_like_check(results)
    failing = {o.rule_id for o in report.red}
    assert {"fair.demographic_parity_ratio", LONG_ID} <= failing
    assert {o.status for o in report.outcomes} == set(Status)


def test_no_two_text_boxes_overlap_on_any_page(demo_like_pdf: bytes) -> None:
    overlaps = overlapping_glyphs(demo_like_pdf)
    assert not overlaps, "\n".join(str(o) for o in overlaps[:20])


def test_long_ids_wrap_at_dots_in_the_blocking_table(demo_like_pdf: bytes) -> None:
    import io

    import pdfplumber

    with pdfplumber.open(io.BytesIO(demo_like_pdf)) as document:
        lines = document.pages[0].extract_text().splitlines()
    # The rule ID breaks after a separator, never inside a word.
    rule_id = "fair.demographic_parity_ratio"
    pieces = [line.split()[0] for line in lines if line.startswith("fair.demo")]
    allowed = {"fair.demographic_", "fair.demographic_parity_", rule_id}
    assert pieces and set(pieces) <= allowed, pieces
    # Item 4: the pack's number is marked as such beside the refs in print too.
    assert "threshold chosen by" in " ".join(lines)
    assert not any("demographicF" in line or "FAILarity" in line for line in lines)


def test_the_detector_sees_text_drawn_over_text() -> None:
    """The check above can fail: a word positioned over another is reported, the same words apart are not."""
    import weasyprint

    def pdf(style: str) -> bytes:
        html = (
            "<html><body><p style='font-size:12pt'>fair.demographic_parity_ratio"
            f"<span style='{style}'>FAIL</span></p></body></html>"
        )
        out: bytes = weasyprint.HTML(string=html).write_pdf()
        return out

    assert overlapping_glyphs(pdf("position: relative; left: -120pt"))
    assert not overlapping_glyphs(pdf("margin-left: 12pt"))
