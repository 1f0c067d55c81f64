"""The hand-written DP step for Sequential conv nets: per-sample clipping against the one-sample-at-a-
time reference, noise as one flat draw, the same training as the Opacus-checked fast path, and the
models it takes or leaves to the other paths."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from governance.models.architectures import build_architecture
from governance.train.clipping.conv import GroupNormInput, group_norm_backward
from governance.train.clipping.sequential import FusedSequentialStep, supports_fused_sequential
from governance.train.dp import supports_fused
from governance.train.trainer import Trainer
from tests.train._reference import assert_noise_is_one_flat_draw, clipped_sums, clipping_only, images

SHAPE = (2, 7, 7)


def _images(n: int, seed: int = 0, shape: tuple[int, ...] = SHAPE) -> tuple[np.ndarray, np.ndarray]:
    return images(n, seed, shape)


def _net(conv: dict[str, Any], *, relu_first: bool = False, shape: tuple[int, ...] = SHAPE) -> nn.Module:
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Unflatten(1, shape)]
    if relu_first:
        layers.append(nn.ReLU())  # straight on the caller's data: must not write into it
    layers += [
        nn.Conv2d(shape[0], 4, **conv),
        nn.GroupNorm(2, 4),
        nn.ReLU(),
        nn.Conv2d(4, 6, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(24, 3),
    ]
    return nn.Sequential(*layers)


def _step(
    model: nn.Module, *, sigma: float, clip: float, batch: int, generator: Any = None
) -> FusedSequentialStep:
    return FusedSequentialStep(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        noise_multiplier=sigma,
        max_grad_norm=clip,
        expected_batch_size=batch,
        generator=generator,
    )


CONVS = {
    "3x3 pad 1": {"kernel_size": 3, "padding": 1},
    "stride 2": {"kernel_size": 3, "stride": 2},
    "dilation 2, same": {"kernel_size": 3, "dilation": 2, "padding": "same"},
    "no bias": {"kernel_size": 3, "padding": 1, "bias": False},
}


@pytest.mark.parametrize("relu_first", [False, True], ids=["conv-first", "relu-first"])
@pytest.mark.parametrize("conv", list(CONVS.values()), ids=list(CONVS))
def test_gradient_is_the_clipped_sum_of_the_microbatch_reference(
    conv: dict[str, Any], relu_first: bool
) -> None:
    x, y = _images(37)
    clip, batch = 0.5, 40
    reference = clipped_sums(_net(conv, relu_first=relu_first), x, y, clip)
    model = _net(conv, relu_first=relu_first)
    step = _step(model, sigma=0.0, clip=clip, batch=batch)
    data = torch.from_numpy(x)
    kept = data.clone()
    loss = step.criterion(step(data), torch.from_numpy(y))
    expected_loss = nn.functional.cross_entropy(_net(conv, relu_first=relu_first)(data), torch.from_numpy(y))
    assert loss.item() == pytest.approx(float(expected_loss.detach()), rel=1e-5)
    loss.backward()
    assert torch.equal(data, kept)  # the in-place ReLU only ever acts on the step's own tensors
    for name, param in model.named_parameters():
        assert param.grad is not None
        torch.testing.assert_close(param.grad, reference[name] / batch, rtol=1e-4, atol=1e-6, msg=name)


def test_noise_is_one_flat_gaussian_draw_over_the_clipped_sum() -> None:
    """With noise on, each gradient is the noise-free gradient plus exactly one normal_ draw of
    the step's generator over all parameters in optimizer order, N(0, σC/B), fresh every step."""
    x, y = (torch.from_numpy(a) for a in _images(30))
    sigma, clip, batch = 0.7, 0.5, 32
    generator = torch.Generator().manual_seed(3)
    noisy_model, clean_model = _net(CONVS["3x3 pad 1"]), _net(CONVS["3x3 pad 1"])
    noisy = _step(noisy_model, sigma=sigma, clip=clip, batch=batch, generator=generator)
    clean = _step(clean_model, sigma=0.0, clip=clip, batch=batch)
    clean.criterion(clean(x), y).backward()
    assert_noise_is_one_flat_draw(
        lambda: noisy.criterion(noisy(x), y).backward(),
        noisy_model,
        clean_model,
        generator,
        sigma * clip / batch,
    )


def test_empty_batch_gives_noise_only() -> None:
    model = _net(CONVS["3x3 pad 1"])
    step = _step(model, sigma=1.0, clip=1.0, batch=8, generator=torch.Generator().manual_seed(0))
    out = step(torch.zeros(0, int(np.prod(SHAPE))))
    loss = step.criterion(out, torch.zeros(0, dtype=torch.long))
    loss.backward()
    assert all(
        p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0
        for p in model.parameters()
    )


def test_group_norm_backward_input_gradient_matches_autograd() -> None:
    torch.manual_seed(0)
    norm = nn.GroupNorm(3, 6)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 1.5)
        norm.bias.uniform_(-1, 1)
    x = torch.randn(5, 6, 4, 3, requires_grad=True)
    g = torch.randn(5, 6, 4, 3)
    out = norm(x)
    (expected,) = torch.autograd.grad(out, x, g)
    mean, rstd = torch.native_group_norm(x.detach(), None, None, 5, 6, 12, 3, norm.eps)[1:]
    norms, (gw, gb), g_in = group_norm_backward(
        norm, GroupNormInput(x.detach(), mean, rstd), g, input_grad=True
    )
    assert g_in is not None and gw is not None and gb is not None
    torch.testing.assert_close(g_in, expected, rtol=1e-5, atol=1e-6)
    # The per-sample weight and bias gradients: each sample's own autograd gradient.
    for i in range(5):
        norm.zero_grad()
        norm(x.detach()[i : i + 1]).backward(g[i : i + 1])
        assert norm.weight.grad is not None and norm.bias.grad is not None
        torch.testing.assert_close(gw[i], norm.weight.grad, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(gb[i], norm.bias.grad, rtol=1e-4, atol=1e-6)
        assert float(norms[i]) == pytest.approx(
            float((norm.weight.grad**2).sum() + (norm.bias.grad**2).sum()), rel=1e-4
        )


def test_builtin_cnn_trains_fused_like_the_fast_path_and_opacus() -> None:
    """Noise off, momentum on, three epochs of Poisson batches: the fused step, the single-pass
    fast path and Opacus' hooks end with the same weights; auto picks fused."""
    rng = np.random.default_rng(1)
    x = rng.random((240, 64)).astype("float32")
    y = (x[:, :32].sum(1) > x[:, 32:].sum(1)).astype("int64") + (x[:, 0] > 0.8).astype("int64")
    results = {}
    for mode in ("auto", "fast", "hooks"):
        torch.manual_seed(0)
        model = build_architecture("cnn", 64, 3, {"input_shape": [1, 8, 8], "channels": [4, 8]})
        privacy = clipping_only(
            target_epsilon=50.0, delta=1e-3, noise_multiplier=0.0, max_grad_norm=0.3, grad_sample_mode=mode
        )
        results[mode] = Trainer(
            model=model,
            train_data=(x, y),
            privacy=privacy,
            epochs=3,
            batch_size=30,
            lr=0.3,
            momentum=0.9,
            seed=5,
        ).fit()
    assert results["auto"].ledger["privacy"]["grad_sample_mode"] == "fused"
    assert results["auto"].ledger["steps"] == results["hooks"].ledger["steps"]
    for other in ("fast", "hooks"):
        for (name, p), q in zip(results["auto"].model.named_parameters(), results[other].model.parameters()):
            torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-4, atol=1e-5, msg=f"{other}: {name}")


def test_models_the_fused_step_takes_and_leaves() -> None:
    ce = nn.CrossEntropyLoss()
    cnn = build_architecture("cnn", 64, 10, {"input_shape": [1, 8, 8]})
    assert supports_fused_sequential(cnn, ce) and supports_fused(cnn, ce)
    assert not supports_fused_sequential(cnn, nn.CrossEntropyLoss(label_smoothing=0.1))
    assert not supports_fused_sequential(cnn, nn.NLLLoss())
    mlp = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    assert not supports_fused_sequential(mlp, ce) and supports_fused(mlp, ce)  # FusedMLPStep's
    conv = [nn.Unflatten(1, (1, 4, 4)), nn.Conv2d(1, 2, 3)]
    tail = [nn.Flatten(), nn.Linear(8, 2)]
    leaves = {
        "dropout": nn.Sequential(*conv, nn.Dropout(), *tail),
        "max pool": nn.Sequential(*conv, nn.MaxPool2d(1), *tail),
        "in-place ReLU": nn.Sequential(*conv, nn.ReLU(inplace=True), *tail),
        "grouped conv": nn.Sequential(nn.Unflatten(1, (2, 4, 4)), nn.Conv2d(2, 2, 3, groups=2), *tail),
        "reflect padding": nn.Sequential(
            nn.Unflatten(1, (1, 4, 4)),
            nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"),
            nn.Flatten(),
            nn.Linear(32, 2),
        ),
        "plain GroupNorm": nn.Sequential(*conv, nn.GroupNorm(1, 2, affine=False), *tail),
    }
    for name, model in leaves.items():
        assert not supports_fused_sequential(model, ce), name
    assert supports_fused_sequential(nn.Sequential(*conv, *tail), ce)
    conv[1].bias.requires_grad_(False)  # a frozen parameter: the fast path's case
    assert not supports_fused_sequential(nn.Sequential(*conv, *tail), ce)


def test_padding_rows_change_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches run padded to a multiple of BATCH_MULTIPLE rows (oneDNN kernel shapes); with no
    padding the same step gives the same loss and gradients to float rounding."""
    from governance.train.clipping import sequential as fused_sequential

    x, y = (torch.from_numpy(a) for a in _images(37))
    results = []
    for multiple in (1, fused_sequential.BATCH_MULTIPLE, 16):
        monkeypatch.setattr(fused_sequential, "BATCH_MULTIPLE", multiple)
        model = _net(CONVS["3x3 pad 1"])
        step = _step(model, sigma=0.0, clip=0.5, batch=40)
        out = step(x)
        assert out.shape == (37, 3)
        loss = step.criterion(out, y)
        loss.backward()
        results.append((loss.item(), [p.grad.clone() for p in model.parameters() if p.grad is not None]))
    for loss_value, grads in results[1:]:
        assert loss_value == pytest.approx(results[0][0], rel=1e-6)
        for a, b in zip(grads, results[0][1]):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    ("size", "output_size"),
    [
        ((8, 8), 2),
        ((8, 8), (4, 1)),
        ((6, 9), (None, 3)),
        ((12, 6), (2, 3)),
        ((9, 9), 3),
        ((8, 8), 1),
        ((7, 7), 2),
        ((5, 8), (2, 4)),
    ],
    ids=[
        "8x8 to 2",
        "8x8 to 4x1",
        "6x9 to 6x3",
        "12x6 to 2x3",
        "9x9 to 3",
        "global",
        "7x7 to 2",
        "5x8 to 2x4",
    ],
)
def test_pooling_is_adaptive_pooling(size: tuple[int, int], output_size: Any) -> None:
    """The fused step's pooling gives exactly PyTorch's adaptive pooling and its gradient, bit for
    bit (average pooling where that rounds identically, the adaptive kernels elsewhere)."""
    from governance.train.clipping.sequential import OPS, _ops

    _ops()
    layer = nn.AdaptiveAvgPool2d(output_size)
    op = OPS[nn.AdaptiveAvgPool2d](layer)
    torch.manual_seed(0)
    x = (torch.randn(5, 3, *size) * 3 + 1).requires_grad_()
    expected = layer(x)
    got = op.forward(x.detach())
    assert torch.equal(got, expected)
    g = torch.randn_like(expected)
    (expected_grad,) = torch.autograd.grad(expected, x, g)
    assert torch.equal(op.backward(g, torch.zeros(5), True), expected_grad)
