"""Readers of ``results.json`` sections for the charts.

The audits declare their tables as typed records (:mod:`governance.tables`); the charts read
them here, through those types only, and treat every missing or malformed piece as "no data"
(the chart is omitted with a note) rather than as a crash.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, TypeVar

from governance.results import AuditSection, Results, SectionStatus
from governance.tables import Record, read

__all__ = ["NoData", "ci", "details", "num", "ok_section", "table", "text"]

R = TypeVar("R", bound=Record)


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


def table(section: AuditSection, name: str, record: type[R]) -> list[R]:
    """``sections.<audit>.tables.<name>`` as ``record`` rows (malformed rows skipped), or :class:`NoData`.

    ``record`` must be the type the audit declares for that table
    (:class:`governance.tables.UndeclaredTableError` otherwise: a bug, not missing data).
    """
    found = read(section.tables, section.name, name, record)
    if not found:
        raise NoData(f"sections.{section.name} has no tables.{name}")
    return found


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
    """The confidence interval ``<metric>_ci_low`` / ``<metric>_ci_high`` of a row (the audits' one layout)."""
    lo, hi = num(row, metric + "_ci_low"), num(row, metric + "_ci_high")
    return None if lo is None or hi is None else (lo, hi)


def text(value: Any) -> str:
    """A group or feature name as a string, as it appears in the data."""
    return "" if value is None else str(value)
