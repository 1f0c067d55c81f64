"""The PDF's charts (images served from memory, nothing fetched) and the report renderer's GC pause."""

from __future__ import annotations

import gc
import io
import logging
import re
from dataclasses import replace
from typing import Any

import pytest
from markupsafe import escape

from governance.report.context import build_context
from governance.report.formats import ReportJob
from governance.report.formats import json as json_format
from governance.report.render import collector_paused, render, write_reports
from governance.results import Results

weasyprint = pytest.importorskip("weasyprint")

from governance.report.formats.pdf import CHART_SCHEME, chart_fetcher, chart_images, pdf_context, pdf_html  # noqa: E402


def _body(response: Any) -> bytes:
    """What a fetcher served, whichever WeasyPrint API it follows (dict before 67, response after)."""
    if isinstance(response, dict):
        data: bytes = response["string"]
        return data
    served: bytes = response.read()
    return served


def test_every_drawn_chart_becomes_an_image_of_its_own_svg(hostile_results: Results) -> None:
    ctx = build_context(hostile_results, draw_charts=True)
    drawn = [c for c in ctx.charts if c.svg is not None]
    assert drawn, "the fixture draws charts"
    as_images, images = pdf_context(ctx), chart_images(ctx)
    assert as_images.pdf and not ctx.pdf
    assert set(images) == {CHART_SCHEME + c.id for c in drawn}
    for before, after in zip(ctx.charts, as_images.charts, strict=True):
        if before.svg is None:
            assert after == before and before.note
            continue
        assert images[CHART_SCHEME + before.id] == before.svg.encode("utf-8")
        width = re.search(r'viewBox="0 0 (\d+) \d+"', before.svg)
        assert width is not None
        assert str(after.svg) == (
            f'<img class="chart" src="{CHART_SCHEME}{before.id}" alt="{escape(before.alt)}" '
            f'style="max-width: {width.group(1)}px">'
        )
        # The alt text is the chart's description, escaped: a hostile group name stays text.
        assert "<script" not in str(after.svg) and "<img src=x" not in str(after.svg)
    assert any("&lt;script&gt;alert(1)&lt;/script&gt;" in str(c.svg) for c in as_images.charts)
    # The context the other formats share is left as it was.
    assert all(c.svg is None or c.svg.startswith("<svg") for c in ctx.charts)


def test_pdf_html_names_the_same_images_before_the_charts_are_drawn(results: Results) -> None:
    """What lets a second process lay the PDF out while this one draws (pdf_process)."""
    job = ReportJob(results=results)
    assert pdf_html(job, draw_charts=False) == pdf_html(job, draw_charts=True)
    assert "chart:" in pdf_html(job, draw_charts=True)


def test_the_fetcher_serves_the_charts_and_refuses_every_other_url() -> None:
    fetch = chart_fetcher({"chart:a": b"<svg xmlns='http://www.w3.org/2000/svg'/>"}.get)
    assert _body(fetch("chart:a")) == b"<svg xmlns='http://www.w3.org/2000/svg'/>"
    for url in ("chart:b", "file:///etc/hostname", "http://127.0.0.1:9/x.svg", "data:image/svg+xml,<svg/>"):
        with pytest.raises(ValueError, match="fetches nothing"):
            fetch(url)


def test_pdf_draws_every_chart_and_fetches_nothing_else(
    results: Results, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    pdfplumber = pytest.importorskip("pdfplumber")
    # A template that asks for an outside image: refused (logged), and the PDF still renders.
    from governance.report.templating import package_templates

    template = (package_templates() / "report.html.j2").read_text(encoding="utf-8")
    (tmp_path / "report.html.j2").write_text(
        template.replace("<body>", '<body><img src="file:///etc/hostname" alt="outside">', 1)
    )
    with caplog.at_level(logging.ERROR, logger="weasyprint"):
        pdf = render(results, "pdf", template_dir=tmp_path)
    failed = [r.getMessage() for r in caplog.records if "Failed to load image" in r.getMessage()]
    assert len(failed) == 1 and "file:///etc/hostname" in failed[0], failed
    with pdfplumber.open(io.BytesIO(pdf)) as document:
        text = " ".join(page.extract_text() or "" for page in document.pages)
    ctx = build_context(results, draw_charts=True)
    # Every chart's words are in the PDF: the axis labels of the confusion matrix, for one.
    assert "predicted class" in text and "true class" in text
    assert len(chart_images(ctx)) == sum(c.svg is not None for c in ctx.charts) > 5


def test_reports_render_with_the_collector_paused_and_restore_it(
    results: Results, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []
    original = json_format.render_json

    def spy(job: ReportJob) -> bytes:
        seen.append(gc.isenabled())
        return original(job)

    monkeypatch.setattr(json_format, "render_json", spy)
    assert gc.isenabled()
    write_reports(results, tmp_path, formats=("json",))
    render(results, "json")
    assert seen == [False, False]
    assert gc.isenabled()


def test_collector_paused_keeps_a_disabled_collector_disabled_and_survives_errors() -> None:
    gc.disable()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_pdf_context_keeps_ids_breakable_with_zero_width_spaces(results: Results) -> None:
    from governance.report.formats._template import render_template
    from governance.report.formats.html import TEMPLATE

    ctx = replace(build_context(results, draw_charts=False), pdf=True)
    html = render_template("html", TEMPLATE, ctx, None)
    assert "<wbr>" not in html
    assert "performance.\u200baccuracy" in html


def test_the_pdf_does_not_depend_on_the_second_it_is_written(
    results: Results, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without libharfbuzz-subset WeasyPrint subsets the fonts with fontTools, which dates each
    embedded font with the clock; the PDF must be the same bytes an hour later (a second process
    laying it out, a re-render to check a signed folder), dated by the report's own time."""
    import datetime as dt
    import time

    import weasyprint.pdf.fonts as weasyprint_fonts
    from fontTools.misc import timeTools

    from governance.report.formats import _font_subset, get_format

    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    # WeasyPrint's own fontTools path, as where neither uharfbuzz nor the system library is installed.
    monkeypatch.setattr(_font_subset, "install", lambda: False)
    own = getattr(weasyprint_fonts.Font.subset, "__wrapped__", weasyprint_fonts.Font.subset)
    monkeypatch.setattr(weasyprint_fonts.Font, "subset", own)
    monkeypatch.setattr(weasyprint_fonts, "harfbuzz_subset", None)
    subset = weasyprint_fonts.Font._fonttools_subset
    calls: list[int] = []

    def counted(self: Any, *args: Any) -> None:
        calls.append(1)
        subset(self, *args)

    monkeypatch.setattr(weasyprint_fonts.Font, "_fonttools_subset", counted)

    class Clock:  # the time module, an hour later at every call
        def __init__(self) -> None:
            self.now = time.time()

        def __getattr__(self, name: str) -> Any:
            return getattr(time, name)

        def time(self) -> float:
            self.now += 3600
            return self.now

    monkeypatch.setattr(timeTools, "time", Clock())
    job = ReportJob(results=results, now=dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC))
    first = get_format("pdf").render(job)
    assert calls, "the fonts went through fontTools"
    assert get_format("pdf").render(job) == first
    assert "SOURCE_DATE_EPOCH" not in __import__("os").environ  # put back
