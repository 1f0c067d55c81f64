"""The tables each audit writes into ``results.json``, declared as typed records.

An audit writes ``sections.<audit>.tables.<name>`` as a list of JSON objects; this module says,
for every (audit, table), which record a row is. The report's charts and Annex read tables only
through :func:`read`, which takes the record type, so a chart can ask only for a table that an
audit declares; ``tests/test_tables.py`` checks both sides: every table an audit writes is
declared here, and every table the report reads is too. A renamed table then fails a test
instead of silently becoming "chart omitted".

A record names the fields a reader relies on; a row may carry more (they are ignored). A field
without a default is required: a row lacking it, or holding a value of the wrong kind (a
string for a number, NaN written as null), is skipped by :func:`read`, so a hand-edited or
older results file degrades to "no data" rather than a crash. Pure Python, no third-party
import: ``governance check`` loads it.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = [
    "DETAILS",
    "LEDGER_TABLES",
    "TABLES",
    "BaselineScore",
    "CompressionVariant",
    "ConfusionCell",
    "Disparity",
    "DropGap",
    "EpochRecord",
    "FeatureAttribution",
    "FrontierSetting",
    "GroupFeatureAttribution",
    "GroupRates",
    "GroupRobustAccuracy",
    "GroupShare",
    "MembershipInference",
    "MetricChange",
    "PairedGroupAccuracy",
    "Record",
    "RobustAccuracy",
    "RocPoint",
    "UndeclaredTableError",
    "WindowMetric",
    "declared",
    "parse_rows",
    "read",
    "read_detail",
    "read_ledger",
]

R = TypeVar("R", bound="Record")


class UndeclaredTableError(LookupError):
    """A reader asked for a record type that no audit declares (a programming error, not bad data)."""


@dataclass(frozen=True)
class Record:
    """Base of every table row type."""

    @classmethod
    def from_row(cls: type[R], row: Any) -> R | None:
        """The record of one JSON row, or None when a required field is missing or of the wrong kind."""
        if not isinstance(row, Mapping):
            return None
        hints = typing.get_type_hints(cls)
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            raw = row.get(f.name)
            value = _coerce(raw, hints[f.name])
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            if value is _BAD:
                if required:
                    return None
                continue
            if value is None and required:
                return None
            values[f.name] = value
        return cls(**values)


_BAD = object()


def _coerce(raw: Any, hint: Any) -> Any:
    """``raw`` as the field type ``hint`` (str, float, int, bool, Mapping, or ``X | None``), or _BAD."""
    if raw is None:
        return None
    args = typing.get_args(hint)
    base = next((a for a in args if a is not type(None)), hint) if args else hint
    origin = typing.get_origin(base) or base
    if base is str:
        return raw if isinstance(raw, str) else str(raw) if isinstance(raw, int | float) else _BAD
    if base is bool:
        return raw if isinstance(raw, bool) else _BAD
    if base in (float, int):
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
            return _BAD
        return base(raw)
    if origin in (Mapping, dict):
        return raw if isinstance(raw, Mapping) else _BAD
    return raw


# --- data_quality ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupShare(Record):
    """``data_quality.groups``: one group of a sensitive attribute in the data."""

    attribute: str
    group: str
    rows: float | None = None
    share: float | None = None
    label_rate: float | None = None
    split: str | None = None


@dataclass(frozen=True)
class MissingValues(Record):
    """``data_quality.missing``: missing values of one column in one split."""

    column: str
    split: str | None = None
    missing: float | None = None
    rate: float | None = None


@dataclass(frozen=True)
class ConstantColumn(Record):
    """``data_quality.constant_columns``."""

    column: str


@dataclass(frozen=True)
class LabelShare(Record):
    """``data_quality.labels``: rows per class."""

    rows: float
    share: float | None = None


@dataclass(frozen=True)
class PiiColumn(Record):
    """``data_quality.pii``: a column that looks like personal data."""

    column: str


# --- performance ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfusionCell(Record):
    """``performance.confusion_matrix_<split>``: rows of true class ``true`` predicted as ``pred``."""

    true: str
    pred: str
    count: float


@dataclass(frozen=True)
class ClassScores(Record):
    """``performance.per_class``."""

    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    support: float | None = None


@dataclass(frozen=True)
class SplitScores(Record):
    """``performance.splits``: the headline metrics of one split."""

    split: str
    accuracy: float | None = None
    rows: float | None = None


# --- fairness -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GroupRates(Record):
    """``fairness.groups``: outcome rates of one group of one sensitive attribute (or intersection)."""

    attribute: str
    group: str
    count: float | None = None
    selection_rate: float | None = None
    true_positive_rate: float | None = None
    false_positive_rate: float | None = None
    positives: Mapping[str, Any] | None = None
    empty: bool | None = None


@dataclass(frozen=True)
class Disparity(Record):
    """``fairness.disparities``: a between-group difference or ratio with its bootstrap interval."""

    attribute: str
    metric: str
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None


@dataclass(frozen=True)
class CounterfactualTerm(Record):
    """``fairness.counterfactual_by_term``: identity-term swaps (text models)."""

    term: str
    pairs: float | None = None
    flip_rate: float | None = None


# --- attribution ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureAttribution(Record):
    """``attribution.importance``: mean |attribution| of one feature over the eval rows."""

    feature: str
    mean_abs_attribution: float
    sensitive: bool | None = None
    proxy: bool | None = None


@dataclass(frozen=True)
class GroupFeatureAttribution(Record):
    """``attribution.importance_by_group``: the same, within one group."""

    attribute: str
    group: str
    feature: str
    mean_abs_attribution: float


@dataclass(frozen=True)
class ProxyFeature(Record):
    """``attribution.proxies``: a feature that predicts a sensitive attribute."""

    feature: str
    sensitive: str
    auc: float | None = None


@dataclass(frozen=True)
class SensitiveShare(Record):
    """``attribution.sensitive_share_by_group``: attribution share on identity terms (text models)."""

    attribute: str
    group: str
    sensitive_share: float | None = None


# --- robustness -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RobustAccuracy(Record):
    """``robustness.accuracy``: accuracy under one perturbation at one level (ε or noise σ)."""

    perturbation: str
    level: float
    accuracy: float


@dataclass(frozen=True)
class GroupRobustAccuracy(Record):
    """``robustness.accuracy_by_group``: the same within one group."""

    attribute: str
    group: str
    perturbation: str
    level: float
    accuracy: float
    clean_accuracy: float | None = None


# --- privacy --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MembershipInference(Record):
    """``privacy.membership_inference``: one attack's results."""

    attack: str
    auc: float
    auc_ci_low: float | None = None
    auc_ci_high: float | None = None
    epsilon_lower_bound: float | None = None


@dataclass(frozen=True)
class RocPoint(Record):
    """A point of ``privacy.details.roc.<attack>``."""

    fpr: float
    tpr: float


@dataclass(frozen=True)
class WindowMetric(Record):
    """``fairness.windows``: one disparity metric of one attribute in one monitoring window."""

    window: str
    attribute: str
    metric: str
    value: float | None = None
    rows: float | None = None


# --- baselines, privacy cost, compression, mitigation (paired comparisons) ------------------------


@dataclass(frozen=True)
class BaselineScore(Record):
    """``performance.baselines``: a trivial model on the same rows, and the model's lift over it."""

    baseline: str
    accuracy: float
    model_accuracy: float | None = None
    lift: float | None = None
    lift_ci_low: float | None = None
    lift_ci_high: float | None = None
    fitted_on: str | None = None


@dataclass(frozen=True)
class PairedGroupAccuracy(Record):
    """``privacy_cost.groups`` / ``compression.groups``: one group's accuracy under both models.

    ``accuracy_drop`` is reference − candidate (the non-private twin or fp32 first), with the paired
    bootstrap interval of the drop; ``variant`` names the compressed variant (compression only).
    """

    attribute: str
    group: str
    accuracy_drop: float
    rows: float | None = None
    variant: str | None = None
    drop_ci_low: float | None = None
    drop_ci_high: float | None = None
    disagreement_rate: float | None = None
    mcnemar_p: float | None = None


@dataclass(frozen=True)
class DropGap(Record):
    """``privacy_cost.gaps``: the largest minus the smallest group accuracy drop of an attribute."""

    attribute: str
    accuracy_drop_gap: float
    ci_low: float | None = None
    ci_high: float | None = None


@dataclass(frozen=True)
class CompressionVariant(Record):
    """``compression.variants``: one variant as built, saved and timed (fp32 is the reference)."""

    variant: str
    size_bytes: float
    method: str | None = None
    accuracy: float | None = None
    accuracy_drop: float | None = None
    worst_group_accuracy_drop: float | None = None
    disagreement_rate: float | None = None
    latency_ms_p50_batch1: float | None = None
    latency_ms_p95_batch1: float | None = None


@dataclass(frozen=True)
class MetricChange(Record):
    """``mitigation.changes``: one metric before and after mitigation on the held-out rows."""

    metric: str
    before: float | None = None
    after: float | None = None
    difference: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    targeted: bool | None = None
    worse: bool | None = None


@dataclass(frozen=True)
class FrontierSetting(Record):
    """``mitigation.frontier``: one setting of the sweep (accuracy against the targeted disparity)."""

    knob: str
    accuracy: float
    disparity: float
    value: float | None = None
    target_value: float | None = None
    meets_target: bool | None = None
    dominated: bool | None = None
    chosen: bool | None = None


@dataclass(frozen=True)
class ReweighCell(Record):
    """``mitigation.weights``: one group × label cell of the train rows and its Kamiran-Calders weight."""

    group: str
    label: str
    rows: int
    weight: float


# --- training ledger --------------------------------------------------------------------------------


@dataclass(frozen=True)
class EpochRecord(Record):
    """``run.training.history``: one epoch of the training ledger (ε only when trained with DP)."""

    epoch: float
    epsilon: float | None = None


#: audit → table name → record. Performance writes one confusion matrix per split.
TABLES: dict[str, dict[str, type[Record]]] = {
    "data_quality": {
        "groups": GroupShare,
        "missing": MissingValues,
        "constant_columns": ConstantColumn,
        "labels": LabelShare,
        "pii": PiiColumn,
    },
    "performance": {
        "confusion_matrix_eval": ConfusionCell,
        "confusion_matrix_train": ConfusionCell,
        "per_class": ClassScores,
        "splits": SplitScores,
        "baselines": BaselineScore,
    },
    "fairness": {
        "groups": GroupRates,
        "disparities": Disparity,
        "counterfactual_by_term": CounterfactualTerm,
        "windows": WindowMetric,
    },
    "attribution": {
        "importance": FeatureAttribution,
        "importance_by_group": GroupFeatureAttribution,
        "proxies": ProxyFeature,
        "sensitive_share_by_group": SensitiveShare,
    },
    "robustness": {"accuracy": RobustAccuracy, "accuracy_by_group": GroupRobustAccuracy},
    "privacy": {"membership_inference": MembershipInference},
    "privacy_cost": {"groups": PairedGroupAccuracy, "gaps": DropGap},
    "compression": {"variants": CompressionVariant, "groups": PairedGroupAccuracy},
    "mitigation": {"changes": MetricChange, "frontier": FrontierSetting, "weights": ReweighCell},
}
#: Structured ``details`` the report reads as records: (audit, key) → record of each list item.
DETAILS: dict[tuple[str, str], type[Record]] = {("privacy", "roc"): RocPoint}
#: Tables of the training ledger (``run.training``), written by ``governance train``.
LEDGER_TABLES: dict[str, type[Record]] = {"history": EpochRecord}


def declared(audit: str, name: str) -> type[Record] | None:
    """The record of ``sections.<audit>.tables.<name>``, or None if no audit declares that table."""
    return TABLES.get(audit, {}).get(name)


def parse_rows(rows: Any, record: type[R]) -> list[R]:
    """The rows that parse as ``record`` (the others are skipped)."""
    if not isinstance(rows, Sequence) or isinstance(rows, str):
        return []
    return [r for r in (record.from_row(x) for x in rows) if r is not None]


def read(tables: Mapping[str, Any], audit: str, name: str, record: type[R]) -> list[R]:
    """``tables[name]`` of ``audit`` as ``record`` rows; :class:`UndeclaredTableError` if not declared so."""
    if declared(audit, name) is not record:
        raise UndeclaredTableError(f"no audit declares sections.{audit}.tables.{name} as {record.__name__}")
    return parse_rows(tables.get(name), record)


def read_detail(details: Mapping[str, Any], audit: str, key: str, record: type[R]) -> dict[str, list[R]]:
    """``details[key]`` of ``audit``, a mapping name → list of rows, as ``record`` rows per name."""
    if DETAILS.get((audit, key)) is not record:
        raise UndeclaredTableError(f"no audit declares sections.{audit}.details.{key} as {record.__name__}")
    raw = details.get(key)
    if not isinstance(raw, Mapping):
        return {}
    return {str(name): parse_rows(rows, record) for name, rows in raw.items()}


def read_ledger(ledger: Mapping[str, Any], name: str, record: type[R]) -> list[R]:
    """``run.training.<name>`` of the training ledger as ``record`` rows."""
    if LEDGER_TABLES.get(name) is not record:
        raise UndeclaredTableError(f"the training ledger declares no {name} table of {record.__name__}")
    return parse_rows(ledger.get(name), record)
