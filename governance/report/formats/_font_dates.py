"""Reproducible PDF bytes whichever library subsets the fonts.

WeasyPrint subsets each embedded font with HarfBuzz (``libharfbuzz-subset0``) when it can load it
and with fontTools otherwise. fontTools stamps the subset font's ``head.modified`` with the second
it writes it, so without the system library the same report gave different PDF bytes from one
second to the next (and a PDF laid out by a second process differed from this process's). It
takes that time from ``SOURCE_DATE_EPOCH`` when set (the reproducible-builds convention): the
report's own generation time, unless the caller has set one.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from datetime import datetime

__all__ = ["fixed_font_dates"]

ENV = "SOURCE_DATE_EPOCH"


@contextlib.contextmanager
def fixed_font_dates(created: datetime | None) -> Iterator[None]:
    """Within the block, fonts subset by fontTools carry ``created`` (whole seconds) as their
    modification time; a ``SOURCE_DATE_EPOCH`` already in the environment wins."""
    if created is None or ENV in os.environ:
        yield
        return
    os.environ[ENV] = str(int(created.timestamp()))
    try:
        yield
    finally:
        os.environ.pop(ENV, None)
