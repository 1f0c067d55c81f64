"""Report output formats behind one registry (name → renderer), as pip-audit's ``_format``.

A renderer is ``render(job: ReportJob) -> bytes``. Formats are registered by import path so
that choosing one (CLI ``--format`` choices, ``--help``) never imports Jinja, the chart
builders or WeasyPrint.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from governance._registry import Registry

if TYPE_CHECKING:
    from governance.policy.outcome import CheckReport
    from governance.report.context import ReportContext
    from governance.results import Results

__all__ = [
    "ERR_DUPLICATE",
    "ERR_UNKNOWN",
    "Format",
    "ReportJob",
    "format_names",
    "get_format",
    "register_format",
]

ERR_DUPLICATE = "report format {name!r} is already registered"
ERR_UNKNOWN = "unknown report format {name!r}; expected one of {known}"  # raised by the Registry


@dataclass(frozen=True)
class ReportJob:
    """What every renderer receives."""

    results: Results
    check_report: CheckReport | None = None
    template_dir: Path | None = None
    #: The generation time every format of the job shows (one clock reading, not one per format).
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    #: Built report contexts by "drawn"/"text", shared by the formats of one write_reports call so
    #: the charts are drawn once for HTML and PDF together.
    cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def context(self, *, draw_charts: bool) -> ReportContext:
        key = "drawn" if draw_charts else "text"
        if key not in self.cache:
            from governance.report.context import build_context

            self.cache[key] = build_context(
                self.results, self.check_report, draw_charts=draw_charts, now=self.now
            )
        ctx: ReportContext = self.cache[key]
        return ctx


Renderer = Callable[[ReportJob], bytes]


@dataclass(frozen=True)
class Format:
    """A registered output format: its name, the file name ``write_reports`` gives it, its renderer."""

    name: str
    filename: str
    target: str | Renderer

    def render(self, job: ReportJob) -> bytes:
        target = self.target
        if isinstance(target, str):
            module_name, _, attr = target.partition(":")
            target = getattr(importlib.import_module(module_name), attr)
        return target(job)


_FORMATS: Registry[Format] = Registry("report format")


def register_format(name: str, renderer: str | Renderer, *, filename: str) -> None:
    """Register ``renderer`` (a callable or its ``module:function`` path) as format ``name``.

    Raises
    ------
    ValueError
        If ``name`` is already registered.
    """
    _FORMATS.register(name, Format(name=name, filename=filename, target=renderer))


def get_format(name: str) -> Format:
    """The format registered as ``name``.

    Raises
    ------
    ValueError
        If no format has that name; the message lists the known ones.
    """
    return _FORMATS.get(name)


def format_names() -> tuple[str, ...]:
    return _FORMATS.names()


register_format("html", "governance.report.formats.html:render_html", filename="report.html")
register_format("markdown", "governance.report.formats.markdown:render_markdown", filename="report.md")
register_format("json", "governance.report.formats.json:render_json", filename="report.json")
register_format("pdf", "governance.report.formats.pdf:render_pdf", filename="report.pdf")
# Evidence (issue 14): the CycloneDX 1.6 ML-BOM.
register_format("cyclonedx", "governance.report.formats.cyclonedx:render_cyclonedx", filename="bom.cdx.json")
