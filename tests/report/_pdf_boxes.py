"""Text boxes of a rendered PDF, to prove that no text is drawn over other text.

Glyph boxes rather than word boxes: pdfplumber joins characters into words by position, so an
ID that runs under the badge in the next column comes out as one "word" with the badge's
letters inside it (``fair.demographicF_ApILarity_ratio``), and a word-box comparison sees
nothing. Two glyphs overlap when their boxes share more than ``share`` of the smaller one's
width and height; neighbours in the content stream are exempt (kerning pairs such as "r." or
"Tr" touch by design).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Overlap:
    page: int
    first: str
    second: str
    x: float
    top: float

    def __str__(self) -> str:
        return f"page {self.page}: {self.first!r} and {self.second!r} overlap at x={self.x:.0f}pt, top={self.top:.0f}pt"


def overlapping_glyphs(pdf: bytes | Path, *, pages: int | None = None, share: float = 0.3) -> list[Overlap]:
    """Every pair of overlapping glyph boxes on the first ``pages`` pages (all by default)."""
    import pdfplumber

    source = io.BytesIO(pdf) if isinstance(pdf, bytes) else pdf
    found: list[Overlap] = []
    with pdfplumber.open(source) as document:
        for number, page in enumerate(document.pages[:pages], start=1):
            chars = [(i, c) for i, c in enumerate(page.chars) if c["text"].strip()]
            chars.sort(key=lambda item: item[1]["top"])
            for k, (i, a) in enumerate(chars):
                for j, b in chars[k + 1 :]:
                    if b["top"] >= a["bottom"]:
                        break  # sorted by top: no later glyph reaches up into this one
                    if abs(i - j) == 1:
                        continue
                    width = min(a["x1"], b["x1"]) - max(a["x0"], b["x0"])
                    height = min(a["bottom"], b["bottom"]) - max(a["top"], b["top"])
                    if width > share * min(a["width"], b["width"]) and height > share * min(
                        a["height"], b["height"]
                    ):
                        found.append(Overlap(number, a["text"], b["text"], a["x0"], a["top"]))
    return found
