"""WeasyPrint draws a chart's plain SVG ``<text>`` as one run of glyphs instead of letter by letter.

WeasyPrint lays out every letter of an SVG ``<text>`` as a text of its own (a Pango layout and a
drawing call per letter), because ``x``, ``dx`` or ``rotate`` may position each one. matplotlib's
labels position none: one ``x`` and one ``y`` per label. For such a label, :func:`install` makes
WeasyPrint lay out the whole string once and draw it as one line, which is what a browser does
with the same SVG (so the label is kerned as on screen, where letter by letter it is not), and
its text extracts as words (docs/PERFORMANCE.md).

Anything else (``tspan``, ``textPath``, letter positions, ``letter-spacing``, ``textLength``,
child elements) goes to WeasyPrint's own code. The drawing calls are WeasyPrint's, and only the
versions whose SVG text code this was written against are patched; any other version, or an
import that fails, leaves WeasyPrint as it is.
"""

from __future__ import annotations

import importlib
from math import inf
from typing import Any

__all__ = ["install"]

#: WeasyPrint major versions whose ``weasyprint.svg.text.text`` this mirrors.
VERIFIED_MAJORS = frozenset({70})
#: Attributes that position or stretch single letters: left to WeasyPrint.
_PER_LETTER = ("dx", "dy", "rotate", "letter-spacing", "textLength", "lengthAdjust")
_MARK = "_governance_whole_run"


def install() -> bool:
    """Route plain ``<text>`` runs through :func:`_whole_run` (idempotent); False where WeasyPrint is left as it is."""
    try:
        import weasyprint
        import weasyprint.svg as svg_module

        text_module = importlib.import_module("weasyprint.svg.text")
        major = int(str(weasyprint.__version__).split(".")[0])
    except (ImportError, OSError, AttributeError, ValueError):
        return False
    original = getattr(svg_module, "text", None)
    if getattr(original, _MARK, False):
        return True
    tags = getattr(svg_module, "TAGS", None)
    if (
        major not in VERIFIED_MAJORS
        or original is None
        or getattr(text_module, "text", None) is not original
        or not isinstance(tags, dict)
        or tags.get("text") is not original
    ):
        return False
    fast = _whole_run(original, text_module)
    # WeasyPrint tells text nodes by `TAGS.get(tag) == text`: every alias and the name change together.
    for tag, function in list(tags.items()):
        if function is original:
            tags[tag] = fast
    svg_module.text = fast
    return True


def _whole_run(original: Any, text_module: Any) -> Any:
    from weasyprint.css.properties import INITIAL_VALUES
    from weasyprint.draw.text import draw_emojis, draw_first_line
    from weasyprint.matrix import Matrix
    from weasyprint.text.line_break import split_first_line

    normalize, size = text_module.normalize, text_module.size
    extend_bounding_box = text_module.extend_bounding_box

    def single(value: str | None) -> bool:
        return value is None or " " not in normalize(value).strip()

    def text(svg: Any, node: Any, font_size: float) -> None:
        attrib = node.attrib
        if (
            node.tag != "text"
            or not node.text
            or any(True for _ in node)
            or any(name in attrib for name in _PER_LETTER)
            or not single(attrib.get("x"))
            or not single(attrib.get("y"))
        ):
            original(svg, node, font_size)
            return
        # The style WeasyPrint's own code builds for an SVG text (it computes no CSS there either).
        style = text_module.Style()
        style.update(INITIAL_VALUES)
        style.font_config = svg.font_config
        style["font_family"] = [
            font.strip("\"'") for font in node.get("font-family", "sans-serif").split(",")
        ]
        style["font_style"] = node.get("font-style", "normal")
        style["font_size"] = font_size
        if node.get("direction") in ("ltr", "rtl"):
            style["direction"] = node.get("direction")
        weight = node.get("font-weight", 400)
        weight = {"normal": 400, "bold": 700}.get(weight, weight)
        try:
            style["font_weight"] = int(weight)
        except ValueError:
            style["font_weight"] = 400

        layout, _, _, width, height, baseline = split_first_line(node.text, style, svg.context, inf, 0)
        x = size(attrib["x"], font_size, svg.inner_width) if "x" in attrib else svg.cursor_position[0]
        y = size(attrib["y"], font_size, svg.inner_height) if "y" in attrib else svg.cursor_position[1]
        if "x" in attrib:
            svg.cursor_d_position[0] = 0
        if "y" in attrib:
            svg.cursor_d_position[1] = 0
        svg.cursor_position = x + width, y
        x_position = x + svg.cursor_d_position[0]
        y_position = y + svg.cursor_d_position[1] + _baseline_shift(node, font_size, height)
        node.text_bounding_box = extend_bounding_box(
            node.text_bounding_box,
            ((x_position, y_position - baseline), (x_position + width, y_position - baseline + height)),
        )

        svg.stream.push_state()
        fill, stroke = svg.set_graphical_state(node, font_size)
        svg.stream.begin_text()
        layout.reactivate(style)
        svg.fill_stroke(fill, stroke, text=True)
        box = text_module.TextBox(layout, style)
        box.baseline = baseline
        emojis = draw_first_line(
            svg.stream, box, "none", "none", Matrix(a=1, d=-1, e=x_position, f=y_position)
        )
        svg.stream.end_text()
        svg.stream.pop_state()
        draw_emojis(svg.stream, style, x, y, emojis)

    setattr(text, _MARK, True)
    return text


def _baseline_shift(node: Any, font_size: float, height: float) -> float:
    """WeasyPrint's vertical alignment of a text run (its approximations included)."""
    ascent, descent = font_size * 0.8, font_size * 0.2
    anchor = node.get("display-anchor")
    baseline = node.get("dominant-baseline", node.get("alignment-baseline"))
    if anchor == "middle":
        return -height / 2
    if anchor == "top":
        return 0.0
    if anchor == "bottom":
        return -height
    if baseline in ("central", "middle"):
        return (ascent + descent) / 2 - descent
    if baseline in ("text-before-edge", "before_edge", "top", "hanging", "text-top"):
        return ascent
    if baseline in ("text-after-edge", "after_edge", "bottom", "text-bottom"):
        return -descent
    return 0.0
