"""Wording and number formatting shared by every report format (one place, so HTML and Markdown agree)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["AUDIT_TITLES", "audit_title", "fmt_number", "humanize"]

#: Reader-facing titles of the audits, in report order.
AUDIT_TITLES: dict[str, str] = {
    "data_quality": "Data quality",
    "performance": "Performance",
    "fairness": "Fairness",
    "attribution": "Explainability (attributions)",
    "robustness": "Robustness",
    "privacy": "Privacy",
    "privacy_cost": "What privacy cost each group",
    "compression": "What compression costs each group",
    "mitigation": "Fairness mitigation",
}


def audit_title(name: str) -> str:
    """The heading of an audit section; unknown (third-party) audits get a readable form of their name."""
    return AUDIT_TITLES.get(name, humanize(name))


def humanize(name: str) -> str:
    """``"demographic_parity_ratio"`` → ``"Demographic parity ratio"``."""
    text = str(name).replace("_", " ").strip()
    return text[:1].upper() + text[1:]


def fmt_number(value: Any, digits: int = 4) -> str:
    """A number as a reviewer reads it: up to ``digits`` significant decimals, "n/a" when undefined.

    Examples
    --------
    >>> fmt_number(0.74612345)
    '0.7461'
    >>> fmt_number(None)
    'n/a'
    >>> fmt_number(1e-05)
    '1e-05'
    >>> fmt_number(800)
    '800'
    """
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return "n/a"
        if value == 0:
            return "0"
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        if abs(value) < 10 ** (-digits + 1):
            return f"{value:.{max(digits - 2, 1)}g}"
        return f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return str(value)
