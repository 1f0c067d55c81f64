"""The PDF report: the HTML report laid out for print by WeasyPrint (running headers, page numbers)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from markupsafe import Markup

from governance.errors import GovernanceError
from governance.report.charts import Chart
from governance.report.context import ReportContext
from governance.report.formats import ReportJob
from governance.report.formats._template import render_template
from governance.report.formats.html import TEMPLATE

__all__ = ["CHART_SCHEME", "ERR_NO_WEASYPRINT", "chart_fetcher", "charts_as_images", "render_pdf"]

ERR_NO_WEASYPRINT = (
    "PDF reports need WeasyPrint and the Pango library: pip install 'governance[pdf]' "
    "(Debian/Ubuntu: apt-get install libpango-1.0-0 libpangoft2-1.0-0); import failed: {error}"
)
#: URL scheme of a chart in the PDF's HTML: ``chart:<id>``, served from memory by chart_fetcher.
CHART_SCHEME = "chart:"
_VIEWBOX_WIDTH = re.compile(r'\bviewBox="[-\d.]+ [-\d.]+ ([\d.]+) [\d.]+"')


class PdfUnavailable(GovernanceError):
    """WeasyPrint (or its system libraries) cannot be loaded."""


def render_pdf(job: ReportJob) -> bytes:
    try:
        import weasyprint
    except (ImportError, OSError) as exc:  # OSError: pango missing, raised by cffi at import
        raise PdfUnavailable(ERR_NO_WEASYPRINT.format(error=exc)) from exc
    # WeasyPrint logs a warning for every SVG or CSS property it does not support; the PDF is
    # right regardless, and a reviewer's terminal should not fill up.
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    ctx, images = charts_as_images(replace(job.context(draw_charts=True), pdf=True))
    html = render_template("html", TEMPLATE, ctx, job.template_dir)
    # No base_url, and a fetcher that serves the report's own charts and refuses everything
    # else: the report is self-contained, so any other fetch would be a template bug or an
    # injected URL, and a PDF must not phone home.
    document = weasyprint.HTML(string=html, url_fetcher=chart_fetcher(images))
    pdf: bytes = document.write_pdf()
    return pdf


def charts_as_images(ctx: ReportContext) -> tuple[ReportContext, dict[str, bytes]]:
    """``ctx`` with each drawn chart as an ``<img src="chart:ID">``, and the SVG each one names.

    The HTML report inlines its SVG (one file, readable by screen readers). WeasyPrint would
    compute CSS styles for every element of an inline SVG (a thousand in the demo report) as
    for the page's own, then parse the SVG again to draw it; as an image, it parses it once.
    """
    images: dict[str, bytes] = {}

    def as_image(chart: Chart) -> Chart:
        if chart.svg is None:
            return chart
        url = CHART_SCHEME + chart.id
        images[url] = chart.svg.encode("utf-8")
        found = _VIEWBOX_WIDTH.search(chart.svg)
        width = f' style="max-width: {found.group(1)}px"' if found else ""
        tag = Markup('<img class="chart" src="{}" alt="{}"{}>').format(url, chart.alt, Markup(width))
        return replace(chart, svg=tag)

    audits = tuple(replace(a, charts=tuple(as_image(c) for c in a.charts)) for a in ctx.audits)
    return replace(ctx, audits=audits), images


def chart_fetcher(images: Mapping[str, bytes]) -> Callable[[str], Any]:
    """A WeasyPrint URL fetcher that serves ``images`` (SVG by URL) and refuses every other URL.

    A refused image is left out of the PDF with an error in WeasyPrint's log (its alt text shows).
    """
    from weasyprint import urls

    def svg_for(url: str) -> bytes:
        svg = images.get(url)
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
