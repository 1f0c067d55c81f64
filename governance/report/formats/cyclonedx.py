"""The CycloneDX 1.6 ML-BOM format; built by :mod:`governance.evidence.bom`."""

from __future__ import annotations

import json

from governance.report.formats import ReportJob

__all__ = ["render_cyclonedx"]


def render_cyclonedx(job: ReportJob) -> bytes:
    from governance.evidence.bom import build_bom

    bom = build_bom(job.results, job.check_report)
    return (json.dumps(bom, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode("utf-8")
