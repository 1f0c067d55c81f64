"""Data-quality checks: the gate before training and the ``data_quality`` audit.

What is measured (CONTRACT §4 metric IDs under ``data_quality.``):

``duplicate_rate``
    Rows repeating an earlier row of the same split (all used columns), over all rows.
``missing_rate``
    Missing cells over all cells of the used columns (features, label, sensitive).
``train_eval_overlap``
    Share of eval rows that also occur in train (leakage: the model is scored on rows it saw).
``min_group_share``
    The smallest share any group of any sensitive attribute has of all rows.
``label_rate_gap.<attr>``
    Binary tasks: max − min rate of the positive class across the groups of ``<attr>``;
    multiclass: the largest such gap over the classes (EU AI Act Art. 10(2)(f) asks to examine
    training data for biases).

Metrics are computed over train and eval together (the data as a whole); the tables break
missing values down by split. Findings carry a severity; ``blocking`` ones stop
``governance train`` unless ``--force``. Thresholds are the audit's options (see
:class:`QualityOptions`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field

from governance._options import Bool, Float, Options, parse_options
from governance.data.pii import scan_values
from governance.results import AuditSection, Finding, Severity, metric_id

if TYPE_CHECKING:
    import pandas as pd

    from governance.data.bundle import DataBundle

__all__ = ["QualityOptions", "assess", "blocking_findings", "quality_options"]

NAME = "data_quality"


Share = Annotated[Float, Field(ge=0, le=1)]


class QualityOptions(Options):
    """Thresholds of the data-quality checks (the ``audits.data_quality`` options)."""

    #: duplicate_rate above this is a major finding (any duplicate is info)
    max_duplicate_rate: Share = 0.05
    #: a column missing more than this share of values is a major finding
    max_missing_rate: Share = 0.2
    #: train/eval overlap above this blocks training (any overlap is major)
    max_train_eval_overlap: Share = 0.01
    #: a sensitive group below this share of rows is a major finding
    min_group_share: Share = 0.05
    #: a label-rate gap above this across groups of an attribute is a major finding
    max_label_rate_gap: Share = 0.2
    #: a class below this share of rows is a major finding (label imbalance)
    min_class_share: Share = 0.1
    #: severity of personal data found in text columns
    pii_severity: Severity = Severity.BLOCKING
    #: scan every string column for PII, not only ``data.text``
    pii_all_string_columns: Bool = True


def quality_options(options: Mapping[str, Any] | None, *, source: str | None = None) -> QualityOptions:
    """Validate the spec's ``audits.data_quality`` mapping (errors name ``audits.data_quality.<field>``)."""
    return parse_options(QualityOptions, options, source=source, where=f"audits.{NAME}")


def blocking_findings(section: AuditSection) -> tuple[Finding, ...]:
    """The findings that stop training unless forced."""
    return tuple(f for f in section.findings if f.severity == Severity.BLOCKING)


def _splits(bundle: DataBundle) -> list[tuple[str, pd.DataFrame]]:
    out = [("eval", bundle.eval)]
    if bundle.train is not None:
        out.insert(0, ("train", bundle.train))
    return out


def _used_columns(bundle: DataBundle) -> list[str]:
    cols = [*bundle.features, bundle.label, *bundle.sensitive]
    if bundle.text is not None:
        cols.append(bundle.text)
    return list(dict.fromkeys(c for c in cols if c in bundle.eval.columns))


def assess(bundle: DataBundle, options: Mapping[str, Any] | QualityOptions | None = None) -> AuditSection:
    """Run every data-quality check on a bundle.

    Parameters
    ----------
    bundle
        The loaded data (train may be None: then only eval is assessed).
    options
        A :class:`QualityOptions` or the spec's ``audits.data_quality`` mapping.

    Returns
    -------
    AuditSection
        Named ``data_quality``, with the metrics above, tables ``missing``, ``groups``,
        ``labels``, ``constant_columns``, ``pii`` and the findings.
    """
    import pandas as pd

    started = time.perf_counter()
    opts = options if isinstance(options, QualityOptions) else quality_options(options)
    splits = _splits(bundle)
    columns = _used_columns(bundle)
    frames = [frame[columns] for _, frame in splits]
    combined = pd.concat(frames, ignore_index=True)
    n_rows = len(combined)
    metrics: dict[str, float | None] = {}
    findings: list[Finding] = []
    tables: dict[str, list[dict[str, Any]]] = {}

    # Duplicates within each split.
    duplicates = sum(int(frame.duplicated().sum()) for frame in frames)
    metrics[metric_id(NAME, "duplicate_rate")] = duplicates / n_rows
    if duplicates:
        rate = duplicates / n_rows
        severity = Severity.MAJOR if rate > opts.max_duplicate_rate else Severity.INFO
        findings.append(
            Finding(
                "data_quality.duplicates",
                severity,
                f"{duplicates} duplicate row(s) ({rate:.1%} of rows)",
                NAME,
            )
        )

    # Missing values.
    missing_cells = int(combined.isna().sum().sum())
    metrics[metric_id(NAME, "missing_rate")] = missing_cells / max(1, combined.size)
    missing_rows = []
    for split_name, frame in splits:
        counts = frame[columns].isna().sum()
        for column in columns:
            missing_rows.append(
                {
                    "split": split_name,
                    "column": column,
                    "missing": int(counts[column]),
                    "rate": float(counts[column]) / len(frame),
                }
            )
    tables["missing"] = missing_rows
    column_rates = combined.isna().mean()
    for column in columns:
        rate = float(column_rates[column])
        if rate > 0:
            severity = Severity.MAJOR if rate > opts.max_missing_rate else Severity.MINOR
            findings.append(
                Finding(
                    f"data_quality.missing.{column}",
                    severity,
                    f"column {column!r} is {rate:.1%} missing",
                    NAME,
                )
            )

    # Train/eval overlap (leakage).
    overlap = 0.0
    if bundle.train is not None:
        train_hashes = set(pd.util.hash_pandas_object(bundle.train[columns], index=False).tolist())
        eval_hashes = pd.util.hash_pandas_object(bundle.eval[columns], index=False)
        shared = int(eval_hashes.isin(train_hashes).sum())
        overlap = shared / len(bundle.eval)
        if shared:
            severity = Severity.BLOCKING if overlap > opts.max_train_eval_overlap else Severity.MAJOR
            findings.append(
                Finding(
                    "data_quality.train_eval_overlap",
                    severity,
                    f"{shared} eval row(s) ({overlap:.1%}) also occur in train: eval scores would be inflated",
                    NAME,
                )
            )
    metrics[metric_id(NAME, "train_eval_overlap")] = overlap

    # Constant columns (features only: they carry no information).
    constant = [
        c for c in bundle.features if c in combined.columns and combined[c].nunique(dropna=False) <= 1
    ]
    tables["constant_columns"] = [{"column": c} for c in constant]
    metrics[metric_id(NAME, "constant_columns")] = float(len(constant))
    if constant:
        shown = ", ".join(constant[:5]) + (" …" if len(constant) > 5 else "")
        findings.append(
            Finding(
                "data_quality.constant_columns",
                Severity.MINOR,
                f"{len(constant)} constant feature(s): {shown}",
                NAME,
            )
        )

    # Label balance.
    label = combined[bundle.label]
    class_counts = label.value_counts()
    tables["labels"] = [
        {
            "class": str(c),
            "rows": int(class_counts.get(c, 0)),
            "share": float(class_counts.get(c, 0)) / n_rows,
        }
        for c in bundle.classes
    ]
    min_class_share = min(float(class_counts.get(c, 0)) / n_rows for c in bundle.classes)
    metrics[metric_id(NAME, "min_class_share")] = min_class_share
    if min_class_share < opts.min_class_share:
        findings.append(
            Finding(
                "data_quality.label_balance",
                Severity.MAJOR,
                f"the rarest class has {min_class_share:.1%} of rows (threshold {opts.min_class_share:.0%})",
                NAME,
            )
        )

    # Sensitive groups: share of rows and label rate.
    positive = bundle.positive
    group_rows: list[dict[str, Any]] = []
    min_share: float | None = None
    for attr in bundle.sensitive:
        groups = combined.groupby(attr, sort=True)[bundle.label]
        rates: dict[str, dict[str, float]] = {}
        for group, labels in groups:
            share = len(labels) / n_rows
            min_share = share if min_share is None else min(min_share, share)
            class_rates = {c: float((labels == c).mean()) for c in bundle.classes}
            rates[str(group)] = class_rates
            row: dict[str, Any] = {
                "attribute": attr,
                "group": str(group),
                "rows": len(labels),
                "share": share,
            }
            row["label_rate"] = class_rates[positive] if positive is not None else None
            group_rows.append(row)
            if share < opts.min_group_share:
                findings.append(
                    Finding(
                        f"data_quality.group_share.{attr}.{group}",
                        Severity.MAJOR,
                        f"group {attr}={group!r} has {share:.1%} of rows (threshold {opts.min_group_share:.0%}): "
                        "too few to train and audit for it reliably",
                        NAME,
                    )
                )
        considered = [positive] if positive is not None else list(bundle.classes)
        gap = max(
            (max(r[c] for r in rates.values()) - min(r[c] for r in rates.values()) for c in considered),
            default=0.0,
        )
        metrics[metric_id(NAME, "label_rate_gap", attr)] = gap
        if gap > opts.max_label_rate_gap:
            what = f"rate of {positive!r}" if positive is not None else "a class rate"
            findings.append(
                Finding(
                    f"data_quality.label_rate_gap.{attr}",
                    Severity.MAJOR,
                    f"the {what} differs by {gap:.2f} across groups of {attr!r}: historical bias the model may learn",
                    NAME,
                )
            )
    tables["groups"] = group_rows
    metrics[metric_id(NAME, "min_group_share")] = min_share

    # Personal data in text columns.
    pii_columns = [bundle.text] if bundle.text is not None else []
    if opts.pii_all_string_columns:
        pii_columns += [
            c
            for c in columns
            if c not in pii_columns and c != bundle.label and not pd.api.types.is_numeric_dtype(combined[c])
        ]
    pii_rows = []
    pii_values = 0
    for column in pii_columns:
        for match in scan_values(column, combined[column].dropna().unique().tolist()):
            pii_values += match.count
            pii_rows.append(
                {"column": match.column, "kind": match.kind, "values": match.count, "example": match.example}
            )
            findings.append(
                Finding(
                    f"data_quality.pii.{column}.{match.kind}",
                    opts.pii_severity,
                    f"column {column!r} holds {match.count} distinct value(s) that look like {match.kind.replace('_', ' ')} "
                    f"(e.g. {match.example}): remove or pseudonymise personal data before training",
                    NAME,
                )
            )
    tables["pii"] = pii_rows
    metrics[metric_id(NAME, "pii_values")] = float(pii_values)
    metrics[metric_id(NAME, "rows")] = float(n_rows)

    details = {"rows": {name: len(frame) for name, frame in splits}, "columns": columns}
    return AuditSection(
        name=NAME,
        metrics=metrics,
        tables=tables,
        details=details,
        findings=tuple(findings),
        seconds=time.perf_counter() - started,
    )
