"""Group representation in the train and eval data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from governance.report._text import fmt_number
from governance.report.charts._data import NoData, num, ok_section, table, text
from governance.report.charts.base import ChartSpec
from governance.tables import GroupShare

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from governance.results import Results

__all__ = ["group_representation"]

MAX_GROUPS = 16
_SPLIT_COLORS = {"train": "#0072B2", "eval": "#E69F00", "data": "#0072B2"}


def group_representation(results: Results) -> list[ChartSpec]:
    section = ok_section(results, "data_quality")
    by_attr: dict[str, list[Mapping[str, Any]]] = {}
    for record in table(section, "groups", GroupShare):
        row = asdict(record)
        if num(row, "share", "rows") is not None:
            by_attr.setdefault(text(row["attribute"]), []).append(row)
    by_attr = {a: r for a, r in by_attr.items() if len({text(x["group"]) for x in r}) <= MAX_GROUPS}
    if not by_attr:
        raise NoData("sections.data_quality.tables.groups has no share or row count per group")

    splits = sorted(
        {text(r.get("split") or "data") for rs in by_attr.values() for r in rs},
        key=lambda s: (s != "train", s != "eval", s),
    )
    alt_parts = []
    for attr, attr_rows in by_attr.items():
        shares = ", ".join(
            f"{text(r['group'])} {fmt_number(_share(r, attr_rows) * 100, 1)}% of {text(r.get('split') or 'data')}"
            for r in attr_rows
        )
        alt_parts.append(f"{attr}: {shares}")
    alt = "Horizontal bars of each group's share of the rows. " + "; ".join(alt_parts) + "."
    caption = (
        "Share of rows per group of each sensitive attribute, by data split. Small groups give wide "
        "confidence intervals in the fairness section; a train/eval mismatch means the evaluation "
        "does not reflect the data the model learned from."
    )

    def plot(fig: Figure) -> None:
        from matplotlib.patches import Patch

        from governance.report.charts._svg import frame, text_px

        axes = fig.subplots(1, len(by_attr), squeeze=False)[0]
        width = 0.8 / max(len(splits), 1)
        for ax, (attr, attr_rows) in zip(axes, by_attr.items()):
            groups = list(dict.fromkeys(text(r["group"]) for r in attr_rows))
            for i, split in enumerate(splits):
                values = []
                for group in groups:
                    match = [
                        r
                        for r in attr_rows
                        if text(r["group"]) == group and text(r.get("split") or "data") == split
                    ]
                    values.append(_share(match[0], attr_rows) if match else 0.0)
                ypos = [g + (i - (len(splits) - 1) / 2) * width for g in range(len(groups))]
                ax.barh(ypos, values, height=width, color=_SPLIT_COLORS.get(split, "#009E73"))
            ax.set_yticks(range(len(groups)), groups)
            ax.set_ylim(len(groups) - 0.5, -0.5)  # first group on top
            ax.set_xlim(0, 1)
            ax.set_xlabel("share of rows")
            ax.set_title(attr)
            ax.grid(axis="x")
            ax.set_axisbelow(True)
        if len(splits) > 1:
            fig.legend(
                handles=[Patch(color=_SPLIT_COLORS.get(split, "#009E73"), label=split) for split in splits],
                loc="lower center",
                ncols=len(splits),
                bbox_to_anchor=(0.5, 0.0),
            )
        widths = [max(text_px(text(r["group"])) for r in rs) for rs in by_attr.values()]
        frame(
            fig,
            left=16 + widths[0],
            top=26,
            bottom=40 + (24 if len(splits) > 1 else 0),
            wspace=30 + max(widths[1:], default=0),
        )

    n_groups = max(len({text(r["group"]) for r in rs}) for rs in by_attr.values())
    return [
        ChartSpec(
            id="group_representation",
            title="Group representation in the data",
            caption=caption,
            alt=alt,
            plot=plot,
            size=(
                672,
                max(173, 86 + 34 * n_groups * max(1, len(splits)) / 1.5 + (22 if len(splits) > 1 else 0)),
            ),
        )
    ]


def _share(row: Mapping[str, Any], attr_rows: list[Mapping[str, Any]]) -> float:
    share = num(row, "share")
    if share is not None:
        return share
    split = row.get("split")
    total = sum(num(r, "rows") or 0.0 for r in attr_rows if r.get("split") == split)
    return (num(row, "rows") or 0.0) / total if total else 0.0
