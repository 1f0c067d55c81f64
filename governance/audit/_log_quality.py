"""Data quality of a decision log: what can be said from counts, and how long the log spans.

The EU AI Act asks deployers of a high-risk system to keep its automatically generated logs for at
least six months (Art. 19(1), 26(6)). When the spec says the rows are the system's event logs
(``data: {event_logs: true, timestamp: COLUMN}``), ``data_quality.log_span_days`` is the time from
the first to the last event, which the ``eu-ai-act-high-risk`` pack holds to at least 183 days.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from governance.data.bundle import MISSING_GROUP
from governance.results import AuditSection

if TYPE_CHECKING:
    from governance.audit._engines import CountedLog
    from governance.audit.base import AuditContext
    from governance.spec import Spec

__all__ = ["LOG_SPAN_METRIC", "assess_counted", "log_span_days", "with_log_span"]

LOG_SPAN_METRIC = "data_quality.log_span_days"
_US_PER_DAY = 86_400e6


def assess_counted(counted: CountedLog, spec: Spec) -> AuditSection:
    """The data-quality numbers a counted log supports: rows, class shares, group shares, missing
    sensitive values. Duplicates, leakage and PII need the rows (``details.not_computed``)."""
    joint = counted.joint
    total = joint.total
    metrics: dict[str, float | None] = {"data_quality.rows": float(total)}
    n_attr = len(joint.attributes)
    per_class = joint.counts.sum(axis=(*range(n_attr), n_attr + 1))
    if total:
        shares = per_class / total
        metrics["data_quality.min_class_share"] = float(shares.min())
        # The rarest class's share over the uniform share (data.quality's definition).
        metrics["data_quality.min_class_ratio"] = float(shares.min() * len(shares))
    groups: list[dict[str, Any]] = []
    min_share = None
    missing = 0
    for attr in joint.attributes:
        table = joint.table([attr])
        for group, size in zip(table.groups, table.sizes):
            share = float(size) / total if total else None
            groups.append({"attribute": attr, "group": group[0], "count": int(size), "share": share})
            if group[0] == MISSING_GROUP:
                missing += int(size)
            elif share is not None:
                min_share = share if min_share is None else min(min_share, share)
    metrics["data_quality.min_group_share"] = min_share
    return AuditSection(
        name="data_quality",
        metrics=metrics,
        tables={"groups": groups},
        details={
            "engine": counted.engine,
            "missing_sensitive_values": missing,
            "not_computed": ["duplicate_rate", "missing_rate", "train_eval_overlap", "pii_values"],
            "why_not": "the decision log was counted by an engine; these need the rows in memory",
        },
    )


def log_span_days(context: AuditContext) -> tuple[float | None, int]:
    """Days from the first to the last timestamp, and the rows without one."""
    counted = context.counted
    if counted is not None:
        return counted.span_days, 0
    bundle = context.data
    micros, missing = bundle.timestamps, bundle.timestamps_missing
    column = getattr(context.spec.data, "timestamp", None)
    if micros is None and column is not None and column in bundle.eval:
        import pandas as pd

        values = pd.to_datetime(bundle.eval[column], utc=True, errors="coerce")
        missing = values.isna().to_numpy()
        micros = values.dropna().astype("int64").to_numpy() // 1000
        missing = None
    if micros is None:
        return None, 0
    micros = np.asarray(micros)
    if missing is not None:
        micros = micros[~np.asarray(missing)]
    if micros.size == 0:
        return None, len(bundle.timestamps)
    span = float(int(micros.max()) - int(micros.min())) / _US_PER_DAY
    return span, 0 if missing is None else int(np.asarray(missing).sum())


def with_log_span(section: AuditSection, context: AuditContext) -> AuditSection:
    """Add ``data_quality.log_span_days`` when the spec flags the rows as event logs."""
    data = context.spec.data
    if not getattr(data, "event_logs", False):
        return section
    span, _ = log_span_days(context)
    metrics = dict(section.metrics)
    metrics[LOG_SPAN_METRIC] = None if span is None else round(span, 6)
    details = dict(section.details)
    details["event_logs"] = {
        "timestamp": getattr(data, "timestamp", None),
        "span_days": metrics[LOG_SPAN_METRIC],
        "retention_days_required": 183,
        "refs": ["EU AI Act Art. 19(1)", "EU AI Act Art. 26(6)"],
    }
    return replace(section, metrics=metrics, details=details)
