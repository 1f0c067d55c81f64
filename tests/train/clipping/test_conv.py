"""The fast DP path on convolutions: Conv2d/GroupNorm per-sample clipping against a one-sample-at-a-
time reference, and the built-in CNN against Opacus' hooks with noise on."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from governance.models.architectures import build_architecture
from governance.train.clipping.conv import (
    Workspace,
    conv_grads,
    group_norm_input,
    materialise_is_cheaper,
    row_products,
    rows_apply,
)
from governance.train.clipping.linear import FastLinearClipping
from governance.train.dp import PrivacySettings, supports_fast_clipping
from governance.train.trainer import Trainer
from tests.train._reference import clipped_sums, clipping_only, images

SHAPE = (2, 7, 7)


def _images(n: int, seed: int = 0, shape: tuple[int, ...] = SHAPE) -> tuple[np.ndarray, np.ndarray]:
    return images(n, seed, shape)


def _conv_net(conv: dict[str, Any], group_norm: bool = True, shape: tuple[int, ...] = SHAPE) -> nn.Module:
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Unflatten(1, shape), nn.Conv2d(shape[0], 4, **conv)]
    if group_norm:
        layers.append(nn.GroupNorm(2, 4))
    layers += [nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, 3)]
    return nn.Sequential(*layers)


CONVS = {
    "3x3 pad 1": {"kernel_size": 3, "padding": 1},
    "stride 2": {"kernel_size": 3, "stride": 2},
    "dilation 2": {"kernel_size": 3, "dilation": 2, "padding": 2},
    "no bias": {"kernel_size": 3, "padding": 1, "bias": False},
    "3x5 kernel, same": {"kernel_size": (3, 5), "padding": "same"},
    "strides 1x2": {"kernel_size": 3, "stride": (1, 2), "padding": 1},
}


@pytest.mark.parametrize("group_norm", [True, False], ids=["groupnorm", "conv"])
@pytest.mark.parametrize("conv", list(CONVS.values()), ids=list(CONVS))
def test_per_sample_clipping_matches_microbatch_reference(conv: dict[str, Any], group_norm: bool) -> None:
    x, y = _images(48)
    clip, lr = 0.5, 1.0
    reference = _conv_net(conv, group_norm)
    expected = {
        k: p.detach() - lr * s / len(x)
        for (k, p), s in zip(reference.named_parameters(), clipped_sums(reference, x, y, clip).values())
    }
    privacy = clipping_only(
        target_epsilon=1.0,
        max_grad_norm=clip,
        noise_multiplier=0.0,
        poisson_sampling=False,
        grad_sample_mode="fast",  # auto would take the fused step (tests/train/clipping/test_sequential.py)
    )
    model = _conv_net(conv, group_norm)
    result = Trainer(
        model=model, train_data=(x, y), privacy=privacy, epochs=1, batch_size=len(x), lr=lr
    ).fit()
    assert result.ledger["privacy"]["grad_sample_mode"] == "fast"
    assert result.ledger["steps"] == 1
    for name, param in result.model.named_parameters():
        torch.testing.assert_close(param.detach(), expected[name], rtol=1e-4, atol=1e-5, msg=name)


PER_SAMPLE_CONVS = {
    "3x3 pad 1": ({"kernel_size": 3, "padding": 1}, 12),
    "valid": ({"kernel_size": 3}, 12),
    "dilation 2": ({"kernel_size": 3, "dilation": 2, "padding": 2}, 12),
    "dilation 1x2, 2x3 kernel": ({"kernel_size": (2, 3), "dilation": (1, 2), "padding": (1, 2)}, 12),
    "3x5 same, no bias": ({"kernel_size": (3, 5), "padding": "same", "bias": False}, 12),
    "stride 2": ({"kernel_size": 3, "stride": 2, "padding": 1}, 12),
    # Per kernel row: any stride along the rows, stride 1 down the columns.
    "strides 1x2, dilation 2x1": ({"kernel_size": 3, "stride": (1, 2), "dilation": (2, 1), "padding": 2}, 12),
    "strides 2x1": ({"kernel_size": 3, "stride": (2, 1), "padding": 1}, 12),
    "one channel": ({"kernel_size": 3, "padding": 1}, 1),
    # More padding than the kernel reaches: output rows longer than input row + one padding.
    "over-padded": ({"kernel_size": 3, "padding": (2, 3)}, 12),
}


@pytest.mark.parametrize(("conv", "channels"), list(PER_SAMPLE_CONVS.values()), ids=list(PER_SAMPLE_CONVS))
def test_per_sample_conv_gradients_both_layouts(conv: dict[str, Any], channels: int) -> None:
    """Per kernel row (stride 1, enough channels) or from the unfolded input: the per-sample
    weight gradients and squared norms equal each sample's own backward pass."""
    torch.manual_seed(0)
    layer = nn.Conv2d(channels, 5, **conv)
    x = torch.randn(6, channels, 10, 11)
    g = torch.randn_like(layer(x)).detach()
    expected = []
    for i in range(len(x)):
        layer.zero_grad()
        layer(x[i : i + 1]).backward(g[i : i + 1])
        expected.append(torch.cat([p.grad.flatten() for p in layer.parameters()]))
    norms_sq = torch.stack(expected).pow(2).sum(dim=1)
    got, _ = conv_grads(layer, x, g, Workspace())
    torch.testing.assert_close(got, norms_sq, rtol=1e-5, atol=1e-6)
    stride = conv.get("stride", 1)
    assert rows_apply(layer, x) == ((stride if isinstance(stride, int) else stride[0]) == 1 and channels > 1)
    if rows_apply(layer, x):
        per_row = row_products(layer, x, g, Workspace())  # (k_h, n, C_out·k_w·C_in)
        kh, kw = layer.kernel_size
        weights = per_row.view(kh, 6, 5, kw, channels).permute(1, 2, 4, 0, 3)
        for i in range(len(x)):
            torch.testing.assert_close(weights[i].flatten(), expected[i][: layer.weight.numel()])


@pytest.mark.parametrize(
    ("path", "channels"),
    [("per_row", 4), ("per_sample", 2), ("ghost", 2)],
    ids=["rows", "unfolded", "ghost"],
)
def test_every_norm_path_matches_the_reference_across_batch_sizes(
    path: str, channels: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Per-kernel-row products, the unfolded input and the ghost norm give the same clipped sums,
    also when the batch size changes from step to step (the reused buffers shrink, grow and go
    empty)."""
    shape = (channels, 7, 7)
    model = _conv_net({"kernel_size": 3, "padding": 1}, shape=shape)
    reference = _conv_net({"kernel_size": 3, "padding": 1}, shape=shape)  # same weights, no hooks
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    clipping = FastLinearClipping(
        model,
        optimizer,
        nn.CrossEntropyLoss(),
        noise_multiplier=0.0,
        max_grad_norm=0.5,
        expected_batch_size=1,
        generator=None,
    )
    conv = model[1]
    chosen: set[str] = set()

    def forced(layer: nn.Conv2d, a: torch.Tensor, g: torch.Tensor, *rest: Any) -> Any:
        norms, state = conv_grads(layer, a, g, *rest, materialise=path != "ghost")
        chosen.update(k for k in ("per_row", "per_sample", "grad_out") if getattr(state, k) is not None)
        return norms, state

    monkeypatch.setattr("governance.train.clipping.conv.conv_grads", forced)
    try:
        for n, seed in ((20, 1), (48, 2), (0, 3), (7, 4)):
            x, y = _images(n, seed, shape)
            clipping(model(torch.from_numpy(x)), torch.from_numpy(y)).backward()
            if n == 0:
                assert all(float(p.grad.abs().max()) == 0.0 for p in model.parameters())
                continue
            expected = clipped_sums(reference, x, y, 0.5)
            for (name, p), e in zip(model.named_parameters(), expected.values()):
                torch.testing.assert_close(p.grad, e, rtol=1e-4, atol=1e-5, msg=f"n={n} {name}")
    finally:
        clipping.close()
    assert chosen == {"grad_out" if path == "ghost" else path}
    assert not conv._forward_hooks


@pytest.mark.parametrize("channels", [2, 4], ids=["unfolded", "rows"])
@pytest.mark.parametrize("frozen", ["1.weight", "1.bias", "2.weight", "2.bias"])
def test_frozen_parameters_are_left_out_of_the_norms(frozen: str, channels: int) -> None:
    """A frozen parameter has no gradient to clip: the per-sample norms cover the rest only."""
    shape = (channels, 7, 7)
    x, y = _images(24, shape=shape)
    model = _conv_net({"kernel_size": 3, "padding": 1}, shape=shape)
    reference = _conv_net({"kernel_size": 3, "padding": 1}, shape=shape)
    for net in (model, reference):
        dict(net.named_parameters())[frozen].requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    clipping = FastLinearClipping(
        model,
        torch.optim.SGD(trainable, lr=1.0),
        nn.CrossEntropyLoss(),
        noise_multiplier=0.0,
        max_grad_norm=0.5,
        expected_batch_size=1,
        generator=None,
    )
    clipping(model(torch.from_numpy(x)), torch.from_numpy(y)).backward()
    clipping.close()
    params = {k: p for k, p in reference.named_parameters() if p.requires_grad}
    summed = {k: torch.zeros_like(p) for k, p in params.items()}
    for i in range(len(x)):
        reference.zero_grad()
        out = reference(torch.from_numpy(x[i : i + 1]))
        nn.functional.cross_entropy(out, torch.from_numpy(y[i : i + 1])).backward()
        norm = torch.sqrt(sum((p.grad**2).sum() for p in params.values()))
        for k, p in params.items():
            summed[k] += p.grad * min(1.0, 0.5 / (float(norm) + 1e-6))
    for name, p in model.named_parameters():
        if name == frozen:
            assert p.grad is None
        else:
            torch.testing.assert_close(p.grad, summed[name], rtol=1e-4, atol=1e-5, msg=name)


def test_group_norm_statistics_are_computed_where_the_graph_has_none() -> None:
    torch.manual_seed(0)
    norm = nn.GroupNorm(2, 4)
    x = torch.randn(3, 4, 5, 5) * 2 + 1
    saved = group_norm_input(norm, x, norm(x.requires_grad_()))  # taken from the autograd node
    with torch.no_grad():
        computed = group_norm_input(norm, x.detach(), norm(x))  # no node: computed again
    torch.testing.assert_close(saved.mean, computed.mean)
    torch.testing.assert_close(saved.rstd, computed.rstd)
    torch.testing.assert_close(saved.mean, x.detach().reshape(3, 2, -1).mean(dim=2))


def test_ghost_norm_is_chosen_where_gradients_outgrow_the_patches() -> None:
    # 8 output channels on 2x2 positions: (n, 8, 36) gradients against (n, 36, 4) patches.
    assert not materialise_is_cheaper(positions=4, d=36, p=8)
    # The built-in CNN's layers materialise.
    assert materialise_is_cheaper(positions=64, d=9, p=16)
    assert materialise_is_cheaper(positions=64, d=144, p=32)


def test_builtin_cnn_reproduces_opacus_with_noise() -> None:
    """Same seed: the fast path on the built-in CNN draws Poisson batches and noise as Opacus
    does, so it ends with the weights and ε of a run through Opacus' hooks."""
    x, y = _images(240, shape=(1, 8, 8))
    results = {}
    for mode in ("fast", "hooks"):
        torch.manual_seed(0)
        model = build_architecture("cnn", 64, 3, {"input_shape": [1, 8, 8], "channels": [4, 8]})
        privacy = PrivacySettings(
            target_epsilon=50.0,
            delta=1e-3,
            noise_multiplier=0.7,
            grad_sample_mode=mode,
            reproducible_noise=True,
        )
        trainer = Trainer(
            model=model, train_data=(x, y), privacy=privacy, epochs=2, batch_size=30, lr=0.3, seed=5
        )
        results[mode] = trainer.fit()
    fast, hooks = results["fast"], results["hooks"]
    assert fast.ledger["privacy"]["grad_sample_mode"] == "fast"
    assert hooks.ledger["privacy"]["grad_sample_mode"] == "hooks"
    assert fast.epsilon == hooks.epsilon and fast.ledger["steps"] == hooks.ledger["steps"]
    for (name, p), q in zip(fast.model.named_parameters(), hooks.model.parameters()):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-4, atol=1e-5, msg=name)
    assert not any(m._forward_hooks for m in fast.model.modules())  # hooks removed after training


def test_supports_fast_clipping_for_plain_convolutions_only() -> None:
    assert supports_fast_clipping(build_architecture("cnn", 64, 10, {"input_shape": [1, 8, 8]}))
    assert supports_fast_clipping(_conv_net({"kernel_size": 3, "padding": "same"}))
    # A GroupNorm without affine has no parameters: nothing to clip, no reason to refuse.
    plain_norm = nn.Sequential(nn.Conv2d(1, 4, 3), nn.GroupNorm(2, 4, affine=False), nn.Flatten())
    assert supports_fast_clipping(plain_norm)
    unsupported = {
        "groups 2": nn.Conv2d(2, 4, 3, groups=2),
        "reflect padding": nn.Conv2d(2, 4, 3, padding=1, padding_mode="reflect"),
        "asymmetric same padding": nn.Conv2d(2, 4, 2, padding="same"),
        "Conv1d": nn.Conv1d(2, 4, 3),
        "BatchNorm2d": nn.BatchNorm2d(2),
    }
    for name, layer in unsupported.items():
        model = nn.Sequential(nn.Unflatten(1, SHAPE), layer, nn.Flatten(), nn.Linear(8, 3))
        assert not supports_fast_clipping(model), name
