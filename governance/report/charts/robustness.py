"""Robust accuracy against the attack budget ε, overall and per group."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from governance.report._text import fmt_number
from governance.report.charts._data import NoData, ok_section, table
from governance.report.charts.base import ChartSpec
from governance.tables import GroupRobustAccuracy, RobustAccuracy

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from governance.results import Results

__all__ = ["robust_accuracy"]

MAX_GROUP_LINES = 7  # one colour and one marker each (Okabe–Ito palette)
Point = tuple[float, float]  # (ε, accuracy)


def _attacks(records: list[Any]) -> list[Any]:
    """Rows of the adversarial attacks only: a noise perturbation's level is a noise σ, not an attack budget ε."""
    return [r for r in records if "noise" not in r.perturbation]


def robust_accuracy(results: Results) -> list[ChartSpec]:
    section = ok_section(results, "robustness")
    overall = _attacks(table(section, "accuracy", RobustAccuracy))
    if not overall:
        raise NoData("sections.robustness.tables.accuracy has no accuracy per attack ε")
    clean = results.metrics.get("robustness.clean_accuracy")
    attacks: dict[str, list[Point]] = {}
    for r in overall:
        attacks.setdefault(r.perturbation, []).append((r.level, r.accuracy))
    for points in attacks.values():
        if clean is not None and all(e != 0 for e, _ in points):
            points.append((0.0, clean))
        points.sort()
    try:
        group_rows = _attacks(table(section, "accuracy_by_group", GroupRobustAccuracy))
    except NoData:
        group_rows = []
    # Per group, show the attack that hurts most at its largest ε: the worst case is what matters.
    strongest = min(attacks, key=lambda a: attacks[a][-1][1])
    per_attr: dict[str, dict[str, list[Point]]] = {}
    for r in group_rows:
        if r.perturbation != strongest:
            continue
        lines = per_attr.setdefault(r.attribute, {})
        points = lines.setdefault(r.group, [])
        points.append((r.level, r.accuracy))
        group_clean = r.clean_accuracy
        if group_clean is not None and all(e != 0 for e, _ in points):
            points.append((0.0, group_clean))
    for lines in per_attr.values():
        for points in lines.values():
            points.sort()
    per_attr = {a: g for a, g in per_attr.items() if len(g) <= MAX_GROUP_LINES}

    alt = (
        "Line chart of accuracy against attack strength ε. "
        + "; ".join(
            f"{atk}: " + ", ".join(f"ε={fmt_number(e, 3)} accuracy {fmt_number(a, 3)}" for e, a in pts)
            for atk, pts in attacks.items()
        )
        + "."
    )
    for attr, lines in per_attr.items():
        alt += (
            f" Per group of {attr} under {strongest} at the largest ε: "
            + ", ".join(f"{g} {fmt_number(pts[-1][1], 3)}" for g, pts in lines.items())
            + "."
        )
    # The audit records ε's unit: standard deviations (tabular) or pixel units (images).
    units = section.details.get("units") if isinstance(section.details, Mapping) else None
    units = units if isinstance(units, str) and units else None
    caption = (
        "Accuracy on adversarially perturbed eval inputs as the perturbation budget ε grows "
        "(ε = 0 is clean accuracy"
        + (f"; ε is an L∞ budget in {units}" if units else "")
        + "). Left: each attack over all rows."
    )
    if per_attr:
        caption += (
            f" Other panels: each group under {strongest}, the strongest attack here; a group whose "
            "line falls faster is less robust."
        )
    else:
        caption += " No per-group robustness rows were recorded."

    def plot(fig: Figure) -> None:
        axes = fig.subplots(1, 1 + len(per_attr), sharey=True, squeeze=False)[0]
        for i, (atk, pts) in enumerate(attacks.items()):
            _line(axes[0], pts, atk, i)
        axes[0].set_title("overall")
        axes[0].set_ylabel("accuracy")
        for ax, (attr, lines) in zip(axes[1:], per_attr.items()):
            for i, (group, pts) in enumerate(lines.items()):
                _line(ax, pts, group, i)
            ax.set_title(f"by {attr} ({strongest})")
        axes[0].set_ylim(0, 1)  # shared by every panel
        # ε means the same in every panel: one label under them all.
        fig.supxlabel(f"ε ({units})" if units else "ε", fontsize=11.0, y=4 / fig.bbox.height, va="bottom")
        from matplotlib.ticker import MaxNLocator

        from governance.report.charts._svg import frame

        for ax in axes:
            ax.xaxis.set_major_locator(MaxNLocator(nbins=4 if len(axes) > 1 else 8, steps=[1, 2, 2.5, 5, 10]))
            ax.grid(axis="y")
            ax.legend(loc="lower left")
        frame(fig, left=52, top=26, bottom=44, wspace=16)

    return [
        ChartSpec(
            id="robust_accuracy",
            title="Robust accuracy against ε",
            caption=caption,
            alt=alt,
            plot=plot,
            size=(672, 269),
        )
    ]


def _line(ax: Axes, pts: list[Point], label: str, i: int) -> None:
    from governance.report.charts._svg import MARKERS, OKABE_ITO

    ax.plot(
        [e for e, _ in pts],
        [a for _, a in pts],
        marker=MARKERS[i % len(MARKERS)],
        color=OKABE_ITO[i % 7],
        label=label,
    )
