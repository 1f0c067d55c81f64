"""Robust accuracy against the attack budget ε, overall and per group."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from governance.report._text import fmt_number
from governance.report.charts._data import NoData, num, ok_section, rows, text
from governance.report.charts.base import ChartSpec

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from governance.results import Results

__all__ = ["robust_accuracy"]

MAX_GROUP_LINES = 7  # one colour each in the Okabe–Ito palette
_MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def robust_accuracy(results: Results) -> list[ChartSpec]:
    section = ok_section(results, "robustness")
    curve = [
        r
        for r in rows(section, "curve", "overall", "accuracy_by_eps", need=("eps",))
        if r.get("group") is None and num(r, "accuracy") is not None
    ]
    if not curve:
        raise NoData("sections.robustness.tables.curve has no accuracy per eps")
    attacks = _by(curve, "attack")
    try:
        group_rows = [
            r
            for r in rows(section, "by_group", "groups", "per_group", need=("eps", "group"))
            if num(r, "accuracy") is not None
        ]
    except NoData:
        group_rows = []
    # Per group, show the attack that hurts most at its largest ε: the worst case is what matters.
    strongest = min(attacks, key=lambda a: _final(attacks[a]))
    per_attr: dict[str, list[Mapping[str, Any]]] = {}
    for r in group_rows:
        if text(r.get("attack") or strongest) == strongest:
            per_attr.setdefault(text(r.get("attribute") or "group"), []).append(r)
    per_attr = {a: rs for a, rs in per_attr.items() if len(_by(rs, "group")) <= MAX_GROUP_LINES}

    alt = (
        "Line chart of accuracy against attack strength ε. "
        + "; ".join(
            f"{atk}: "
            + ", ".join(
                f"ε={fmt_number(num(r, 'eps'), 3)} accuracy {fmt_number(num(r, 'accuracy'), 3)}"
                for r in _sorted(rs)
            )
            for atk, rs in attacks.items()
        )
        + "."
    )
    for attr, rs in per_attr.items():
        alt += (
            f" Per group of {attr} under {strongest} at the largest ε: "
            + ", ".join(
                f"{g} {fmt_number(num(_sorted(grs)[-1], 'accuracy'), 3)}"
                for g, grs in _by(rs, "group").items()
            )
            + "."
        )
    caption = (
        "Accuracy on adversarially perturbed eval inputs as the perturbation budget ε grows "
        "(ε = 0 is clean accuracy). Left: each attack over all rows."
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
        for i, (atk, rs) in enumerate(attacks.items()):
            _line(axes[0], rs, atk, i)
        axes[0].set_title("overall")
        axes[0].set_ylabel("accuracy")
        for ax, (attr, rs) in zip(axes[1:], per_attr.items()):
            for i, (group, grs) in enumerate(_by(rs, "group").items()):
                _line(ax, grs, group if len(group) <= 20 else group[:19] + "…", i)
            ax.set_title(f"by {attr} ({strongest})")
        for ax in axes:
            ax.set_xlabel("ε")
            ax.set_ylim(0, 1)
            ax.legend(frameon=False, loc="lower left")

    return [
        ChartSpec(
            id="robust_accuracy",
            title="Robust accuracy against ε",
            caption=caption,
            alt=alt,
            plot=plot,
            size=(7.0, 2.8),
        )
    ]


def _line(ax: Axes, rs: list[Mapping[str, Any]], label: str, i: int) -> None:
    pts = _sorted(rs)
    xs = [num(r, "eps") or 0.0 for r in pts]
    ys = [num(r, "accuracy") or 0.0 for r in pts]
    ax.plot(xs, ys, marker=_MARKERS[i % 7], label=label)


def _by(rs: list[Mapping[str, Any]], key: str) -> dict[str, list[Mapping[str, Any]]]:
    out: dict[str, list[Mapping[str, Any]]] = {}
    for r in rs:
        out.setdefault(text(r.get(key) or "attack"), []).append(r)
    return out


def _sorted(rs: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return sorted(rs, key=lambda r: num(r, "eps") or 0.0)


def _final(rs: list[Mapping[str, Any]]) -> float:
    return num(_sorted(rs)[-1], "accuracy") or 0.0
