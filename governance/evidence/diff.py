"""``governance diff OLD NEW``: every metric's change between two audits, regressions marked.

A metric with bootstrap intervals in both audits (the fairness tables' ``ci_low``/``ci_high``)
counts as changed only when the intervals do not overlap; any other metric changes when it moves by
more than the matching policy rule's ``max_regression`` (0 when the rule sets none). Which way is
worse comes from the rule's op (``>=``: lower is worse). A metric no rule covers is reported with
its change but never marked.
"""

from __future__ import annotations

import fnmatch
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from governance.errors import InputError

__all__ = ["Change", "DiffReport", "Verdict", "diff_results", "format_diff", "intervals", "load_side"]

#: Changes below this are float noise, never a regression.
_EPS = 1e-12


class Verdict(StrEnum):
    REGRESSION = "regression"
    IMPROVEMENT = "improvement"
    UNCHANGED = "unchanged"
    WITHIN = "within tolerance"
    CHANGED = "changed"  # no rule says which way is worse
    ADDED = "added"
    REMOVED = "removed"


@dataclass(frozen=True)
class Change:
    metric: str
    old: float | None
    new: float | None
    verdict: Verdict
    old_interval: tuple[float, float] | None = None
    new_interval: tuple[float, float] | None = None
    rule: str | None = None
    tolerance: float | None = None

    @property
    def delta(self) -> float | None:
        if self.old is None or self.new is None:
            return None
        return self.new - self.old

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "old": self.old,
            "new": self.new,
            "delta": self.delta,
            "verdict": self.verdict.value,
            "old_interval": None if self.old_interval is None else list(self.old_interval),
            "new_interval": None if self.new_interval is None else list(self.new_interval),
            "rule": self.rule,
            "tolerance": self.tolerance,
        }


@dataclass(frozen=True)
class DiffReport:
    old: str
    new: str
    changes: tuple[Change, ...]
    policy: str | None = None

    @property
    def regressions(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.verdict is Verdict.REGRESSION)

    def to_dict(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for c in self.changes:
            counts[c.verdict.value] = counts.get(c.verdict.value, 0) + 1
        return {
            "old": self.old,
            "new": self.new,
            "policy": self.policy,
            "counts": counts,
            "changes": [c.to_dict() for c in self.changes],
        }


def load_side(ref: str, *, store: str | os.PathLike[str] | None = None) -> tuple[str, Mapping[str, Any]]:
    """A results.json path, or a history id (``7`` or ``#7``): (label, results as a dict)."""
    path = Path(ref)
    if path.is_file():
        from governance.results import load_results

        return str(path), load_results(path).to_dict()
    key = ref.lstrip("#")
    if key.isdigit():
        from governance.evidence.store import audit_row

        record = audit_row(int(key), store=store)
        return f"history #{record.id} ({record.spec_name}, {record.recorded_at})", dict(record.results)
    raise InputError(ref, None, "expected a results.json path or a history id")


def intervals(results: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """Metric ID → (low, high) for every table row that carries a bootstrap interval."""
    metrics = results.get("metrics") or {}
    out: dict[str, tuple[float, float]] = {}
    for section, body in (results.get("sections") or {}).items():
        for rows in ((body or {}).get("tables") or {}).values():
            for row in rows if isinstance(rows, list) else ():
                if not isinstance(row, Mapping) or "metric" not in row:
                    continue
                lo, hi = row.get("ci_low"), row.get("ci_high")
                if not _finite(lo) or not _finite(hi):
                    continue
                parts = (
                    [section, row["attribute"], row["metric"]]
                    if row.get("attribute")
                    else [section, row["metric"]]
                )
                metric = ".".join(str(p) for p in parts)
                if metric in metrics:
                    out[metric] = (float(lo), float(hi))  # type: ignore[arg-type]
    return out


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _rule_for(metric: str, policy: Any) -> Any:
    if policy is None:
        return None
    for rule in policy.rules:
        if rule.higher_is_better is None:
            continue
        if fnmatch.fnmatchcase(metric, rule.metric) if rule.is_glob else metric == rule.metric:
            return rule
    return None


def _verdict(
    a: float,
    b: float,
    higher_is_better: bool | None,
    tol: float | None,
    ci_a: tuple[float, float] | None,
    ci_b: tuple[float, float] | None,
) -> Verdict:
    """Intervals apart (when both have one), else a move past the rule's tolerance."""
    worse = None if higher_is_better is None else ((a - b) if higher_is_better else (b - a))
    if ci_a is not None and ci_b is not None:
        apart = ci_b[0] > ci_a[1] or ci_b[1] < ci_a[0]
        if not apart:
            return Verdict.UNCHANGED if abs(b - a) <= _EPS else Verdict.WITHIN
        if worse is None:
            return Verdict.CHANGED
        return Verdict.REGRESSION if worse > 0 else Verdict.IMPROVEMENT
    if abs(b - a) <= _EPS:
        return Verdict.UNCHANGED
    if worse is None or tol is None:
        return Verdict.CHANGED
    if worse > tol + _EPS:
        return Verdict.REGRESSION
    if -worse > tol + _EPS:
        return Verdict.IMPROVEMENT
    return Verdict.WITHIN


def diff_results(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    *,
    policy: Any = None,
    old_label: str = "OLD",
    new_label: str = "NEW",
) -> DiffReport:
    """Compare every metric of two results (dicts as in results.json)."""
    old_m, new_m = old.get("metrics") or {}, new.get("metrics") or {}
    old_ci, new_ci = intervals(old), intervals(new)
    changes: list[Change] = []
    for metric in sorted(set(old_m) | set(new_m)):
        a, b = old_m.get(metric), new_m.get(metric)
        rule = _rule_for(metric, policy)
        tol = None if rule is None else float(rule.max_regression or 0.0)
        ci_a, ci_b = old_ci.get(metric), new_ci.get(metric)
        if metric not in old_m or metric not in new_m:
            verdict = Verdict.ADDED if metric not in old_m else Verdict.REMOVED
        elif a is None or b is None:
            verdict = Verdict.UNCHANGED if a == b else Verdict.CHANGED
        else:
            higher = None if rule is None else bool(rule.higher_is_better)
            verdict = _verdict(float(a), float(b), higher, tol, ci_a, ci_b)
        changes.append(
            Change(
                metric,
                a,
                b,
                verdict,
                old_interval=ci_a,
                new_interval=ci_b,
                rule=None if rule is None else str(rule.id),
                tolerance=tol,
            )
        )
    name = None if policy is None else f"{policy.name} {policy.version}"
    return DiffReport(old=old_label, new=new_label, changes=tuple(changes), policy=name)


def _num(x: float | None) -> str:
    return "—" if x is None else f"{x:.6g}"


def _ci(x: tuple[float, float] | None) -> str:
    return "" if x is None else f" [{x[0]:.4g}, {x[1]:.4g}]"


def _delta(c: Change) -> str:
    return "" if c.delta is None else f"{c.delta:+.4g}"


_MARK = {Verdict.REGRESSION: "REGRESSION", Verdict.IMPROVEMENT: "improvement"}


def format_diff(report: DiffReport, fmt: str = "text", *, all_metrics: bool = True) -> str:
    """The diff as ``text``, ``json`` or ``markdown`` (a PR comment)."""
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n"
    rows = [c for c in report.changes if all_metrics or c.verdict is not Verdict.UNCHANGED]
    n_reg = len(report.regressions)
    head = f"{report.old} → {report.new}: {len(report.changes)} metrics, {n_reg} regression" + (
        "" if n_reg == 1 else "s"
    )
    if report.policy:
        head += f" (directions and tolerances from policy {report.policy})"
    if fmt == "markdown":
        lines = [
            "### governance diff",
            "",
            head,
            "",
            "| metric | old | new | change | verdict |",
            "| --- | --- | --- | --- | --- |",
        ]
        for c in rows:
            verdict = f"**{c.verdict.value}**" if c.verdict is Verdict.REGRESSION else c.verdict.value
            lines.append(
                f"| `{c.metric}` | {_num(c.old)}{_ci(c.old_interval)} | {_num(c.new)}{_ci(c.new_interval)} "
                f"| {_delta(c)} | {verdict} |"
            )
        return "\n".join(lines) + "\n"
    if fmt != "text":
        raise InputError("--format", None, f"expected text, json or markdown, got {fmt!r}")
    width = max((len(c.metric) for c in rows), default=10)
    lines = [head]
    for c in rows:
        lines.append(
            f"{c.metric:<{width}}  {_num(c.old)}{_ci(c.old_interval)} → {_num(c.new)}{_ci(c.new_interval)}"
            f"  {_delta(c):>10}  {_MARK.get(c.verdict, c.verdict.value)}"
        )
    return "\n".join(lines) + "\n"
