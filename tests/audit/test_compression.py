"""The compression audit: every figure comes from the variant actually built, saved and run."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from governance.audit.compression import CompressionAudit, compress, serialized_size
from governance.audit.paired import compare_predictions
from governance.errors import InputError
from tests.audit.tiny_models import image_handle, make_context, tabular_handle

FAST = {"latency_calls": 5, "warmup": 1, "n_boot": 200, "latency_batches": [1, 64]}


def test_pruning_zeroes_the_smallest_weights_globally():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(10, 20), torch.nn.ReLU(), torch.nn.Linear(20, 3))
    before = [p.detach().clone() for p in model.parameters()]
    variant = compress(model, "prune_90").module
    weights = torch.cat([variant[0].weight.flatten(), variant[2].weight.flatten()])
    original = torch.cat([model[0].weight.flatten(), model[2].weight.flatten()]).detach()
    assert int((weights == 0).sum()) == round(0.9 * weights.numel())
    kept = original.abs()[weights != 0]
    dropped = original.abs()[weights == 0]
    assert kept.min() >= dropped.max()  # global L1: the largest 10% survive, across both layers
    assert not any(hasattr(m, "weight_orig") for m in variant.modules())  # made permanent
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))  # a copy was pruned


def test_int8_outputs_stay_close_and_the_file_stores_int8(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 4)).eval()
    x = torch.randn(32, 64)
    variant = compress(model, "int8")
    with torch.no_grad():
        assert (variant.module(x) - model(x)).abs().max() < 0.05
    fp32 = serialized_size(compress(model, "fp32").module, tmp_path / "fp32.safetensors")
    int8 = serialized_size(variant.module, tmp_path / "int8.safetensors")
    from safetensors import safe_open

    with safe_open(str(tmp_path / "int8.safetensors"), "pt") as f:
        dtypes = {f.get_tensor(k).dtype for k in f.keys()}  # noqa: SIM118
    assert torch.int8 in dtypes
    # 64*128 + 128*4 weights shrink 4x; biases and scales stay fp32
    assert int8 < 0.35 * fp32


def test_pruned_90_is_stored_sparse_and_smaller(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(100, 100), torch.nn.ReLU(), torch.nn.Linear(100, 2)).eval()
    fp32 = serialized_size(model, tmp_path / "a.safetensors")
    pruned = serialized_size(compress(model, "prune_90").module, tmp_path / "b.safetensors")
    assert pruned < 0.3 * fp32


def _run(handle, bundle, options):
    return CompressionAudit().run(make_context(handle, bundle, options))


def test_tabular_audit_numbers_equal_a_direct_paired_comparison():
    handle, bundle = tabular_handle()
    section = _run(handle, bundle, {**FAST, "variants": ["int8", "prune_90"]})
    x = handle.encode(bundle.eval)
    classes = np.asarray(handle.classes)
    with torch.no_grad():
        fp32 = classes[handle.module(x).argmax(1).numpy()]
        pruned = classes[compress(handle.module, "prune_90").module(x).argmax(1).numpy()]
    y = bundle.eval["risk"].astype(str).to_numpy()
    direct = compare_predictions(
        y, fp32, pruned, {a: bundle.eval[a] for a in bundle.sensitive}, classes=handle.classes, n_boot=0
    )
    metrics = section.metrics
    assert metrics["compression.prune_90.accuracy_drop"] == pytest.approx(
        -direct.metric("accuracy").difference, abs=1e-12
    )
    worst = max(v[1] for v in direct.worst_group_drop.values())
    assert metrics["compression.prune_90.worst_group_accuracy_drop"] == pytest.approx(worst, abs=1e-12)
    assert metrics["compression.prune_90.disagreement_rate"] == pytest.approx(
        float((fp32 != pruned).mean()), abs=1e-12
    )
    for name in ("fp32", "int8", "prune_90"):
        assert metrics[f"compression.{name}.size_bytes"] > 0
        assert (
            0 < metrics[f"compression.{name}.latency_ms_p50"] <= metrics[f"compression.{name}.latency_ms_p95"]
        )
        assert metrics[f"compression.{name}.batch64.latency_ms_p50"] > 0
    assert metrics["compression.int8.size_bytes"] < metrics["compression.fp32.size_bytes"]
    rows = section.tables["groups"]
    assert {r["attribute"] for r in rows} >= {"overall", "sex", "age_group", "sex*age_group"}
    assert all(0.0 <= r["mcnemar_p"] <= 1.0 for r in rows)
    methods = {r["variant"]: r["method"] for r in section.tables["variants"]}
    assert methods["int8"].startswith(("torchao", "torch.ao"))


def test_image_audit_runs_on_a_cnn():
    handle, bundle = image_handle()
    section = _run(handle, bundle, {**FAST, "variants": ["int8", "prune_50"]})
    assert section.metrics["compression.prune_50.accuracy_drop"] >= -1.0
    assert "compression.int8.worst_group_accuracy_drop" in section.metrics


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"variants": ["int4"]}, "variants.0"),
        ({"threads": 0}, "threads"),
        ({"speed": 1}, "speed"),
        ({"latency_calls": 2}, "latency_calls"),
    ],
)
def test_bad_options_name_the_field(options, field):
    handle, bundle = tabular_handle()
    with pytest.raises(InputError, match=rf"audits\.compression\.{field}"):
        _run(handle, bundle, options)
