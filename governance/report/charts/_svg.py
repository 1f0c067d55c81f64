"""Drawing a chart with matplotlib and writing it as accessible inline SVG.

matplotlib is imported here, inside the functions, and only when a report that shows pictures
(HTML, PDF) renders: ``import governance``, ``governance check`` and the text formats never load
it. No pyplot: each chart is a :class:`matplotlib.figure.Figure` with its own
:class:`~matplotlib.backends.backend_svg.FigureCanvasSVG`, so nothing global is switched (no
backend selection, no current figure). The few SVG settings are applied for the duration of one
``savefig`` under a lock (matplotlib reads them from ``rcParams``, shared by every thread).

What comes out, and why:

- text stays text (``svg.fonttype: none``): searchable, selectable, read by screen readers and
  scaled with the page, and no glyph outlines bloat the file;
- the output depends only on the input: no date in the metadata, ids hashed with a salt equal
  to the chart id (so two charts of one page never share an id), coordinates rounded to two
  decimals;
- the ``<svg>`` element is labelled for screen readers (``role="img"``, ``<title>``, ``<desc>``)
  and has no fixed size: it shrinks with the page but is never drawn larger than its own width,
  so its text is never larger than the body text.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from markupsafe import escape

if TYPE_CHECKING:
    import xml.etree.ElementTree as ET

    from matplotlib.figure import Figure

__all__ = [
    "BLUES",
    "DIVERGING",
    "FONT_FAMILY",
    "GREYS",
    "MARKERS",
    "OKABE_ITO",
    "draw",
    "frame",
    "safe_id",
    "text_px",
]

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
MARKERS = ("o", "s", "^", "D", "v", "P", "X")
#: (negative, zero, positive): Okabe–Ito blue, white, vermillion; both ends stay apart under the
#: common colour-vision deficiencies, unlike red–green maps.
DIVERGING: tuple[str, str, str] = ("#0072B2", "#FFFFFF", "#D55E00")
#: ColorBrewer "Blues" (counts: darker is more).
BLUES: tuple[str, ...] = (
    "#F7FBFF",
    "#DEEBF7",
    "#C6DBEF",
    "#9ECAE1",
    "#6BAED6",
    "#4292C6",
    "#2171B5",
    "#08519C",
    "#08306B",
)
#: White → black (image inputs: darker is more ink).
GREYS: tuple[str, str] = ("#FFFFFF", "#000000")
FONT_FAMILY = "DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif"
#: The report's look: small sans-serif text (px: the figure is drawn at 72 dpi, 1 pt = 1 px),
#: light grid, no top/right frame.
STYLE: dict[str, Any] = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 10.5,
    "axes.titlesize": 11.5,
    "axes.labelsize": 11.0,
    "axes.edgecolor": "#555555",
    "axes.labelcolor": "#222222",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "grid.color": "#E3E3E3",
    "grid.linewidth": 0.8,
    "xtick.color": "#444444",
    "ytick.color": "#444444",
    "xtick.labelsize": 10.0,
    "ytick.labelsize": 10.0,
    "legend.fontsize": 10.0,
    "legend.frameon": False,
    "lines.linewidth": 1.8,
    "lines.markersize": 5.0,
    "text.parse_math": False,  # a "$" in a group name is a dollar sign, not TeX
    "axes.unicode_minus": True,
    "svg.fonttype": "none",
    "svg.image_inline": True,
}
DPI = 72.0
_LOCK = threading.Lock()
_SVG_NS = "http://www.w3.org/2000/svg"
_XLINK_NS = "http://www.w3.org/1999/xlink"
_NUMBER = re.compile(r"-?\d+\.\d{3,}")
_HEADER = re.compile(r"^.*?(?=<svg)", re.S)
_ID = re.compile(r'(\sid="|url\(#|href="#)([^"#)]+)([")])')
_BETWEEN_TAGS = re.compile(r">\s+<")
_SVG_OPEN = re.compile(r"<svg\b[^>]*>")
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.S)


def _round(match: re.Match[str]) -> str:
    text = f"{float(match.group()):.2f}".rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def text_px(text: str, size: float = 10.0) -> float:
    """About the width in px of ``text`` at font ``size`` px in DejaVu Sans (0.62 em a character).

    An estimate, to size margins without drawing: measuring text needs a renderer, and a
    drawing pass costs as much as the chart.
    """
    return 0.62 * size * max((len(line) for line in text.split("\n")), default=0)


def frame(
    fig: Figure,
    *,
    left: float = 48,
    right: float = 14,
    top: float = 12,
    bottom: float = 40,
    wspace: float = 0,
    hspace: float = 0,
) -> None:
    """Place the figure's subplot grid with margins and gaps in px (instead of a layout engine)."""
    width, height = fig.get_size_inches() * DPI
    grid = next((ax.get_subplotspec() for ax in fig.axes if ax.get_subplotspec() is not None), None)
    rows, cols = grid.get_gridspec().get_geometry() if grid is not None else (1, 1)
    inner_w = width - left - right
    inner_h = height - top - bottom
    panel_w = max(1.0, (inner_w - (cols - 1) * wspace) / cols)
    panel_h = max(1.0, (inner_h - (rows - 1) * hspace) / rows)
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        top=1 - top / height,
        bottom=bottom / height,
        wspace=wspace / panel_w,
        hspace=hspace / panel_h,
    )


def _flatten(svg: str) -> tuple[str, dict[str, str]]:
    """``svg`` without matplotlib's ``<g id="…">`` wrappers (one per artist, tick and label), every
    attribute's numbers rounded to two decimals (see :func:`_compact`), styles as presentation
    attributes (see :func:`_present`); and the attributes the root element should carry.

    The wrappers carry nothing but a name; dropping them halves the element count, and with it
    the time WeasyPrint spends computing styles for the PDF report.
    """
    import xml.etree.ElementTree as ET

    ET.register_namespace("", _SVG_NS)
    ET.register_namespace("xlink", _XLINK_NS)
    root = ET.fromstring(svg)
    group = f"{{{_SVG_NS}}}g"
    style = f"{{{_SVG_NS}}}style"
    defs = f"{{{_SVG_NS}}}defs"
    inherited: dict[str, str] = {}

    def lift(parent: ET.Element) -> None:
        kept: list[ET.Element] = []
        for child in list(parent):
            if child.tag == style and (universal := _universal_rule(child.text or "")) is not None:
                inherited.update(universal)  # matplotlib's "* {stroke-linejoin: round; …}"
                continue
            _present(child)
            for name, value in child.attrib.items():
                child.attrib[name] = _compact(value)
            lift(child)
            if child.tag == group and set(child.attrib) <= {"id"}:
                kept.extend(child)
            elif child.tag != defs or len(child):
                kept.append(child)
        parent[:] = kept

    lift(root)
    return ET.tostring(root, encoding="unicode"), inherited


#: Properties SVG 1.1 also takes as presentation attributes (only those matplotlib writes).
_PRESENTATION = frozenset(
    {
        "fill",
        "fill-opacity",
        "fill-rule",
        "stroke",
        "stroke-width",
        "stroke-linecap",
        "stroke-linejoin",
        "stroke-miterlimit",
        "stroke-opacity",
        "stroke-dasharray",
        "stroke-dashoffset",
        "opacity",
        "font-size",
        "font-family",
        "font-style",
        "font-weight",
        "text-anchor",
    }
)
_UNIVERSAL_RULE = re.compile(r"\s*\*\s*\{([^{}]*)\}\s*")
_NO_ROTATION = re.compile(r"rotate\(-?0 [-\d.]+ [-\d.]+\)")


def _declarations(css: str) -> dict[str, str] | None:
    """``name: value; …`` as a dict; None if a declaration is not that simple."""
    out: dict[str, str] = {}
    for part in css.split(";"):
        if not part.strip():
            continue
        name, colon, value = part.partition(":")
        if not colon or not name.strip() or not value.strip():
            return None
        out[name.strip()] = value.strip()
    return out


def _universal_rule(css: str) -> dict[str, str] | None:
    """The declarations of a style sheet that is one ``* {…}`` rule of presentation properties, else None."""
    found = _UNIVERSAL_RULE.fullmatch(css)
    declared = _declarations(found.group(1)) if found else None
    return declared if declared is not None and set(declared) <= _PRESENTATION else None


def _present(element: ET.Element) -> None:
    """``style="fill: #fff; stroke: …"`` as ``fill="#fff" stroke="…"``, and no ``rotate(-0 x y)``.

    Attributes are read by WeasyPrint as they are, where a style attribute goes through its CSS
    parser and cascade for every element: a tenth of the time it takes to draw the charts.
    Browsers draw both alike (no rule of the report's style sheet reaches inside a chart).
    Properties that have no attribute form stay in the style attribute.
    """
    if element.get("transform") and _NO_ROTATION.fullmatch(element.get("transform", "")):
        del element.attrib["transform"]
    css = element.get("style")
    declared = _declarations(css) if css else None
    if not declared:
        return
    rest = {k: v for k, v in declared.items() if k not in _PRESENTATION or k in element.attrib}
    for name, value in declared.items():
        if name not in rest:
            element.set(name, value)
    if rest:
        element.set("style", "; ".join(f"{k}: {v}" for k, v in rest.items()))
    else:
        del element.attrib["style"]


def _unclip(fig: Figure) -> None:
    """Draw without clip paths: every chart sets limits that hold its data, and a clip path on
    each bar, line and grid line doubles the time WeasyPrint takes to lay out the PDF report."""
    for ax in fig.axes:
        for artist in ax.get_children():
            artist.set_clip_on(False)
        for axis in (ax.xaxis, ax.yaxis):
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                tick.gridline.set_clip_on(False)


def _compact(value: str) -> str:
    """An attribute value with numbers rounded to two decimals and runs of whitespace as one space."""
    return " ".join(_NUMBER.sub(_round, value).split())


def safe_id(name: str) -> str:
    """``name`` reduced to the characters safe in an XML id and a CSS selector (others become ``-``)."""
    return "".join(ch if ch.isascii() and (ch.isalnum() or ch in "_-") else "-" for ch in name)


def draw(
    plot: Callable[[Figure], None], size: tuple[float, float], *, chart_id: str, title: str, desc: str
) -> str:
    """Call ``plot`` on a fresh figure of ``size`` px and return it as an ``<svg>`` element to inline in HTML.

    ``title`` and ``desc`` label it for screen readers. The style applies while ``plot`` adds its
    artists (matplotlib reads rcParams when an artist is made) and while the figure is written.
    """
    import io

    import matplotlib
    from matplotlib.backends.backend_svg import FigureCanvasSVG
    from matplotlib.figure import Figure

    buffer = io.StringIO()
    rc: dict[Any, Any] = {**STYLE, "svg.hashsalt": chart_id}
    with _LOCK, matplotlib.rc_context(rc):
        # No layout engine: it costs an extra draw of the whole figure and a pass over every tick
        # label (about half the drawing time). The charts place their axes with frame().
        fig = Figure(figsize=(size[0] / DPI, size[1] / DPI), dpi=DPI)
        FigureCanvasSVG(fig)
        plot(fig)
        _unclip(fig)
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None}, facecolor="white")
    body, inherited = _flatten(_METADATA.sub("", _HEADER.sub("", buffer.getvalue(), count=1), count=1))
    # matplotlib names its groups figure_1, axes_1, patch_1 …: the same in every chart. Prefixed
    # with the chart id, every id (and every reference to one) is unique within the report.
    body = _ID.sub(lambda m: f"{m.group(1)}{chart_id}-{m.group(2)}{m.group(3)}", body)
    body = _BETWEEN_TAGS.sub("><", body)
    width, height = (round(v) for v in fig.get_size_inches() * DPI)
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" version="1.1" '
        f'viewBox="0 0 {width} {height}" class="chart" style="max-width: {width}px" role="img" '
        f'aria-labelledby="{chart_id}-title {chart_id}-desc" font-family="{FONT_FAMILY}"'
        + "".join(f' {name}="{escape(value)}"' for name, value in inherited.items())
        + ">"
        f'<title id="{chart_id}-title">{escape(title)}</title>'
        f'<desc id="{chart_id}-desc">{escape(desc)}</desc>'
    )
    return _SVG_OPEN.sub(lambda _: head, body, count=1).strip()
