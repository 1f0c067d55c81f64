"""The PDF report: the HTML report laid out for print by WeasyPrint (running headers, page numbers)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from markupsafe import Markup

from governance.errors import GovernanceError
from governance.report.charts import Chart
from governance.report.context import ReportContext
from governance.report.formats import ReportJob
from governance.report.formats._css import inline_root_properties
from governance.report.formats._template import render_template
from governance.report.formats.html import TEMPLATE

__all__ = [
    "CHART_SCHEME",
    "ERR_NO_WEASYPRINT",
    "chart_fetcher",
    "chart_images",
    "chart_sizes",
    "html_to_pdf",
    "load_weasyprint",
    "pdf_context",
    "pdf_html",
    "render_pdf",
]

ERR_NO_WEASYPRINT = (
    "PDF reports need WeasyPrint and the Pango library: pip install 'governance[pdf]' "
    "(Debian/Ubuntu: apt-get install libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0); "
    "import failed: {error}"
)
#: URL scheme of a chart in the PDF's HTML: ``chart:<id>``, served from memory by chart_fetcher.
CHART_SCHEME = "chart:"


class PdfUnavailable(GovernanceError):
    """WeasyPrint (or its system libraries) cannot be loaded."""


def render_pdf(job: ReportJob) -> bytes:
    html = pdf_html(job, draw_charts=True)
    return html_to_pdf(html, chart_images(job.context(draw_charts=True)).get, created=job.now)


def pdf_html(job: ReportJob, *, draw_charts: bool) -> str:
    """The HTML WeasyPrint lays out: the report for print, each chart an image (see :func:`pdf_context`).

    The same text whether or not the charts are drawn yet (``draw_charts``), as long as every
    chart that has something to draw is drawn without error; a process can lay the page out
    while another draws (:mod:`governance.report.pdf_process`).
    """
    ctx = pdf_context(job.context(draw_charts=draw_charts))
    return inline_root_properties(render_template("html", TEMPLATE, ctx, job.template_dir))


def pdf_context(ctx: ReportContext) -> ReportContext:
    """``ctx`` laid out for print, each chart with something to draw as ``<img src="chart:ID">``.

    The HTML report inlines its SVG (one file, readable by screen readers). WeasyPrint would
    compute CSS styles for every element of an inline SVG (a thousand and more in the demo
    report) as for the page's own, then parse the SVG again to draw it; as an image, it parses
    it once. The images are served from memory (:func:`chart_images`, :func:`chart_fetcher`).
    """

    def as_image(chart: Chart) -> Chart:
        if chart.note is not None:
            return chart
        width = Markup(' style="max-width: {}px"').format(round(chart.width)) if chart.width else ""
        tag = Markup('<img class="chart" src="{}" alt="{}"{}>').format(
            CHART_SCHEME + chart.id, chart.alt, width
        )
        return replace(chart, svg=tag)

    audits = tuple(replace(a, charts=tuple(as_image(c) for c in a.charts)) for a in ctx.audits)
    return replace(ctx, audits=audits, pdf=True)


def chart_images(ctx: ReportContext) -> dict[str, bytes]:
    """The SVG of each drawn chart of ``ctx``, by the URL :func:`pdf_context` gives its image."""
    return {CHART_SCHEME + c.id: c.svg.encode("utf-8") for c in ctx.charts if c.svg is not None}


def html_to_pdf(
    html: str,
    images: Callable[[str], bytes | None],
    *,
    sizes: Mapping[str, tuple[float, float]] | None = None,
    created: datetime | None = None,
) -> bytes:
    """Lay out ``html`` with WeasyPrint; ``images`` gives the SVG of a ``chart:ID`` URL (None: refused).

    ``sizes`` (URL → width and height in px, :func:`chart_sizes`) lets the layout go on before
    those charts exist: ``images`` is asked for one only when its page is drawn (see
    :mod:`._late_images`), and a chart of another size raises
    :class:`~governance.report.formats._late_images.LateImageMismatch`.
    ``created`` (the report's generation time) dates the embedded fonts, so that the bytes do
    not depend on the second they are written (:mod:`._font_dates`).
    """
    weasyprint = load_weasyprint()
    # WeasyPrint logs a warning for every SVG or CSS property it does not support; the PDF is
    # right regardless, and a reviewer's terminal should not fill up.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    from governance.report.formats import _font_subset, _svg_text
    from governance.report.formats._font_dates import fixed_font_dates
    from governance.report.formats._late_images import late_images

    _svg_text.install()
    _font_subset.install()
    # No base_url, and a fetcher that serves the report's own charts and refuses everything
    # else: the report is self-contained, so any other fetch would be a template bug or an
    # injected URL, and a PDF must not phone home.
    if not sizes:
        with fixed_font_dates(created):
            pdf: bytes = weasyprint.HTML(string=html, url_fetcher=chart_fetcher(images)).write_pdf()
        return pdf
    with fixed_font_dates(created), late_images(sizes, images) as layout_source:
        fetcher = chart_fetcher(layout_source or images)
        late: bytes = weasyprint.HTML(string=html, url_fetcher=fetcher).write_pdf()
    return late


def load_weasyprint() -> Any:
    """The ``weasyprint`` module, imported with its C libraries found from one ``ldconfig``
    listing (:mod:`._libraries`). Raises :class:`PdfUnavailable` where it cannot be loaded."""
    import sys

    loaded = sys.modules.get("weasyprint")
    if loaded is not None:
        return loaded
    from governance.report.formats._libraries import one_library_listing

    try:
        with one_library_listing():
            import weasyprint
    except (ImportError, OSError) as exc:  # OSError: pango missing, raised by cffi at import
        raise PdfUnavailable(ERR_NO_WEASYPRINT.format(error=exc)) from exc
    return weasyprint


def chart_sizes(ctx: ReportContext) -> dict[str, tuple[float, float]]:
    """The size in px of each chart of ``ctx`` with something to draw, by its image's URL; known before drawing."""
    return {
        CHART_SCHEME + c.id: (c.width, c.height)
        for c in ctx.charts
        if c.note is None and c.width is not None and c.height is not None
    }


def chart_fetcher(images: Callable[[str], bytes | None]) -> Callable[[str], Any]:
    """A WeasyPrint URL fetcher that serves the SVG ``images`` gives for a URL and refuses every other URL.

    A refused image is left out of the PDF with an error in WeasyPrint's log (its alt text shows).
    """
    from weasyprint import urls

    def svg_for(url: str) -> bytes:
        svg = images(url)
        if svg is None:
            raise ValueError(f"the PDF report fetches nothing; refused {url[:200]!r}")
        return svg

    response = getattr(urls, "URLFetcherResponse", None)
    if response is None:  # older WeasyPrint: a fetcher is a function that returns a dict

        def fetch_dict(url: str, *args: object, **kwargs: object) -> dict[str, object]:
            return {"string": svg_for(url), "mime_type": "image/svg+xml", "redirected_url": url}

        return fetch_dict

    served: Callable[..., Any] = response

    class ChartFetcher(urls.URLFetcher):  # type: ignore[misc,name-defined,unused-ignore]
        def fetch(self, url: str, headers: object = None) -> Any:
            return served(url, svg_for(url), headers={"Content-Type": "image/svg+xml"})

    return ChartFetcher()  # type: ignore[no-any-return,unused-ignore]
