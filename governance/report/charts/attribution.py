"""Top feature attributions, overall and per group."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from governance.report._text import fmt_number
from governance.report.charts._data import NoData, ok_section, table
from governance.report.charts._svg import OKABE_ITO, frame, text_px
from governance.report.charts.base import ChartSpec
from governance.tables import FeatureAttribution, GroupFeatureAttribution

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from governance.results import AuditSection, Results

__all__ = ["group_attributions", "top_attributions"]

TOP_K = 10
MAX_GROUPS = 6


def _overall(section: AuditSection) -> list[tuple[str, float]]:
    rows = table(section, "importance", FeatureAttribution)
    return sorted(((r.feature, r.mean_abs_attribution) for r in rows), key=lambda fv: -abs(fv[1]))


def _method(section: AuditSection) -> str:
    method = section.details.get("method") if isinstance(section.details, Mapping) else None
    return str(method).replace("_", " ") if method else "the attribution method"


def _sensitive(results: Results, section: AuditSection) -> set[str]:
    """Features to highlight: flagged sensitive/proxy by the audit, or named sensitive in the subject."""
    flagged = {r.feature for r in table(section, "importance", FeatureAttribution) if r.sensitive or r.proxy}
    names = results.subject.get("sensitive")
    if isinstance(names, list):
        flagged |= {str(n) for n in names}
    return flagged


def _image(results: Results) -> bool:
    # Image models are explained by heatmaps (charts/heatmaps.py), not per-feature bars.
    from governance.report.charts.heatmaps import applies

    return applies(results)


def top_attributions(results: Results) -> list[ChartSpec]:
    if _image(results):
        return []
    section = ok_section(results, "attribution")
    top = _overall(section)[:TOP_K]
    sensitive = _sensitive(results, section)
    alt = (
        f"Horizontal bars of the {len(top)} features with the largest mean absolute attribution: "
        + ", ".join(f"{f} {fmt_number(v, 3)}" for f, v in top)
        + "."
    )
    caption = (
        f"Mean absolute attribution per feature over the eval rows ({_method(section)}), the {len(top)} "
        "largest. A large share on a sensitive attribute or a proxy of one suggests the model uses it."
    )
    if sensitive & {f for f, _ in top}:
        caption += " Sensitive attributes and their declared or detected proxies are drawn in vermillion."

    def plot(fig: Figure) -> None:
        ax = fig.add_subplot()
        names = [f for f, _ in top]
        colors = ["#D55E00" if f in sensitive else "#0072B2" for f in names]
        ax.barh(range(len(top)), [abs(v) for _, v in top], color=colors, height=0.65)
        ax.set_yticks(range(len(top)), names)
        ax.set_ylim(len(top) - 0.5, -0.5)
        ax.set_xlim(left=0)
        ax.set_xlabel("mean |attribution|")
        ax.grid(axis="x")
        ax.set_axisbelow(True)
        frame(fig, left=16 + max(text_px(n) for n in names), top=8, bottom=40)

    return [
        ChartSpec(
            id="top_attributions",
            title="Top feature attributions (all eval rows)",
            caption=caption,
            alt=alt,
            plot=plot,
            size=(672, 67 + 23 * len(top)),
        )
    ]


def group_attributions(results: Results) -> list[ChartSpec]:
    if _image(results):
        return []
    section = ok_section(results, "attribution")
    top = [f for f, _ in _overall(section)[: min(TOP_K, 8)]]
    by_attr: dict[str, dict[str, dict[str, float]]] = {}
    for r in table(section, "importance_by_group", GroupFeatureAttribution):
        if r.feature in top:
            groups = by_attr.setdefault(r.attribute, {})
            groups.setdefault(r.group, {})[r.feature] = abs(r.mean_abs_attribution)
    by_attr = {a: g for a, g in by_attr.items() if 1 < len(g) <= MAX_GROUPS}
    if not by_attr:
        raise NoData("sections.attribution.tables.importance_by_group has no attributions per group")
    specs = []
    for attr, groups in by_attr.items():
        alt = (
            f"Grouped horizontal bars of mean absolute attribution of the top {len(top)} features per group of {attr}. "
            + "; ".join(
                f"{g}: " + ", ".join(f"{f} {fmt_number(v.get(f), 3)}" for f in top) for g, v in groups.items()
            )
            + "."
        )
        caption = (
            f"The overall top {len(top)} features, their mean absolute attribution computed separately for each "
            f"group of {attr}. Bars of very different length mean the model decides differently for the groups."
        )

        def plot(fig: Figure, groups: dict[str, dict[str, float]] = groups, attr: str = attr) -> None:
            ax = fig.add_subplot()
            width = 0.8 / len(groups)
            for i, (group, values) in enumerate(groups.items()):
                ypos = [k + (i - (len(groups) - 1) / 2) * width for k in range(len(top))]
                ax.barh(
                    ypos, [values.get(f, 0.0) for f in top], height=width, label=group, color=OKABE_ITO[i % 7]
                )
            ax.set_yticks(range(len(top)), top)
            ax.set_ylim(len(top) - 0.5, -0.5)
            ax.set_xlim(left=0)
            ax.set_xlabel("mean |attribution|")
            ax.grid(axis="x")
            ax.set_axisbelow(True)
            # Under the bars: long bars leave no free corner for a legend inside.
            rows = -(-len(groups) // 4)
            fig.legend(loc="lower center", title=attr, ncols=min(len(groups), 4), bbox_to_anchor=(0.5, 0.0))
            frame(fig, left=16 + max(text_px(f) for f in top), top=8, bottom=44 + 18 * (rows + 1))

        specs.append(
            ChartSpec(
                id=f"group_attributions-{attr}",
                title=f"Top feature attributions by {attr}",
                caption=caption,
                alt=alt,
                plot=plot,
                size=(672, 99 + 15 * len(top) * len(groups)),
            )
        )
    return specs
