"""The PDF laid out by a second process: the same bytes as the one-process path, or that path runs."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest

from governance.report import pdf_process
from governance.report._fork import cpus
from governance.report.formats import ReportJob, get_format
from governance.report.render import _render_all
from governance.results import Results

pytest.importorskip("weasyprint")

NOW = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC)
FORMATS = ("html", "markdown", "json", "pdf")


@pytest.fixture
def child_pdfs(monkeypatch: pytest.MonkeyPatch) -> list[bytes | None]:
    """What each PdfProcess.pdf() returned (None: the parent rendered the PDF itself)."""
    if cpus() < 2:
        pytest.skip("one CPU: the PDF is laid out in this process")
    seen: list[bytes | None] = []
    original = pdf_process.PdfProcess.pdf

    def spy(self: pdf_process.PdfProcess) -> bytes | None:
        got = original(self)
        seen.append(got)
        return got

    monkeypatch.setattr(pdf_process.PdfProcess, "pdf", spy)
    return seen


def _one_process(results: Results, **job: Any) -> dict[str, bytes]:
    one = ReportJob(results=results, now=NOW, **job)
    return {name: get_format(name).render(one) for name in FORMATS}


def test_the_second_process_lays_out_the_same_pdf(results: Results, child_pdfs: list[bytes | None]) -> None:
    both = _render_all(ReportJob(results=results, now=NOW), [get_format(f) for f in FORMATS])
    assert list(both) == list(FORMATS)
    assert child_pdfs and child_pdfs[0] is not None, "the child's PDF was not used"
    assert both == _one_process(results)


def test_a_chart_that_fails_to_draw_makes_this_process_render_the_pdf(
    results: Results, child_pdfs: list[bytes | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    from governance.report import charts

    real = charts._draw

    def broken(spec: Any, chart_id: str) -> str:
        if chart_id == "confusion_matrix":
            raise RuntimeError("no ink")
        return real(spec, chart_id)

    # Only the parent draws; the child, which assumed every chart draws, laid out another page.
    monkeypatch.setattr(charts, "_draw", broken)
    both = _render_all(ReportJob(results=results, now=NOW), [get_format(f) for f in FORMATS])
    assert child_pdfs == [None]
    assert both == _one_process(results)
    assert b"Could not be drawn (RuntimeError: no ink)" in both["html"]


def test_a_child_that_dies_makes_this_process_render_the_pdf(
    results: Results, child_pdfs: list[bytes | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    def die(*args: object) -> bytes:
        os._exit(3)

    # Replaced before the fork, so in the child only: this process's render_pdf has its own.
    monkeypatch.setattr(pdf_process, "html_to_pdf", die)
    both = _render_all(ReportJob(results=results, now=NOW), [get_format("pdf")])
    assert child_pdfs == [None]
    assert both == {"pdf": _one_process(results)["pdf"]}


def test_a_template_without_charts_neither_hangs_nor_changes_the_pdf(
    results: Results, child_pdfs: list[bytes | None], tmp_path: Path
) -> None:
    # The child never asks for the charts the parent sends (a few hundred kB).
    (tmp_path / "report.html.j2").write_text("<html><body><h1>{{ title }}</h1></body></html>")
    job = ReportJob(results=results, now=NOW, template_dir=tmp_path)
    both = _render_all(job, [get_format("html"), get_format("pdf")])
    assert child_pdfs and child_pdfs[0] is not None
    assert both == {
        name: get_format(name).render(ReportJob(results=results, now=NOW, template_dir=tmp_path))
        for name in ("html", "pdf")
    }


def test_the_child_refuses_other_urls_without_waiting_for_the_charts() -> None:
    class NoPipe:
        def poll(self, timeout: float) -> bool:
            raise AssertionError("waited for the parent")

    source = pdf_process._ChartsFromParent(NoPipe())  # type: ignore[arg-type]
    assert source("file:///etc/hostname") is None
    assert source("http://example.org/x.svg") is None


def test_a_chart_of_another_size_than_laid_out_makes_this_process_render_the_pdf(
    results: Results, child_pdfs: list[bytes | None], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = pdf_process.chart_sizes

    def taller(ctx: Any) -> dict[str, tuple[float, float]]:
        return {url: (width, height * 2) for url, (width, height) in real(ctx).items()}

    # The child lays the page out with blanks twice as tall as the charts the parent draws.
    monkeypatch.setattr(pdf_process, "chart_sizes", taller)
    both = _render_all(ReportJob(results=results, now=NOW), [get_format("pdf")])
    assert child_pdfs == [None]
    assert both == {"pdf": _one_process(results)["pdf"]}


def test_the_child_lays_out_before_the_charts_come(results: Results) -> None:
    """Blanks of the charts' sizes during layout; each chart swapped in when its page is drawn."""
    from governance.report.formats.pdf import chart_images, chart_sizes, html_to_pdf, pdf_html

    job = ReportJob(results=results, now=NOW)
    html = pdf_html(job, draw_charts=False)
    sizes = chart_sizes(job.context(draw_charts=False))
    drawn = chart_images(job.context(draw_charts=True))
    assert sizes and set(sizes) == set(drawn)
    asked: list[str] = []

    def late(url: str) -> bytes | None:
        asked.append(url)
        return drawn.get(url)

    pdf = html_to_pdf(html, late, sizes=sizes, created=NOW)
    assert sorted(asked) == sorted(drawn)  # each once, when drawn
    assert pdf == html_to_pdf(html, drawn.get, created=NOW)
