"""Per-group selection rate, TPR and FPR with confidence intervals and the four-fifths line."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from governance.report._text import fmt_number
from governance.report.charts._data import NoData, ci, num, ok_section, table, text
from governance.report.charts.base import ChartSpec
from governance.tables import GroupRates

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from governance.results import Results

__all__ = ["group_rates"]

# (key in the fairness audit's tables.groups, label)
_METRICS: tuple[tuple[str, str], ...] = (
    ("selection_rate", "Selection rate"),
    ("true_positive_rate", "True-positive rate"),
    ("false_positive_rate", "False-positive rate"),
)
#: More groups than this (intersections of many attributes) would be unreadable bars.
MAX_GROUPS = 16
FOUR_FIFTHS = 0.8


def group_rates(results: Results) -> list[ChartSpec]:
    section = ok_section(results, "fairness")
    positive = section.details.get("positive_label") if isinstance(section.details, Mapping) else None
    by_attr: dict[str, list[Mapping[str, Any]]] = {}
    for record in table(section, "groups", GroupRates):
        if not record.empty:
            by_attr.setdefault(record.attribute, []).append(_with_intervals(asdict(record), positive))
    specs = []
    for attr, group_rows in by_attr.items():
        shown = [m for m in _METRICS if any(num(r, m[0]) is not None for r in group_rows)]
        wilson = any(r.get("_wilson") for r in group_rows)
        if not shown or len(group_rows) > MAX_GROUPS:
            continue
        specs.append(_spec(attr, group_rows, shown, wilson=wilson))
    if not specs:
        raise NoData("sections.fairness.tables.groups has no selection_rate, tpr or fpr per group")
    return specs


def _with_intervals(row: Mapping[str, Any], positive: Any) -> Mapping[str, Any]:
    """The row with, where the audit gave no interval, a Wilson 95% interval.

    The fairness audit bootstraps intervals for the disparities, not for each group's rates; a
    Wilson interval from the group's own counts (n rows; actual positives / negatives) shows how
    far each bar can be trusted, and the caption says which interval is drawn.
    """
    out = dict(row)
    n = num(row, "count")
    positives = row.get("positives")
    pos = num(positives, str(positive)) if isinstance(positives, Mapping) and positive is not None else None
    denominators = {
        "selection_rate": n,
        "true_positive_rate": pos,
        "false_positive_rate": None if n is None or pos is None else n - pos,
    }
    for key, denominator in denominators.items():
        value = num(out, key)
        if value is not None and ci(out, key) is None and denominator:
            out[key + "_ci_low"], out[key + "_ci_high"] = wilson_interval(value, denominator)
            out["_wilson"] = True
    return out


def wilson_interval(p: float, n: float, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion ``p`` observed on ``n`` trials (95% by default).

    Our three lines, not ``scipy.stats.binomtest(k, n).proportion_ci(method="wilson")``: the
    numbers agree to 1e-15 (``tests/report/test_charts_svg.py`` checks), but importing
    ``scipy.stats`` costs about a second of the report's 3 s budget, and a report renders from a
    saved results.json where scipy need not be installed.

    Examples
    --------
    >>> [round(x, 4) for x in wilson_interval(0.5, 100)]
    [0.4038, 0.5962]
    """
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _spec(
    attr: str, group_rows: list[Mapping[str, Any]], shown: list[tuple[str, str]], *, wilson: bool
) -> ChartSpec:
    groups = [text(r["group"]) for r in group_rows]
    rates = [num(r, "selection_rate") for r in group_rows]
    known = [r for r in rates if r is not None]
    line = FOUR_FIFTHS * max(known) if known else None
    below = [g for g, r in zip(groups, rates) if r is not None and line is not None and r < line]
    with_ci = any(ci(r, k) for r in group_rows for k, _ in shown)

    def plot(fig: Figure) -> None:
        _plot_rates(fig, attr, group_rows, groups, shown, line, with_ci=with_ci)

    height = 96 + 31 * len(groups) + (22 if line is not None else 0)
    return ChartSpec(
        id=f"group_rates-{attr}",
        title=f"Selection rate, TPR and FPR by {attr}",
        caption=_caption(attr, below, wilson=wilson),
        alt=_alt(attr, group_rows, groups, shown, line, below),
        plot=plot,
        size=(672, max(173, height)),
    )


def _alt(
    attr: str,
    group_rows: list[Mapping[str, Any]],
    groups: list[str],
    shown: list[tuple[str, str]],
    line: float | None,
    below: list[str],
) -> str:
    """Every bar's number and interval, and which groups fall below the four-fifths line."""
    parts = []
    for row, group in zip(group_rows, groups):
        vals = []
        for key, label in shown:
            value, interval = num(row, key), ci(row, key)
            span = f" (95% CI {fmt_number(interval[0], 3)}–{fmt_number(interval[1], 3)})" if interval else ""
            vals.append(f"{label.lower()} {fmt_number(value, 3)}{span}")
        parts.append(f"{group}: " + ", ".join(vals))
    alt = f"Bar charts per group of {attr}. " + "; ".join(parts) + "."
    if line is not None:
        alt += f" Four-fifths line at {fmt_number(line, 3)}" + (
            f"; below it: {', '.join(below)}." if below else "; no group is below it."
        )
    return alt


def _caption(attr: str, below: list[str], *, wilson: bool) -> str:
    caption = (
        f"Outcome rates per group of {attr}, with 95% confidence intervals as whiskers"
        + (" (Wilson score intervals from each group's counts). " if wilson else ". ")
        + "The dashed line marks four fifths of the highest selection rate: a group whose selection "
        "rate falls left of it fails the four-fifths rule of thumb (EEOC 29 CFR 1607.4(D))."
    )
    if below:
        caption += f" Below the line: {', '.join(below)}."
    return caption


def _plot_rates(
    fig: Figure,
    attr: str,
    group_rows: list[Mapping[str, Any]],
    groups: list[str],
    shown: list[tuple[str, str]],
    line: float | None,
    *,
    with_ci: bool,
) -> None:
    """One panel of horizontal bars per rate, side by side, the legend of the lines under them."""
    from governance.report.charts._svg import frame, text_px

    # One y scale: the panels' bars line up, and only the first names the groups.
    axes = fig.subplots(1, len(shown), sharey=True, squeeze=False)[0]
    ypos = list(range(len(groups)))
    for ax, (key, label), color in zip(axes, shown, ("#0072B2", "#E69F00", "#009E73")):
        _panel(ax, group_rows, key, label, color, ypos, line if key == "selection_rate" else None)
    if line is not None:
        _legend(fig, line, with_ci=with_ci)
    axes[0].set_yticks(ypos, groups)
    axes[0].set_ylabel(attr)
    frame(
        fig,
        left=34 + max(text_px(g) for g in groups),
        top=26,
        bottom=28 + (24 if line is not None else 0),
        wspace=22,
    )


def _panel(
    ax: Axes,
    group_rows: list[Mapping[str, Any]],
    key: str,
    label: str,
    color: str,
    ypos: list[int],
    line: float | None,
) -> None:
    """One rate's bars with their values and whiskers (and the four-fifths line, if given)."""
    values = [num(r, key) for r in group_rows]
    bars = [v if v is not None else 0.0 for v in values]
    ax.barh(ypos, bars, color=color, height=0.6)
    _whiskers(ax, ypos, _errors(group_rows, key, values))
    for y, v in zip(ypos, values):
        ax.text(
            0.01,
            y,
            "n/a" if v is None else fmt_number(v, 2),
            va="center",
            color="#FFFFFF" if v and v > 0.12 else "#333333",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(len(ypos) - 0.5, -0.5)  # first group on top, as in the tables
    # The same five ticks on every panel.
    ax.set_xticks([0.0, 0.25, 0.5, 0.75, 1.0], ["0", "0.25", "0.5", "0.75", "1"])
    ax.set_title(label)
    ax.grid(axis="x")
    ax.set_axisbelow(True)
    if line is not None:
        ax.axvline(line, color="#D55E00", linestyle=(0, (5, 3)), linewidth=1.4)


def _legend(fig: Figure, line: float, *, with_ci: bool) -> None:
    """Under the panels, not on them: a legend inside would cover the bars it explains."""
    from matplotlib.lines import Line2D

    handles = [
        Line2D(
            [],
            [],
            color="#D55E00",
            linestyle=(0, (5, 3)),
            linewidth=1.4,
            label=f"four-fifths line: 0.8 × highest selection rate = {fmt_number(line, 3)}",
        )
    ]
    if with_ci:
        handles.append(
            Line2D([], [], color="#333333", marker="|", markersize=8, label="95% confidence interval")
        )
    fig.legend(handles=handles, loc="lower center", ncols=len(handles), bbox_to_anchor=(0.5, 0.0))


def _whiskers(ax: Axes, ypos: list[int], ends: list[tuple[float, float] | None] | None) -> None:
    """Confidence intervals as whiskers on the bars that have one."""
    if ends is None:
        return
    shown = [(y, e) for y, e in zip(ypos, ends) if e is not None]
    for y, (low, high) in shown:
        ax.plot([low, high], [y, y], color="#333333", linewidth=1.1)
        ax.plot([low, low], [y - 0.15, y + 0.15], color="#333333", linewidth=1.1)
        ax.plot([high, high], [y - 0.15, y + 0.15], color="#333333", linewidth=1.1)


def _errors(
    group_rows: list[Mapping[str, Any]], key: str, values: list[float | None]
) -> list[tuple[float, float] | None] | None:
    """Whisker ends (low, high) per bar, None where a row has no interval; None when no row has one."""
    ends: list[tuple[float, float] | None] = []
    for row, value in zip(group_rows, values):
        interval = ci(row, key)
        ends.append(
            None if interval is None or value is None else (min(interval[0], value), max(interval[1], value))
        )
    return ends if any(e is not None for e in ends) else None
