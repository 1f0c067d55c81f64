"""Laying out the PDF before its charts exist: each chart stands in as a blank of its size until drawn.

WeasyPrint loads every image while it builds the boxes, long before it draws a page, but it
needs only an SVG's intrinsic size (its ``viewBox``) to lay the page out. A chart's size is
known before matplotlib draws it, so :func:`late_images` serves a blank ``<svg>`` of that size
to the layout and swaps the real chart in when WeasyPrint draws it. Only then does the PDF
process wait for the charts (:mod:`governance.report.pdf_process`): it lays out while another
process draws.

A chart whose real intrinsic size differs from its blank's, or that cannot be loaded at all,
would have made another page: :class:`LateImageMismatch` stops the PDF, and the caller lays
it out again with the charts in hand. Only WeasyPrint's SVG image class is wrapped, for the
length of one call; a WeasyPrint without the parts this relies on gets no blanks (the caller
waits for the charts as before).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = ["LateImageMismatch", "blank_svg", "late_images"]


class LateImageMismatch(BaseException):
    """A chart drawn late is not the size its blank had (or cannot be loaded): the layout is void.

    A BaseException, so that WeasyPrint's image drawing (which logs an ``Exception`` and goes on
    without the image) lets it through.
    """


def blank_svg(width: float, height: float) -> bytes:
    """An empty SVG with the ``viewBox`` a chart of ``width`` × ``height`` px has (see charts._svg.draw)."""
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {round(width)} {round(height)}"></svg>'
    ).encode()


@contextlib.contextmanager
def late_images(
    sizes: Mapping[str, tuple[float, float]], images: Callable[[str], bytes | None]
) -> Iterator[Callable[[str], bytes | None] | None]:
    """While open, WeasyPrint draws the real image of a URL in ``sizes`` from ``images``.

    Yields the image source for the layout (a blank for a URL in ``sizes``, ``images`` for any
    other), or None where this WeasyPrint cannot be wrapped: then nothing changes.
    """
    try:
        from xml.etree import ElementTree

        import weasyprint.images as images_module

        original = images_module.SVGImage
    except (ImportError, OSError, AttributeError):
        yield None
        return
    required = ("__init__", "draw", "get_intrinsic_size")
    if not isinstance(original, type) or not all(hasattr(original, name) for name in required):
        yield None
        return

    class LateSvgImage(original):  # type: ignore[misc,valid-type]
        def __init__(self, tree: Any, base_url: Any, url_fetcher: Any, context: Any) -> None:
            super().__init__(tree, base_url, url_fetcher, context)
            self._late_args: tuple[Any, Any, Any] | None = (
                (base_url, url_fetcher, context) if base_url in sizes else None
            )

        def draw(self, stream: Any, concrete_width: Any, concrete_height: Any, style: Any) -> None:
            if self._late_args is not None:
                self._swap_in_the_chart()
            super().draw(stream, concrete_width, concrete_height, style)

        def _swap_in_the_chart(self) -> None:
            assert self._late_args is not None
            base_url, url_fetcher, context = self._late_args
            self._late_args = None
            svg = images(base_url)
            try:
                if svg is None:
                    raise ValueError("no chart")
                real = original(ElementTree.fromstring(svg), base_url, url_fetcher, context)
                same = real.get_intrinsic_size(1, 16) == self.get_intrinsic_size(1, 16)
                # WeasyPrint's SVGImage keeps the parsed drawing in _svg (60 and later).
                self._svg = real._svg
            except Exception as exc:
                raise LateImageMismatch(f"{base_url}: {exc.__class__.__name__}: {exc}") from exc
            if not same:
                raise LateImageMismatch(f"{base_url}: its size is not the one it was laid out with")

    def layout_source(url: str) -> bytes | None:
        size = sizes.get(url)
        return blank_svg(*size) if size is not None else images(url)

    images_module.SVGImage = LateSvgImage
    try:
        yield layout_source
    finally:
        images_module.SVGImage = original
