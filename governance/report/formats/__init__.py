"""Report output formats behind one registry (name → renderer), as pip-audit's ``_format``.

A renderer is ``render(job: ReportJob) -> bytes``. Formats are registered by import path so
that choosing one (CLI ``--format`` choices, ``--help``) never imports Jinja, matplotlib or
WeasyPrint.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from governance.policy.outcome import CheckReport
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
ERR_UNKNOWN = "unknown report format {name!r}; expected one of {known}"


@dataclass(frozen=True)
class ReportJob:
    """What every renderer receives."""

    results: Results
    check_report: CheckReport | None = None
    template_dir: Path | None = None


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


_REGISTRY: dict[str, Format] = {}


def register_format(name: str, renderer: str | Renderer, *, filename: str) -> None:
    """Register ``renderer`` (a callable or its ``module:function`` path) as format ``name``.

    Raises
    ------
    ValueError
        If ``name`` is already registered.
    """
    if name in _REGISTRY:
        raise ValueError(ERR_DUPLICATE.format(name=name))
    _REGISTRY[name] = Format(name=name, filename=filename, target=renderer)


def get_format(name: str) -> Format:
    """The format registered as ``name``.

    Raises
    ------
    ValueError
        If no format has that name; the message lists the known ones.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(ERR_UNKNOWN.format(name=name, known=sorted(_REGISTRY))) from None


def format_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


register_format("html", "governance.report.formats.html:render_html", filename="report.html")
register_format("markdown", "governance.report.formats.markdown:render_markdown", filename="report.md")
register_format("json", "governance.report.formats.json:render_json", filename="report.json")
register_format("pdf", "governance.report.formats.pdf:render_pdf", filename="report.pdf")
