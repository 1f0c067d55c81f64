"""The heatmap charts: drawn for image results as accessible inline SVG, absent for tabular ones,
omitted with a note when the heatmaps are malformed."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from governance.report.charts import build_charts
from governance.report.charts.heatmaps import DIVERGING, attribution_heatmaps, heatmap_examples
from governance.report.render import write_reports
from governance.results import Results
from tests.conftest import BASE_RESULTS


def _image_results(n_classes: int = 3, shown: int = 2) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    doc = copy.deepcopy(BASE_RESULTS)
    maps = {str(c): rng.normal(size=(8, 8)).round(4).tolist() for c in range(n_classes)}
    examples = [
        {
            "class": str(c),
            "row": 10 * c + k,
            "input": rng.uniform(0, 1, size=(8, 8)).round(4).tolist(),
            "attribution": rng.normal(size=(8, 8)).round(4).tolist(),
        }
        for c in range(n_classes)
        for k in range(shown)
    ]
    doc["sections"] = {
        "attribution": {
            "status": "ok",
            "metrics": {"attribution.completeness_gap": 0.01},
            "details": {
                "heatmaps": maps,
                "heatmap_examples": examples,
                "heatmap_info": {"image_shape": [1, 8, 8], "averaged_per_class": 8},
            },
        }
    }
    return doc


def test_specs_describe_every_class_in_words() -> None:
    results = Results.from_dict(_image_results())
    (means,) = attribution_heatmaps(results)
    assert means.id == "attribution_heatmaps"
    assert "3 heatmaps of 8 by 8 pixels" in means.alt
    assert all(f"class {c}:" in means.alt for c in "012")
    assert "blue" in means.caption.lower() and "vermillion" in means.caption.lower()
    (examples,) = heatmap_examples(results)
    assert "6 eval images, 2 per predicted class" in examples.alt


def test_drawn_as_accessible_svg_with_the_diverging_palette(tmp_path: Path) -> None:
    results = Results.from_dict(_image_results())
    charts = {c.id: c for c in build_charts(results)["attribution"]}
    # Feature-bar charts do not apply to an image model: absent, not "omitted".
    assert set(charts) == {"attribution_heatmaps", "attribution_heatmap_examples"}
    for chart in charts.values():
        assert chart.svg is not None and chart.note is None
        assert re.search(r'<svg[^>]*role="img"', chart.svg)
        assert f'<title id="{chart.id}-title">' in chart.svg
    # The colour map runs Okabe-Ito blue -> white -> vermillion (colour-blind safe), centred on 0.
    from matplotlib.colors import to_hex

    from governance.report.charts.heatmaps import _cmap

    cmap = _cmap()
    assert (
        [to_hex(cmap(v)).upper() for v in (0.0, 0.5, 1.0)]
        == [c.upper() for c in DIVERGING]
        == ["#0072B2", "#FFFFFF", "#D55E00"]
    )
    # Both ends are drawn (the maps hold negative and positive values), as vector cells, not a raster.
    means = charts["attribution_heatmaps"].svg or ""
    assert 'fill="#0072b2"' in means and 'fill="#d55e00"' in means
    assert "<image" not in means and "data:" not in means
    paths = write_reports(results, tmp_path, formats=("html",))
    html = Path(paths["html"]).read_text()
    for name in ("attribution_heatmaps", "attribution_heatmap_examples"):
        figure = re.search(rf'<figure id="chart-{name}" class="chart">(.*?)</figure>', html, flags=re.S)
        assert figure is not None and "<figcaption>" in figure.group(1)


def test_tabular_results_show_no_heatmap_charts() -> None:
    doc = copy.deepcopy(BASE_RESULTS)
    doc["sections"] = {"attribution": {"status": "ok", "metrics": {}, "details": {"method": "ig"}}}
    ids = {c.id for c in build_charts(Results.from_dict(doc))["attribution"]}
    assert not ids & {"attribution_heatmaps", "attribution_heatmap_examples"}


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["heatmaps"].update({"0": [[1.0, "x"]]}), "heatmaps.0 is not a grid of numbers"),
        (lambda d: d["heatmaps"].update({"0": [1.0, 2.0]}), "heatmaps.0 is not a 2-D grid"),
        (lambda d: d.update({"heatmaps": {}}), "details.heatmaps is empty"),
    ],
)
def test_malformed_heatmaps_are_omitted_with_a_note(mutate: Any, expected: str) -> None:
    doc = _image_results()
    mutate(doc["sections"]["attribution"]["details"])
    charts = {c.id: c for c in build_charts(Results.from_dict(doc), draw=False)["attribution"]}
    note = charts["attribution_heatmaps"].note
    assert note is not None and note.startswith("Not shown:") and expected in note


def test_examples_with_mismatched_shapes_are_omitted() -> None:
    doc = _image_results()
    doc["sections"]["attribution"]["details"]["heatmap_examples"][0]["input"] = [[0.0] * 4] * 4
    charts = {c.id: c for c in build_charts(Results.from_dict(doc), draw=False)["attribution"]}
    assert "input and attribution differ in shape" in (charts["attribution_heatmap_examples"].note or "")
    assert charts["attribution_heatmaps"].note is None
