"""The plain-torch oracles of the DP clipping tests: one sample at a time, clipped, summed; and the
noise a fused step draws, replayed from its generator."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn


def clipped_sums(model: nn.Module, x: np.ndarray, y: np.ndarray, clip: float) -> dict[str, torch.Tensor]:
    """Σ_i clip(∇ℓ_i): each sample's gradient on its own, clipped to ``clip`` (plain torch)."""
    params = dict(model.named_parameters())
    summed = {k: torch.zeros_like(p) for k, p in params.items()}
    for i in range(len(x)):
        model.zero_grad()
        out = model(torch.from_numpy(x[i : i + 1]))
        nn.functional.cross_entropy(out, torch.from_numpy(y[i : i + 1])).backward()
        norm = torch.sqrt(sum((p.grad**2).sum() for p in params.values()))
        factor = min(1.0, clip / (float(norm) + 1e-6))
        for k, p in params.items():
            summed[k] += p.grad * factor
    return summed


def images(n: int, seed: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Flattened random images, scaled so that most samples get clipped, and 3 classes."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, int(np.prod(shape)))).astype("float32") * 3
    y = (x[:, 0] + x[:, 5] > 0).astype("int64") + (x[:, 9] > 1).astype("int64")
    return x, y


def assert_noise_is_one_flat_draw(
    step: Callable[[], None],
    noisy: nn.Module,
    clean: nn.Module,
    generator: torch.Generator,
    std: float,
    steps: int = 2,
) -> torch.Tensor:
    """Run ``step`` (one fused DP step of ``noisy``) ``steps`` times and check that each gradient
    is ``clean``'s (the same step without noise) plus exactly one ``normal_(0, std)`` draw of
    ``generator`` over all parameters in order, fresh every step; returns the draws."""
    sizes = [p.numel() for p in noisy.parameters()]
    draws = []
    for _ in range(steps):
        state = generator.get_state()
        step()
        replay = torch.Generator().set_state(state)
        noise = torch.empty(sum(sizes)).normal_(0, std, generator=replay)
        for p, q, n in zip(noisy.parameters(), clean.parameters(), noise.split(sizes)):
            assert p.grad is not None and q.grad is not None
            torch.testing.assert_close(p.grad, q.grad + n.view_as(p), rtol=0, atol=1e-6)
        draws.append(noise)
    assert not torch.equal(draws[0], draws[1])
    return torch.cat(draws)


def clipping_only(**settings: object) -> object:
    """PrivacySettings with σ = 0 and shuffled (not Poisson) batches: clipping alone, the
    deterministic configuration the clipping oracles compare. The public API refuses both
    (no privacy, and an ε that would not hold), so the test sets them past its validation."""
    from governance.train.dp import PrivacySettings

    settings = {k: v for k, v in settings.items() if k not in ("noise_multiplier", "poisson_sampling")}
    privacy = PrivacySettings(**settings)  # type: ignore[arg-type]
    object.__setattr__(privacy, "noise_multiplier", 0.0)
    object.__setattr__(privacy, "poisson_sampling", False)
    return privacy
