"""The Markdown report: the HTML report's content for repositories and CI summaries."""

from __future__ import annotations

from governance.report.formats import ReportJob
from governance.report.formats._template import render_template

__all__ = ["TEMPLATE", "render_markdown"]

TEMPLATE = "report.md.j2"


def render_markdown(job: ReportJob) -> bytes:
    # Charts are described (title, caption, alt text) rather than drawn: Markdown viewers in CI
    # summaries strip inline SVG, and the words carry the numbers.
    ctx = job.context(draw_charts=False)
    return render_template("markdown", TEMPLATE, ctx, job.template_dir).encode("utf-8")
