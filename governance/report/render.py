"""Render audit results (and policy outcomes) to report files.

Examples
--------
>>> from governance.results import load_results
>>> from governance.report.render import render, write_reports
>>> html = render(load_results("out/demo/results.json"), "html")          # doctest: +SKIP
>>> write_reports(results, "out/demo", formats=("html", "markdown"))      # doctest: +SKIP
{'html': PosixPath('out/demo/report.html'), 'markdown': PosixPath('out/demo/report.md')}
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import sys
from collections.abc import Iterator, Sequence
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from governance._io import atomic_write_bytes
from governance.policy.outcome import CheckReport
from governance.report.formats import Format, ReportJob, format_names, get_format
from governance.results import Results

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

__all__ = ["DEFAULT_FORMATS", "ReportWorker", "collector_paused", "format_names", "render", "write_reports"]

#: Formats whose rendering draws charts (SVG): their builders are imported by a warm-up.
_DRAWN = frozenset({"html", "pdf"})
#: Format → (Jinja environment kind, template) compiled ahead of the results.
_TEMPLATES = {
    "html": ("html", "report.html.j2"),
    "pdf": ("html", "report.html.j2"),
    "markdown": ("markdown", "report.md.j2"),
}
#: Seconds to wait for a worker's reports before rendering them in this process instead.
WORKER_TIMEOUT_S = 900.0

DEFAULT_FORMATS: tuple[str, ...] = ("html", "markdown", "json", "pdf")


def render(
    results: Results,
    fmt: str,
    *,
    check_report: CheckReport | None = None,
    template_dir: Path | None = None,
) -> bytes:
    """Render one report format to bytes.

    Parameters
    ----------
    results
        The audit results.
    fmt
        A registered format name: ``html``, ``markdown``, ``json`` or ``pdf``.
    check_report
        The policy verdict to show; None renders the measurements without a verdict.
    template_dir
        A folder whose templates override the shipped ones (same file names).

    Raises
    ------
    ValueError
        If ``fmt`` is not a registered format.
    """
    job = ReportJob(results=results, check_report=check_report, template_dir=template_dir)
    with collector_paused():
        return get_format(fmt).render(job)


def write_reports(
    results: Results,
    out_dir: str | PathLike[str],
    *,
    check_report: CheckReport | None = None,
    formats: Sequence[str] = DEFAULT_FORMATS,
    template_dir: Path | None = None,
) -> dict[str, Path]:
    """Write ``report.<ext>`` for each format into ``out_dir``, each file atomically.

    Every format is rendered before any file is written, so an error (an unknown format, a
    broken template) leaves no new report behind.

    Returns
    -------
    dict
        Format name → path written.
    """
    chosen = [get_format(f) for f in formats]
    job = ReportJob(results=results, check_report=check_report, template_dir=template_dir)
    with collector_paused():
        rendered = _render_all(job, chosen)
    out = Path(out_dir)
    written: dict[str, Path] = {}
    for f in chosen:
        path = out / f.filename
        atomic_write_bytes(path, rendered[f.name])
        written[f.name] = path
    return written


def _render_all(job: ReportJob, chosen: Sequence[Format]) -> dict[str, bytes]:
    """Every chosen format's bytes; the PDF laid out by a second process where there is a second CPU.

    That child (:mod:`governance.report.pdf_process`) lays the page out while this process
    draws the charts, and gets them when it draws its pages; its PDF is the one this process
    would render, or this process renders it.
    """
    names = [f.name for f in chosen]
    beside = None
    if "pdf" in names:
        from governance.report.pdf_process import PdfProcess

        beside = PdfProcess.start(job)
    if beside is None:
        return {f.name: f.render(job) for f in chosen}
    with beside:
        beside.send_charts(job)
        rendered = {f.name: f.render(job) for f in chosen if f.name != "pdf"}
        pdf = beside.pdf()
    rendered["pdf"] = pdf if pdf is not None else get_format("pdf").render(job)
    return {name: rendered[name] for name in names}


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a report renders (reference counting goes on).

    Drawing the charts and laying out the PDF allocate millions of small objects (artists, CSS
    styles, boxes), and each of the collector's full passes walks every object the process
    holds: a fifth of the report's CPU time went there. Few of those objects form cycles; the
    ones that do are collected once the collector runs again, after the reports are rendered.
    Peak memory grows by about a tenth (see docs/PERFORMANCE.md).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class ReportWorker:
    """Writes the reports in a child process that got ready while the audits ran.

    Most of the report stage is fixed cost: importing Jinja (and WeasyPrint for PDF) and
    compiling the templates. None of that depends on the results, so :meth:`start` forks a child
    that does it while the parent loads data and computes; :meth:`write` then hands it the
    results, and the parent writes results.json and hashes files while the child draws the charts
    and renders the templates.

    Any failure on the worker's side (it could not start, died, timed out, rendering raised)
    makes :meth:`write` render in this process instead, so the reports and the errors a caller
    sees are the same as :func:`write_reports`'s.
    """

    def __init__(
        self, process: BaseProcess, conn: Connection, formats: tuple[str, ...], template_dir: Path | None
    ) -> None:
        self._process: BaseProcess | None = process
        self._conn = conn
        self.formats = formats
        self.template_dir = template_dir
        self._sent = False
        #: Why the worker cannot deliver (set when handing it the job failed).
        self._failed: str | None = None

    @classmethod
    def start(cls, formats: Sequence[str], *, template_dir: Path | None = None) -> ReportWorker | None:
        """Fork a worker for ``formats``; None where there is nothing to gain or no ``fork``.

        Only POSIX ``fork`` is used: a spawned interpreter would pay again for the imports the
        parent already has (numpy, governance), which is most of what a worker saves.
        """
        chosen = tuple(formats)
        if not chosen or sys.platform == "win32":
            return None
        import multiprocessing
        import warnings

        try:
            ctx = multiprocessing.get_context("fork")
        except ValueError:  # pragma: no cover - platforms without fork
            return None
        parent, child = ctx.Pipe(duplex=True)
        process = ctx.Process(
            target=_serve, args=(child, chosen, template_dir), name="governance-report", daemon=True
        )
        try:
            with warnings.catch_warnings():
                # Python 3.12+ warns about fork in a process with threads; the child only imports
                # Jinja and renders, it never touches the parent's thread pools.
                warnings.simplefilter("ignore", DeprecationWarning)
                process.start()
        except OSError:
            parent.close()
            child.close()
            return None
        child.close()
        return cls(process, parent, chosen, template_dir)

    def submit(
        self, results: Results, out_dir: str | PathLike[str], *, check_report: CheckReport | None
    ) -> None:
        """Hand the results to the worker; it renders and writes while the caller goes on."""
        self._sent = True
        try:
            self._conn.send((results, str(out_dir), check_report))
        except (OSError, ValueError, TypeError, AttributeError, ImportError) as exc:
            # Not picklable or the pipe is gone: write() renders here.
            self._failed = f"{exc.__class__.__name__}: {exc}"

    def write(
        self, results: Results, out_dir: str | PathLike[str], *, check_report: CheckReport | None = None
    ) -> dict[str, Path]:
        """The reports written by the worker (or, failing that, here), as :func:`write_reports`."""
        if not self._sent:
            self.submit(results, out_dir, check_report=check_report)
        reply: Any = None
        try:
            if self._failed is None and self._conn.poll(WORKER_TIMEOUT_S):
                reply = self._conn.recv()
        except (OSError, EOFError):
            reply = None
        finally:
            self.close()
        if isinstance(reply, tuple) and len(reply) == 2 and reply[0] == "ok":
            return {str(k): Path(v) for k, v in reply[1].items()}
        return write_reports(
            results, out_dir, check_report=check_report, formats=self.formats, template_dir=self.template_dir
        )

    def close(self) -> None:
        """Stop the worker (idempotent); a worker still busy is terminated."""
        if self._process is None:
            return
        process, self._process = self._process, None
        if not self._sent:
            # Nothing to render (the run failed before its results): let the worker exit.
            with contextlib.suppress(OSError, ValueError):
                self._conn.send(None)
        self._conn.close()
        process.join(timeout=5)
        if process.is_alive():
            process.terminate()
            process.join(timeout=5)

    def __enter__(self) -> ReportWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def warm_up(formats: Sequence[str], template_dir: Path | None = None) -> None:
    """Pay the report stage's fixed costs now: imports and template compilation.

    Each step is best effort: whatever fails here fails again, with its real error, when the
    reports are rendered.
    """
    for name in formats:
        with contextlib.suppress(Exception):
            target = get_format(name).target
            if isinstance(target, str):
                importlib.import_module(target.partition(":")[0])
        if name in _TEMPLATES:
            from governance.report.templating import environment, package_templates

            kind, template = _TEMPLATES[name]
            with contextlib.suppress(Exception):
                env = environment(kind, template_dir)
                env.get_template(template)
                # Templates it imports or includes (macros) compile on first use otherwise.
                suffix = ".html.j2" if kind == "html" else ".md.j2"
                for node in package_templates().iterdir():
                    if node.name.endswith(suffix) and node.name != template:
                        env.get_template(node.name)
    if _DRAWN.intersection(formats):
        from governance.report.charts import warm_up as warm_charts

        with contextlib.suppress(Exception):
            warm_charts()
    if "pdf" in formats:
        from governance.report.formats.pdf import load_weasyprint

        with contextlib.suppress(Exception):
            load_weasyprint()


def _serve(conn: Connection, formats: tuple[str, ...], template_dir: Path | None) -> None:
    """The worker: warm up, then render the one job it is sent (None: nothing to do)."""
    import signal

    # Ctrl-C goes to the whole process group; the parent decides what happens to the worker.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    warm_up(formats, template_dir)
    try:
        job = conn.recv()
    except (EOFError, OSError):
        return
    if job is None:
        return
    results, out_dir, check_report = job
    try:
        written = write_reports(
            results, out_dir, check_report=check_report, formats=formats, template_dir=template_dir
        )
        reply: tuple[str, Any] = ("ok", {k: str(v) for k, v in written.items()})
    except BaseException as exc:  # the parent renders again and raises the real error
        reply = ("error", f"{exc.__class__.__name__}: {exc}")
    with contextlib.suppress(OSError, ValueError):
        conn.send(reply)
