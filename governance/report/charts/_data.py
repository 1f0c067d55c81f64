"""Defensive readers of ``results.json`` sections for the charts.

The audits own their table layouts; the charts read them here, in one place, and treat every
missing or malformed piece as "no data" (the chart is omitted with a note) rather than as a crash.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from governance.results import AuditSection, Results, SectionStatus

__all__ = ["NoData", "ci", "details", "num", "ok_section", "rows", "text"]


class NoData(Exception):
    """The results do not hold what a chart needs; the message says what is missing."""


def ok_section(results: Results, name: str) -> AuditSection:
    """The section ``name`` if the audit ran to completion."""
    section = results.sections.get(name)
    if section is None:
        raise NoData(f"the {name} audit was not run")
    if section.status is not SectionStatus.OK:
        raise NoData(f"the {name} audit ended {section.status.value}")
    return section


def rows(section: AuditSection, *names: str, need: Iterable[str] = ()) -> list[Mapping[str, Any]]:
    """The first non-empty table among ``names`` whose rows are objects holding every key in ``need``."""
    wanted = tuple(need)
    for name in names:
        table = section.tables.get(name)
        if not isinstance(table, Sequence) or isinstance(table, str) or not table:
            continue
        good = [r for r in table if isinstance(r, Mapping) and all(k in r for k in wanted)]
        if good:
            return good
    listed = " or ".join(f"tables.{n}" for n in names)
    raise NoData(
        f"sections.{section.name} has no {listed}" + (f" with {', '.join(wanted)}" if wanted else "")
    )


def details(section: AuditSection, *path: str) -> Any:
    """``section.details[path[0]][path[1]]…``, or :class:`NoData`."""
    node: Any = section.details
    for key in path:
        if not isinstance(node, Mapping) or key not in node:
            raise NoData(f"sections.{section.name}.details has no {'.'.join(path)}")
        node = node[key]
    return node


def num(row: Mapping[str, Any], *keys: str) -> float | None:
    """The first of ``keys`` in ``row`` holding a finite number."""
    for key in keys:
        value = row.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float) and math.isfinite(value):
            return float(value)
    return None


def ci(row: Mapping[str, Any], metric: str) -> tuple[float, float] | None:
    """The confidence interval of ``metric`` in a row, in any of the layouts the audits may use.

    ``<m>_ci_low``/``<m>_ci_high``, ``<m>_lo``/``<m>_hi``, ``<m>_lower``/``<m>_upper`` or
    ``<m>_ci: [low, high]``.
    """
    for lo_key, hi_key in (("_ci_low", "_ci_high"), ("_lo", "_hi"), ("_lower", "_upper"), ("_low", "_high")):
        lo, hi = num(row, metric + lo_key), num(row, metric + hi_key)
        if lo is not None and hi is not None:
            return lo, hi
    pair = row.get(metric + "_ci")
    if isinstance(pair, Sequence) and not isinstance(pair, str) and len(pair) == 2:
        lo, hi = num({"v": pair[0]}, "v"), num({"v": pair[1]}, "v")
        if lo is not None and hi is not None:
            return lo, hi
    return None


def text(value: Any) -> str:
    """A group or feature name as a string, as it appears in the data."""
    return "" if value is None else str(value)
