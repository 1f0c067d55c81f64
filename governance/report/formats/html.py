"""The self-contained HTML report (inline CSS, inline SVG charts, no scripts)."""

from __future__ import annotations

from dataclasses import replace

from governance.report.formats import ReportJob
from governance.report.formats._template import render_template

__all__ = ["TEMPLATE", "render_html", "render_html_text"]

TEMPLATE = "report.html.j2"


def render_html_text(job: ReportJob, *, pdf: bool = False) -> str:
    ctx = replace(job.context(draw_charts=True), pdf=pdf)
    return render_template("html", TEMPLATE, ctx, job.template_dir)


def render_html(job: ReportJob) -> bytes:
    return render_html_text(job).encode("utf-8")
