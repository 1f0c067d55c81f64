"""The PDF's fonts subset by HarfBuzz from the ``uharfbuzz`` wheel, whatever the system has.

WeasyPrint keeps only the glyphs a PDF uses of each embedded font. It does that with HarfBuzz's
subsetter when the system library ``libharfbuzz-subset`` is installed, and otherwise with
fontTools, which took about 0.45 s of CPU for the demo report's five DejaVu faces, a sixth of
the whole PDF (docs/PERFORMANCE.md), and dated each font with the second it was written. So the
same report gave different bytes from machine to machine and from second to second.

:func:`install` makes every subset HarfBuzz's, through ``uharfbuzz`` (the HarfBuzz project's
Python binding, which ships the library with ``hb-subset`` in its wheel), with the calls and flags
of WeasyPrint's own HarfBuzz path: glyphs kept at their ids, unknown tables passed through, CFF
desubroutinised, the same tables dropped, then the glyphs after the last one used trimmed and
hinting dropped unless asked for. The glyphs drawn and their advance widths are those of both of
WeasyPrint's paths (``tests/report/test_pdf_fonts.py``), and the bytes no longer depend on which
system library is installed. A subset HarfBuzz refuses goes to WeasyPrint's own code; WeasyPrint
versions this was not written against, or no ``uharfbuzz``, leave WeasyPrint as it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["DROPPED_TABLES", "VERIFIED_MAJORS", "harfbuzz_subset", "install"]

#: WeasyPrint major versions whose ``weasyprint.pdf.fonts.Font.subset`` this stands in for.
VERIFIED_MAJORS = frozenset({70})
#: The tables WeasyPrint's HarfBuzz path drops (a PDF needs no layout or bitmap tables).
DROPPED_TABLES = (
    b"BASE",
    b"DSIG",
    b"EBDT",
    b"EBLC",
    b"EBSC",
    b"GPOS",
    b"GSUB",
    b"JSTF",
    b"LTSH",
    b"PCLT",
    b"SVG ",
)
_MARK = "_governance_harfbuzz"


def harfbuzz_subset(font: bytes, index: int, glyphs: Iterable[int], *, hinting: bool, notdef: bool) -> bytes:
    """Face ``index`` of the font file ``font`` with only ``glyphs`` (glyph ids) drawn, as
    WeasyPrint's HarfBuzz path subsets it. ``notdef``: keep the outline of glyph 0 (the font has
    characters it cannot draw). Raises RuntimeError where HarfBuzz cannot subset the face."""
    import uharfbuzz as hb

    used = sorted(set(glyphs))
    if not used:
        raise ValueError("no glyph to keep")
    flags = hb.SubsetFlags
    subset_input = hb.SubsetInput()
    subset_input.glyph_set.update(used)
    first_flags = flags.RETAIN_GIDS | flags.PASSTHROUGH_UNRECOGNIZED | flags.DESUBROUTINIZE
    if notdef:
        first_flags |= flags.NOTDEF_OUTLINE
    subset_input.flags = first_flags
    dropped = subset_input.sets(hb.SubsetInputSets.DROP_TABLE_TAG)
    for tag in DROPPED_TABLES:
        dropped.add(int.from_bytes(tag, "big"))
    kept = hb.subset(hb.Face(hb.Blob(font), index), subset_input)
    # Then every glyph up to the last one used (empty by now beyond the used ones), no hinting.
    subset_input.glyph_set.update(range(used[-1] + 1))
    second_flags = flags.PASSTHROUGH_UNRECOGNIZED | flags.DESUBROUTINIZE
    if not hinting:
        second_flags |= flags.NO_HINTING
    if notdef:
        second_flags |= flags.NOTDEF_OUTLINE
    subset_input.flags = second_flags
    data: bytes = hb.subset(kept, subset_input).blob.data
    if not data:
        raise RuntimeError("HarfBuzz returned an empty font")
    return data


def install() -> bool:
    """Make WeasyPrint subset every font with :func:`harfbuzz_subset` (idempotent); False where
    WeasyPrint is left as it is."""
    try:
        import uharfbuzz  # noqa: F401
        import weasyprint
        from weasyprint.pdf import fonts

        major = int(str(weasyprint.__version__).split(".")[0])
    except (ImportError, OSError, AttributeError, ValueError):
        return False
    font_class: Any = getattr(fonts, "Font", None)
    original = getattr(font_class, "subset", None)
    if getattr(original, _MARK, False):
        return True
    if major not in VERIFIED_MAJORS or original is None:
        return False

    def subset(self: Any, to_unicode: Any, hinting: bool) -> None:
        if not to_unicode:
            return  # WeasyPrint's own rule: a font with no glyph used is left whole
        try:
            self.file_content = harfbuzz_subset(
                self.file_content, self.index, to_unicode, hinting=hinting, notdef=bool(self.missing)
            )
        except (RuntimeError, ValueError):
            original(self, to_unicode, hinting)

    setattr(subset, _MARK, True)
    subset.__wrapped__ = original  # type: ignore[attr-defined]
    font_class.subset = subset
    return True
