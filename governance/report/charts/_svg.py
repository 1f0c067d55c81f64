"""Matplotlib figure → lean, accessible, self-contained inline SVG.

No pyplot: figures are built from :class:`matplotlib.figure.Figure` with an Agg canvas attached
inside :func:`new_figure`, so drawing a chart never switches the process-wide backend (a
notebook or a GUI program that imports governance keeps its own).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal, cast

from markupsafe import escape

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["OKABE_ITO", "chart_style", "figure_to_svg", "fixed_margins", "new_figure", "text_width"]

#: Okabe & Ito (2008): distinguishable under the common colour-vision deficiencies. Yellow is last
#: because it has too little contrast on white for thin lines.
OKABE_ITO: tuple[str, ...] = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#D55E00",  # vermillion
    "#000000",  # black
    "#F0E442",  # yellow
)

_RC: dict[str, Any] = {
    # Text stays text: a fraction of the size of glyph outlines, and searchable in the PDF.
    "svg.fonttype": "none",
    # A group called "$x$" is a name, not TeX.
    "text.parse_math": False,
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Liberation Sans", "Arial", "Helvetica"],
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "axes.axisbelow": True,
    "lines.linewidth": 1.6,
    "lines.markersize": 4,
}

# Inside a tag: numbers with more than two decimals; text content (user strings) is never touched.
_TAG = re.compile(r"<[^<>]+>")
_LONG_DECIMAL = re.compile(r"(-?\d+\.\d\d)\d+")


_ID_ATTR = re.compile(r'(\sid="|url\(#|href="#)([^")]+)')


def _prefix_ids(tag: str, prefix: str) -> str:
    return _ID_ATTR.sub(lambda m: f"{m.group(1)}{prefix}-{m.group(2)}", tag)


@contextmanager
def chart_style(chart_id: str) -> Iterator[None]:
    """Our rc settings for the duration of one chart; the salt makes clip-path ids unique per chart."""
    import matplotlib
    from cycler import cycler

    rc = dict(_RC, **{"svg.hashsalt": chart_id, "axes.prop_cycle": cycler(color=OKABE_ITO[:7])})
    with matplotlib.rc_context(cast(Any, rc)):
        yield


def new_figure(
    width: float,
    height: float,
    *,
    layout: Literal["constrained", "compressed", "tight"] | None = "constrained",
) -> Figure:
    """A figure with an Agg canvas of its own (no pyplot, no global backend switch).

    ``layout=None`` leaves placement to the chart (:func:`fixed_margins`): a layout engine makes
    ``savefig`` draw the whole figure twice (once to measure, once to write) and constrained
    layout's measuring pass is the costliest part of a chart, so the charts on the hot path of
    ``governance audit`` (group rates) lay themselves out from measured text widths instead.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout=layout)
    FigureCanvasAgg(fig)
    return fig


def text_width(texts: Iterable[str], size: float) -> float:
    """Width in inches of the widest of ``texts`` at ``size`` points in the chart font.

    Measured with matplotlib's own font metrics (no renderer, no draw), the ones a layout engine
    would use.
    """
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import text_to_path

    prop = FontProperties(size=size)
    widest = 0.0
    for text in texts:
        if text:
            width, _, _ = text_to_path.get_text_width_height_descent(text, prop, ismath=False)
            widest = max(widest, float(width))
    return widest / 72.0


def fixed_margins(
    fig: Figure,
    *,
    left: float,
    right: float,
    top: float,
    bottom: float,
    wspace: float = 0.0,
    columns: int = 1,
) -> None:
    """Place the subplots with margins and gaps given in inches (one ``subplots_adjust``).

    ``wspace`` is the gap between neighbouring panels of a ``columns``-wide grid; matplotlib wants
    it as a fraction of the mean panel width, which depends on the number of panels, hence the
    conversion here.
    """
    width, height = fig.get_size_inches()
    inner = max(width - left - right, 0.5)
    panel = max((inner - wspace * (columns - 1)) / max(columns, 1), 0.1)
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        top=1 - top / height,
        bottom=bottom / height,
        wspace=wspace / panel,
    )


def figure_to_svg(fig: Figure, *, chart_id: str, title: str, desc: str) -> str:
    """Serialise ``fig`` as an ``<svg>`` element ready to inline in HTML.

    The XML prolog and matplotlib's metadata (which holds a date) are dropped so reports are
    reproducible; coordinates are rounded to two decimals to keep the file small; ``<title>``
    and ``<desc>`` carry the alt text for screen readers.
    """
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    safe_id = re.sub(r"[^A-Za-z0-9_-]", "-", chart_id)
    # One pass over the tags: round coordinates, and prefix the element ids matplotlib numbers
    # per figure (axes_1, line2d_3) so several charts in one document keep ids unique, with their
    # url(#…) / href="#…" references.
    svg = _TAG.sub(lambda m: _prefix_ids(_LONG_DECIMAL.sub(r"\1", m.group(0)), safe_id), svg)
    open_end = svg.index(">") + 1
    opening = svg[: open_end - 1]
    # Drop the fixed size so the chart shrinks with the page, but never draw it larger than made:
    # its fonts then match the body text.
    width = re.search(r'\swidth="([\d.]+)pt"', opening)
    opening = re.sub(r'\s(width|height)="[^"]*"', "", opening, count=2)
    style = f' style="max-width: {width.group(1)}pt"' if width else ""
    accessible = (
        f'{opening} class="chart"{style} role="img" aria-labelledby="{safe_id}-title {safe_id}-desc">'
        f'<title id="{safe_id}-title">{escape(title)}</title>'
        f'<desc id="{safe_id}-desc">{escape(desc)}</desc>'
    )
    return accessible + svg[open_end:].strip()
