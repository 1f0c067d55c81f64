"""The privacy budget spent per epoch, and the membership-inference ROC."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from governance.report._text import fmt_number
from governance.report.charts._data import NoData, details, num, ok_section
from governance.report.charts.base import ChartSpec
from governance.tables import EpochRecord, RocPoint, read_detail, read_ledger

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from governance.results import Results

__all__ = ["epsilon_per_epoch", "membership_roc"]


def _ledger(results: Results) -> Mapping[str, Any]:
    """The training ledger (from ``run``, or the audited model's own training.json)."""
    from governance.report.annex import ledger

    return ledger(results)


def epsilon_series(results: Results) -> list[tuple[float, float]]:
    """(epoch, ε spent) from the training ledger's ``history``."""
    points = [(r.epoch, r.epsilon) for r in read_ledger(_ledger(results), "history", EpochRecord)]
    found = sorted((e, v) for e, v in points if v is not None)
    if not found:
        raise NoData(
            "no ε per epoch in the training ledger (run.training.history); "
            "the model may not have been trained with differential privacy"
        )
    return found


def _target(results: Results) -> float | None:
    privacy = _ledger(results).get("privacy")
    if isinstance(privacy, Mapping):
        return num(privacy, "target_epsilon")
    return None


def epsilon_per_epoch(results: Results) -> list[ChartSpec]:
    points = epsilon_series(results)
    target = _target(results)
    delta = results.metrics.get("privacy.delta")
    at = f" at δ = {fmt_number(delta)}" if delta is not None else ""
    alt = (
        f"Line chart of cumulative ε spent{at} after each epoch: "
        + ", ".join(f"epoch {fmt_number(e)} ε {fmt_number(v, 3)}" for e, v in points)
        + "."
        + (f" Target ε {fmt_number(target)}." if target is not None else "")
    )
    caption = (
        f"Cumulative privacy budget ε spent{at} after each training epoch, from the accountant. "
        "Smaller ε means stronger protection of any one training row."
    )
    if target is not None:
        caption += " The dashed line is the target ε of the spec."

    def plot(fig: Figure) -> None:
        ax = fig.add_subplot()
        ax.plot([e for e, _ in points], [v for _, v in points], marker="o", color="#0072B2", label="ε spent")
        if target is not None:
            ax.axhline(
                target,
                color="#D55E00",
                linestyle=(0, (5, 3)),
                linewidth=1.2,
                label=f"target ε = {fmt_number(target)}",
            )
        from matplotlib.ticker import MaxNLocator

        from governance.report.charts._svg import frame

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_ylabel("ε")
        ax.set_ylim(bottom=0)
        ax.grid(axis="y")
        ax.legend(loc="lower right")
        frame(fig, left=48, bottom=40)

    return [
        ChartSpec(
            id="epsilon_per_epoch",
            title="Privacy budget ε spent per epoch",
            caption=caption,
            alt=alt,
            plot=plot,
            size=(672, 230),
        )
    ]


def membership_roc(results: Results) -> list[ChartSpec]:
    section = ok_section(results, "privacy")
    curves = _roc(section)
    strongest = section.details.get("strongest_attack") if isinstance(section.details, Mapping) else None
    auc = results.metrics.get("privacy.membership_inference.auc")
    low = results.metrics.get("privacy.membership_inference.tpr_at_fpr_0.001")
    floor = 1e-4
    clipped = {
        name: [(max(f, floor), max(t, floor)) for f, t in pts if f >= 0 and t >= 0]
        for name, pts in curves.items()
    }
    parts = []
    for name, pts in clipped.items():
        sample = pts[:: max(1, len(pts) // 6)]
        name_auc = results.metrics.get(f"privacy.membership_inference.{name}.auc")
        parts.append(
            f"{name}"
            + (f" (AUC {fmt_number(name_auc, 3)})" if name_auc is not None else "")
            + ": "
            + ", ".join(f"FPR {fmt_number(f, 3)} TPR {fmt_number(t, 3)}" for f, t in sample)
        )
    alt = (
        "Receiver operating characteristic of the membership-inference attacks on log-log axes, against "
        f"the chance diagonal. Strongest attack AUC {fmt_number(auc, 3)}; TPR at FPR 0.001 {fmt_number(low, 4)}. "
        + "; ".join(parts)
        + "."
    )
    caption = (
        "How well an attacker tells training rows from held-out rows, one curve per attack. Log axes show "
        "the low false-positive region, where identifying even a few members with confidence matters; a "
        "curve on the dashed diagonal means the attacker does no better than chance."
    )
    if strongest:
        caption += f" The strongest attack here is {strongest}."

    def plot(fig: Figure) -> None:
        from governance.report.charts._svg import OKABE_ITO, frame

        ax = fig.add_subplot()
        ax.plot([floor, 1], [floor, 1], linestyle=(0, (5, 3)), color="#777777", linewidth=1, label="chance")
        for i, (name, pts) in enumerate(clipped.items()):
            name_auc = results.metrics.get(f"privacy.membership_inference.{name}.auc")
            label = name + (f" (AUC {fmt_number(name_auc, 3)})" if name_auc is not None else "")
            ax.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                color=OKABE_ITO[i % 7],
                label=label,
                linewidth=2.0 if name == strongest else 1.4,
            )
        ax.axvline(1e-3, color="#D55E00", linestyle=(0, (1.5, 2.5)), linewidth=1.2, label="FPR = 0.001")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(floor, 1)
        ax.set_ylim(floor, 1)
        _plain_decades(ax)
        ax.grid(which="major")
        ax.set_xlabel("false-positive rate")
        ax.set_ylabel("true-positive rate")
        ax.legend(loc="lower right")
        frame(fig, left=62, bottom=42)

    return [
        ChartSpec(
            id="membership_roc",
            title="Membership-inference ROC (log axes)",
            caption=caption,
            alt=alt,
            plot=plot,
            size=(499, 346),
        )
    ]


def _plain_decades(ax: Any) -> None:
    """Decades as plain decimals (0.0001 … 1), not 10⁻⁴: readers of the report are not all scientists."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    decimal = FuncFormatter(lambda v, _: f"{v:.{max(0, -round(math.log10(v)))}f}")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(decimal)
        axis.set_minor_formatter(NullFormatter())


def _roc(section: Any) -> dict[str, list[tuple[float, float]]]:
    """Attack name → ROC points, from ``details.roc`` (one list of {fpr, tpr} per attack)."""
    details(section, "roc")  # NoData naming the missing key
    curves = {
        name: [(p.fpr, p.tpr) for p in points]
        for name, points in read_detail(section.details, "privacy", "roc", RocPoint).items()
        if len(points) > 1
    }
    if not curves:
        raise NoData("sections.privacy.details.roc has no curve of at least two points")
    return curves
