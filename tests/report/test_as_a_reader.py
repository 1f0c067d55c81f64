"""The reports as a person opens them: HTML in headless Chromium, the PDF as pages and as text.

Artefacts (screenshot, PDF pages) are saved under test-artifacts/report/ for a human to look at.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from governance.report.render import write_reports
from governance.results import Results

from ._cdp import Browser
from ._tools import ensure_tools
from .conftest import HOSTILE, make_check_report
from .test_render import EXPECTED_CHARTS, SECTION_HEADINGS

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts" / "report"

# What the page reports about itself: every chart's size, the body's overflow, the headings.
PAGE_PROBE = """JSON.stringify({
  charts: [...document.querySelectorAll('figure.chart')].map(f => {
    const s = f.querySelector('svg'); const r = s ? s.getBoundingClientRect() : {width: 0, height: 0};
    return {id: f.id, width: r.width, height: r.height, texts: s ? s.querySelectorAll('text').length : 0};
  }),
  svgs: document.querySelectorAll('svg').length,
  scrollWidth: document.documentElement.scrollWidth,
  clientWidth: document.documentElement.clientWidth,
  headings: [...document.querySelectorAll('h2, h3')].map(h => h.textContent.trim()),
  verdict: document.querySelector('.verdict-label').textContent,
  firstScreen: [...document.querySelectorAll('h1, .verdict-label, #blocking')]
      .map(e => [e.textContent.trim(), e.getBoundingClientRect().top]),
})"""


@pytest.fixture(scope="module")
def tools() -> dict[str, str]:
    return ensure_tools()


@pytest.fixture(scope="module")
def browser(tools: dict[str, str]) -> Iterator[Browser]:
    b = Browser(tools["chromium"])
    try:
        yield b
    finally:
        b.close()


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from .conftest import RESULTS_FILE

    results = Results.from_dict(json.loads(RESULTS_FILE.read_text()))
    out = tmp_path_factory.mktemp("reports")
    return write_reports(results, out, check_report=make_check_report(), formats=("html", "pdf"))


def test_html_in_chromium_has_no_errors_no_requests_and_draws_every_chart(
    browser: Browser, reports: dict[str, Path]
) -> None:
    html = reports["html"]
    visit = browser.visit(html.as_uri(), PAGE_PROBE, screenshot=ARTIFACTS / "report-html.png")
    assert visit.console_errors == []
    assert visit.requests == [html.as_uri()], "the report must fetch nothing but itself"
    page = json.loads(visit.evaluated)
    drawn = {c["id"].removeprefix("chart-"): c for c in page["charts"]}
    assert set(drawn) == EXPECTED_CHARTS
    for name, chart in drawn.items():
        assert chart["width"] > 200 and chart["height"] > 80, (name, chart)
        assert chart["texts"] > 3, f"{name}: chart text (labels, ticks) missing"
    assert page["scrollWidth"] <= page["clientWidth"], "the page scrolls sideways"
    for want in SECTION_HEADINGS:
        assert any(h.endswith(want) or want in h for h in page["headings"]), want
    # The first screen (2000 px) holds the model name, the verdict and the blocking failures.
    first = {text.split("\n")[0]: top for text, top in page["firstScreen"]}
    assert page["verdict"] == "FAILED"
    assert all(top < 1000 for top in first.values()), first
    assert (ARTIFACTS / "report-html.png").stat().st_size > 20_000


def test_hostile_report_runs_no_script(browser: Browser, hostile_results: Results, tmp_path: Path) -> None:
    paths = write_reports(hostile_results, tmp_path, check_report=make_check_report(), formats=("html",))
    probe = "JSON.stringify({scripts: document.scripts.length, imgs: document.images.length, title: document.title})"
    visit = browser.visit(paths["html"].as_uri(), probe, screenshot=ARTIFACTS / "report-hostile.png")
    page = json.loads(visit.evaluated)
    assert page == {"scripts": 0, "imgs": 0, "title": f"Responsible-AI audit report: {HOSTILE}"}
    assert visit.console_errors == []
    assert visit.requests == [paths["html"].as_uri()]


def test_pdf_pages_render_and_text_holds_every_heading_and_running_header(
    tools: dict[str, str], reports: dict[str, Path]
) -> None:
    pdf = reports["pdf"]
    assert pdf.read_bytes().startswith(b"%PDF")
    pages_dir = ARTIFACTS / "pdf-pages"
    pages_dir.mkdir(parents=True, exist_ok=True)
    for old in pages_dir.glob("page-*.png"):
        old.unlink()
    subprocess.run(
        [tools["pdftoppm"], "-png", "-r", "60", str(pdf), str(pages_dir / "page")], check=True, timeout=120
    )
    pages = sorted(pages_dir.glob("page-*.png"))
    assert len(pages) >= 5
    assert all(p.stat().st_size > 5_000 for p in pages)
    text = subprocess.run(
        [tools["pdftotext"], "-layout", str(pdf), "-"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    flat = re.sub(r"\s+", " ", text)
    for want in SECTION_HEADINGS:
        assert want in flat, f"PDF text lacks heading {want!r}"
    page_texts = text.split("\f")
    n = len([p for p in page_texts if p.strip()])
    assert n == len(pages)
    for i, page in enumerate(page_texts[:n], start=1):
        assert "german-credit" in page, f"page {i} lacks the model name in its header"
        assert f"Page {i} of {n}" in page, f"page {i} lacks its page number"
        assert re.search(r"Run [0-9a-f]{12}", page), f"page {i} lacks the run id"


def test_pdf_of_hostile_names_shows_them_as_text(
    tools: dict[str, str], hostile_results: Results, tmp_path: Path
) -> None:
    paths = write_reports(hostile_results, tmp_path, formats=("pdf",))
    text = subprocess.run(
        [tools["pdftotext"], str(paths["pdf"]), "-"], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    assert HOSTILE in text  # drawn literally: it was escaped, never parsed as markup
