"""What makes the PDF cheaper to lay out draws the same page: inlined custom properties, whole SVG text runs."""

from __future__ import annotations

import io
import re

import pytest

from governance.report.formats import ReportJob
from governance.report.formats._css import inline_root_properties
from governance.results import Results

weasyprint = pytest.importorskip("weasyprint")
pdfplumber = pytest.importorskip("pdfplumber")

from governance.report.formats._svg_text import VERIFIED_MAJORS, install  # noqa: E402
from governance.report.formats.pdf import html_to_pdf, pdf_html  # noqa: E402


def test_the_pdf_stylesheet_has_the_root_values_in_place_of_every_var(results: Results) -> None:
    from governance.report.templating import package_templates

    css = (package_templates() / "report.css").read_text(encoding="utf-8")
    root = re.search(r":root\s*\{([^}]*)\}", css)
    assert root is not None and "var(--" in css
    values = dict(re.findall(r"(--[\w-]+):\s*([^;]+);", root.group(1)))
    html = pdf_html(ReportJob(results=results), draw_charts=False)
    style = re.search(r"<style>(.*?)</style>", html, re.S)
    assert style is not None
    assert "var(" not in style.group(1) and "--" not in style.group(1)
    # The rule for a failed verdict, for one, keeps its colours.
    assert (
        f".verdict.fail {{ color: {values['--fail']}; background: {values['--fail-bg']}; }}" in style.group(1)
    )


@pytest.mark.parametrize(
    "css",
    [
        "p { color: var(--ink, red); }",  # a fallback: left to the renderer
        ":root { --ink: #111; } p { --ink: #222; color: var(--ink); }",  # defined outside :root
        ":root { --ink: #111; } p { color: var(--other); }",  # not defined
        ":root { --a: 1px; } :root { --b: 2px; } p { margin: var(--a) var(--b); }",  # two :root rules
    ],
)
def test_a_stylesheet_the_rule_cannot_be_sure_of_is_left_as_it_is(css: str) -> None:
    html = f"<html><head><style>{css}</style></head><body>var(--ink)</body></html>"
    assert inline_root_properties(html) == html


def test_only_the_stylesheet_changes_not_the_text() -> None:
    html = "<style>:root { --ink: #111; } p { color: var(--ink); }</style><p>var(--ink)</p>"
    assert inline_root_properties(html) == "<style> p { color: #111; }</style><p>var(--ink)</p>"


def _page(svg: str) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Words and characters of a one-image PDF of ``svg``, drawn 400 CSS px wide."""
    html = '<img src="chart:x" style="width: 400px">'
    pdf = html_to_pdf(html, {"chart:x": svg.encode()}.get)
    with pdfplumber.open(io.BytesIO(pdf)) as document:
        page = document.pages[0]
        return page.extract_words(), list(page.chars)


_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 400 100" width="400" height="100" '
    'font-family="DejaVu Sans">{}</svg>'
)


@pytest.mark.skipif(
    int(weasyprint.__version__.split(".")[0]) not in VERIFIED_MAJORS,
    reason="WeasyPrint is left as it is for versions this was not written against",
)
def test_a_label_is_drawn_as_one_run_where_its_anchor_puts_it() -> None:
    assert install() and install()  # idempotent
    from weasyprint import svg as svg_module

    assert getattr(svg_module.text, "_governance_whole_run", False)
    assert svg_module.TAGS["tspan"] is svg_module.text  # the aliases moved together
    words, _ = _page(
        _SVG.format(
            '<text x="200" y="40" font-size="20px" text-anchor="middle">Selection rate</text>'
            '<text x="10" y="80" font-size="10px">0.25</text>'
        )
    )
    assert [w["text"] for w in words] == ["Selection", "rate", "0.25"]
    # 1 CSS px = 0.75 pt; "0.25" starts at x = 10 of the image, "Selection rate" is centred on 200.
    image_left = float(str(words[2]["x0"])) - 10 * 0.75
    centre = (float(str(words[0]["x0"])) + float(str(words[1]["x1"]))) / 2
    assert abs(centre - image_left - 200 * 0.75) < 1.0


def test_letters_placed_one_by_one_still_go_to_weasyprint() -> None:
    install()
    words, chars = _page(
        _SVG.format(
            '<text x="10 60 110" y="40" font-size="20px">abc</text>'
            '<text x="10" y="80" font-size="20px" letter-spacing="10">spaced</text>'
            '<text x="250" y="80" font-size="20px">two <tspan font-weight="bold">parts</tspan></text>'
        )
    )
    first_line = min(float(str(c["top"])) for c in chars)
    placed = [float(str(c["x0"])) for c in chars if c["top"] == first_line]
    # Each letter where its own x puts it (50 px = 37.5 pt apart), as WeasyPrint draws them.
    assert [round(x - placed[0], 1) for x in placed] == [0.0, 37.5, 75.0]
    texts = [str(w["text"]) for w in words]
    assert texts[3:9] == list("spaced")  # letter-spacing: one letter at a time
    assert texts[-2:] == ["two", "parts"]
