"""Waivers: an approved, dated exception to one rule (optionally to one metric of a glob rule)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

from governance.errors import InputError
from governance.policy.loader import read_yaml

__all__ = ["Waiver", "load_waivers", "parse_waivers"]

ERR_DATE = "expected a date YYYY-MM-DD, got {got!r}"
_FIELDS = frozenset({"rule", "metric", "reason", "approver", "expires"})


@dataclass(frozen=True)
class Waiver:
    """``rule`` may fail until ``expires`` (inclusive) because ``approver`` accepted ``reason``."""

    rule: str
    reason: str
    approver: str
    expires: dt.date
    metric: str | None = None
    source: str = ""

    def is_expired(self, today: dt.date) -> bool:
        return today > self.expires

    def covers(self, rule_id: str, metric: str) -> bool:
        return self.rule == rule_id and (self.metric is None or self.metric == metric)


def load_waivers(path: str | PathLike[str]) -> tuple[Waiver, ...]:
    """Read a waivers file: a YAML/JSON list of waivers, or a mapping with a ``waivers`` list.

    Raises
    ------
    InputError
        For a missing file, bad YAML, or a waiver without rule, reason, approver or a valid
        ``expires`` date.
    """
    location = Path(path)
    raw = read_yaml(location, what="a waivers file (YAML or JSON)")
    return parse_waivers(raw, source=str(location))


def parse_waivers(raw: Any, *, source: str) -> tuple[Waiver, ...]:
    if isinstance(raw, Mapping) and "waivers" in raw:
        raw = raw["waivers"]
    if raw is None:
        return ()
    if not isinstance(raw, Sequence) or isinstance(raw, str):
        raise InputError(source, "waivers", "expected a list of {rule, reason, approver, expires} entries")
    return tuple(_parse_one(entry, source=source, where=f"waivers[{i}]") for i, entry in enumerate(raw))


def _parse_one(entry: Any, *, source: str, where: str) -> Waiver:
    if not isinstance(entry, Mapping):
        raise InputError(source, where, "expected a mapping with rule, reason, approver, expires")
    unknown = sorted(set(entry) - _FIELDS)
    if unknown:
        raise InputError(source, f"{where}.{unknown[0]}", f"unknown field; expected one of {sorted(_FIELDS)}")
    for name in ("rule", "reason", "approver"):
        value = entry.get(name)
        if not isinstance(value, str) or not value.strip():
            message = "required field is missing" if value is None else "expected a non-empty string"
            raise InputError(source, f"{where}.{name}", message)
    if "expires" not in entry or entry["expires"] is None:
        raise InputError(source, f"{where}.expires", "required field is missing; expected a date YYYY-MM-DD")
    metric = entry.get("metric")
    if metric is not None and not isinstance(metric, str):
        raise InputError(source, f"{where}.metric", "expected a metric ID")
    return Waiver(
        rule=entry["rule"].strip(),
        reason=" ".join(entry["reason"].split()),
        approver=entry["approver"].strip(),
        expires=_parse_date(entry["expires"], source=source, field=f"{where}.expires"),
        metric=metric,
        source=source,
    )


def _parse_date(value: Any, *, source: str, field: str) -> dt.date:
    # YAML turns an unquoted 2026-12-31 into a date; JSON and quoted YAML give a string.
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str) and len(value) == 10:
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise InputError(source, field, ERR_DATE.format(got=value))
