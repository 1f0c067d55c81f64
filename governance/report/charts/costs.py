"""What privacy, compression and mitigation cost: per-group drops with intervals, the
size/latency trade-off of the compressed variants, and the mitigation frontier."""

from __future__ import annotations

from typing import TYPE_CHECKING

from governance.report._text import fmt_number
from governance.report.charts._data import NoData, ok_section, table
from governance.report.charts.base import ChartSpec
from governance.tables import CompressionVariant, FrontierSetting, PairedGroupAccuracy

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from governance.results import Results

__all__ = [
    "compression_groups",
    "compression_tradeoff",
    "fairness_trend",
    "mitigation_frontier",
    "privacy_cost_by_group",
]

#: Bars beyond this many groups would not be readable in one chart; the table keeps them all.
MAX_BARS = 24


def _drop_bars(rows: list[PairedGroupAccuracy], chart_id: str, title: str, caption: str) -> ChartSpec:
    rows = [r for r in rows if r.attribute != "overall"][:MAX_BARS]
    if not rows:
        raise NoData("no per-group rows")
    labels = [f"{r.attribute} = {r.group}" for r in rows]
    alt = (
        "Horizontal bar chart of the accuracy drop per group. "
        + "; ".join(
            f"{label}: {fmt_number(r.accuracy_drop, 3)}"
            + (
                f" (95% interval {fmt_number(r.drop_ci_low, 3)} to {fmt_number(r.drop_ci_high, 3)})"
                if r.drop_ci_low is not None and r.drop_ci_high is not None
                else ""
            )
            for label, r in zip(labels, rows)
        )
        + "."
    )

    def plot(fig: Figure) -> None:
        from governance.report.charts._svg import OKABE_ITO, frame, text_px

        ax = fig.subplots()
        y = list(range(len(rows)))[::-1]
        drops = [r.accuracy_drop for r in rows]
        lows = [
            r.accuracy_drop - (r.drop_ci_low if r.drop_ci_low is not None else r.accuracy_drop) for r in rows
        ]
        highs = [
            (r.drop_ci_high if r.drop_ci_high is not None else r.accuracy_drop) - r.accuracy_drop
            for r in rows
        ]
        colours = [OKABE_ITO[5] if d > 0 else OKABE_ITO[0] for d in drops]
        ax.barh(y, drops, color=colours, height=0.6)
        ax.errorbar(drops, y, xerr=[lows, highs], fmt="none", ecolor="#333333", capsize=3, linewidth=1)
        ax.axvline(0, color="#333333", linewidth=0.8)
        ax.set_yticks(y, labels)
        ax.set_xlabel("accuracy drop (positive: the group loses accuracy)")
        ax.grid(axis="x")
        frame(fig, left=min(260, 16 + max(text_px(t) for t in labels)), top=10, bottom=40)

    height = 70 + 22 * len(rows)
    return ChartSpec(id=chart_id, title=title, caption=caption, alt=alt, plot=plot, size=(672, height))


def privacy_cost_by_group(results: Results) -> list[ChartSpec]:
    section = ok_section(results, "privacy_cost")
    rows = table(section, "groups", PairedGroupAccuracy)
    return [
        _drop_bars(
            rows,
            "privacy_cost_by_group",
            "What differential privacy cost each group",
            "Accuracy of the non-private twin minus the private model's, per group, on the same eval "
            "rows; whiskers are paired bootstrap 95% intervals. A bar right of zero is accuracy the "
            "group lost to privacy; bars that differ a lot across an attribute's groups are the "
            "disparate impact Bagdasaryan et al. (2019) describe.",
        )
    ]


def compression_groups(results: Results) -> list[ChartSpec]:
    section = ok_section(results, "compression")
    rows = table(section, "groups", PairedGroupAccuracy)
    deployed = section.details.get("deployed") if isinstance(section.details, dict) else None
    variants = sorted({r.variant for r in rows if r.variant})
    if not variants:
        raise NoData("no compressed variant rows")
    shown = deployed if deployed in variants else variants[0]
    return [
        _drop_bars(
            [r for r in rows if r.variant == shown],
            "compression_by_group",
            f"What {shown} costs each group",
            f"Accuracy of the fp32 model minus the {shown} variant's, per group, on the same eval rows; "
            "whiskers are paired bootstrap 95% intervals"
            + (" (this is the variant the spec deploys)." if shown == deployed else ".")
            + " Every variant's rows are in the table below.",
        )
    ]


def compression_tradeoff(results: Results) -> list[ChartSpec]:
    section = ok_section(results, "compression")
    variants = table(section, "variants", CompressionVariant)
    points = [v for v in variants if v.accuracy is not None]
    if not points:
        raise NoData("no variant with an accuracy")
    alt = "Scatter of accuracy against model size and per-row latency. " + "; ".join(
        f"{v.variant}: {fmt_number(v.size_bytes / 1024, 3)} KB, "
        f"{fmt_number(v.latency_ms_p50_batch1, 3)} ms/row, accuracy {fmt_number(v.accuracy, 3)}"
        for v in points
    )

    def plot(fig: Figure) -> None:
        from governance.report.charts._svg import MARKERS, OKABE_ITO, frame

        size_ax, latency_ax = fig.subplots(1, 2, sharey=True)
        for i, v in enumerate(points):
            style = {"color": OKABE_ITO[i % 7], "marker": MARKERS[i % len(MARKERS)], "label": v.variant}
            size_ax.scatter([v.size_bytes / 1024], [v.accuracy], s=48, **style)
            if v.latency_ms_p50_batch1 is not None:
                latency_ax.scatter([v.latency_ms_p50_batch1], [v.accuracy], s=48, **style)
        size_ax.set_xlabel("size on disk (KB, safetensors)")
        latency_ax.set_xlabel("latency per row, batch 1 (ms, p50)")
        size_ax.set_ylabel("accuracy")
        for ax in (size_ax, latency_ax):
            ax.grid()
        size_ax.legend(loc="lower right")
        frame(fig, left=52, top=10, bottom=44, wspace=24)

    return [
        ChartSpec(
            id="compression_tradeoff",
            title="Size and latency against accuracy",
            caption=(
                "Each compressed variant as built, saved and timed here: the size of the file written "
                "and the median per-row latency at batch 1 (warm, fixed thread count) against eval "
                "accuracy. Up and to the left is better."
            ),
            alt=alt,
            plot=plot,
            size=(672, 260),
        )
    ]


def mitigation_frontier(results: Results) -> list[ChartSpec]:
    section = ok_section(results, "mitigation")
    points = table(section, "frontier", FrontierSetting)
    details = section.details if isinstance(section.details, dict) else {}
    constraint = str(details.get("constraint", "constraint"))
    reason = str(details.get("reason", ""))
    chosen = next((p for p in points if p.chosen), None)
    alt = (
        f"Scatter of held-out accuracy against the targeted disparity for {len(points)} settings. "
        + "; ".join(
            f"{p.knob} {fmt_number(p.value, 3) if p.value is not None else '(none)'}: accuracy "
            f"{fmt_number(p.accuracy, 3)}, disparity {fmt_number(p.disparity, 3)}"
            + (" (dominated)" if p.dominated else "")
            + (" (chosen)" if p.chosen else "")
            for p in points
        )
        + f". {reason}"
    )

    def plot(fig: Figure) -> None:
        from governance.report.charts._svg import OKABE_ITO, frame

        ax = fig.subplots()
        for dominated, colour, label in (
            (True, "#BBBBBB", "dominated"),
            (False, OKABE_ITO[0], "on the frontier"),
        ):
            group = [p for p in points if bool(p.dominated) == dominated and p.knob != "none"]
            if group:
                ax.scatter(
                    [p.disparity for p in group], [p.accuracy for p in group], s=36, color=colour, label=label
                )
        model = next((p for p in points if p.knob == "none"), None)
        if model is not None:
            ax.scatter(
                [model.disparity],
                [model.accuracy],
                s=60,
                marker="s",
                color=OKABE_ITO[1],
                label="model as it is",
            )
        if chosen is not None:
            ax.scatter(
                [chosen.disparity],
                [chosen.accuracy],
                s=160,
                facecolors="none",
                edgecolors=OKABE_ITO[5],
                linewidths=2,
                label="chosen",
            )
        ax.set_xlabel(f"targeted disparity ({constraint}; lower is fairer)")
        ax.set_ylabel("held-out accuracy")
        ax.grid()
        ax.legend(loc="lower right")
        frame(fig, left=56, top=10, bottom=44)

    return [
        ChartSpec(
            id="mitigation_frontier",
            title="The frontier of mitigation settings",
            caption=(
                "Each setting of the sweep measured on the held-out rows: accuracy against the disparity "
                "the constraint targets. Grey points are dominated (another setting is both more "
                f"accurate and fairer). {reason}"
            ),
            alt=alt,
            plot=plot,
            size=(672, 300),
        )
    ]


def fairness_trend(results: Results) -> list[ChartSpec]:
    """Each attribute's demographic parity ratio per monitoring window (``fairness.windows``)."""
    from governance.tables import WindowMetric

    section = ok_section(results, "fairness")
    try:
        rows = [r for r in table(section, "windows", WindowMetric) if r.metric == "demographic_parity_ratio"]
    except NoData:
        return []  # no monitoring windows asked for: nothing to show, nothing missing
    series: dict[str, list[tuple[str, float]]] = {}
    for r in rows:
        if r.value is not None:
            series.setdefault(r.attribute, []).append((r.window, r.value))
    if not series:
        raise NoData("sections.fairness.tables.windows holds no demographic parity ratio")
    windows = sorted({w for points in series.values() for w, _ in points})
    alt = "Line chart of the demographic parity ratio per window. " + "; ".join(
        f"{attr}: " + ", ".join(f"{w} {fmt_number(v, 3)}" for w, v in points)
        for attr, points in series.items()
    )

    def plot(fig: Figure) -> None:
        from governance.report.charts._svg import MARKERS, OKABE_ITO, frame

        ax = fig.subplots()
        index = {w: i for i, w in enumerate(windows)}
        for i, (attr, points) in enumerate(list(series.items())[:7]):
            ax.plot(
                [index[w] for w, _ in points],
                [v for _, v in points],
                marker=MARKERS[i % len(MARKERS)],
                color=OKABE_ITO[i % 7],
                label=attr,
            )
        ax.axhline(0.8, color="#999999", linestyle="--", linewidth=1, label="four-fifths (0.8)")
        step = max(1, len(windows) // 12)
        ax.set_xticks(range(0, len(windows), step), windows[::step])
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("demographic parity ratio")
        ax.grid(axis="y")
        ax.legend(loc="lower left")
        frame(fig, left=52, top=10, bottom=44)

    return [
        ChartSpec(
            id="fairness_trend",
            title="Demographic parity ratio per monitoring window",
            caption=(
                "The selection-rate ratio of each attribute in each window of the decision log; a window "
                "below the dashed four-fifths line breaks a limit the whole period may still meet."
            ),
            alt=alt,
            plot=plot,
            size=(672, 260),
        )
    ]
