"""End to end: `governance audit audits/digits-cnn.yaml` (shortened) through the CLI."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from governance.cli import main
from governance.data.loading import load_bundle
from governance.spec import load_spec

SPEC = Path(__file__).resolve().parents[2] / "audits" / "digits-cnn.yaml"


def test_reference_spec_loads_with_every_audit() -> None:
    spec = load_spec(SPEC)
    assert set(spec.audits) == {
        "data_quality",
        "performance",
        "fairness",
        "attribution",
        "robustness",
        "privacy",
    }
    assert spec.model.architecture == "cnn" and spec.train is not None and spec.train.privacy is not None
    bundle = load_bundle(spec)
    assert bundle.image_shape == (1, 8, 8) and bundle.sensitive == ()


@pytest.mark.slow
def test_digits_cnn_audit_end_to_end(tmp_path: Path) -> None:
    raw = yaml.safe_load(SPEC.read_text())
    # The reference spec, shortened to stay well inside a minute: 2 epochs, fewer rows attacked.
    raw["train"]["epochs"] = 2
    raw["audits"]["attribution"] = {"max_rows": 100, "n_steps": 32, "infidelity_rows": 20}
    raw["audits"]["robustness"] = {"eps": [0.03, 0.1], "max_rows": 150, "hopskipjump_rows": 2}
    spec = tmp_path / "digits-cnn.yaml"
    spec.write_text(yaml.safe_dump(raw, sort_keys=False))
    out = tmp_path / "out"
    assert main(["audit", str(spec), "--out", str(out)]) == 0

    results = json.loads((out / "results.json").read_text())
    metrics, sections = results["metrics"], results["sections"]
    statuses = {name: s["status"] for name, s in sections.items()}
    assert statuses == {
        "data_quality": "ok",
        "performance": "ok",
        "fairness": "skipped",
        "attribution": "ok",
        "robustness": "ok",
        "privacy": "ok",
    }
    assert "no sensitive attribute" in sections["fairness"]["reason"]

    per_class = sections["performance"]["tables"]["per_class"]
    assert [r["class"] for r in per_class] == [str(d) for d in range(10)]
    assert sum(r["support"] for r in per_class) == metrics["performance.rows"] == 450
    assert {"precision", "recall", "f1"} <= set(per_class[0])
    assert metrics["performance.accuracy"] > 0.3  # 2 DP epochs: well above the 0.1 of chance

    assert sections["robustness"]["details"]["units"] == "pixel units"
    for attack in ("fgsm", "pgd"):
        for eps in ("0.03", "0.1"):
            assert (
                0
                <= metrics[f"robustness.{attack}.eps_{eps}.accuracy"]
                <= metrics["robustness.clean_accuracy"]
            )
    assert metrics["robustness.pgd.eps_0.1.accuracy"] <= metrics["robustness.pgd.eps_0.03.accuracy"]

    heatmaps = sections["attribution"]["details"]["heatmaps"]
    assert len(heatmaps) >= 5 and all(np.asarray(m).shape == (8, 8) for m in heatmaps.values())
    assert sections["attribution"]["details"]["heatmap_examples"]

    target = raw["train"]["privacy"]["target_epsilon"]
    assert 0 < metrics["privacy.epsilon"] <= target
    assert "privacy.membership_inference.auc" in metrics
    ledger = json.loads((out / "model" / "training.json").read_text())
    assert ledger["privacy"]["epsilon"] == metrics["privacy.epsilon"]

    html = (out / "report.html").read_text()
    for chart in ("attribution_heatmaps", "attribution_heatmap_examples"):
        figure = re.search(rf'<figure id="chart-{chart}" class="chart">\s*<svg', html)
        assert figure is not None, chart
    assert "no sensitive attribute" in html
    assert "ε is an L∞ budget in pixel units" in html  # the robustness curve says its unit
