"""The privacy-cost audit: the private model against its non-private twin, paired, per group."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from governance.audit.base import Predictions
from governance.audit.paired import compare_predictions
from governance.audit.privacy_cost import TWIN, PrivacyCostAudit
from governance.errors import InputError
from tests.audit.tiny_models import make_context, tabular_handle

ROOT = Path(__file__).resolve().parents[2]


def _twin_predictions(y_true: np.ndarray, y_pred: np.ndarray, flip: np.ndarray) -> Predictions:
    """Predictions that differ from ``y_pred`` on the rows in ``flip`` (made correct there)."""
    pred = np.where(flip, y_true, y_pred)
    return Predictions(y_true=y_true, y_pred=pred)


def test_numbers_equal_a_direct_paired_comparison():
    handle, bundle = tabular_handle()
    context = make_context(handle, bundle, {"n_boot": 300})
    y = context.eval_predictions.y_true
    private = context.eval_predictions.y_pred
    flip = np.random.default_rng(0).random(len(y)) < 0.3
    twin = _twin_predictions(y, private, flip)
    section = PrivacyCostAudit().run(replace(context, companions={TWIN: twin}))
    direct = compare_predictions(
        y, twin.y_pred, private, {a: bundle.eval[a] for a in bundle.sensitive}, n_boot=0
    )
    m = section.metrics
    assert m["privacy_cost.accuracy_drop"] == pytest.approx(-direct.metric("accuracy").difference, abs=1e-12)
    assert m["privacy_cost.accuracy_drop"] >= 0  # the twin is right wherever it differs
    worst = max(v[1] for v in direct.worst_group_drop.values())
    assert m["privacy_cost.worst_group_accuracy_drop"] == pytest.approx(worst, abs=1e-12)
    for attr in ("sex", "age_group", "sex*age_group"):
        assert m[f"privacy_cost.{attr}.accuracy_drop_gap"] == pytest.approx(
            direct.drop_gap[attr][0], abs=1e-12
        )
    rows = [r for r in section.tables["groups"] if r["attribute"] == "sex"]
    assert {r["group"] for r in rows} == set(bundle.eval["sex"].astype(str))
    for r in rows:
        assert r["drop_ci_low"] <= r["accuracy_drop"] <= r["drop_ci_high"]


def test_without_the_twin_or_privacy_it_is_bad_input():
    handle, bundle = tabular_handle()
    context = make_context(handle, bundle)
    with pytest.raises(InputError, match=r"audits\.privacy_cost"):
        PrivacyCostAudit().run(context)
    with pytest.raises(InputError, match=r"train\.privacy"):
        PrivacyCostAudit().preflight(context.spec, bundle, {})
    with pytest.raises(InputError, match=r"audits\.privacy_cost\.lr"):
        PrivacyCostAudit().run(replace(context, options={"lr": -1}))


@pytest.mark.slow
def test_german_credit_pipeline_trains_the_twin(tmp_path):
    """The whole audit: the pipeline trains the DP model and its twin and compares them."""
    import yaml

    from governance.pipeline import run_audit
    from governance.spec import load_spec

    raw = yaml.safe_load((ROOT / "audits" / "german-credit.yaml").read_text())
    raw["train"]["epochs"] = 3
    raw["audits"] = {"performance": {}, "privacy_cost": {"n_boot": 200}}
    for split in ("train", "eval"):
        raw["data"][split] = str(ROOT / "audits" / raw["data"][split])
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(raw))
    outcome = run_audit(load_spec(spec_path), tmp_path / "out", progress=False)
    m = outcome.results.metrics
    assert -1 <= m["privacy_cost.accuracy_drop"] <= 1
    assert m["privacy_cost.private_accuracy"] == pytest.approx(m["performance.accuracy"], abs=1e-12)
    assert (tmp_path / "out" / "twin" / "training.json").is_file()
    import json

    twin_ledger = json.loads((tmp_path / "out" / "twin" / "training.json").read_text())
    assert "privacy" not in twin_ledger or twin_ledger["privacy"] is None
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert any(key.startswith(f"{TWIN}/") for key in manifest["inputs"])
