"""The PDF report: the HTML report laid out for print by WeasyPrint (running headers, page numbers)."""

from __future__ import annotations

import logging

from governance.errors import GovernanceError
from governance.report.formats import ReportJob
from governance.report.formats.html import render_html_text

__all__ = ["ERR_NO_WEASYPRINT", "render_pdf"]

ERR_NO_WEASYPRINT = (
    "PDF reports need WeasyPrint and the Pango library: pip install 'governance[pdf]' "
    "(Debian/Ubuntu: apt-get install libpango-1.0-0 libpangoft2-1.0-0); import failed: {error}"
)


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
    html = render_html_text(job, pdf=True)
    # No base_url and a fetcher that refuses everything: the report is self-contained, so any
    # fetch would be a template bug or an injected URL, and a PDF must not phone home.
    document = weasyprint.HTML(string=html, url_fetcher=_refuse_fetch)
    pdf: bytes = document.write_pdf()
    return pdf


def _refuse_fetch(url: str, *args: object, **kwargs: object) -> dict[str, object]:
    raise ValueError(f"the PDF report fetches nothing; refused {url!r}")
