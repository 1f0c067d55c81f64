"""The PDF's fonts subset by HarfBuzz from the uharfbuzz wheel (governance/report/formats/_font_subset.py):
the same glyphs and advance widths as WeasyPrint's own subsetters, the same bytes with or without
the system's libharfbuzz-subset, and WeasyPrint's code wherever HarfBuzz refuses."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from typing import Any

import pytest

from governance.report.formats import ReportJob, get_format
from governance.results import Results

pytest.importorskip("weasyprint")
pytest.importorskip("uharfbuzz")

import weasyprint.pdf.fonts as weasyprint_fonts
from fontTools.pens.recordingPen import DecomposingRecordingPen
from fontTools.ttLib import TTFont

from governance.report.formats import _font_subset

NOW = dt.datetime(2026, 1, 2, 3, 4, tzinfo=dt.UTC)


def _drawn(font: bytes, index: int = 0) -> dict[str, tuple[Any, int]]:
    """Each glyph with an outline: its drawing commands (components drawn in place) and advance width."""
    face = TTFont(io.BytesIO(font), fontNumber=index)
    glyphs = face.getGlyphSet()
    out = {}
    for name in face.getGlyphOrder():
        pen = DecomposingRecordingPen(glyphs)
        glyphs[name].draw(pen)
        if pen.value:
            out[name] = (tuple(pen.value), glyphs[name].width)
    return out


def _subsets(
    monkeypatch: pytest.MonkeyPatch, results: Results, *, own: str | None
) -> tuple[bytes, list[bytes]]:
    """The PDF and each embedded font after subsetting; ``own``: WeasyPrint's own path instead
    (``"fonttools"``), or ours (None)."""
    assert _font_subset.install()
    ours = weasyprint_fonts.Font.subset
    subset = ours if own is None else ours.__wrapped__
    if own == "fonttools":
        monkeypatch.setattr(weasyprint_fonts, "harfbuzz_subset", None)
    fonts: list[bytes] = []

    def recorded(self: Any, to_unicode: Any, hinting: bool) -> None:
        subset(self, to_unicode, hinting)
        fonts.append(self.file_content)

    monkeypatch.setattr(weasyprint_fonts.Font, "subset", recorded)
    monkeypatch.setattr(_font_subset, "install", lambda: True)
    pdf = get_format("pdf").render(ReportJob(results=results, now=NOW))
    monkeypatch.undo()
    return pdf, fonts


def test_the_subset_fonts_draw_the_glyphs_weasyprint_s_own_subsetter_draws(
    results: Results, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, ours = _subsets(monkeypatch, results, own=None)
    _, theirs = _subsets(monkeypatch, results, own="fonttools")
    assert len(ours) == len(theirs) >= 2  # the report's text and monospace faces at least
    for mine, reference in zip(ours, theirs):
        drawn = _drawn(mine)
        assert drawn == _drawn(reference) and len(drawn) > 10


def test_the_pdf_is_the_same_with_or_without_the_system_subsetter(
    results: Results, monkeypatch: pytest.MonkeyPatch
) -> None:
    with_system, _ = _subsets(monkeypatch, results, own=None)
    monkeypatch.setattr(weasyprint_fonts, "harfbuzz_subset", None)
    without, _ = _subsets(monkeypatch, results, own=None)
    assert with_system == without


def test_a_face_harfbuzz_refuses_goes_to_weasyprint_s_own_code(
    results: Results, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _font_subset.install()
    calls: list[int] = []
    fonttools = weasyprint_fonts.Font._fonttools_subset

    def counted(self: Any, *args: Any) -> None:
        calls.append(1)
        fonttools(self, *args)

    def refuse(*args: Any, **kwargs: Any) -> bytes:
        raise RuntimeError("refused for the test")

    monkeypatch.setattr(weasyprint_fonts.Font, "_fonttools_subset", counted)
    monkeypatch.setattr(weasyprint_fonts, "harfbuzz_subset", None)  # WeasyPrint's own code: fontTools
    monkeypatch.setattr(_font_subset, "harfbuzz_subset", refuse)
    pdf = get_format("pdf").render(ReportJob(results=results, now=NOW))
    assert calls and pdf.startswith(b"%PDF")


def test_harfbuzz_subset_keeps_exactly_the_glyphs_asked_for() -> None:
    """On matplotlib's DejaVu Sans: the kept glyphs draw as in the whole font, at their ids; the
    others are empty, and the font ends at the last glyph kept."""
    import matplotlib

    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "DejaVuSans.ttf"
    whole = path.read_bytes()
    font = TTFont(io.BytesIO(whole))
    order = font.getGlyphOrder()
    keep = [0, font.getBestCmap()[ord("A")], font.getBestCmap()[ord("é")], font.getBestCmap()[ord("ε")]]
    keep = [order.index(g) if isinstance(g, str) else g for g in keep]
    subset = _font_subset.harfbuzz_subset(whole, 0, keep, hinting=False, notdef=True)
    small = TTFont(io.BytesIO(subset))
    assert len(small.getGlyphOrder()) == max(keep) + 1
    full, cut = _drawn(whole), _drawn(subset)
    # The kept glyphs and the components their outlines are made of ("é" is "e" and an accent).
    components = {c for gid in keep for c in font["glyf"][order[gid]].getComponentNames(font["glyf"])}
    wanted = {order[gid] for gid in keep} | components
    assert {order[small.getGlyphOrder().index(name)] for name in cut} == wanted
    for name in wanted:
        assert cut[small.getGlyphOrder()[order.index(name)]] == full[name]
    assert "fpgm" not in small and "GSUB" not in small  # hinting and layout tables dropped
    assert len(subset) < len(whole) // 20
    with pytest.raises(ValueError):
        _font_subset.harfbuzz_subset(whole, 0, [], hinting=False, notdef=False)
