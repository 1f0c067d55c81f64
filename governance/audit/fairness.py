"""The fairness audit: fairlearn's group metrics, derived from per-group confusion counts.

For every sensitive attribute and every pair of them (intersectional groups) it reports, per group,
the count, selection rate, TPR, FPR, FNR, precision and accuracy, and the CONTRACT §4 disparities
(``fairness.<attr>.demographic_parity_difference`` …) plus ``fairness.worst.<metric>``, each with a
seeded bootstrap confidence interval. The numbers equal ``fairlearn.metrics`` on the same inputs
(tests/audit/test_fairness_oracle.py); they are computed from counts because that is ~1000× faster
(see ``_confusion.py``) and makes the bootstrap exact and cheap (see ``_bootstrap.py``).

Multiclass tasks are audited one-vs-rest: each class in turn is the "selected" outcome; the headline
metric of an attribute is the worst over classes and the per-class values are in the tables.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import Field

from governance._options import Bool, Float, Int, Label, Options, Str, parse_options
from governance.audit._bootstrap import percentile_interval, resample_counts
from governance.audit._confusion import GroupTable, JointCounts, reduce_joint
from governance.audit._counterfactual import CounterfactualOptions, add_counterfactual, counterfactual_options
from governance.audit._disparity import DISPARITIES, GROUP_RATES, disparities, group_rates, worst
from governance.audit._encode import class_codes, group_codes
from governance.audit.base import Audit, AuditContext
from governance.errors import InputError
from governance.results import AuditSection, Finding, SectionStatus, Severity, metric_id

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from governance.data.bundle import DataBundle
    from governance.spec import Spec

__all__ = ["FairnessAudit", "FairnessOptions", "audit_counts"]

ERR_ONE_GROUP = "has a single group ({group!r}) in the eval data; fairness needs at least two groups"
ERR_NO_SENSITIVE = "lists no sensitive attributes; the fairness audit needs data.sensitive"
#: The reason shown when the spec names no sensitive attribute (images of digits, say): group
#: fairness has nothing to compare, which is a fact to report, not an error in the run.
SKIP_NO_SENSITIVE = (
    "the spec declares no sensitive attribute (data.sensitive is empty), so there are no groups to "
    "compare; add data.sensitive to audit group fairness"
)
ERR_POSITIVE = "positive_label {label!r} is not one of the classes {classes}"

#: NYC Local Law 144 rules, 6 RCNY §5-301(d): categories under 2% of the data may be left out of
#: impact ratios. We never leave them out; we flag them.
DEFAULT_MIN_GROUP_SHARE = 0.02
WHERE = "audits.fairness"
DisparityName = Literal[
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "equal_opportunity_difference",
    "accuracy_difference",
]
#: The default window limit: NYC LL144's and the EEOC's four-fifths rule on selection rates.
FOUR_FIFTHS: dict[DisparityName, float] = {"demographic_parity_ratio": 0.8}
ERR_NO_TIMESTAMP = "window needs a timestamp column: give audits.fairness.timestamp or data.timestamp"


class FairnessOptions(Options):
    """The ``audits.fairness`` options of a spec.

    Attributes
    ----------
    positive_label
        The favourable class for binary tasks (default: the last class, e.g. ``"1"``).
    min_group_share
        Groups with fewer than this share of the rows are flagged as small (default 0.02).
    bootstrap
        Number of bootstrap replicates for confidence intervals (0 disables them).
    confidence
        Confidence level of the intervals.
    intersections
        Also audit every pair of sensitive attributes.
    seed
        Bootstrap seed (default: the spec's seed).
    counterfactual
        ``{pair_column, term_column}``: also report counterfactual fairness over rows that share
        a pair id (see :mod:`governance.audit._counterfactual`).
    window
        ``month``, ``week`` or ``day``: also every metric per window of ``timestamp`` (monitoring a
        decision log after release, EU AI Act Art. 72), ``fairness.<attr>.<metric>.max_window``
        (the worst window) and a finding when a window breaks a limit the whole period meets.
    timestamp
        The column of each row's time (default: ``data.timestamp``).
    window_limits
        Metric → limit checked per window: a ratio below it (or a difference above it) breaks it.
        Default: the four-fifths rule, ``demographic_parity_ratio: 0.8``.
    """

    positive_label: Label | None = None
    min_group_share: Annotated[Float, Field(ge=0, lt=1)] = DEFAULT_MIN_GROUP_SHARE
    bootstrap: Annotated[Int, Field(ge=0)] = 1000
    confidence: Annotated[Float, Field(gt=0, lt=1)] = 0.95
    intersections: Bool = True
    seed: Int | None = None
    counterfactual: CounterfactualOptions | None = None
    window: Literal["month", "week", "day"] | None = None
    timestamp: Str | None = None
    window_limits: dict[DisparityName, Float] = Field(default_factory=lambda: dict(FOUR_FIFTHS))


class FairnessAudit(Audit):
    """Group fairness of the eval predictions over the spec's sensitive attributes."""

    name = "fairness"
    requires_model = False

    def preflight(self, spec: Spec, data: DataBundle, options: Mapping[str, Any]) -> None:
        source = None if spec.source is None else str(spec.source)
        parse_options(FairnessOptions, options, source=source, where=WHERE)
        if data.sensitive:
            _sensitive_codes(data, source)
        counterfactual_options(options, data.eval, source=source)

    def run(self, context: AuditContext) -> AuditSection:
        source = None if context.spec.source is None else str(context.spec.source)
        options = parse_options(FairnessOptions, context.options, source=source, where=WHERE)
        bundle = context.data
        if not bundle.sensitive:
            return AuditSection(name=self.name, status=SectionStatus.SKIPPED, reason=SKIP_NO_SENSITIVE)
        seed = context.seed if options.seed is None else options.seed
        counted = context.counted
        if counted is not None:
            # A decision log counted by DuckDB or Spark: the same counts, no rows (issue 17).
            joint = counted.joint
            _check_counted_groups(joint, source)
            section = audit_counts(joint, options, seed=seed, source=source)
            if options.window is not None:
                if not (options.timestamp or getattr(context.spec.data, "timestamp", None)):
                    raise InputError(source, "audits.fairness.window", ERR_NO_TIMESTAMP)
                section = add_windows(section, counted.windows, options, source=source)
            return section
        classes, y_true, y_pred = class_codes(context.eval_predictions, bundle.classes)
        attr_codes, categories = _sensitive_codes(bundle, source)
        joint = JointCounts.from_codes(
            attr_codes, categories, y_true, y_pred, classes, attributes=bundle.sensitive
        )
        section = audit_counts(joint, options, seed=seed, source=source)
        if options.window is not None:
            windows = _memory_windows(
                context, options, attr_codes, categories, classes, y_true, y_pred, source
            )
            section = add_windows(section, windows, options, source=source)
        return add_counterfactual(section, context, source=source)


def _check_counted_groups(joint: JointCounts, source: str | None) -> None:
    for attr, names in zip(joint.attributes, joint.categories):
        if len(names) < 2:
            raise InputError(source, f"data.sensitive.{attr}", ERR_ONE_GROUP.format(group=names[0]))


def _memory_windows(
    context: AuditContext,
    options: FairnessOptions,
    attr_codes: list[NDArray[np.integer]],
    categories: list[tuple[str, ...]],
    classes: tuple[str, ...],
    y_true: NDArray[np.integer],
    y_pred: NDArray[np.integer],
    source: str | None,
) -> tuple[tuple[str, JointCounts], ...]:
    """Per-window counts of rows in memory: the window is one more axis of the joint table."""
    from governance.audit._engines import window_labels

    micros, missing = _eval_timestamps(context, options, source)
    if missing is not None and missing.any():
        raise InputError(
            source,
            options.timestamp or "data.timestamp",
            f"{int(missing.sum())} row(s) have no timestamp; every row of a windowed log needs one",
        )
    assert options.window is not None
    codes, labels = window_labels(micros, options.window)
    joint = JointCounts.from_codes(
        [codes, *attr_codes],
        [labels, *categories],
        y_true,
        y_pred,
        classes,
        attributes=["(window)", *context.data.sensitive],
    )
    return tuple(
        (label, JointCounts(joint.attributes[1:], joint.categories[1:], joint.classes, joint.counts[i]))
        for i, label in enumerate(labels)
    )


def _eval_timestamps(
    context: AuditContext, options: FairnessOptions, source: str | None
) -> tuple[NDArray[np.int64], NDArray[np.bool_] | None]:
    """Each eval row's time in µs (UTC): the loader's, or the eval frame's timestamp column."""
    bundle = context.data
    column = options.timestamp or getattr(context.spec.data, "timestamp", None)
    if column is None:
        raise InputError(source, "audits.fairness.window", ERR_NO_TIMESTAMP)
    if bundle.timestamps is not None:
        return np.asarray(bundle.timestamps), bundle.timestamps_missing
    if column not in bundle.eval:
        raise InputError(
            bundle.paths.get("eval") or source, column, "timestamp column missing from the eval data"
        )
    import pandas as pd

    values = pd.to_datetime(bundle.eval[column], utc=True, errors="coerce")
    missing = values.isna().to_numpy()
    micros = values.fillna(pd.Timestamp(0, tz="UTC")).astype("int64")  # ns; missing rows are masked
    return np.asarray(micros, dtype=np.int64) // 1000, (missing if missing.any() else None)


def add_windows(
    section: AuditSection,
    windows: tuple[tuple[str, JointCounts], ...],
    options: FairnessOptions,
    *,
    source: str | None = None,
) -> AuditSection:
    """Every disparity per time window (table ``windows``), the worst window per metric
    (``fairness.<attr>.<metric>.max_window``) and a finding per metric whose limit the whole period
    meets but some window breaks (a drift the period's average hides)."""
    from dataclasses import replace

    rows: list[dict[str, Any]] = []
    per: dict[tuple[str, str], list[tuple[str, float]]] = {}
    for label, joint in windows:
        k = len(joint.classes)
        pos = _positive_index(joint.classes, options, source)
        names: list[tuple[str, ...]] = [(a,) for a in joint.attributes]
        if options.intersections:
            names.extend(itertools.combinations(joint.attributes, 2))
        for attrs in names:
            table = joint.table(attrs)
            point = _metrics_of(table.counts, pos, k)
            qualifier = "*".join(_clean(a) for a in attrs)
            for m in DISPARITIES:
                value = float(point[m])
                rows.append(
                    {
                        "window": label,
                        "attribute": table.name,
                        "metric": m,
                        "value": _finite(value),
                        "rows": int(table.counts.sum()),
                    }
                )
                if np.isfinite(value):
                    per.setdefault((qualifier, m), []).append((label, value))
    metrics = dict(section.metrics)
    findings = list(section.findings)
    for (qualifier, m), values in per.items():
        worst_value = float(worst(m, np.array([v for _, v in values])))
        metrics[metric_id("fairness", qualifier, m) + ".max_window"] = worst_value
        limit = options.window_limits.get(m)  # type: ignore[call-overload]
        whole = section.metrics.get(metric_id("fairness", qualifier, m))
        if limit is None or whole is None:
            continue
        ratio = m.endswith("_ratio")
        breaks = [(w, v) for w, v in values if (v < limit if ratio else v > limit)]
        meets = whole >= limit if ratio else whole <= limit
        if breaks and meets:
            listed = ", ".join(f"{w} ({v:.3f})" for w, v in breaks)
            findings.append(
                Finding(
                    id=f"fairness.window_breach.{qualifier}.{m}",
                    severity=Severity.MAJOR,
                    message=(
                        f"{qualifier}: {m} is {whole:.3f} over the whole period, within the limit "
                        f"{limit}, but {len(breaks)} {options.window} window(s) break it: {listed}"
                    ),
                    audit="fairness",
                )
            )
    details = dict(section.details)
    details["window"] = {
        "unit": options.window,
        "windows": [label for label, _ in windows],
        "limits": dict(options.window_limits),
    }
    tables = dict(section.tables)
    tables["windows"] = rows
    return replace(section, metrics=metrics, tables=tables, details=details, findings=tuple(findings))


def _sensitive_codes(
    bundle: DataBundle, source: str | None
) -> tuple[list[NDArray[np.integer]], list[tuple[str, ...]]]:
    """Group codes of every sensitive attribute on eval; fewer than two groups is bad input."""
    if not bundle.sensitive:
        raise InputError(source, "data.sensitive", ERR_NO_SENSITIVE)
    attr_codes, categories = [], []
    for attr in bundle.sensitive:
        codes, names = group_codes(bundle.eval[attr])
        if len(names) < 2:
            raise InputError(source, f"data.sensitive.{attr}", ERR_ONE_GROUP.format(group=names[0]))
        attr_codes.append(codes)
        categories.append(names)
    return attr_codes, categories


def _positive_index(classes: tuple[str, ...], options: FairnessOptions, source: str | None) -> int | None:
    """Index of the favourable class for binary tasks; None for multiclass (one-vs-rest)."""
    if options.positive_label is not None:
        if options.positive_label not in classes:
            raise InputError(
                source,
                "audits.fairness.positive_label",
                ERR_POSITIVE.format(label=options.positive_label, classes=list(classes)),
            )
        return classes.index(options.positive_label)
    if len(classes) <= 2:
        return len(classes) - 1
    return None


def _metrics_of(
    counts: NDArray[np.integer], pos: int | None, n_classes: int
) -> dict[str, NDArray[np.float64]]:
    """Disparities of a (batched) table: binary at ``pos``, else worst over one-vs-rest classes."""
    if pos is not None:
        return disparities(counts, pos)
    per_class = [disparities(counts, c) for c in range(n_classes)]
    return {m: worst(m, np.stack([d[m] for d in per_class]), axis=0) for m in DISPARITIES}


def audit_counts(
    joint: JointCounts, options: FairnessOptions, *, seed: int, source: str | None = None
) -> AuditSection:
    """The fairness section from joint confusion counts (possibly merged from shards).

    Parameters
    ----------
    joint
        Confusion counts over the joint groups of every sensitive attribute.
    options
        Parsed ``audits.fairness`` options.
    seed
        Bootstrap seed.
    source
        The spec file, for error messages.
    """
    classes = joint.classes
    k = len(classes)
    pos = _positive_index(classes, options, source)
    names: list[tuple[str, ...]] = [(a,) for a in joint.attributes]
    if options.intersections:
        names.extend(itertools.combinations(joint.attributes, 2))
    tables = [joint.table(n) for n in names]
    total = joint.total

    replicates = None
    if options.bootstrap > 0:
        replicates = resample_counts(joint.counts, options.bootstrap, seed)

    metrics: dict[str, float | None] = {}
    group_rows: list[dict[str, Any]] = []
    disparity_rows: list[dict[str, Any]] = []
    findings: list[Finding] = []
    point_by_table: dict[str, dict[str, float]] = {}
    boot_by_table: dict[str, dict[str, NDArray[np.float64]]] = {}

    for table, attrs in zip(tables, names):
        point = {m: float(v) for m, v in _metrics_of(table.counts, pos, k).items()}
        point_by_table[table.name] = point
        if replicates is not None:
            axes = [joint.attributes.index(a) for a in attrs]
            boot_counts = reduce_joint(replicates, len(joint.attributes), axes)
            boot_by_table[table.name] = _metrics_of(boot_counts, pos, k)
        qualifier = "*".join(_clean(a) for a in attrs)
        for m in DISPARITIES:
            mid = metric_id("fairness", qualifier, m)
            metrics[mid] = _finite(point[m])
            lo, hi = _interval(boot_by_table.get(table.name, {}).get(m), options.confidence)
            disparity_rows.append(
                {
                    "attribute": table.name,
                    "metric": m,
                    "value": _finite(point[m]),
                    "ci_low": lo,
                    "ci_high": hi,
                }
            )
        group_rows.extend(_group_rows(table, pos, total, options.min_group_share))
        findings.extend(_group_findings(table, total, options.min_group_share))

    for m in DISPARITIES:
        values = np.array([point_by_table[t.name][m] for t in tables])
        worst_value = float(worst(m, values))
        metrics[metric_id("fairness", "worst", m)] = _finite(worst_value)
        finite = np.where(np.isfinite(values))[0]
        at = None
        if finite.size:
            pick = np.nanargmin(values) if m == "demographic_parity_ratio" else np.nanargmax(values)
            at = tables[int(pick)].name
        lo = hi = None
        if boot_by_table:
            stacked = np.stack([boot_by_table[t.name][m] for t in tables])
            lo, hi = _interval(worst(m, stacked, axis=0), options.confidence)
        disparity_rows.append(
            {
                "attribute": "worst",
                "metric": m,
                "value": _finite(worst_value),
                "ci_low": lo,
                "ci_high": hi,
                "from": at,
            }
        )

    details = {
        "rows": total,
        "classes": list(classes),
        "positive_label": None if pos is None else classes[pos],
        "mode": "binary" if pos is not None else "one_vs_rest",
        "attributes": list(joint.attributes),
        "intersections": [t.name for t in tables if len(t.attributes) > 1],
        "min_group_share": options.min_group_share,
        "bootstrap": {
            "replicates": options.bootstrap,
            "confidence": options.confidence,
            "seed": seed,
            "method": "multinomial resampling of joint confusion counts (exact row bootstrap)",
        },
        "conventions": "fairlearn 0.15: a rate with an empty denominator is 0; empty groups are skipped",
    }
    return AuditSection(
        name="fairness",
        metrics=metrics,
        tables={"groups": group_rows, "disparities": disparity_rows},
        details=details,
        findings=tuple(findings),
    )


def _clean(attr: str) -> str:
    return metric_id("fairness", attr, "x").split(".")[1]


def _finite(value: float) -> float | None:
    return value if np.isfinite(value) else None


def _interval(values: NDArray[np.float64] | None, confidence: float) -> tuple[float | None, float | None]:
    if values is None:
        return None, None
    return percentile_interval(np.asarray(values, dtype=np.float64), confidence)


def _group_rows(table: GroupTable, pos: int | None, total: int, min_share: float) -> list[dict[str, Any]]:
    sizes = table.sizes
    classes = table.classes
    per_class = {c: group_rates(table.counts, i) for i, c in enumerate(classes)}
    headline = per_class[classes[pos]] if pos is not None else None
    rows: list[dict[str, Any]] = []
    for g, values in enumerate(table.groups):
        n = int(sizes[g])
        if n == 0 and len(table.attributes) == 1:
            continue
        row: dict[str, Any] = {
            "attribute": table.name,
            "group": "*".join(values),
            "values": dict(zip(table.attributes, values)),
            "count": n,
            "share": n / total if total else None,
            "small": 0 < n < min_share * total,
            "empty": n == 0,
        }
        if headline is not None:
            for rate in GROUP_RATES:
                row[rate] = _finite(float(headline[rate][g]))
        else:
            row["accuracy"] = _finite(float(per_class[classes[0]]["accuracy"][g]))
            row["selection_rate"] = {c: _finite(float(per_class[c]["selection_rate"][g])) for c in classes}
            for rate in GROUP_RATES[1:-1]:
                row[rate] = {c: _finite(float(per_class[c][rate][g])) for c in classes}
        actual = table.counts[g].sum(axis=1)
        row["positives"] = {c: int(actual[i]) for i, c in enumerate(classes)}
        rows.append(row)
    return rows


def _group_findings(table: GroupTable, total: int, min_share: float) -> list[Finding]:
    sizes = table.sizes
    small = [(g, int(n)) for g, n in zip(table.groups, sizes) if 0 < n < min_share * total]
    out = []
    if small:
        listed = ", ".join(f"{'*'.join(g)} (n={n})" for g, n in small)
        out.append(
            Finding(
                id=f"fairness.small_groups.{table.name}",
                severity=Severity.MINOR,
                message=(
                    f"{table.name}: {len(small)} group(s) under {min_share:.0%} of {total} rows, kept and "
                    f"flagged (NYC LL144 §5-301(d) would allow excluding them): {listed}"
                ),
                audit="fairness",
            )
        )
    one_class = [
        g for g, n, c in zip(table.groups, sizes, table.counts) if n > 0 and (c.sum(axis=1) > 0).sum() < 2
    ]
    if one_class:
        listed = ", ".join("*".join(g) for g in one_class)
        out.append(
            Finding(
                id=f"fairness.one_class_groups.{table.name}",
                severity=Severity.INFO,
                message=(
                    f"{table.name}: group(s) with a single true class ({listed}); their TPR or FPR is "
                    "undefined and counted as 0, as fairlearn does"
                ),
                audit="fairness",
            )
        )
    return out
