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

from collections.abc import Sequence
from os import PathLike
from pathlib import Path

from governance._io import atomic_write_bytes
from governance.policy.outcome import CheckReport
from governance.report.formats import ReportJob, format_names, get_format
from governance.results import Results

__all__ = ["DEFAULT_FORMATS", "format_names", "render", "write_reports"]

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
    rendered = {f.name: f.render(job) for f in chosen}
    out = Path(out_dir)
    written: dict[str, Path] = {}
    for f in chosen:
        path = out / f.filename
        atomic_write_bytes(path, rendered[f.name])
        written[f.name] = path
    return written
