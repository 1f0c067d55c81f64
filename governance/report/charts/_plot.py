"""A small plotting module that writes the report charts as plain, accessible inline SVG.

The report needs a handful of simple charts (bars with whiskers, lines, reference lines, a
confusion matrix, attribution heatmaps). A general plotting library costs half a second to
import and as much again to draw them; this module is pure Python and draws them all in a few
milliseconds.

What it writes is deliberately plain SVG 1.1 — ``rect``, ``line``, ``polyline``, ``path``,
``circle`` and ``text`` with ``text-anchor``, in ``g`` groups with presentation attributes — so that browsers and
WeasyPrint (the PDF report) draw it the same way: no CSS variables, no ``foreignObject``, no
embedded rasters, no fonts, no references between elements. Every string that comes from the
results (group, feature and class names, titles, alt text) is escaped; labels too long for their
room are cut with an ellipsis and keep the full text in a ``<title>`` child. The output depends
only on the input: no dates, no random ids, coordinates rounded to two decimals.

Layout works from text widths estimated character by character (a small table of glyph widths;
no font files are read), which is precise enough to size margins; a chart declares what it shows
and :meth:`Figure.to_svg` places the panels around their tick labels, titles, legends and colour
bar.

Examples
--------
>>> fig = Figure(400, 200)
>>> ax = fig.add_axes()
>>> ax.barh([0, 1], [0.25, 0.5], color=OKABE_ITO[0])
>>> ax.set_xlim(0, 1)
>>> svg = fig.to_svg(chart_id="demo", title="Two bars", desc="Bars of 0.25 and 0.5.")
>>> svg.startswith("<svg") and 'role="img"' in svg
True
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal, Protocol

from markupsafe import escape

__all__ = [
    "BLUES",
    "DIVERGING",
    "GREYS",
    "OKABE_ITO",
    "Axes",
    "Colormap",
    "Diverging",
    "Figure",
    "LegendEntry",
    "Sequential",
    "fit_text",
    "fmt",
    "log_ticks",
    "nice_ticks",
    "text_width",
    "tick_labels",
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

FONT_FAMILY = "DejaVu Sans, Liberation Sans, Arial, Helvetica, sans-serif"
#: Font sizes in px (the figure's user units).
SIZE_TICK = 10.5
SIZE_LABEL = 11.5
SIZE_TITLE = 12.5
SIZE_LEGEND = 10.5
SIZE_NOTE = 9.5

INK = "#222222"
AXIS = "#333333"
GRID = "#DDDDDD"
BACKGROUND = "#FFFFFF"
TICK_LENGTH = 4.0
PAD = 6.0  # around the figure
ELLIPSIS = "…"
_BOLD = 1.1  # bold text is about this much wider

Loc = Literal["best", "upper right", "upper left", "lower left", "lower right", "center right"]
_CORNERS: tuple[Loc, ...] = ("upper right", "upper left", "lower left", "lower right", "center right")

# --- numbers and text -----------------------------------------------------------------------------


def fmt(value: float) -> str:
    """A coordinate as SVG text: at most two decimals, no trailing zeros, never ``-0``.

    >>> [fmt(v) for v in (1.0, 2.5, 0.123456, -0.001, 120.10)]
    ['1', '2.5', '0.12', '0', '120.1']
    """
    text = f"{value:.2f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


#: Advance widths (em) of printable ASCII, space to tilde, in DejaVu Sans: the widest of the usual
#: sans-serif fallbacks, so that estimates err on the roomy side in the others.
_ASCII_EM = (
    0.32, 0.40, 0.46, 0.84, 0.64, 0.95, 0.78, 0.27, 0.39, 0.39, 0.50, 0.84, 0.32, 0.36, 0.32, 0.34,
    0.64, 0.64, 0.64, 0.64, 0.64, 0.64, 0.64, 0.64, 0.64, 0.64, 0.34, 0.34, 0.84, 0.84, 0.84, 0.53,
    1.00, 0.68, 0.69, 0.70, 0.77, 0.63, 0.58, 0.77, 0.75, 0.29, 0.29, 0.66, 0.56, 0.86, 0.75, 0.79,
    0.60, 0.79, 0.69, 0.63, 0.61, 0.73, 0.68, 0.99, 0.69, 0.61, 0.69, 0.39, 0.34, 0.39, 0.84, 0.50,
    0.50, 0.61, 0.63, 0.55, 0.63, 0.62, 0.35, 0.63, 0.63, 0.28, 0.28, 0.58, 0.28, 0.97, 0.63, 0.61,
    0.63, 0.63, 0.41, 0.52, 0.39, 0.63, 0.59, 0.82, 0.59, 0.59, 0.52, 0.64, 0.34, 0.64, 0.84,
)  # fmt: skip


def text_width(text: str, size: float) -> float:
    """Estimated width in px of ``text`` at ``size`` px in the charts' sans-serif font.

    From the characters alone, no font files: a table of ASCII widths, 1 em for wide East Asian
    characters, 0.7 em for anything else (Greek, symbols). Precise enough to size margins and
    decide where a label must be cut.

    >>> round(text_width("male", 10), 1)
    24.8
    """
    total = 0.0
    for ch in text:
        code = ord(ch)
        if 32 <= code < 127:
            total += _ASCII_EM[code - 32]
        elif code > 0x2E7F and unicodedata.east_asian_width(ch) in ("W", "F"):
            total += 1.0
        else:
            total += 0.7
    return total * size


def fit_text(text: str, size: float, max_width: float | None) -> str:
    """``text``, or as much of it as fits in ``max_width`` px followed by an ellipsis.

    >>> fit_text("checking_account_status", 10, 80)
    'checking_acco…'
    >>> fit_text("age", 10, 80)
    'age'
    """
    if max_width is None or text_width(text, size) <= max_width:
        return text
    room = max_width - text_width(ELLIPSIS, size)
    kept = ""
    for ch in text:
        if text_width(kept + ch, size) > room:
            break
        kept += ch
    return kept.rstrip() + ELLIPSIS


def nice_step(span: float, target: int) -> float:
    """The 1, 2, 2.5 or 5 × 10ᵏ step that cuts ``span`` into about ``target`` intervals."""
    raw = span / max(target, 1)
    if raw <= 0 or not math.isfinite(raw):
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for mult in (1.0, 2.0, 2.5, 5.0, 10.0):
        if mult * magnitude >= raw * (1 - 1e-9):
            return mult * magnitude
    return 10.0 * magnitude  # pragma: no cover - the loop always returns


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round tick values inside ``[lo, hi]``, about ``target`` intervals apart.

    >>> nice_ticks(0, 1)
    [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    >>> nice_ticks(0, 1, 4)
    [0.0, 0.25, 0.5, 0.75, 1.0]
    >>> nice_ticks(0.3, 31.5, 7)
    [5.0, 10.0, 15.0, 20.0, 25.0, 30.0]
    """
    lo, hi = min(lo, hi), max(lo, hi)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi == lo:
        return [float(lo)]
    step = nice_step(hi - lo, target)
    first = math.ceil(lo / step - 1e-9)
    ticks = []
    k = first
    while k * step <= hi + step * 1e-9:
        value = round(k * step, 12)
        ticks.append(0.0 if abs(value) < step * 1e-9 else value)
        k += 1
    return ticks


def log_ticks(lo: float, hi: float) -> list[float]:
    """Decades inside ``[lo, hi]`` (and 2×, 5× of them when fewer than two decades fit).

    >>> log_ticks(1e-4, 1)
    [0.0001, 0.001, 0.01, 0.1, 1.0]
    >>> log_ticks(0.15, 0.9)
    [0.2, 0.5]
    """
    lo, hi = min(lo, hi), max(lo, hi)
    if lo <= 0 or not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    eps = 1e-9
    first, last = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    decades = [10.0**k for k in range(first, last + 1)]
    ticks = [round(d, 12) for d in decades if lo * (1 - eps) <= d <= hi * (1 + eps)]
    if len(ticks) < 2:
        more = {round(m * d, 12) for d in decades for m in (1.0, 2.0, 5.0)}
        ticks = sorted(v for v in more if lo * (1 - eps) <= v <= hi * (1 + eps))
    return ticks


def tick_labels(values: Sequence[float], *, log: bool = False) -> list[str]:
    """Labels for tick values: plain decimals without trailing zeros, a true minus sign.

    >>> tick_labels([0.0, 0.25, 0.5, 1.0])
    ['0', '0.25', '0.5', '1']
    >>> tick_labels([-10, 0, 10])
    ['−10', '0', '10']
    >>> tick_labels([0.0001, 0.01, 1.0], log=True)
    ['0.0001', '0.01', '1']
    """
    out = []
    for v in values:
        if log or (v != 0 and not 1e-4 <= abs(v) < 1e6):
            text = f"{v:g}"
        else:
            text = f"{v:.6f}".rstrip("0").rstrip(".")
        out.append("0" if text in ("-0", "0", "") else text.replace("-", "−"))
    return out


# --- colours -------------------------------------------------------------------------------------


def _rgb(color: str) -> tuple[int, int, int]:
    c = color.lstrip("#")
    return int(c[0:2], 16), int(c[2:4], 16), int(c[4:6], 16)


def _hex(rgb: Iterable[float]) -> str:
    return "#" + "".join(f"{min(255, max(0, round(v))):02X}" for v in rgb)


def _mix(a: tuple[int, int, int], b: tuple[int, int, int], f: float) -> str:
    return _hex(a[k] + (b[k] - a[k]) * f for k in range(3))


class Colormap(Protocol):
    """``t`` in [0, 1] → ``#RRGGBB``; values outside [0, 1] take the end colours."""

    def __call__(self, t: float) -> str: ...


class Sequential:
    """Linear interpolation through colour stops, quantised to ``levels`` steps.

    Quantising keeps a heatmap to a few dozen distinct colours, which :meth:`Axes.heatmap` draws
    as one path each.
    """

    def __init__(self, stops: Sequence[str], levels: int = 64) -> None:
        if len(stops) < 2:
            raise ValueError("a colour map needs at least two stops")
        self.stops = tuple(stops)
        self._rgb = [_rgb(s) for s in stops]
        self.levels = levels

    def __call__(self, t: float) -> str:
        t = min(1.0, max(0.0, t)) if math.isfinite(t) else 0.0
        t = round(t * self.levels) / self.levels
        n = len(self._rgb) - 1
        i = min(int(t * n), n - 1)
        return _mix(self._rgb[i], self._rgb[i + 1], t * n - i)


class Diverging:
    """Negative end → middle → positive end, exactly symmetric around ``t = 0.5`` (value 0).

    The colour of ``0.5 + d`` is the middle moved by the same fraction towards the positive end
    as ``0.5 - d`` is towards the negative end: the map shows sign by hue and size by strength
    alone.
    """

    def __init__(self, negative: str, middle: str, positive: str, levels: int = 48) -> None:
        self.stops = (negative, middle, positive)
        self._neg, self._mid, self._pos = _rgb(negative), _rgb(middle), _rgb(positive)
        self.levels = levels

    def __call__(self, t: float) -> str:
        s = (2.0 * t - 1.0) if math.isfinite(t) else 0.0
        strength = round(min(1.0, abs(s)) * self.levels) / self.levels
        if strength == 0:
            return _hex(self._mid)
        return _mix(self._mid, self._pos if s > 0 else self._neg, strength)


#: Okabe–Ito blue → white → vermillion: colour-blind safe, unlike red–green maps.
DIVERGING = Diverging(OKABE_ITO[0], "#FFFFFF", OKABE_ITO[5])
#: ColorBrewer "Blues" (counts: darker is more).
BLUES = Sequential(
    ("#F7FBFF", "#DEEBF7", "#C6DBEF", "#9ECAE1", "#6BAED6", "#4292C6", "#2171B5", "#08519C", "#08306B")
)
#: White → black (image inputs: darker is more ink).
GREYS = Sequential(("#FFFFFF", "#000000"))


# --- SVG text ------------------------------------------------------------------------------------


def _text(
    x: float,
    y: float,
    text: str,
    *,
    size: float | None = None,
    anchor: str = "start",
    valign: str = "baseline",
    fill: str | None = None,
    weight: str | None = None,
    rotate: float = 0.0,
    max_width: float | None = None,
) -> str:
    """One ``<text>`` (a line each for ``\\n``); ``size`` None inherits the group's."""
    lines = text.split("\n")
    em = size or SIZE_TICK
    height = em * 1.2
    # From the top of the block to the first baseline: cap height ~0.75 em.
    first = {"middle": -(len(lines) - 1) * height / 2 + 0.35 * em, "top": 0.78 * em, "bottom": -0.22 * em}
    y0 = y + first.get(valign, 0.0)
    if valign == "bottom":
        y0 -= (len(lines) - 1) * height
    attrs = ""
    if size is not None:
        attrs += f' font-size="{fmt(size)}"'
    if anchor != "start":
        attrs += f' text-anchor="{anchor}"'
    if fill is not None:
        attrs += f' fill="{fill}"'
    if weight is not None:
        attrs += f' font-weight="{weight}"'
    out = []
    for i, line in enumerate(lines):
        shown = fit_text(line, em, max_width)
        ly = y0 + i * height
        transform = f' transform="rotate({fmt(rotate)} {fmt(x)} {fmt(ly)})"' if rotate else ""
        full = f"<title>{escape(line)}</title>" if shown != line else ""
        out.append(f'<text x="{fmt(x)}" y="{fmt(ly)}"{attrs}{transform}>{full}{escape(shown)}</text>')
    return "".join(out)


def _dash(dash: str | None) -> str:
    return f' stroke-dasharray="{dash}"' if dash else ""


# --- scales --------------------------------------------------------------------------------------


@dataclass
class _Scale:
    """One axis: limits (set or from the data), linear or log, ticks (set or nice)."""

    log: bool = False
    lo: float | None = None
    hi: float | None = None
    margin: float = 0.05
    dmin: float = math.inf
    dmax: float = -math.inf
    ticks: list[float] | None = None
    labels: list[str] | None = None
    rotation: float = 0.0

    def include(self, values: Iterable[float | None]) -> None:
        for v in values:
            if v is None or not math.isfinite(v) or (self.log and v <= 0):
                continue
            self.dmin = min(self.dmin, v)
            self.dmax = max(self.dmax, v)

    def _f(self, v: float) -> float:
        return math.log10(v) if self.log else v

    def _inv(self, v: float) -> float:
        return 10.0**v if self.log else v

    def limits(self) -> tuple[float, float]:
        lo_set = self.lo if self.lo is not None and (not self.log or self.lo > 0) else None
        hi_set = self.hi if self.hi is not None and (not self.log or self.hi > 0) else None
        if lo_set is not None and hi_set is not None:
            return lo_set, hi_set
        dmin, dmax = self.dmin, self.dmax
        if dmin > dmax:  # no data
            dmin, dmax = (1.0, 10.0) if self.log else (0.0, 1.0)
        a = self._f(lo_set) if lo_set is not None else self._f(dmin)
        b = self._f(hi_set) if hi_set is not None else self._f(dmax)
        span = b - a
        if span == 0:
            span = abs(a) or 1.0
            if lo_set is None and hi_set is None:
                a, b = a - span / 2, b + span / 2
        lo = lo_set if lo_set is not None else self._inv(a - self.margin * span)
        hi = hi_set if hi_set is not None else self._inv(b + self.margin * span)
        return lo, hi

    def unit(self, v: float, lims: tuple[float, float]) -> float:
        """Where ``v`` lies between the limits, as a fraction (not clamped)."""
        lo, hi = lims
        if self.log:
            v = max(v, min(lo, hi) * 1e-3) if v > 0 else min(lo, hi) * 1e-3
        a, b = self._f(lo), self._f(hi)
        return (self._f(v) - a) / (b - a) if b != a else 0.5

    def tick_values(self, length: float, spacing: float) -> list[tuple[float, str]]:
        lims = self.limits()
        lo, hi = min(lims), max(lims)
        eps = (hi - lo) * 1e-9
        if self.ticks is not None:
            labels = self.labels if self.labels is not None else tick_labels(self.ticks, log=self.log)
            return [(v, lab) for v, lab in zip(self.ticks, labels) if lo - eps <= v <= hi + eps]
        target = max(2, min(8, int(length // spacing)))
        values = log_ticks(lo, hi) if self.log else nice_ticks(lo, hi, target)
        return list(zip(values, tick_labels(values, log=self.log)))


@dataclass
class _Frame:
    """Pixel box of a panel and its data → pixel transform."""

    x: float
    y: float
    w: float
    h: float
    xs: _Scale
    ys: _Scale
    xl: tuple[float, float] = (0.0, 1.0)
    yl: tuple[float, float] = (0.0, 1.0)

    def __post_init__(self) -> None:
        self.xl, self.yl = self.xs.limits(), self.ys.limits()

    def px(self, v: float, clamp: bool = True) -> float:
        u = self.xs.unit(v, self.xl)
        if clamp:
            u = min(1.0, max(0.0, u))
        return self.x + u * self.w

    def py(self, v: float, clamp: bool = True) -> float:
        u = self.ys.unit(v, self.yl)
        if clamp:
            u = min(1.0, max(0.0, u))
        return self.y + self.h - u * self.h


# --- legend entries ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LegendEntry:
    """A legend row: a swatch (``box`` for bars, ``line``, ``whisker`` for intervals) and its label."""

    label: str
    color: str
    kind: Literal["box", "line", "whisker"] = "box"
    dash: str | None = None
    marker: str | None = None
    width: float = 1.6

    def swatch(self, x: float, y: float) -> str:
        """The swatch in an 18 × 10 px box whose left-middle point is (x, y)."""
        if self.kind == "box":
            return f'<rect x="{fmt(x + 2)}" y="{fmt(y - 4.5)}" width="14" height="9" fill="{self.color}"/>'
        if self.kind == "whisker":
            return (
                f'<path d="M{fmt(x + 2)} {fmt(y)}h14M{fmt(x + 2)} {fmt(y - 3.5)}v7M{fmt(x + 16)} {fmt(y - 3.5)}v7" '
                f'fill="none" stroke="{self.color}" stroke-width="1.2"/>'
            )
        out = (
            f'<line x1="{fmt(x)}" y1="{fmt(y)}" x2="{fmt(x + 18)}" y2="{fmt(y)}" stroke="{self.color}" '
            f'stroke-width="{fmt(self.width)}"{_dash(self.dash)}/>'
        )
        if self.marker:
            out += _marker(self.marker, x + 9, y, self.color)
        return out


def _legend_size(entries: Sequence[LegendEntry], title: str | None, max_label: float) -> tuple[float, float]:
    widest = 24 + max(
        (text_width(fit_text(e.label, SIZE_LEGEND, max_label), SIZE_LEGEND) for e in entries), default=0
    )
    if title:
        widest = max(widest, 4 + _BOLD * text_width(fit_text(title, SIZE_LEGEND, max_label), SIZE_LEGEND))
    rows = len(entries) + (1 if title else 0)
    return widest + 8, rows * (SIZE_LEGEND + 5) + 6


def _legend_rows(
    x: float, y: float, entries: Sequence[LegendEntry], title: str | None, max_label: float
) -> list[str]:
    """A vertical legend with its top-left corner at (x, y) on a translucent white ground."""
    width, height = _legend_size(entries, title, max_label)
    out = [
        f'<rect x="{fmt(x)}" y="{fmt(y)}" width="{fmt(width)}" height="{fmt(height)}" '
        f'fill="{BACKGROUND}" fill-opacity="0.8"/>'
    ]
    row = SIZE_LEGEND + 5
    cy = y + 3 + row / 2
    if title:
        out.append(_text(x + 4, cy, title, valign="middle", weight="bold", max_width=max_label))
        cy += row
    for entry in entries:
        out.append(entry.swatch(x + 2, cy))
        out.append(_text(x + 26, cy, entry.label, valign="middle", max_width=max_label))
        cy += row
    return out


# --- markers -------------------------------------------------------------------------------------

_MARKER_R = 3.4


def _marker(kind: str, x: float, y: float, color: str) -> str:
    """A filled marker centred on (x, y): o s ^ v D P X."""
    r = _MARKER_R
    if kind == "o":
        return f'<circle cx="{fmt(x)}" cy="{fmt(y)}" r="{fmt(r)}" fill="{color}"/>'
    shapes = {
        "s": [(-0.85, -0.85), (0.85, -0.85), (0.85, 0.85), (-0.85, 0.85)],
        "^": [(0, -1.1), (1.0, 0.75), (-1.0, 0.75)],
        "v": [(0, 1.1), (1.0, -0.75), (-1.0, -0.75)],
        "D": [(0, -1.15), (0.85, 0), (0, 1.15), (-0.85, 0)],
        "P": [
            (-0.35, -1),
            (0.35, -1),
            (0.35, -0.35),
            (1, -0.35),
            (1, 0.35),
            (0.35, 0.35),
            (0.35, 1),
            (-0.35, 1),
            (-0.35, 0.35),
            (-1, 0.35),
            (-1, -0.35),
            (-0.35, -0.35),
        ],
        "X": [
            (-0.5, -1),
            (0, -0.5),
            (0.5, -1),
            (1, -0.5),
            (0.5, 0),
            (1, 0.5),
            (0.5, 1),
            (0, 0.5),
            (-0.5, 1),
            (-1, 0.5),
            (-0.5, 0),
            (-1, -0.5),
        ],
    }
    points = shapes.get(kind, shapes["s"])
    d = "M" + "L".join(f"{fmt(x + r * px)} {fmt(y + r * py)}" for px, py in points) + "Z"
    return f'<path d="{d}" fill="{color}"/>'


#: Markers in the order lines are given them.
MARKERS = ("o", "s", "^", "D", "v", "P", "X")


# --- items ---------------------------------------------------------------------------------------


def _along(pts: Sequence[tuple[float, float]], step: float = 3.0) -> list[tuple[float, float]]:
    """The vertices of a polyline and points every ``step`` px between them."""
    out = list(pts)
    for (x0, y0), (x1, y1) in pairwise(pts):
        n = int(math.hypot(x1 - x0, y1 - y0) // step)
        out.extend((x0 + (x1 - x0) * k / n, y0 + (y1 - y0) * k / n) for k in range(1, n))
    return out


class _Item:
    label: str | None = None

    def draw(self, f: _Frame) -> list[str]:  # pragma: no cover - abstract
        raise NotImplementedError

    def points(self, f: _Frame) -> list[tuple[float, float]]:
        """Pixel points on the item (lines: every few px), for placing a legend where it hides least."""
        return []

    def boxes(self, f: _Frame) -> list[tuple[float, float, float, float]]:
        """Pixel rectangles (x, y, w, h) the item fills, for the same purpose."""
        return []

    def entry(self) -> LegendEntry | None:
        return None


@dataclass
class _Bars(_Item):
    horizontal: bool
    positions: list[float]
    values: list[float]
    thickness: float
    color: str | list[str]
    base: float
    errors: list[tuple[float, float] | None] | None
    label: str | None = None
    error_color: str = "#333333"

    def _color(self, i: int) -> str:
        return self.color if isinstance(self.color, str) else self.color[i % len(self.color)]

    def _rects(self, f: _Frame) -> list[tuple[float, float, float, float]]:
        rects = []
        half = self.thickness / 2
        for pos, value in zip(self.positions, self.values):
            if self.horizontal:
                x0, x1 = sorted((f.px(self.base), f.px(value)))
                y0, y1 = sorted((f.py(pos - half), f.py(pos + half)))
            else:
                x0, x1 = sorted((f.px(pos - half), f.px(pos + half)))
                y0, y1 = sorted((f.py(self.base), f.py(value)))
            rects.append((x0, y0, x1 - x0, y1 - y0))
        return rects

    def draw(self, f: _Frame) -> list[str]:
        out = [
            f'<rect x="{fmt(x)}" y="{fmt(y)}" width="{fmt(w)}" height="{fmt(h)}" fill="{self._color(i)}"/>'
            for i, (x, y, w, h) in enumerate(self._rects(f))
        ]
        if self.errors:
            d = []
            for pos, err in zip(self.positions, self.errors):
                if err is None:
                    continue
                lo, hi = err
                if self.horizontal:
                    y, a, b = f.py(pos), f.px(lo), f.px(hi)
                    d.append(f"M{fmt(a)} {fmt(y)}H{fmt(b)}M{fmt(a)} {fmt(y - 3)}v6M{fmt(b)} {fmt(y - 3)}v6")
                else:
                    x, a, b = f.px(pos), f.py(lo), f.py(hi)
                    d.append(f"M{fmt(x)} {fmt(a)}V{fmt(b)}M{fmt(x - 3)} {fmt(a)}h6M{fmt(x - 3)} {fmt(b)}h6")
            if d:
                out.append(
                    f'<path d="{"".join(d)}" fill="none" stroke="{self.error_color}" stroke-width="1.1"/>'
                )
        return out

    def boxes(self, f: _Frame) -> list[tuple[float, float, float, float]]:
        return self._rects(f)

    def entry(self) -> LegendEntry | None:
        return LegendEntry(self.label, self._color(0), "box") if self.label else None


@dataclass
class _Line(_Item):
    xs: list[float]
    ys: list[float]
    color: str
    width: float
    dash: str | None
    marker: str | None
    label: str | None = None

    def _pts(self, f: _Frame) -> list[tuple[float, float]]:
        return [(f.px(x), f.py(y)) for x, y in zip(self.xs, self.ys)]

    def draw(self, f: _Frame) -> list[str]:
        pts = self._pts(f)
        if not pts:
            return []
        out = []
        if len(pts) > 1:
            joined = " ".join(f"{fmt(x)},{fmt(y)}" for x, y in pts)
            out.append(
                f'<polyline points="{joined}" fill="none" stroke="{self.color}" stroke-width="{fmt(self.width)}" '
                f'stroke-linejoin="round"{_dash(self.dash)}/>'
            )
        if self.marker:
            out.extend(_marker(self.marker, x, y, self.color) for x, y in pts)
        return out

    def points(self, f: _Frame) -> list[tuple[float, float]]:
        return _along(self._pts(f))

    def entry(self) -> LegendEntry | None:
        if not self.label:
            return None
        return LegendEntry(self.label, self.color, "line", self.dash, self.marker, self.width)


@dataclass
class _RefLine(_Item):
    vertical: bool
    value: float
    color: str
    width: float
    dash: str | None
    label: str | None = None
    note: str | None = None

    def _ends(self, f: _Frame) -> tuple[float, float, float, float]:
        if self.vertical:
            x = f.px(self.value)
            return x, f.y, x, f.y + f.h
        y = f.py(self.value)
        return f.x, y, f.x + f.w, y

    def draw(self, f: _Frame) -> list[str]:
        x1, y1, x2, y2 = self._ends(f)
        out = [
            f'<line x1="{fmt(x1)}" y1="{fmt(y1)}" x2="{fmt(x2)}" y2="{fmt(y2)}" stroke="{self.color}" '
            f'stroke-width="{fmt(self.width)}"{_dash(self.dash)}/>'
        ]
        if self.note:
            if self.vertical:
                out.append(
                    _text(
                        x1 + 3,
                        f.y + 2,
                        self.note,
                        size=SIZE_NOTE,
                        fill=self.color,
                        valign="top",
                        max_width=f.w / 2,
                    )
                )
            else:
                out.append(
                    _text(
                        f.x + f.w - 2,
                        y1 - 3,
                        self.note,
                        size=SIZE_NOTE,
                        fill=self.color,
                        anchor="end",
                        max_width=f.w / 2,
                    )
                )
        return out

    def points(self, f: _Frame) -> list[tuple[float, float]]:
        x1, y1, x2, y2 = self._ends(f)
        return _along([(x1, y1), (x2, y2)])

    def entry(self) -> LegendEntry | None:
        return (
            LegendEntry(self.label, self.color, "line", self.dash, None, self.width) if self.label else None
        )


@dataclass
class _Label(_Item):
    x: float
    y: float
    text: str
    size: float
    color: str
    anchor: str
    valign: str

    def draw(self, f: _Frame) -> list[str]:
        return [
            _text(
                f.px(self.x, clamp=False),
                f.py(self.y, clamp=False),
                self.text,
                size=self.size,
                fill=self.color,
                anchor=self.anchor,
                valign=self.valign,
            )
        ]


@dataclass
class _Cells(_Item):
    grid: list[list[float]]
    cmap: Colormap
    vmin: float
    vmax: float
    gap: float

    def draw(self, f: _Frame) -> list[str]:
        """One path per colour; runs of equal neighbours merged; background-white cells skipped."""
        span = (self.vmax - self.vmin) or 1.0
        by_color: dict[str, list[str]] = {}
        rows, cols = len(self.grid), len(self.grid[0]) if self.grid else 0
        g = self.gap / 2
        for r in range(rows):
            y0, y1 = f.py(r, clamp=False), f.py(r + 1, clamp=False)
            top, height = min(y0, y1) + g, abs(y1 - y0) - 2 * g
            c = 0
            while c < cols:
                color = self.cmap((self.grid[r][c] - self.vmin) / span)
                end = c + 1
                if not self.gap:
                    while end < cols and self.cmap((self.grid[r][end] - self.vmin) / span) == color:
                        end += 1
                if color != BACKGROUND:
                    x0, x1 = f.px(c, clamp=False), f.px(end, clamp=False)
                    by_color.setdefault(color, []).append(
                        f"M{fmt(min(x0, x1) + g)} {fmt(top)}h{fmt(abs(x1 - x0) - 2 * g)}v{fmt(height)}"
                        f"h{fmt(-(abs(x1 - x0) - 2 * g))}z"
                    )
                c = end
        crisp = "" if self.gap else ' shape-rendering="crispEdges"'
        return [f'<path d="{"".join(d)}" fill="{color}"{crisp}/>' for color, d in sorted(by_color.items())]


# --- axes ----------------------------------------------------------------------------------------


class Axes:
    """One panel: two scales, the things drawn on them, ticks, labels, a title and a legend.

    Data coordinates throughout; the figure places the panel when it is written.
    """

    def __init__(self) -> None:
        self.x = _Scale()
        self.y = _Scale()
        self.title: str | None = None
        self.xlabel: str | None = None
        self.ylabel: str | None = None
        #: Which gridlines to draw at the ticks: "x" (vertical lines), "y", "both" or "none".
        self.grid: Literal["x", "y", "both", "none"] = "both"
        #: "axes" (left and bottom lines), "box" (a light frame all round) or "none".
        self.spines: Literal["axes", "box", "none"] = "axes"
        self.show_xticks = True
        self.show_yticks = True
        self.xtick_labels = True
        self.ytick_labels = True
        self.equal = False
        self.visible = True
        self.title_size = SIZE_TITLE
        self._items: list[_Item] = []
        self._legend: tuple[Loc, str | None] | None = None
        self._cycle = 0

    # limits, scales, ticks, labels

    def set_xlim(self, lo: float | None = None, hi: float | None = None) -> None:
        self.x.lo, self.x.hi = lo, hi

    def set_ylim(self, lo: float | None = None, hi: float | None = None) -> None:
        self.y.lo, self.y.hi = lo, hi

    def set_xscale(self, scale: Literal["linear", "log"]) -> None:
        self.x.log = scale == "log"

    def set_yscale(self, scale: Literal["linear", "log"]) -> None:
        self.y.log = scale == "log"

    def set_xticks(
        self, values: Sequence[float], labels: Sequence[str] | None = None, *, rotation: float = 0.0
    ) -> None:
        self.x.ticks = [float(v) for v in values]
        self.x.labels = None if labels is None else [str(s) for s in labels]
        self.x.rotation = rotation
        if not values:
            self.show_xticks = False

    def set_yticks(self, values: Sequence[float], labels: Sequence[str] | None = None) -> None:
        self.y.ticks = [float(v) for v in values]
        self.y.labels = None if labels is None else [str(s) for s in labels]
        if not values:
            self.show_yticks = False

    def set_title(self, title: str, *, size: float = SIZE_TITLE) -> None:
        self.title, self.title_size = title, size

    def set_xlabel(self, label: str) -> None:
        self.xlabel = label

    def set_ylabel(self, label: str) -> None:
        self.ylabel = label

    def next_color(self) -> str:
        color = OKABE_ITO[self._cycle % 7]
        self._cycle += 1
        return color

    # things to draw

    def barh(
        self,
        positions: Sequence[float],
        values: Sequence[float],
        *,
        height: float = 0.6,
        color: str | Sequence[str] | None = None,
        label: str | None = None,
        xerr: Sequence[tuple[float, float] | None] | None = None,
        base: float = 0.0,
    ) -> None:
        """Horizontal bars from ``base`` to each value at each y position; ``xerr`` as (low, high) ends."""
        self._bars(True, positions, values, height, color, label, xerr, base)

    def bar(
        self,
        positions: Sequence[float],
        values: Sequence[float],
        *,
        width: float = 0.6,
        color: str | Sequence[str] | None = None,
        label: str | None = None,
        yerr: Sequence[tuple[float, float] | None] | None = None,
        base: float = 0.0,
    ) -> None:
        """Vertical bars from ``base`` to each value at each x position; ``yerr`` as (low, high) ends."""
        self._bars(False, positions, values, width, color, label, yerr, base)

    def _bars(
        self,
        horizontal: bool,
        positions: Sequence[float],
        values: Sequence[float],
        thickness: float,
        color: str | Sequence[str] | None,
        label: str | None,
        err: Sequence[tuple[float, float] | None] | None,
        base: float,
    ) -> None:
        pos, vals = [float(p) for p in positions], [float(v) for v in values]
        chosen: str | list[str] = (
            self.next_color() if color is None else (color if isinstance(color, str) else list(color))
        )
        errors = list(err) if err is not None else None
        along, across = (self.x, self.y) if horizontal else (self.y, self.x)
        along.include([base, *vals])
        if errors:
            along.include(v for e in errors if e is not None for v in e)
        across.include(p + s * thickness / 2 for p in pos for s in (-1, 1))
        self._items.append(_Bars(horizontal, pos, vals, thickness, chosen, base, errors, label))

    def plot(
        self,
        xs: Sequence[float],
        ys: Sequence[float],
        *,
        color: str | None = None,
        width: float = 1.6,
        dash: str | None = None,
        marker: str | None = None,
        label: str | None = None,
    ) -> None:
        """A polyline through the points, with ``marker`` (o s ^ v D P X) at each; ``dash`` as "5 3"."""
        self.x.include(xs)
        self.y.include(ys)
        chosen = self.next_color() if color is None else color
        self._items.append(
            _Line([float(v) for v in xs], [float(v) for v in ys], chosen, width, dash, marker, label)
        )

    def axvline(
        self,
        x: float,
        *,
        color: str = AXIS,
        width: float = 1.2,
        dash: str | None = None,
        label: str | None = None,
        note: str | None = None,
    ) -> None:
        """A reference line across the panel at ``x``; ``label`` for the legend, ``note`` written beside it."""
        self._items.append(_RefLine(True, float(x), color, width, dash, label, note))

    def axhline(
        self,
        y: float,
        *,
        color: str = AXIS,
        width: float = 1.2,
        dash: str | None = None,
        label: str | None = None,
        note: str | None = None,
    ) -> None:
        """A reference line across the panel at ``y`` (it widens the limits to stay in view)."""
        self.y.include([y])
        self._items.append(_RefLine(False, float(y), color, width, dash, label, note))

    def text(
        self,
        x: float,
        y: float,
        text: str,
        *,
        size: float = SIZE_NOTE,
        color: str = INK,
        anchor: Literal["start", "middle", "end"] = "start",
        valign: Literal["baseline", "middle", "top", "bottom"] = "middle",
    ) -> None:
        """Text at a data point (lines split at ``\\n``)."""
        self._items.append(_Label(float(x), float(y), text, size, color, anchor, valign))

    def heatmap(
        self,
        grid: Sequence[Sequence[float]],
        *,
        cmap: Colormap,
        vmin: float,
        vmax: float,
        gap: float = 0.0,
    ) -> None:
        """Cells coloured by value, row 0 on top, in a square-celled panel spanning [0, columns] × [0, rows].

        ``gap`` px of background is left between cells.
        """
        rows = [[float(v) for v in r] for r in grid]
        if not rows or not rows[0]:
            raise ValueError("a heatmap needs at least one cell")
        self.set_xlim(0, len(rows[0]))
        self.set_ylim(len(rows), 0)
        self.equal = True
        self.grid = "none"
        self._items.append(_Cells(rows, cmap, float(vmin), float(vmax), gap))

    def legend(self, loc: Loc = "best", *, title: str | None = None) -> None:
        """Show the labelled items in a legend inside the panel (``best``: the corner hiding least)."""
        self._legend = (loc, title)

    def entries(self) -> list[LegendEntry]:
        return [e for e in (item.entry() for item in self._items) if e is not None]

    # layout and drawing

    def _ticks(self, scale: _Scale, length: float, horizontal: bool) -> list[tuple[float, str]]:
        return scale.tick_values(length, 50.0 if horizontal else 36.0)

    def _xtick_texts(self, w: float, max_width: float) -> list[str]:
        return [fit_text(lab, SIZE_TICK, max_width) for _, lab in self._ticks(self.x, w, True)]

    def _ytick_texts(self, h: float, max_width: float) -> list[str]:
        return [fit_text(lab, SIZE_TICK, max_width) for _, lab in self._ticks(self.y, h, False)]

    def _margins(self, w: float, h: float, label_room: float) -> tuple[float, float, float, float]:
        """Room (left, right, top, bottom) in px around the plot area for ticks, labels and title."""
        if not self.visible:
            return 0.0, 0.0, 0.0, 0.0
        left = right = top = bottom = 2.0
        if self.show_yticks:
            left = TICK_LENGTH + 1
            if self.ytick_labels:
                widest = max(
                    (text_width(t, SIZE_TICK) for t in self._ytick_texts(h, label_room)), default=0.0
                )
                left += 3 + widest
                top = max(top, SIZE_TICK * 0.6)
        if self.ylabel:
            left += SIZE_LABEL + 6
        if self.show_xticks:
            bottom = TICK_LENGTH + 1
            if self.xtick_labels:
                texts = self._xtick_texts(w, label_room)
                if self.x.rotation:
                    widest = max((text_width(t, SIZE_TICK) for t in texts), default=0.0)
                    bottom += 3 + widest * math.sin(math.radians(abs(self.x.rotation))) + SIZE_TICK
                else:
                    bottom += 3 + SIZE_TICK
                    last = text_width(texts[-1], SIZE_TICK) / 2 if texts else 0.0
                    right = max(right, last - 2)
        if self.xlabel:
            bottom += SIZE_LABEL + 6
        if self.title:
            top = max(top, self.title_size * 1.2 + 6)
        return left, right, top, bottom

    def _draw(self, x: float, y: float, w: float, h: float, label_room: float) -> list[str]:
        if not self.visible:
            return []
        if self.equal:
            (x0, x1), (y0, y1) = self.x.limits(), self.y.limits()
            nx, ny = abs(x1 - x0) or 1.0, abs(y1 - y0) or 1.0
            cell = min(w / nx, h / ny)
            x, y = x + (w - cell * nx) / 2, y + (h - cell * ny) / 2
            w, h = cell * nx, cell * ny
        f = _Frame(x, y, w, h, self.x, self.y)
        out: list[str] = []
        xticks = self._ticks(self.x, w, True) if self.show_xticks else []
        yticks = self._ticks(self.y, h, False) if self.show_yticks else []
        grid = []
        if self.grid in ("x", "both"):
            grid += [f"M{fmt(f.px(v))} {fmt(y)}V{fmt(y + h)}" for v, _ in xticks]
        if self.grid in ("y", "both"):
            grid += [f"M{fmt(x)} {fmt(f.py(v))}H{fmt(x + w)}" for v, _ in yticks]
        if grid:
            out.append(f'<path d="{"".join(grid)}" fill="none" stroke="{GRID}" stroke-width="0.8"/>')
        for item in self._items:
            out.extend(item.draw(f))
        if self.spines == "axes":
            out.append(
                f'<path d="M{fmt(x)} {fmt(y)}V{fmt(y + h)}H{fmt(x + w)}" fill="none" stroke="{AXIS}" stroke-width="1"/>'
            )
        elif self.spines == "box":
            out.append(
                f'<rect x="{fmt(x)}" y="{fmt(y)}" width="{fmt(w)}" height="{fmt(h)}" fill="none" '
                f'stroke="#BBBBBB" stroke-width="0.8"/>'
            )
        marks = [f"M{fmt(f.px(v))} {fmt(y + h)}v{fmt(TICK_LENGTH)}" for v, _ in xticks]
        marks += [f"M{fmt(x)} {fmt(f.py(v))}h{fmt(-TICK_LENGTH)}" for v, _ in yticks]
        if marks:
            out.append(f'<path d="{"".join(marks)}" fill="none" stroke="{AXIS}" stroke-width="1"/>')
        labels: list[str] = []
        if xticks and self.xtick_labels:
            ty = y + h + TICK_LENGTH + 3
            for v, lab in xticks:
                if self.x.rotation:
                    labels.append(
                        _text(
                            f.px(v),
                            ty + SIZE_TICK * 0.6,
                            lab,
                            anchor="end",
                            rotate=-abs(self.x.rotation),
                            max_width=label_room,
                            valign="middle",
                        )
                    )
                else:
                    labels.append(
                        _text(f.px(v), ty, lab, anchor="middle", valign="top", max_width=label_room)
                    )
        if yticks and self.ytick_labels:
            for v, lab in yticks:
                labels.append(
                    _text(
                        x - TICK_LENGTH - 3, f.py(v), lab, anchor="end", valign="middle", max_width=label_room
                    )
                )
        if labels:
            out.append(f'<g font-size="{fmt(SIZE_TICK)}" fill="{INK}">{"".join(labels)}</g>')
        left, _, _, bottom = self._margins(w, h, label_room)
        if self.xlabel:
            out.append(
                _text(
                    x + w / 2,
                    y + h + bottom - 3,
                    self.xlabel,
                    size=SIZE_LABEL,
                    anchor="middle",
                    valign="bottom",
                    fill=INK,
                    max_width=w + 20,
                )
            )
        if self.ylabel:
            lx = x - left + SIZE_LABEL
            out.append(
                _text(
                    lx,
                    y + h / 2,
                    self.ylabel,
                    size=SIZE_LABEL,
                    anchor="middle",
                    fill=INK,
                    rotate=-90,
                    max_width=h + 10,
                )
            )
        if self.title:
            out.append(
                _text(
                    x + w / 2,
                    y - 6,
                    self.title,
                    size=self.title_size,
                    anchor="middle",
                    fill=INK,
                    max_width=w + 24,
                )
            )
        if self._legend is not None:
            out.extend(self._draw_legend(f, *self._legend))
        return out

    def _draw_legend(self, f: _Frame, loc: Loc, title: str | None) -> list[str]:
        entries = self.entries()
        if not entries:
            return []
        max_label = max(60.0, f.w * 0.45)
        lw, lh = _legend_size(entries, title, max_label)
        inset = 4.0

        def corner(where: Loc) -> tuple[float, float]:
            x = f.x + inset if "left" in where else f.x + f.w - lw - inset
            if where.startswith("upper"):
                y = f.y + inset
            elif where.startswith("lower"):
                y = f.y + f.h - lh - inset
            else:
                y = f.y + (f.h - lh) / 2
            return x, y

        if loc == "best":
            pts = [p for item in self._items for p in item.points(f)]
            boxes = [b for item in self._items for b in item.boxes(f)]

            def hidden(where: Loc) -> float:
                """Area of bars under the legend, plus 9 px² per line point (every 3 px) under it."""
                cx, cy = corner(where)
                area = sum(
                    max(0.0, min(cx + lw, bx + bw) - max(cx, bx))
                    * max(0.0, min(cy + lh, by + bh) - max(cy, by))
                    for bx, by, bw, bh in boxes
                )
                return area + 9.0 * sum(1 for px, py in pts if cx <= px <= cx + lw and cy <= py <= cy + lh)

            loc = min(_CORNERS, key=hidden)  # ties: the earlier corner
        x, y = corner(loc)
        return [
            f'<g font-size="{fmt(SIZE_LEGEND)}" fill="{INK}">',
            *_legend_rows(x, y, entries, title, max_label),
            "</g>",
        ]


# --- figure --------------------------------------------------------------------------------------


@dataclass
class _Colorbar:
    cmap: Colormap
    vmin: float
    vmax: float
    label: str

    def width(self) -> float:
        ticks = nice_ticks(self.vmin, self.vmax, 4)
        widest = max((text_width(t, SIZE_TICK) for t in tick_labels(ticks)), default=0.0)
        return 12 + 8 + TICK_LENGTH + 3 + widest + (SIZE_LABEL + 8 if self.label else 0)

    def draw(self, x: float, top: float, height: float) -> list[str]:
        x += 8
        steps = 48
        out = []
        for k in range(steps):
            # Top is vmax; the first and last strips show the end colours exactly.
            t = 1 - k / (steps - 1)
            y0 = top + height * k / steps
            out.append(
                f'<rect x="{fmt(x)}" y="{fmt(y0)}" width="12" height="{fmt(height / steps + 0.3)}" '
                f'fill="{self.cmap(t)}"/>'
            )
        out.append(
            f'<rect x="{fmt(x)}" y="{fmt(top)}" width="12" height="{fmt(height)}" fill="none" '
            f'stroke="#BBBBBB" stroke-width="0.8"/>'
        )
        span = (self.vmax - self.vmin) or 1.0
        ticks = nice_ticks(self.vmin, self.vmax, 4)
        marks, labels = [], []
        widest = 0.0
        for v, lab in zip(ticks, tick_labels(ticks)):
            ty = top + height * (1 - (v - self.vmin) / span)
            marks.append(f"M{fmt(x + 12)} {fmt(ty)}h{fmt(TICK_LENGTH)}")
            labels.append(_text(x + 12 + TICK_LENGTH + 3, ty, lab, valign="middle"))
            widest = max(widest, text_width(lab, SIZE_TICK))
        if marks:
            out.append(f'<path d="{"".join(marks)}" fill="none" stroke="{AXIS}" stroke-width="1"/>')
            out.append(f'<g font-size="{fmt(SIZE_TICK)}" fill="{INK}">{"".join(labels)}</g>')
        if self.label:
            lx = x + 12 + TICK_LENGTH + 3 + widest + 6 + SIZE_LABEL * 0.8
            out.append(
                _text(
                    lx,
                    top + height / 2,
                    self.label,
                    size=SIZE_LABEL,
                    anchor="middle",
                    fill=INK,
                    rotate=-90,
                    max_width=height,
                )
            )
        return out


class Figure:
    """A ``width`` × ``height`` px drawing of one grid of panels, a legend below, a colour bar right.

    >>> fig = Figure(300, 150)
    >>> (left, right), = fig.subplots(1, 2, sharey=True)
    >>> right.ytick_labels
    False
    """

    def __init__(self, width: float, height: float) -> None:
        self.width = float(width)
        self.height = float(height)
        self._grid: list[list[Axes]] = []
        self._legend: list[LegendEntry] = []
        self._legend_title: str | None = None
        #: One x label under every panel (for a row of panels that share what x means).
        self.xlabel: str | None = None
        self._colorbar: _Colorbar | None = None
        self.wspace = 14.0
        self.hspace = 10.0

    def subplots(
        self,
        nrows: int = 1,
        ncols: int = 1,
        *,
        sharey: bool = False,
        wspace: float | None = None,
        hspace: float | None = None,
    ) -> list[list[Axes]]:
        """An ``nrows`` × ``ncols`` grid of panels (rows of axes), equal in size.

        ``sharey``: one y scale for every panel; only the first column labels its ticks.
        """
        if self._grid:
            raise ValueError("a figure holds one grid of panels")
        if nrows < 1 or ncols < 1:
            raise ValueError("a grid needs at least one row and one column")
        self._grid = [[Axes() for _ in range(ncols)] for _ in range(nrows)]
        if sharey:
            for row in self._grid:
                for ax in row:
                    ax.y = self._grid[0][0].y
                for ax in row[1:]:
                    ax.ytick_labels = False
        if wspace is not None:
            self.wspace = wspace
        if hspace is not None:
            self.hspace = hspace
        return self._grid

    def add_axes(self) -> Axes:
        """A single panel filling the figure."""
        return self.subplots()[0][0]

    def legend(self, entries: Sequence[LegendEntry], *, title: str | None = None) -> None:
        """A legend in rows under the panels, out of the way of the data; ``title`` leads in bold."""
        self._legend = list(entries)
        self._legend_title = title

    def set_xlabel(self, label: str) -> None:
        """An x label centred under all the panels, for a row of panels whose x axes mean the same."""
        self.xlabel = label

    def colorbar(self, cmap: Colormap, vmin: float, vmax: float, *, label: str = "") -> None:
        """A vertical colour bar right of the panels for ``cmap`` over [vmin, vmax]."""
        self._colorbar = _Colorbar(cmap, float(vmin), float(vmax), label)

    # layout

    def _legend_lines(self) -> list[list[tuple[LegendEntry | None, str, float]]]:
        """The figure legend's cells (entry or None for the title, text, width) wrapped into lines."""
        room = self.width - 2 * PAD - 30
        cells: list[tuple[LegendEntry | None, str, float]] = []
        if self._legend_title:
            title = self._legend_title + ":"
            cells.append((None, title, _BOLD * text_width(fit_text(title, SIZE_LEGEND, room), SIZE_LEGEND)))
        for entry in self._legend:
            cells.append(
                (entry, entry.label, 24 + text_width(fit_text(entry.label, SIZE_LEGEND, room), SIZE_LEGEND))
            )
        lines: list[list[tuple[LegendEntry | None, str, float]]] = [[]]
        used = 0.0
        for cell in cells:
            if lines[-1] and used + cell[2] > room:
                lines.append([])
                used = 0.0
            lines[-1].append(cell)
            used += cell[2] + 18
        return [line for line in lines if line]

    def _body(self) -> list[str]:
        out: list[str] = []
        inner_right = self.width - PAD
        cbar = self._colorbar.width() if self._colorbar else 0.0
        legend_lines = self._legend_lines() if self._legend else []
        legend_h = len(legend_lines) * (SIZE_LEGEND + 6) + (4 if legend_lines else 0)
        # The figure's x label sits between the panels and the legend; reserve it with the legend.
        xlabel_h = SIZE_LABEL + 6 if self.xlabel else 0.0
        legend_h += xlabel_h
        grid = self._grid
        nrows, ncols = len(grid), len(grid[0]) if grid else 0
        label_room = max(60.0, self.width * 0.3)
        tops, bottoms = [0.0] * nrows, [0.0] * nrows
        lefts, rights = [0.0] * ncols, [0.0] * ncols
        if grid:
            est_w = (self.width - 2 * PAD - cbar) / ncols
            est_h = (self.height - 2 * PAD - legend_h) / nrows
            for r, row in enumerate(grid):
                for c, ax in enumerate(row):
                    left, right, top, bottom = ax._margins(est_w * 0.8, est_h * 0.7, label_room)
                    lefts[c], rights[c] = max(lefts[c], left), max(rights[c], right)
                    tops[r], bottoms[r] = max(tops[r], top), max(bottoms[r], bottom)
            free_w = self.width - 2 * PAD - cbar - sum(lefts) - sum(rights) - self.wspace * (ncols - 1)
            free_h = self.height - 2 * PAD - legend_h - sum(tops) - sum(bottoms) - self.hspace * (nrows - 1)
            pw, ph = max(free_w / ncols, 10.0), max(free_h / nrows, 10.0)
            y = PAD
            for r, row in enumerate(grid):
                y += tops[r]
                x = PAD
                for c, ax in enumerate(row):
                    x += lefts[c]
                    out.extend(ax._draw(x, y, pw, ph, label_room))
                    x += pw + rights[c] + self.wspace
                y += ph + bottoms[r] + self.hspace
            if self.xlabel:
                first = PAD + lefts[0]
                last = self.width - PAD - cbar - rights[-1]
                out.append(
                    _text(
                        (first + last) / 2,
                        self.height - PAD - legend_h + xlabel_h,
                        self.xlabel,
                        size=SIZE_LABEL,
                        anchor="middle",
                        valign="bottom",
                        fill=INK,
                        max_width=last - first,
                    )
                )
            if self._colorbar is not None:
                top = PAD + min(tops[0], 8.0)
                bottom = self.height - PAD - legend_h - bottoms[-1]
                height = (bottom - top) * (0.85 if bottom - top > 150 else 1.0)
                out.extend(self._colorbar.draw(inner_right - cbar, top + (bottom - top - height) / 2, height))
        if legend_lines:
            y = self.height - PAD - legend_h + xlabel_h + 4
            room = self.width - 2 * PAD - 30
            rows = []
            for line in legend_lines:
                x = (self.width - sum(w for _, _, w in line) - 18 * (len(line) - 1)) / 2
                cy = y + (SIZE_LEGEND + 6) / 2
                for entry, label, w in line:
                    if entry is None:
                        rows.append(_text(x, cy, label, valign="middle", weight="bold", max_width=room))
                    else:
                        rows.append(entry.swatch(x, cy))
                        rows.append(_text(x + 24, cy, label, valign="middle", max_width=room))
                    x += w + 18
                y += SIZE_LEGEND + 6
            out.append(f'<g font-size="{fmt(SIZE_LEGEND)}" fill="{INK}">{"".join(rows)}</g>')
        return out

    def to_svg(self, *, chart_id: str, title: str, desc: str) -> str:
        """The figure as an ``<svg>`` element to inline in HTML: ``title`` and ``desc`` label it for screen readers.

        No fixed size (the chart shrinks with the page) but a ``max-width`` of its own width, so
        that its text is never drawn larger than the body text.
        """
        safe_id = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "_-") else "-" for ch in chart_id)
        w, h = fmt(self.width), fmt(self.height)
        head = (
            f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" viewBox="0 0 {w} {h}" class="chart" '
            f'style="max-width: {w}px" role="img" aria-labelledby="{safe_id}-title {safe_id}-desc" '
            f'font-family="{FONT_FAMILY}">'
            f'<title id="{safe_id}-title">{escape(title)}</title>'
            f'<desc id="{safe_id}-desc">{escape(desc)}</desc>'
            f'<rect width="{w}" height="{h}" fill="{BACKGROUND}"/>'
        )
        return head + "\n".join(self._body()) + "</svg>"
