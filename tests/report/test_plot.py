"""The SVG plotting module behind the report charts: ticks, geometry, colours, escaping, output."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from governance.report.charts import build_charts
from governance.report.charts._plot import (
    BLUES,
    DIVERGING,
    Figure,
    LegendEntry,
    fit_text,
    fmt,
    log_ticks,
    nice_ticks,
    text_width,
    tick_labels,
)
from governance.results import Results

SVG = "{http://www.w3.org/2000/svg}"
#: What the charts may contain: plain SVG 1.1 that browsers and WeasyPrint draw alike.
ALLOWED_TAGS = {"svg", "title", "desc", "g", "rect", "line", "path", "polyline", "circle", "text"}


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def tags(root: ET.Element, name: str) -> list[ET.Element]:
    return list(root.iter(SVG + name))


# --- ticks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lo", "hi", "target", "expected"),
    [
        (0, 1, 5, [0, 0.2, 0.4, 0.6, 0.8, 1]),
        (0, 1, 4, [0, 0.25, 0.5, 0.75, 1]),
        (0, 0.21, 3, [0, 0.1, 0.2]),
        (0.3, 31.5, 7, [5, 10, 15, 20, 25, 30]),
        (0.3, 31.5, 5, [10, 20, 30]),
        (-2.6, 2.6, 6, [-2, -1, 0, 1, 2]),
        (0, 1234, 5, [0, 250, 500, 750, 1000]),
        (3, 3, 5, [3]),
    ],
)
def test_nice_ticks(lo: float, hi: float, target: int, expected: list[float]) -> None:
    got = nice_ticks(lo, hi, target)
    assert got == pytest.approx(expected)
    assert all(lo - 1e-12 <= v <= hi + 1e-12 for v in got)
    assert 0.0 not in got or str(got[got.index(0.0)]) == "0.0"  # never -0.0


def test_nice_ticks_steps_are_round_numbers() -> None:
    for lo, hi in [(0.013, 0.0871), (-37.0, 912.0), (1e-6, 3e-6), (0.55, 0.58)]:
        ticks = nice_ticks(lo, hi, 5)
        assert 2 <= len(ticks) <= 11
        step = ticks[1] - ticks[0]
        mantissa = step / 10 ** __import__("math").floor(__import__("math").log10(step))
        assert round(mantissa, 6) in (1.0, 2.0, 2.5, 5.0)


def test_log_ticks_are_decades_and_labels_are_plain_decimals() -> None:
    assert log_ticks(1e-4, 1) == [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    assert log_ticks(0.15, 0.9) == [0.2, 0.5]
    assert log_ticks(0, 1) == []
    assert tick_labels([1e-4, 1e-3, 1e-2, 0.1, 1.0], log=True) == ["0.0001", "0.001", "0.01", "0.1", "1"]


def test_tick_labels_drop_trailing_zeros_and_use_a_minus_sign() -> None:
    assert tick_labels([0.0, 0.25, 0.5, 0.75, 1.0]) == ["0", "0.25", "0.5", "0.75", "1"]
    assert tick_labels([-1.0, -0.0, 1.0]) == ["−1", "0", "1"]
    assert tick_labels([0.1 + 0.2]) == ["0.3"]


def test_log_axis_places_decades_evenly() -> None:
    fig = Figure(300, 300)
    ax = fig.add_axes()
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(1e-4, 1)
    ax.set_ylim(1e-4, 1)
    ax.plot([1e-4, 1e-2, 1], [1e-4, 1e-2, 1])
    root = parse(fig.to_svg(chart_id="log", title="t", desc="d"))
    (line,) = tags(root, "polyline")
    pts = [tuple(map(float, p.split(","))) for p in (line.get("points") or "").split()]
    (x0, y0), (x1, y1), (x2, y2) = pts
    assert x1 - x0 == pytest.approx(x2 - x1, abs=0.02)  # 1e-4 → 1e-2 as far as 1e-2 → 1
    assert y0 - y1 == pytest.approx(y1 - y2, abs=0.02)
    labels = [t.text for t in tags(root, "text")]
    assert {"0.0001", "0.001", "0.01", "0.1", "1"} <= set(labels)


# --- geometry ------------------------------------------------------------------------------------


def _plot_area(root: ET.Element) -> tuple[float, float, float, float]:
    """The left-and-bottom spine path "M x y0 V y1 H x1" as (x0, y0, x1, y1)."""
    for path in tags(root, "path"):
        m = re.fullmatch(r"M([\d.]+) ([\d.]+)V([\d.]+)H([\d.]+)", path.get("d") or "")
        if m:
            x0, y0, y1, x1 = map(float, m.groups())
            return x0, y0, x1, y1
    raise AssertionError("no axes spines")


def test_a_half_bar_on_a_unit_axis_ends_mid_plot() -> None:
    fig = Figure(400, 200)
    ax = fig.add_axes()
    ax.barh([0], [0.5], height=0.5, color="#0072B2")
    ax.set_xlim(0, 1)
    ax.set_ylim(-0.5, 0.5)
    root = parse(fig.to_svg(chart_id="bar", title="t", desc="d"))
    x0, top, x1, bottom = _plot_area(root)
    bars = [r for r in tags(root, "rect") if r.get("fill") == "#0072B2"]
    (bar,) = bars
    bx, bw = float(bar.get("x") or 0), float(bar.get("width") or 0)
    assert bx == pytest.approx(x0, abs=0.01)
    assert bx + bw == pytest.approx((x0 + x1) / 2, abs=0.02)
    # Height 0.5 of a 1-unit axis: half the plot area, centred on 0.
    by, bh = float(bar.get("y") or 0), float(bar.get("height") or 0)
    assert bh == pytest.approx((bottom - top) / 2, abs=0.02)
    assert by + bh / 2 == pytest.approx((top + bottom) / 2, abs=0.02)


def test_vertical_bars_whiskers_and_reference_lines() -> None:
    fig = Figure(400, 240)
    ax = fig.add_axes()
    ax.bar([0, 1], [0.25, 1.0], width=0.5, color="#E69F00", yerr=[(0.2, 0.3), None])
    ax.axhline(0.5, color="#D55E00", dash="5 3", note="threshold")
    ax.set_ylim(0, 1)
    ax.set_xlim(-0.5, 1.5)
    root = parse(fig.to_svg(chart_id="v", title="t", desc="d"))
    _, top, _, bottom = _plot_area(root)
    bars = [r for r in tags(root, "rect") if r.get("fill") == "#E69F00"]
    assert len(bars) == 2
    short, tall = sorted(bars, key=lambda r: float(r.get("height") or 0))
    assert float(tall.get("y") or 0) == pytest.approx(top, abs=0.01)
    assert float(short.get("height") or 0) == pytest.approx((bottom - top) / 4, abs=0.02)
    (ref,) = [ln for ln in tags(root, "line") if ln.get("stroke") == "#D55E00"]
    assert ref.get("stroke-dasharray") == "5 3"
    assert float(ref.get("y1") or 0) == pytest.approx((top + bottom) / 2, abs=0.02)
    assert "threshold" in [t.text for t in tags(root, "text")]
    whiskers = [p for p in tags(root, "path") if p.get("stroke-width") == "1.1"]
    assert len(whiskers) == 1 and (whiskers[0].get("d") or "").count("M") == 3  # stem and two caps


def test_lines_have_markers_and_a_legend() -> None:
    fig = Figure(400, 240)
    ax = fig.add_axes()
    ax.plot([0, 1, 2], [0.9, 0.7, 0.4], marker="o", label="pgd")
    ax.plot([0, 1, 2], [0.9, 0.8, 0.6], marker="s", label="fgsm")
    ax.legend()
    root = parse(fig.to_svg(chart_id="l", title="t", desc="d"))
    assert len(tags(root, "polyline")) == 2
    assert len(tags(root, "circle")) == 3 + 1  # three points and the legend swatch
    assert {"pgd", "fgsm"} <= {t.text for t in tags(root, "text")}


# --- text ----------------------------------------------------------------------------------------


def test_text_width_and_truncation() -> None:
    assert text_width("", 10) == 0
    assert text_width("WWW", 10) > text_width("iii", 10)
    assert 0.45 * 10 * 8 < text_width("abcdefgh", 10) < 0.7 * 10 * 8
    cut = fit_text("a very long feature name indeed", 10, 60)
    assert cut.endswith("…") and text_width(cut, 10) <= 60
    assert fit_text("short", 10, 60) == "short"


def test_long_labels_are_cut_and_keep_the_full_text_in_a_title() -> None:
    name = "an extraordinarily long group name that cannot possibly fit"
    fig = Figure(300, 150)
    ax = fig.add_axes()
    ax.barh([0], [1])
    ax.set_yticks([0], [name])
    root = parse(fig.to_svg(chart_id="cut", title="t", desc="d"))
    cut = [t for t in tags(root, "text") if t.find(SVG + "title") is not None]
    assert len(cut) == 1
    title = cut[0].find(SVG + "title")
    assert title is not None and title.text == name
    shown = "".join(cut[0].itertext())[len(name) :]
    assert shown.endswith("…") and name.startswith(shown[:-1])


def test_user_strings_are_escaped_everywhere() -> None:
    evil = '<script>alert("x")</script> & "quotes"'
    fig = Figure(500, 260)
    (ax,) = fig.subplots()[0]
    ax.barh([0], [0.5], label=evil)
    ax.set_yticks([0], [evil])
    ax.set_title(evil)
    ax.set_xlabel(evil)
    ax.legend()
    fig.legend([LegendEntry(evil, "#000000")], title=evil)
    svg = fig.to_svg(chart_id='id"><script>', title=evil, desc=evil)
    assert "<script" not in svg
    root = parse(svg)  # well-formed
    assert root.get("aria-labelledby") == "id---script--title id---script--desc"
    assert root.findtext(SVG + "title") == evil and root.findtext(SVG + "desc") == evil
    assert any(evil in "".join(t.itertext()) for t in tags(root, "text"))


# --- colours -------------------------------------------------------------------------------------


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def test_diverging_colours_are_symmetric_around_zero() -> None:
    white, neg, pos = (_rgb(c) for c in ("#FFFFFF", DIVERGING.stops[0], DIVERGING.stops[2]))
    assert DIVERGING(0.5) == "#FFFFFF"
    assert DIVERGING(0.0) == "#0072B2" and DIVERGING(1.0) == "#D55E00"
    assert DIVERGING(-3.0) == "#0072B2" and DIVERGING(7.0) == "#D55E00"  # clipped to the ends
    for d in (0.01, 0.1, 0.23, 0.37, 0.5):
        lo, hi = _rgb(DIVERGING(0.5 - d)), _rgb(DIVERGING(0.5 + d))
        # Each side is white moved the same fraction of the way towards its own end.
        f_lo = [(w - c) / (w - e) for w, c, e in zip(white, lo, neg) if w != e]
        f_hi = [(w - c) / (w - e) for w, c, e in zip(white, hi, pos) if w != e]
        assert max(f_lo) - min(f_lo) < 0.02 and max(f_hi) - min(f_hi) < 0.02
        assert f_lo[0] == pytest.approx(f_hi[0], abs=0.02)
        assert f_lo[0] == pytest.approx(2 * d, abs=0.03)


def test_heatmap_draws_cells_by_value_with_a_colorbar() -> None:
    grid = [[-1.0, 0.0, 1.0], [0.5, -0.5, 0.0]]
    fig = Figure(300, 160)
    ax = fig.add_axes()
    ax.heatmap(grid, cmap=DIVERGING, vmin=-1, vmax=1)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.colorbar(DIVERGING, -1, 1, label="attribution")
    root = parse(fig.to_svg(chart_id="h", title="t", desc="d"))
    cells = {p.get("fill"): p.get("d") or "" for p in tags(root, "path") if p.get("shape-rendering")}
    # −1 and +1 at the ends; ±0.5 the same strength on either side; zeros left white (not drawn).
    assert set(cells) == {"#0072B2", "#D55E00", DIVERGING(0.25), DIVERGING(0.75)}
    assert all(d.count("M") == 1 for d in cells.values())
    # Square cells.
    m = re.match(r"M[\d.]+ [\d.]+h([\d.]+)v([\d.]+)", cells["#0072B2"])
    assert m is not None and float(m.group(1)) == pytest.approx(float(m.group(2)), abs=0.02)
    strips = [r.get("fill") for r in tags(root, "rect") if r.get("width") == "12"]
    assert strips[0] == "#D55E00" and strips[-2] == "#0072B2"  # colour bar: +1 on top; last rect is its frame
    assert {"−1", "0", "1", "attribution"} <= {"".join(t.itertext()) for t in tags(root, "text")}


def test_sequential_map_runs_light_to_dark() -> None:
    assert BLUES(0.0) == "#F7FBFF" and BLUES(1.0) == "#08306B"
    assert sum(_rgb(BLUES(0.3))) > sum(_rgb(BLUES(0.7)))


# --- output --------------------------------------------------------------------------------------


def test_fmt_rounds_to_two_decimals() -> None:
    assert [fmt(v) for v in (0.0, -0.004, 1.005, 2.999, 10.5, 1 / 3)] == ["0", "0", "1", "3", "10.5", "0.33"]


def _every_chart(results: Results) -> list[str]:
    return [c.svg for cs in build_charts(results).values() for c in cs if c.svg]


def test_report_charts_are_plain_svg_deterministic_and_rounded(results: Results) -> None:
    first = _every_chart(results)
    assert len(first) >= 10 and first == _every_chart(results)
    for svg in first:
        root = parse(svg)
        assert root.get("role") == "img"
        found = {el.tag.removeprefix(SVG) for el in root.iter()}
        assert found <= ALLOWED_TAGS, found - ALLOWED_TAGS
        assert "var(" not in svg and "foreignObject" not in svg and "<image" not in svg
        for el in root.iter():
            for name, value in el.attrib.items():
                if name in (
                    "d",
                    "points",
                    "x",
                    "y",
                    "width",
                    "height",
                    "x1",
                    "x2",
                    "y1",
                    "y2",
                    "cx",
                    "cy",
                    "r",
                ):
                    assert not re.search(r"\d\.\d{3,}", value), (name, value)


def test_figure_is_sized_by_its_viewbox_and_never_drawn_larger() -> None:
    fig = Figure(672, 288)
    fig.add_axes().plot([0, 1], [0, 1])
    root = parse(fig.to_svg(chart_id="s", title="t", desc="d"))
    assert root.get("viewBox") == "0 0 672 288"
    assert root.get("width") is None and root.get("style") == "max-width: 672px"
