"""The confusion matrix on the eval split."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from governance.report.charts._data import NoData, ok_section, table
from governance.report.charts.base import ChartSpec
from governance.tables import ConfusionCell

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from governance.results import Results

__all__ = ["confusion_matrix"]

MAX_CLASSES = 20


def confusion_matrix(results: Results) -> list[ChartSpec]:
    section = ok_section(results, "performance")
    labels, matrix = _read(section)
    if len(labels) > MAX_CLASSES:
        raise NoData(f"{len(labels)} classes are too many to draw a readable confusion matrix")
    total = sum(sum(r) for r in matrix) or 1
    cells = "; ".join(
        f"true {labels[i]} predicted {labels[j]}: {int(matrix[i][j])}"
        for i in range(len(labels))
        for j in range(len(labels))
    )
    correct = sum(matrix[i][i] for i in range(len(labels)))
    alt = f"Confusion matrix heat map on the eval split. {cells}. {int(correct)} of {int(total)} correct."
    caption = (
        "Counts of eval rows by true class (rows) and predicted class (columns); the diagonal holds "
        "the correct decisions. Darker cells hold more rows."
    )

    def plot(fig: Figure) -> None:
        from matplotlib.colors import LinearSegmentedColormap

        from governance.report.charts._svg import BLUES, frame, text_px

        ax = fig.add_subplot()
        peak = max(max(r) for r in matrix) or 1
        n = len(labels)
        # Vector cells with a white gap between them, like the tables' grid.
        ax.pcolormesh(
            matrix,
            cmap=LinearSegmentedColormap.from_list("blues", BLUES),
            vmin=0,
            vmax=peak,
            edgecolors="#FFFFFF",
            linewidth=2,
        )
        size = 10.5 if n <= 6 else 9.0 if n <= 12 else 7.5
        for i in range(n):
            for j in range(n):
                value = matrix[i][j]
                ax.text(
                    j + 0.5,
                    i + 0.5,
                    f"{int(value)}\n{value / total:.0%}" if n <= 12 else f"{int(value)}",
                    fontsize=size,
                    ha="center",
                    va="center",
                    color="#FFFFFF" if value > 0.55 * peak else "#111111",
                )
        centres = [k + 0.5 for k in range(n)]
        tilt = n > 4 and max(len(label) for label in labels) > 2  # short class names fit upright
        ax.set_xticks(centres, labels, rotation=30 if tilt else 0, ha="right" if tilt else "center")
        ax.set_yticks(centres, labels)
        ax.set_xlim(0, n)
        ax.set_ylim(n, 0)  # first class on top, as in the tables
        ax.set_aspect("equal")
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.tick_params(length=0)
        for spine in ax.spines.values():
            spine.set_visible(False)
        widest = max(text_px(label) for label in labels)
        frame(fig, left=36 + widest, right=8, top=8, bottom=40 + (0.6 * widest if tilt else 0))

    side = min(576, 211 + 43 * len(labels))
    return [
        ChartSpec(
            id="confusion_matrix",
            title="Confusion matrix (eval split)",
            caption=caption,
            alt=alt,
            plot=plot,
            size=(side + 77, side),
        )
    ]


def _read(section: Any) -> tuple[list[str], list[list[float]]]:
    """``tables.confusion_matrix_eval`` (rows of true class, predicted class, count) as labels and a square grid."""
    cells = table(section, "confusion_matrix_eval", ConfusionCell)
    labels = list(dict.fromkeys([c.true for c in cells] + [c.pred for c in cells]))
    index = {lab: i for i, lab in enumerate(labels)}
    grid = [[0.0] * len(labels) for _ in labels]
    for c in cells:
        grid[index[c.true]][index[c.pred]] += c.count
    return labels, grid
