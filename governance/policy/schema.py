"""Policy packs as typed objects, validated field by field so errors name file, rule and field.

Hand-written validation rather than pydantic: ``governance check`` sits on every CI run and
must start fast, and these messages are part of the contract (tests assert on them).
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from governance.errors import InputError
from governance.metrics_catalog import catalog_audits, is_known_metric, suggest
from governance.results import Severity

__all__ = ["OPS", "OnMissing", "Policy", "Rule", "ThresholdSource", "parse_rule"]

E = TypeVar("E", bound=StrEnum)


def _approx_eq(a: float, b: float) -> bool:
    # Metrics travel through JSON and float arithmetic; exact equality would make `==` rules flaky.
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


#: The six comparison operators: measured value OP threshold must hold for a PASS.
OPS: Mapping[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": _approx_eq,
    "!=": lambda a, b: not _approx_eq(a, b),
}

ERR_OP = "expected one of < <= > >= == !=, got {got!r}"
ERR_THRESHOLD = "expected a number, got {got!r}"
ERR_METRIC = (
    "expected a metric ID or glob <audit>.<qualifiers>.<metric> whose audit is one of {audits}, got {got!r}"
)
ERR_REQUIRED = "required field is missing"
ERR_UNKNOWN_METRIC = (
    "no audit emits {got!r}{hint}; a rule on it could never be evaluated, whatever its on_missing "
    "(`governance policy metrics` lists the IDs)"
)

# Glob characters are allowed; the first segment must name an audit so typos fail at lint time.
_METRIC_PATTERN = re.compile(r"^(?P<audit>[a-z_]+)(\.[a-z0-9_*?\[\]\-!]+)+$")
_RULE_ID = re.compile(r"^[A-Za-z0-9_.\-:]+$")
_RULE_FIELDS = frozenset(
    {
        "id",
        "title",
        "metric",
        "op",
        "threshold",
        "threshold_source",
        "severity",
        "on_missing",
        "refs",
        "rationale",
        "description",
    }
)
# `max_regression` (issue 14): how much the metric may worsen against `check --baseline`.
_RULE_FIELDS |= {"max_regression"}


class OnMissing(StrEnum):
    """What a rule does when its metric is absent from the results."""

    FAIL = "fail"
    WARN = "warn"
    SKIP = "skip"


class ThresholdSource(StrEnum):
    """Who set a rule's number: a reader must not take a pack's choice for a legal limit.

    The EU AI Act, for one, sets no numeric thresholds: a rule citing it holds the Act's
    obligation, while the number is this pack's (``pack``). ``regulation`` is for numbers a law
    or rule itself fixes (EEOC's four-fifths, 29 CFR 1607.4(D)); ``standard`` for numbers
    fixed by a published standard.
    """

    REGULATION = "regulation"
    STANDARD = "standard"
    PACK = "pack"

    @property
    def note(self) -> str:
        """The words reports print beside the refs ("" where the regulation sets the number)."""
        return _SOURCE_NOTES[self]


_SOURCE_NOTES: Mapping[ThresholdSource, str] = {
    ThresholdSource.REGULATION: "",
    ThresholdSource.STANDARD: "threshold set by a cited standard, not by regulation",
    ThresholdSource.PACK: "threshold chosen by this pack",
}

ERR_THRESHOLD_SOURCE_MISSING = (
    "required field is missing; add `threshold_source: pack` to this rule "
    "(or `regulation` where a law fixes the number, `standard` where a published standard does)"
)


@dataclass(frozen=True)
class Rule:
    """One rule: ``metric op threshold`` must hold; ``refs`` cite the regulation it serves."""

    id: str
    title: str
    metric: str
    op: str
    threshold: float
    severity: Severity = Severity.MAJOR
    on_missing: OnMissing = OnMissing.FAIL
    refs: tuple[str, ...] = ()
    rationale: str | None = None
    #: The policy file the rule was defined in (differs from the policy's own for inherited rules).
    source: str = ""
    #: Who set ``threshold`` (required in policy files; see :class:`ThresholdSource`).
    threshold_source: ThresholdSource = ThresholdSource.PACK
    #: False when the policy file left the field out (allowed by `check`, refused by `policy validate`).
    threshold_source_declared: bool = True
    #: How far the metric may worsen against a baseline (``check --baseline``), in the direction
    #: the rule's op says is worse; None: no regression rule.
    max_regression: float | None = None

    @property
    def higher_is_better(self) -> bool | None:
        """True for ``>``/``>=`` rules, False for ``<``/``<=``, None when the op has no direction."""
        return {">": True, ">=": True, "<": False, "<=": False}.get(self.op)

    @property
    def is_glob(self) -> bool:
        return any(ch in self.metric for ch in "*?[")

    def holds(self, value: float) -> bool:
        return OPS[self.op](value, self.threshold)


@dataclass(frozen=True)
class Policy:
    """A resolved policy pack: its own rules merged over those of the packs it extends."""

    name: str
    version: str
    rules: tuple[Rule, ...]
    source: str
    sha256: str
    extends: tuple[str, ...] = ()
    description: str | None = None

    def rule(self, rule_id: str) -> Rule | None:
        return next((r for r in self.rules if r.id == rule_id), None)


def parse_rule(raw: Any, *, source: str, where: str) -> Rule:
    """Validate one rule mapping; raise :class:`InputError` naming ``source`` and ``where.field``."""
    if not isinstance(raw, Mapping):
        raise InputError(source, where, "expected a mapping with id, metric, op, threshold")
    rule_id = raw.get("id")
    if not isinstance(rule_id, str) or not rule_id:
        raise InputError(
            source, f"{where}.id", ERR_REQUIRED if rule_id is None else "expected a non-empty string"
        )
    if not _RULE_ID.match(rule_id):
        raise InputError(source, f"{where}.id", f"expected letters, digits and . _ - : only, got {rule_id!r}")
    here = f"rules[{rule_id}]"
    unknown = sorted(set(raw) - _RULE_FIELDS)
    if unknown:
        raise InputError(
            source, f"{here}.{unknown[0]}", f"unknown field; expected one of {sorted(_RULE_FIELDS)}"
        )

    metric = raw.get("metric")
    if metric is None:
        raise InputError(source, f"{here}.metric", ERR_REQUIRED)
    match = _METRIC_PATTERN.match(metric) if isinstance(metric, str) else None
    if match is None or match.group("audit") not in catalog_audits():
        raise InputError(
            source, f"{here}.metric", ERR_METRIC.format(audits=", ".join(catalog_audits()), got=metric)
        )
    if not is_known_metric(metric):
        close = suggest(metric)
        hint = f" (did you mean {close!r}?)" if close else ""
        raise InputError(source, f"{here}.metric", ERR_UNKNOWN_METRIC.format(got=metric, hint=hint))

    op = raw.get("op")
    if op is None:
        raise InputError(source, f"{here}.op", ERR_REQUIRED)
    if op not in OPS:
        raise InputError(source, f"{here}.op", ERR_OP.format(got=op))

    if "threshold" not in raw:
        raise InputError(source, f"{here}.threshold", ERR_REQUIRED)
    threshold = _number(raw["threshold"])
    if threshold is None:
        raise InputError(source, f"{here}.threshold", ERR_THRESHOLD.format(got=raw["threshold"]))

    # CONTRACT §7's policies predate the field: `check` reads a rule without it as the pack's own
    # number (the cautious reading); `policy validate` rejects it (see Rule.threshold_source_declared).
    threshold_source = _enum(
        ThresholdSource,
        raw.get("threshold_source", ThresholdSource.PACK.value),
        source,
        f"{here}.threshold_source",
    )

    severity = _enum(Severity, raw.get("severity", Severity.MAJOR.value), source, f"{here}.severity")
    on_missing = _enum(OnMissing, raw.get("on_missing", OnMissing.FAIL.value), source, f"{here}.on_missing")

    refs_raw = raw.get("refs", [])
    if isinstance(refs_raw, str):
        refs_raw = [refs_raw]
    if not isinstance(refs_raw, list) or not all(isinstance(r, str) and r for r in refs_raw):
        raise InputError(source, f"{here}.refs", "expected a list of citation strings")

    title = raw.get("title", rule_id)
    rationale = raw.get("rationale")
    for name, value in (("title", title), ("rationale", rationale)):
        if value is not None and not isinstance(value, str):
            raise InputError(source, f"{here}.{name}", "expected a string")

    max_regression = None
    if raw.get("max_regression") is not None:
        max_regression = _number(raw["max_regression"])
        if max_regression is None or max_regression < 0 or OPS[op] in (OPS["=="], OPS["!="]):
            raise InputError(
                source,
                f"{here}.max_regression",
                f"expected a number >= 0 on a rule whose op is < <= > >=, got {raw['max_regression']!r}",
            )

    return Rule(
        id=rule_id,
        title=str(title).strip(),
        metric=metric,
        op=op,
        threshold=threshold,
        severity=severity,
        on_missing=on_missing,
        refs=tuple(refs_raw),
        rationale=None if rationale is None else " ".join(rationale.split()),
        source=source,
        threshold_source=threshold_source,
        threshold_source_declared="threshold_source" in raw,
        max_regression=max_regression,
    )


def _number(value: Any) -> float | None:
    # PyYAML reads `1e-5` (no dot) as a string: accept numeric strings, reject everything else.
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _enum(kind: type[E], value: Any, source: str, field: str) -> E:
    try:
        return kind(value)
    except ValueError:
        choices = " | ".join(m.value for m in kind)
        raise InputError(source, field, f"expected one of {choices}, got {value!r}") from None
