"""What a chart builder returns, and how the report receives a drawn (or omitted) chart."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["Chart", "ChartSpec"]


@dataclass(frozen=True)
class ChartSpec:
    """A chart ready to draw: words first (they go into every format), pixels on demand.

    ``plot`` fills a figure of ``size`` inches; it is called only for formats that show images.
    ``layout`` is matplotlib's layout engine for the figure, or None when ``plot`` places its
    axes itself (cheaper: see :func:`governance.report.charts._svg.new_figure`).
    """

    id: str
    title: str
    caption: str
    alt: str
    plot: Callable[[Figure], None]
    size: tuple[float, float] = (7.0, 3.0)
    layout: Literal["constrained", "compressed", "tight"] | None = "constrained"


@dataclass(frozen=True)
class Chart:
    """A chart as the templates see it.

    ``svg`` is the inline SVG (None for text formats or when omitted); ``note`` says why a
    chart is missing, and a chart with a note has no picture.
    """

    id: str
    audit: str
    title: str
    caption: str = ""
    alt: str = ""
    svg: str | None = None
    note: str | None = None

    @property
    def omitted(self) -> bool:
        return self.note is not None
