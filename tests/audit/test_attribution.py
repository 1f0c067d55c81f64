"""Attribution audit: IG against Captum itself, the completeness axiom, one-hot sums, proxies."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from governance.audit._ig import integrated_gradients
from governance.audit._proxies import detect_proxies, univariate_auc
from governance.audit.attribution import AttributionAudit
from governance.errors import InputError
from tests.audit.tiny_models import image_handle, make_context, tabular_handle


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_trapezoid", "riemann_left"])
def test_fast_ig_equals_captum_on_mlp(method: str) -> None:
    from captum.attr import IntegratedGradients

    handle, bundle = tabular_handle()
    x = handle.encode(bundle.eval.iloc[:40])
    base = handle.baseline(bundle.train).expand_as(x)
    target = handle.module(x).argmax(1)
    ours = integrated_gradients(handle.module, x, base, target, n_steps=30, method=method, chunk_size=7)
    oracle = IntegratedGradients(handle.module).attribute(x, base, target=target, n_steps=30, method=method)
    torch.testing.assert_close(ours, oracle, rtol=1e-4, atol=1e-5)


def test_fast_ig_equals_captum_on_cnn() -> None:
    from captum.attr import IntegratedGradients

    handle, bundle = image_handle()
    x = handle.encode(bundle.eval.iloc[:10])
    zeros = torch.zeros_like(x)
    target = torch.tensor([0, 1] * 5)
    ours = integrated_gradients(handle.module, x, zeros, target, n_steps=20)
    oracle = IntegratedGradients(handle.module).attribute(x, zeros, target=target, n_steps=20)
    torch.testing.assert_close(ours, oracle, rtol=1e-4, atol=1e-6)


def test_ig_is_exact_for_a_linear_model() -> None:
    # Completeness holds exactly for a linear function: sum(attr) == f(x) - f(b).
    torch.manual_seed(1)
    lin = torch.nn.Linear(5, 3)
    x, b = torch.randn(8, 5), torch.randn(8, 5)
    t = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    attr = integrated_gradients(lin, x, b, t, n_steps=4)
    expected = (lin(x) - lin(b)).gather(1, t.view(-1, 1)).squeeze(1)
    torch.testing.assert_close(attr.sum(1), expected.detach(), rtol=1e-5, atol=1e-5)
    # ...and equals (x - b) * w for the target row.
    torch.testing.assert_close(attr, (x - b) * lin.weight[t].detach(), rtol=1e-5, atol=1e-5)


def test_completeness_gap_matches_axiom_and_shrinks_with_steps() -> None:
    handle, bundle = tabular_handle()
    coarse = AttributionAudit().run(make_context(handle, bundle, {"n_steps": 4, "infidelity_rows": 0}))
    fine = AttributionAudit().run(make_context(handle, bundle, {"n_steps": 100, "infidelity_rows": 0}))
    gap_fine = fine.metrics["attribution.completeness_gap"]
    assert gap_fine is not None and gap_fine < 0.05
    assert fine.metrics["attribution.completeness_gap_relative"] < 0.02  # type: ignore[operator]
    assert coarse.metrics["attribution.completeness_gap"] > gap_fine  # type: ignore[operator]


def test_onehot_columns_sum_back_to_features_and_share_adds_up() -> None:
    handle, bundle = tabular_handle()
    section = AttributionAudit().run(make_context(handle, bundle))
    table = section.tables["importance"]
    assert [r["feature"] for r in table] != []
    assert {r["feature"] for r in table} == set(handle.feature_groups)
    assert sum(r["share"] for r in table) == pytest.approx(1.0)
    # Independent recomputation of the per-feature importance from Captum's attributions.
    from captum.attr import IntegratedGradients

    frame = bundle.eval.iloc[:200]
    x = handle.encode(frame)
    base = handle.baseline(bundle.train).expand_as(x)
    target = handle.module(x).argmax(1)
    attr = IntegratedGradients(handle.module).attribute(x, base, target=target, n_steps=50).detach().numpy()
    for row in table:
        cols = list(handle.feature_groups[row["feature"]])
        expected = np.abs(attr[:, cols].sum(axis=1)).mean()
        assert row["mean_abs_attribution"] == pytest.approx(expected, rel=1e-4, abs=1e-6)
    counted = [r for r in table if r["sensitive"] or r["proxy"]]
    assert {r["feature"] for r in counted} == {"title", "age"}  # declared proxy + detected proxy
    assert section.metrics["attribution.sensitive_share"] == pytest.approx(sum(r["share"] for r in counted))
    by_group = section.tables["importance_by_group"]
    assert {(r["attribute"], r["group"]) for r in by_group} == {
        ("sex", "female"),
        ("sex", "male"),
        ("age_group", "over_35"),
        ("age_group", "35_or_under"),
    }


def test_a_feature_the_model_ignores_gets_zero_attribution() -> None:
    handle, bundle = tabular_handle()
    import copy

    blind = copy.deepcopy(handle)
    with torch.no_grad():
        blind.module[0].weight[:, list(blind.feature_groups["title"])] = 0.0
    section = AttributionAudit().run(make_context(blind, bundle, {"infidelity_rows": 0}))
    row = next(r for r in section.tables["importance"] if r["feature"] == "title")
    assert row["mean_abs_attribution"] == 0.0
    assert section.metrics["attribution.sex.share"] == 0.0


def test_captum_engine_gives_the_same_numbers() -> None:
    handle, bundle = tabular_handle()
    fast = AttributionAudit().run(make_context(handle, bundle, {"max_rows": 60}))
    slow = AttributionAudit().run(make_context(handle, bundle, {"max_rows": 60, "engine": "captum"}))
    for key, value in fast.metrics.items():
        assert slow.metrics[key] == pytest.approx(value, rel=1e-3, abs=1e-5), key


def test_univariate_auc_matches_sklearn_and_detects_proxies() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    groups = rng.choice(["a", "b"], size=300)
    values = rng.normal(size=300) - (groups == "a") * 1.0
    expected = roc_auc_score(groups == "a", values)
    assert univariate_auc(values, groups, categorical=False) == pytest.approx(max(expected, 1 - expected))

    _, bundle = tabular_handle()
    scores = detect_proxies(bundle.train, list(bundle.features), bundle.sensitive, {}, threshold=0.7)
    proxies = {(s.sensitive, s.feature) for s in scores if s.is_proxy}
    assert proxies == {("sex", "title"), ("age_group", "age")}
    noise = [s.auc for s in scores if (s.sensitive, s.feature) not in proxies]
    assert max(noise) < 0.65


def test_image_model_gets_heatmaps_and_no_sensitive_share() -> None:
    handle, bundle = image_handle()
    section = AttributionAudit().run(make_context(handle, bundle, {"max_rows": 40}))
    maps = section.details["heatmaps"]
    assert set(maps) == {"bottom", "top"}
    heat = np.asarray(maps["top"])
    assert heat.shape == (8, 8)
    assert section.metrics["attribution.sensitive_share"] is None
    assert section.metrics["attribution.completeness_gap"] < 0.05  # type: ignore[operator]


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"n_step": 5}, "audits.attribution.n_step"),
        ({"engine": "shap"}, "audits.attribution.engine"),
        ({"n_steps": "many"}, "audits.attribution.n_steps"),
        ({"target": "maybe"}, "audits.attribution.target"),
    ],
)
def test_bad_options_raise_input_error_naming_the_field(options: dict[str, object], field: str) -> None:
    handle, bundle = tabular_handle()
    with pytest.raises(InputError) as info:
        AttributionAudit().run(make_context(handle, bundle, options))
    assert info.value.field == field
