"""The machine-readable report: the results and the policy outcomes in one document."""

from __future__ import annotations

import json
from typing import Any

from governance import __version__
from governance.report.context import results_sha256, run_id
from governance.report.formats import ReportJob

__all__ = ["REPORT_SCHEMA_VERSION", "render_json", "report_document"]

REPORT_SCHEMA_VERSION = 1


def report_document(job: ReportJob) -> dict[str, Any]:
    """The JSON report as a dict: ``results`` is exactly results.json; ``policy`` is null without a policy."""
    check = job.check_report
    return {
        "report_schema_version": REPORT_SCHEMA_VERSION,
        "generator": f"governance {__version__}",
        "run_id": run_id(job.results),
        "results_sha256": results_sha256(job.results),
        "verdict": None if check is None else ("PASSED" if check.passed else "FAILED"),
        "policy": None if check is None else check.to_dict(),
        "results": job.results.to_dict(),
    }


def render_json(job: ReportJob) -> bytes:
    text = json.dumps(report_document(job), indent=2, allow_nan=False, ensure_ascii=False)
    return (text + "\n").encode("utf-8")
