"""The report charts as matplotlib draws them: accessible, self-contained, deterministic SVG."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from governance.report.charts import build_charts, unique_id
from governance.report.render import render
from governance.results import Results

SVG = "{http://www.w3.org/2000/svg}"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
#: What the charts may contain: plain SVG 1.1 that browsers and WeasyPrint draw alike (no
#: <image>, no <foreignObject>, no scripts).
ALLOWED_TAGS = {"svg", "title", "desc", "defs", "style", "g", "path", "use", "text", "clipPath", "rect"}


def _svgs(results: Results) -> dict[str, str]:
    return {c.id: c.svg for cs in build_charts(results).values() for c in cs if c.svg}


def test_every_chart_is_labelled_vector_svg_with_text_as_text(results: Results) -> None:
    svgs = _svgs(results)
    assert len(svgs) >= 10
    for chart_id, svg in svgs.items():
        root = ET.fromstring(svg)
        assert (
            root.get("role") == "img" and root.get("aria-labelledby") == f"{chart_id}-title {chart_id}-desc"
        )
        assert root.get("width") is None and root.get("viewBox", "").startswith("0 0 ")
        assert root[0].tag == SVG + "title" and root[1].tag == SVG + "desc"
        found = {el.tag.removeprefix(SVG) for el in root.iter()}
        assert found <= ALLOWED_TAGS, (chart_id, found - ALLOWED_TAGS)
        # svg.fonttype "none": labels are <text>, not glyph outlines.
        assert len(list(root.iter(SVG + "text"))) >= 3, chart_id
        assert "<?xml" not in svg and "<metadata>" not in svg and "<!DOCTYPE" not in svg
        assert not re.search(r'="[^"]*\d\.\d{3,}', svg), f"{chart_id}: coordinates must be rounded"


def test_charts_are_deterministic(results: Results) -> None:
    assert _svgs(results) == _svgs(results)


def test_ids_are_unique_in_a_report_and_every_reference_resolves_inside_its_chart(results: Results) -> None:
    seen: list[str] = []
    for chart_id, svg in _svgs(results).items():
        root = ET.fromstring(svg)
        ids = [el.get("id") for el in root.iter() if el.get("id")]
        assert all(str(i).startswith(chart_id + "-") for i in ids), chart_id
        seen += [str(i) for i in ids]
        refs = [el.get(XLINK_HREF, "")[1:] for el in root.iter() if el.get(XLINK_HREF)]
        refs += re.findall(r"url\(#([^)]+)\)", svg)
        assert set(refs) <= set(ids), (chart_id, set(refs) - set(ids))
    assert len(seen) == len(set(seen))


def test_chart_ids_of_names_that_differ_only_in_unsafe_characters_do_not_collide(
    results_dict: dict[str, Any],
) -> None:
    """Issue 19 item 5: ``a*b`` and ``a-b`` used to both become ``group_rates-a-b``."""
    doc = copy.deepcopy(results_dict)
    groups = doc["sections"]["fairness"]["tables"]["groups"]
    extra = []
    for name in ("a*b", "a-b"):
        for row in groups:
            if row["attribute"] == "sex":
                extra.append({**row, "attribute": name})
    doc["sections"]["fairness"]["tables"]["groups"] = groups + extra
    results = Results.from_dict(doc)
    charts = [c for c in build_charts(results)["fairness"] if c.svg]
    ids = [c.id for c in charts]
    assert len(ids) == len(set(ids)) == 4
    assert {"group_rates-a-b", "group_rates-a-b-2"} <= set(ids)
    html = render(results, "html").decode()
    figure_ids = re.findall(r'<figure id="(chart-[^"]+)"', html)
    assert len(figure_ids) == len(set(figure_ids))
    all_ids = re.findall(r'<[^>]*\sid="([^"]+)"', html)
    duplicates = {i for i in all_ids if all_ids.count(i) > 1}
    assert not duplicates, sorted(duplicates)[:5]


def test_unique_id_keeps_safe_names_and_numbers_the_rest() -> None:
    taken: set[str] = set()
    assert unique_id("group_rates-sex", taken) == "group_rates-sex"
    assert unique_id("group_rates-sex", taken) == "group_rates-sex-2"
    assert unique_id("rates-<é>", taken) == "rates----"
    assert unique_id("rates-<ü>", taken) == "rates-----2"


def test_hostile_text_is_escaped_inside_the_svg(hostile_results: Results) -> None:
    svgs = "".join(_svgs(hostile_results).values())
    assert "<script" not in svgs and "<img" not in svgs
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svgs


def test_matplotlib_loads_only_when_pictures_render_and_never_through_pyplot() -> None:
    from .conftest import RESULTS_FILE

    code = (
        "import sys, json\n"
        "import governance\n"
        "from governance.results import load_results\n"
        "from governance.report.render import render\n"
        f"results = load_results({str(RESULTS_FILE)!r})\n"
        "md = render(results, 'markdown').decode()\n"
        "after_md = sorted(m for m in sys.modules if m.split('.')[0] == 'matplotlib')\n"
        "html = render(results, 'html').decode()\n"
        "import matplotlib\n"
        "print(json.dumps({'md': after_md, 'svgs': html.count('<svg'), 'pyplot': 'matplotlib.pyplot' in sys.modules,\n"
        "  'fonttype': matplotlib.rcParams['svg.fonttype']}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["md"] == [] and seen["svgs"] >= 10 and seen["pyplot"] is False
    # The chart style applied only while drawing: the process's defaults are untouched.
    assert seen["fonttype"] == "path"


def test_governance_check_never_imports_matplotlib(tmp_path: Any) -> None:
    code = (
        "import sys, governance, governance.cli\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'torch')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(("k", "n"), [(0, 10), (3, 10), (10, 10), (37, 120), (999, 1000)])
def test_wilson_interval_equals_scipy(k: int, n: int) -> None:
    from scipy.stats import binomtest

    from governance.report.charts.fairness import wilson_interval

    ref = binomtest(k, n).proportion_ci(0.95, method="wilson")
    assert wilson_interval(k / n, n) == pytest.approx((ref.low, ref.high), abs=1e-12)


def test_rendering_a_report_imports_no_scipy() -> None:
    """Why the charts keep their own Wilson interval: scipy.stats alone costs ~1 s to import."""
    from .conftest import RESULTS_FILE

    code = (
        "import sys\n"
        "from governance.results import load_results\n"
        "from governance.report.render import render\n"
        f"render(load_results({str(RESULTS_FILE)!r}), 'html')\n"
        "print('scipy.stats' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


def test_chart_styles_are_presentation_attributes(results: Results) -> None:
    """WeasyPrint reads attributes as they are; a style attribute goes through its CSS parser."""
    for chart_id, svg in _svgs(results).items():
        root = ET.fromstring(svg)
        # matplotlib's "* {stroke-linejoin: round; stroke-linecap: butt}" sheet, inherited from the root.
        assert root.get("stroke-linejoin") == "round" and root.get("stroke-linecap") == "butt", chart_id
        assert not list(root.iter(SVG + "style")), chart_id
        styled = [el.get("style") for el in root.iter() if el is not root and el.get("style")]
        assert styled == [], (chart_id, styled[:3])
        assert 'transform="rotate(-0 ' not in svg and 'transform="rotate(0 ' not in svg
        texts = list(root.iter(SVG + "text"))
        assert texts and all(t.get("font-size") and t.get("font-family") for t in texts), chart_id
