"""Laying out the PDF report in a second process while this one draws the charts.

The PDF is the slow part of a report set: WeasyPrint's import, then its CSS styles, boxes,
layout and drawing. Only the drawing of the charts needs the charts, and the PDF's HTML names
each chart, with its size, before it is drawn (``<img src="chart:ID">``,
:func:`~governance.report.formats.pdf.pdf_html`, :func:`~governance.report.formats.pdf.chart_sizes`).
So a forked child imports WeasyPrint while this process renders that HTML from the text-only
report context and hands it over; the child lays it out with a blank of each chart's size
while this process draws the charts (matplotlib) and renders the other formats, and waits for
the charts only when WeasyPrint draws the first one.

The child's PDF is used only when it is the PDF this process would have made: the HTML it was
given must be the one the drawn charts give (a chart that failed to draw shows a note
instead), and every chart must be the size it was laid out with. A child that died, timed out
or raised: the parent renders the PDF itself, so the bytes and the errors a caller sees are
those of the one-process path.
"""

from __future__ import annotations

import contextlib
import threading
from typing import TYPE_CHECKING, Any

from governance.report._fork import fork, ignore_interrupts, stop
from governance.report.formats.pdf import (
    CHART_SCHEME,
    PdfUnavailable,
    chart_images,
    chart_sizes,
    html_to_pdf,
    load_weasyprint,
    pdf_html,
)

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

    from governance.report.formats import ReportJob

__all__ = ["TIMEOUT_S", "PdfProcess"]

#: Seconds either side waits for the other before giving up (the parent then renders itself).
#: Bounds what a child that hangs (a lock another thread held at the fork) can cost; a slow
#: child that misses it only makes this process do the work itself.
TIMEOUT_S = 120.0


class _Abandoned(BaseException):
    """The parent will not send the charts: stop laying out.

    A BaseException, so that WeasyPrint's URL handling (which turns an ``Exception`` raised by
    a fetcher into a missing image and goes on) lets it through.
    """


class PdfProcess:
    """A forked child laying out one job's PDF; :meth:`start`, :meth:`send_charts`, :meth:`pdf`, :meth:`close`."""

    def __init__(self, process: BaseProcess, conn: Connection, html: str) -> None:
        self._process: BaseProcess | None = process
        self._conn = conn
        #: The page the child lays out (rendered before any chart is drawn).
        self._html = html
        self._sender: threading.Thread | None = None
        self._usable = True

    @classmethod
    def start(cls, job: ReportJob) -> PdfProcess | None:
        """Fork the child for ``job`` and hand it its page; None where it cannot help or cannot start (see :mod:`._fork`)."""
        started = fork(_lay_out, name="governance-pdf")
        if started is None:
            return None
        # The child imports WeasyPrint while this process renders its page.
        html = pdf_html(job, draw_charts=False)
        beside = cls(*started, html)
        beside._send_later((html, chart_sizes(job.context(draw_charts=False)), job.now))
        return beside

    def send_charts(self, job: ReportJob) -> None:
        """Draw the charts (here, if not yet drawn), hand them to the child, and check its page is ours.

        The charts go from a thread: the child reads them only when WeasyPrint first draws one,
        and meanwhile this process renders the other formats. A page that differs from the one
        the drawn charts give (a chart that failed to draw) makes :meth:`pdf` stop the child.
        """
        images = chart_images(job.context(draw_charts=True))
        self._send_later(images)
        if pdf_html(job, draw_charts=True) != self._html:
            self._usable = False

    def pdf(self) -> bytes | None:
        """The child's PDF, or None: the caller then renders it (and sees the real error, if any)."""
        reply = self._receive() if self._usable else None
        if not self._usable and self._process is not None:
            self._process.terminate()  # its page is not ours: no use waiting for it
        self.close()
        if self._usable and isinstance(reply, tuple) and len(reply) == 2 and reply[0] == "pdf":
            pdf = reply[1]
            return pdf if isinstance(pdf, bytes) else None
        return None

    def close(self) -> None:
        """Stop the child (idempotent); one still busy is terminated."""
        if self._process is None:
            return
        process, self._process = self._process, None
        # Closing our end also ends a send the child never read (a template without charts).
        self._conn.close()
        if self._sender is not None:
            self._sender.join(timeout=5)
        stop(process, self._conn)

    def __enter__(self) -> PdfProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send_later(self, message: Any) -> None:
        """Send ``message`` from a thread, after the one before it: a pipe holds less than a page or
        the charts, and the child reads each only when it needs it."""
        before = self._sender

        def send() -> None:
            if before is not None:
                before.join()
            # The child may be done without reading it (a template without charts), or gone:
            # its reply, or the lack of one, decides what pdf() returns.
            with contextlib.suppress(OSError, ValueError):
                self._conn.send(message)

        self._sender = threading.Thread(target=send, name="governance-pdf-send", daemon=True)
        self._sender.start()

    def _receive(self) -> Any:
        try:
            if self._conn.poll(TIMEOUT_S):
                return self._conn.recv()
        except (OSError, EOFError):
            pass
        self._usable = False
        return None


def _lay_out(conn: Connection) -> None:
    """The child: WeasyPrint imported while the parent renders the page, then the layout, charts on demand."""
    ignore_interrupts()
    try:
        with contextlib.suppress(PdfUnavailable):  # html_to_pdf raises the real error
            load_weasyprint()
        page = conn.recv() if conn.poll(TIMEOUT_S) else None
        if not isinstance(page, tuple) or len(page) != 3:
            raise _Abandoned("the page did not come")
        html, sizes, created = page
        reply: tuple[str, Any] = (
            "pdf",
            html_to_pdf(html, _ChartsFromParent(conn), sizes=sizes, created=created),
        )
    except BaseException as exc:  # the parent renders the PDF itself and raises the real error
        reply = ("error", f"{exc.__class__.__name__}: {exc}")
    with contextlib.suppress(OSError, ValueError):
        conn.send(reply)


class _ChartsFromParent:
    """The child's image source: waits for the parent's charts when the first one is drawn."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._images: dict[str, bytes] | None = None

    def __call__(self, url: str) -> bytes | None:
        if not url.startswith(CHART_SCHEME):
            return None  # refused, as in the one-process path, without waiting for the parent
        if self._images is None:
            try:
                images = self._conn.recv() if self._conn.poll(TIMEOUT_S) else None
            except (OSError, EOFError):
                images = None
            if not isinstance(images, dict):
                raise _Abandoned("the charts did not come")
            self._images = images
        return self._images.get(url)
