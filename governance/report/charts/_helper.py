"""A forked helper that draws some of a report's charts while this process draws the others.

matplotlib is imported before the fork, so the helper starts ready to draw; the charts' plot
functions (closures over the results) need no pickling, since the helper inherits them. It
sends back the SVG of each chart it drew; a chart it could not draw is left out, and the caller
draws it again to show the real error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from governance.report._fork import fork, ignore_interrupts, stop

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

    from governance.report.charts.base import Chart, ChartSpec

__all__ = ["TIMEOUT_S", "DrawingHelper"]

Draw = Callable[["ChartSpec", str], str]

#: Seconds to wait for the helper's charts before drawing them here.
#: Bounds what a child that hangs (a lock another thread held at the fork) can cost; a slow
#: child that misses it only makes this process do the work itself.
TIMEOUT_S = 120.0


class DrawingHelper:
    """:meth:`start` a helper on some charts, :meth:`collect` their SVG by chart id."""

    def __init__(self, process: BaseProcess, conn: Connection) -> None:
        self._process = process
        self._conn = conn

    @classmethod
    def start(cls, planned: Sequence[tuple[Chart, ChartSpec]], draw: Draw) -> DrawingHelper | None:
        """Fork a helper drawing ``planned`` with ``draw(spec, chart_id) -> svg``; None where it
        cannot help or cannot start. Import matplotlib first, so that the helper inherits it."""
        started = fork(_draw_these, list(planned), draw, name="governance-charts")
        return None if started is None else cls(*started)

    def collect(self) -> dict[str, str]:
        """The helper's SVG by chart id (empty if it died or timed out); the helper is stopped."""
        got: Any = None
        try:
            if self._conn.poll(TIMEOUT_S):
                got = self._conn.recv()
        except (OSError, EOFError):
            got = None
        finally:
            stop(self._process, self._conn)
        if not isinstance(got, dict):
            return {}
        return {str(k): v for k, v in got.items() if isinstance(v, str)}


def _draw_these(conn: Connection, planned: list[tuple[Chart, ChartSpec]], draw: Draw) -> None:
    ignore_interrupts()
    svgs: dict[str, str] = {}
    for chart, spec in planned:
        with contextlib.suppress(Exception):  # drawn again by the parent, which shows the error
            svgs[chart.id] = draw(spec, chart.id)
    with contextlib.suppress(OSError, ValueError):
        conn.send(svgs)
