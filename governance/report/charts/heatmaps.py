"""Attribution heatmaps of image models: per-class mean maps, and single examples beside their input.

Reads ``sections.attribution.details``: ``heatmaps`` (class → H×W mean signed attribution),
``heatmap_examples`` (``{class, input, attribution}``) and ``heatmap_info``. Tabular and text
audits have none of these, so both charts are omitted there with a note.

Colours: a diverging map from Okabe–Ito blue (the pixel lowers the predicted class's logit)
through white (no effect) to Okabe–Ito vermillion (raises it), symmetric around zero and
shared by every panel of a chart so that panels compare; both ends stay distinguishable under
the common colour-vision deficiencies, unlike red–green maps. Inputs are drawn in greys.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from governance.report._text import fmt_number
from governance.report.charts._data import NoData, details, ok_section
from governance.report.charts._svg import DIVERGING, GREYS, frame
from governance.report.charts.base import ChartSpec

if TYPE_CHECKING:
    import numpy as np
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap
    from matplotlib.figure import Figure

    from governance.results import Results

__all__ = ["DIVERGING", "applies", "attribution_heatmaps", "heatmap_examples"]

#: Most classes drawn in one chart (one panel each); more would make the panels unreadable.
MAX_CLASSES = 20
_COLUMNS = 10


def _grid(value: Any, where: str) -> np.ndarray:
    """A 2-D finite float array from the JSON, or NoData naming what is wrong."""
    import numpy as np  # here, not at the top: only image results need it

    try:
        grid = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise NoData(f"{where} is not a grid of numbers") from None
    if grid.ndim != 2 or grid.size == 0 or not np.isfinite(grid).all():
        raise NoData(f"{where} is not a 2-D grid of finite numbers")
    return grid


def applies(results: Results) -> bool:
    """Whether the attribution audit ran on an image model (it then writes ``details.heatmaps``).

    Tabular and text models have no heatmaps to show: the charts are left out, not "omitted".
    """
    section = results.sections.get("attribution")
    return section is not None and isinstance(section.details, Mapping) and "heatmaps" in section.details


def _class_maps(results: Results) -> dict[str, np.ndarray]:
    section = ok_section(results, "attribution")
    raw = details(section, "heatmaps")
    if not isinstance(raw, Mapping) or not raw:
        raise NoData("sections.attribution.details.heatmaps is empty")
    maps = {str(k): _grid(v, f"sections.attribution.details.heatmaps.{k}") for k, v in raw.items()}
    return dict(list(maps.items())[:MAX_CLASSES])


def _cmap() -> Colormap:
    """The diverging map: ``t`` = 0 (−limit) blue, 0.5 (zero) white, 1 (+limit) vermillion."""
    from matplotlib.colors import LinearSegmentedColormap

    # An odd number of entries: zero (t = 0.5) falls on the middle entry, exactly white.
    return LinearSegmentedColormap.from_list("okabe_ito_diverging", DIVERGING, N=257)


def _greys() -> Colormap:
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list("greys", GREYS)


def _colorbar(fig: Figure, limit: float, *, top: float, bottom: float) -> None:
    """One colour bar for every panel (they share the symmetric limits), at the right edge."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    from governance.report.charts._svg import DPI

    width, height = fig.get_size_inches() * DPI
    cax = fig.add_axes((1 - 62 / width, bottom / height, 10 / width, 1 - (top + bottom) / height))
    mappable = ScalarMappable(norm=Normalize(-limit, limit), cmap=_cmap())
    bar = fig.colorbar(mappable, cax=cax, label="attribution")
    bar.outline.set_visible(False)
    # matplotlib rasterises a colour bar of more than 50 steps; the report's charts stay vector.
    if bar.solids is not None:
        bar.solids.set_rasterized(False)


def _limit(grids: Sequence[np.ndarray]) -> float:
    """Symmetric colour limit: the 99th percentile of |value| over every panel (never 0).

    A percentile, not the maximum: one extreme pixel would otherwise wash every other panel out
    to near-white; the few pixels beyond the limit show at full colour.
    """
    import numpy as np

    values = np.abs(np.concatenate([g.ravel() for g in grids]))
    peak = float(np.percentile(values, 99))
    return peak if peak > 0 else (float(values.max()) or 1.0)


def _panel(
    ax: Axes, grid: np.ndarray, title: str | None, *, cmap: Colormap, vmin: float, vmax: float
) -> None:
    """One image as square vector cells (no raster), framed in light grey, with a small title."""
    mesh = ax.pcolormesh(grid, cmap=cmap, vmin=vmin, vmax=vmax, edgecolors="face", linewidth=0.3)
    mesh.set_clip_on(False)  # the cells fill the panel exactly: no clip path repeated on every cell
    ax.set_xlim(0, grid.shape[1])
    ax.set_ylim(grid.shape[0], 0)  # row 0 on top, as the image is read
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_color("#BBBBBB")
        spine.set_linewidth(0.8)
    if title is not None:
        ax.set_title(title, fontsize=10.5, pad=3)


def _side(columns: int, most: float) -> float:
    """About the side in px of a square panel when ``columns`` of them share a 672 px row with a colour bar."""
    return min(most, (570 - 10 * columns) / max(columns, 1))


def _hotspot(grid: np.ndarray) -> str:
    """Where the strongest positive evidence lies, in words (row, column from the top left)."""
    import numpy as np

    r, c = np.unravel_index(int(np.argmax(grid)), grid.shape)
    return f"strongest positive pixel at row {r + 1}, column {c + 1}"


def _info(results: Results) -> Mapping[str, Any]:
    section = results.sections["attribution"]
    info = section.details.get("heatmap_info") if isinstance(section.details, Mapping) else None
    return info if isinstance(info, Mapping) else {}


def attribution_heatmaps(results: Results) -> list[ChartSpec]:
    """One panel per predicted class: the mean signed attribution over that class's examples."""
    if not applies(results):
        return []
    maps = _class_maps(results)
    info = _info(results)
    averaged = info.get("averaged_per_class")
    limit = _limit(list(maps.values()))
    height, width = next(iter(maps.values())).shape
    alt = (
        f"{len(maps)} heatmaps of {height} by {width} pixels, one per predicted class, coloured from blue "
        f"(attribution -{fmt_number(limit, 3)} or less) through white (0) to vermillion "
        f"(+{fmt_number(limit, 3)} or more). "
        + "; ".join(
            f"class {label}: total positive {fmt_number(float(g[g > 0].sum()), 3)}, total negative "
            f"{fmt_number(float(g[g < 0].sum()), 3)}, {_hotspot(g)}"
            for label, g in maps.items()
        )
        + "."
    )
    caption = (
        "Integrated Gradients attribution to the predicted class, averaged over "
        + (f"up to {averaged} eval images" if averaged else "the eval images")
        + " predicted as each class (zero baseline: a black image). Vermillion pixels raise the class's "
        "score, blue pixels lower it, white pixels do not matter. Strokes in the expected places suggest "
        "the model looks at the digit; colour off the strokes or at the borders suggests it relies on "
        "artefacts."
    )
    rows = -(-len(maps) // _COLUMNS)
    cols = min(len(maps), _COLUMNS)

    def plot(fig: Figure) -> None:
        grid = fig.subplots(rows, cols, squeeze=False)
        axes = [ax for row in grid for ax in row]
        for ax, (label, values) in zip(axes, maps.items(), strict=False):
            _panel(ax, values, label, cmap=_cmap(), vmin=-limit, vmax=limit)
        for ax in axes[len(maps) :]:
            ax.set_visible(False)
        frame(fig, left=6, right=84, top=18, bottom=6, wspace=6, hspace=20)
        _colorbar(fig, limit, top=18, bottom=6)

    return [
        ChartSpec(
            id="attribution_heatmaps",
            title="Attribution heatmaps per predicted class",
            caption=caption,
            alt=alt,
            plot=plot,
            size=(672, 14 + rows * (_side(cols, 110) + 26)),
        )
    ]


def _examples(results: Results) -> list[tuple[str, np.ndarray, np.ndarray]]:
    section = ok_section(results, "attribution")
    raw = details(section, "heatmap_examples")
    if not isinstance(raw, Sequence) or isinstance(raw, str) or not raw:
        raise NoData("sections.attribution.details.heatmap_examples is empty")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, Mapping) or not {"class", "input", "attribution"} <= set(item):
            raise NoData(
                f"sections.attribution.details.heatmap_examples[{i}] lacks class, input or attribution"
            )
        where = f"sections.attribution.details.heatmap_examples[{i}]"
        image, attribution = (
            _grid(item["input"], where + ".input"),
            _grid(item["attribution"], where + ".attribution"),
        )
        if image.shape != attribution.shape:
            raise NoData(f"{where}: input and attribution differ in shape")
        out.append((str(item["class"]), image, attribution))
    return out


def heatmap_examples(results: Results) -> list[ChartSpec]:
    """Single eval images (greys) above their attribution map, a few per predicted class."""
    if not applies(results):
        return []
    examples = _examples(results)
    by_class: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for label, image, attribution in examples:
        by_class.setdefault(label, []).append((image, attribution))
    by_class = dict(list(by_class.items())[:_COLUMNS])
    depth = max(len(v) for v in by_class.values())
    limit = _limit([a for pairs in by_class.values() for _, a in pairs])
    shown = sum(len(v) for v in by_class.values())
    alt = (
        f"{shown} eval images, {depth} per predicted class, each drawn in greys above its attribution heatmap "
        f"(blue -{fmt_number(limit, 3)}, white 0, vermillion +{fmt_number(limit, 3)}). "
        + "; ".join(
            f"class {label}: " + ", ".join(_hotspot(a) for _, a in pairs) for label, pairs in by_class.items()
        )
        + "."
    )
    caption = (
        "A few single eval images (top, in greys: darker is more ink) and their Integrated Gradients "
        "attribution to the predicted class (below, same colours as the class heatmaps). Single "
        "attributions are noisier than the class means; look for colour that follows the strokes."
    )

    def plot(fig: Figure) -> None:
        axes = fig.subplots(2 * depth, len(by_class), squeeze=False)
        for col, (label, pairs) in enumerate(by_class.items()):
            for k in range(depth):
                top, bottom = axes[2 * k][col], axes[2 * k + 1][col]
                if k >= len(pairs):
                    top.set_visible(False)
                    bottom.set_visible(False)
                    continue
                pixels, attribution = pairs[k]
                _panel(
                    top,
                    pixels,
                    label if k == 0 else None,
                    cmap=_greys(),
                    vmin=0.0,
                    vmax=max(1.0, float(pixels.max())),
                )
                _panel(bottom, attribution, None, cmap=_cmap(), vmin=-limit, vmax=limit)
        frame(fig, left=6, right=84, top=18, bottom=6, wspace=6, hspace=4)
        _colorbar(fig, limit, top=18, bottom=6)

    return [
        ChartSpec(
            id="attribution_heatmap_examples",
            title="Attribution heatmaps of single images",
            caption=caption,
            alt=alt,
            plot=plot,
            size=(672, 34 + 2 * depth * (_side(len(by_class), 80) + 8)),
        )
    ]
