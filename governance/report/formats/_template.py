"""Rendering a :class:`ReportContext` through a Jinja template (shared by the HTML, Markdown and PDF formats)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from governance.report.context import ReportContext

__all__ = ["PDF_MAX_ROWS", "render_template"]

#: Rows of a data table shown in the PDF (the HTML shows up to context.MAX_ROWS).
PDF_MAX_ROWS = 15


def render_template(kind: str, template: str, ctx: ReportContext, template_dir: Path | None) -> str:
    from governance.report.templating import environment

    env = environment(kind, template_dir)
    variables = {f.name: getattr(ctx, f.name) for f in fields(ctx)}
    variables["pdf_max_rows"] = PDF_MAX_ROWS
    return env.get_template(template).render(**variables)
