"""What a chart builder returns, and how the report receives a drawn (or omitted) chart."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Chart", "ChartSpec"]


@dataclass(frozen=True)
class ChartSpec:
    """A chart ready to draw: words first (they go into every format), pixels on demand.

    ``plot`` fills a :class:`matplotlib.figure.Figure` of ``size`` px (width, height), drawn at
    72 dpi (1 pt = 1 px); it is called only for formats that show images. ``id`` is the chart's
    name; the report makes it unique (:func:`governance.report.charts.unique_id`).
    """

    id: str
    title: str
    caption: str
    alt: str
    plot: Callable[[Figure], None]
    size: tuple[float, float] = (672.0, 288.0)


@dataclass(frozen=True)
class Chart:
    """A chart as the templates see it.

    ``svg`` is the inline SVG (None for text formats or when omitted); ``note`` says why a
    chart is missing, and a chart with a note has no picture. ``width`` and ``height`` are the
    drawing's size in px (None when the builder had nothing to draw): known before it is drawn.
    """

    id: str
    audit: str
    title: str
    caption: str = ""
    alt: str = ""
    svg: str | None = None
    note: str | None = None
    width: float | None = None
    height: float | None = None

    @property
    def omitted(self) -> bool:
        return self.note is not None
