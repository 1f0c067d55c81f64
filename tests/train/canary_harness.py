"""A small, fast DP run with gradient canaries, and the broken DP-SGD variants of the fault-injection
tests (issue 18). Test-only: nothing here is reachable from the command line."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from governance.audit.canary_bound import CanaryBound, one_run_bound
from governance.canary_options import CanaryOptions
from governance.train.trainer import PrivacySettings, Trainer

ROWS, FEATURES, HIDDEN, STEPS, DELTA = 256, 32, 32, 10, 1e-5
CANARIES = 1000
#: The sequence-first model's tokens; the reused module's calls.
TOKENS, CALLS = 64, 16


@dataclass(frozen=True)
class CanaryRun:
    bound: CanaryBound
    claimed: float
    engine: str
    ledger: dict[str, Any]


def data(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(ROWS, FEATURES, generator=g)
    return x, (x[:, 0] + 0.5 * x[:, 1] > 0).long()


def mlp() -> nn.Module:
    return nn.Sequential(nn.Linear(FEATURES, HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 2))


class ReusedModule(nn.Module):
    """One Linear called CALLS times per forward, and CALLS − 1 trainable layers never called: the
    call count equals the layer count, so the old fast path's count guard passed (issue 11)."""

    def __init__(self) -> None:
        super().__init__()
        self.shared = nn.Linear(FEATURES, FEATURES)
        self.head = nn.Linear(FEATURES, 2)
        self.unused = nn.ModuleList(nn.Linear(1, 1) for _ in range(CALLS - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(CALLS):
            x = torch.tanh(self.shared(x))
        return self.head(x)


class SequenceFirst(nn.Module):
    """A Linear fed (T, n, d): the old fast path reshaped it as if batch-first (issue 11)."""

    def __init__(self) -> None:
        super().__init__()
        self.token = nn.Linear(FEATURES // 2, 64)
        self.head = nn.Linear(64, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        tokens = x.repeat(1, TOKENS // 2).reshape(n, TOKENS, FEATURES // 2).transpose(0, 1)  # (T, n, d)
        return self.head(torch.relu(self.token(tokens)).mean(dim=0))


def run(
    seed: int,
    epsilon: float,
    *,
    model: nn.Module | None = None,
    mode: str = "auto",
    reproducible_noise: bool = False,
    count: int = CANARIES,
) -> CanaryRun:
    """A full-batch (q = 1) DP run of STEPS steps at ``epsilon`` with ``count`` gradient canaries."""
    torch.manual_seed(seed)
    x, y = data(seed)
    trainer = Trainer(
        model=model if model is not None else mlp(),
        train_data=(x, y),
        privacy=PrivacySettings(
            target_epsilon=epsilon,
            delta=DELTA,
            max_grad_norm=1.0,
            grad_sample_mode=mode,
            reproducible_noise=reproducible_noise,
        ),
        epochs=STEPS,
        batch_size=ROWS,
        lr=0.1,
        seed=seed,
        canaries=CanaryOptions(count=count),
    )
    result = trainer.fit()
    privacy = dict(result.ledger["privacy"])
    canaries = privacy["canaries"]
    bound = one_run_bound(canaries["scores"], canaries["included"], delta=DELTA)
    return CanaryRun(bound, float(privacy["epsilon"]), privacy["engine"], dict(result.ledger))


# -- faults ----------------------------------------------------------------------------------


@contextlib.contextmanager
def noise_scaled(factor: float) -> Iterator[None]:
    """The fused step draws its noise at ``factor`` × σC/B (0: no noise); the accountant is not told."""
    from governance.train.clipping.linear import FusedStep

    original = FusedStep._noise

    def noise(self: FusedStep) -> dict[int, torch.Tensor]:
        flat, noisy = self._step_buffers()
        std = factor * self.noise_multiplier * self.max_grad_norm / self.expected_batch_size
        if std:
            flat.normal_(0, std, generator=self.generator)
        else:
            flat.zero_()
        return noisy

    FusedStep._noise = noise  # type: ignore[method-assign]
    try:
        yield
    finally:
        FusedStep._noise = original  # type: ignore[method-assign]


@contextlib.contextmanager
def clipping_off() -> Iterator[None]:
    """The fused step's clipping factor is 1/B for every row: nothing is clipped."""
    from governance.train.clipping import linear

    original = linear.clip_factors
    linear.clip_factors = lambda norms, c, scale: norms.fill_(scale)  # type: ignore[assignment]
    try:
        yield
    finally:
        linear.clip_factors = original


@contextlib.contextmanager
def unguarded_fast_path() -> Iterator[None]:
    """Round 1's engine choice: the fast path for any model, batch-first assumed, no proof."""
    from governance.train import trainer
    from governance.train.clipping.proof import FAST, EngineProof

    original = trainer.Trainer._prove_engine

    def admit(self: Any, model: nn.Module, criterion: Any) -> EngineProof:
        return EngineProof(engine=FAST, batch_first=True, checks={"unguarded (test fault)": True})

    trainer.Trainer._prove_engine = admit  # type: ignore[method-assign]
    try:
        yield
    finally:
        trainer.Trainer._prove_engine = original  # type: ignore[method-assign]


def replayed_noise_scores(run_: CanaryRun, seed: int, model: nn.Module) -> np.ndarray:
    """Noise from a known seed: the auditor regenerates every step's noise draw of the fused step
    (one normal_ over the flat parameter buffer per step, generator seeded ``seed + 1``) and
    subtracts it from the canary scores."""
    canaries = run_.ledger["privacy"]["canaries"]
    privacy = run_.ledger["privacy"]
    params = [p for p in model.parameters() if p.requires_grad]
    layer = dict(model.named_modules())[canaries["layer"]]
    offset = 0
    for p in params:
        if p is layer.weight:
            break
        offset += p.numel()
    rows_expected = int(ROWS * privacy["sample_rate"])
    std = privacy["noise_multiplier"] * privacy["max_grad_norm"] / rows_expected
    total = sum(p.numel() for p in params)
    generator = torch.Generator().manual_seed(seed + 1)
    noise = torch.zeros(layer.weight.numel(), dtype=torch.float64)
    for _ in range(int(privacy["steps"])):
        flat = torch.empty(total).normal_(0, std, generator=generator)
        noise += flat[offset : offset + layer.weight.numel()].double()
    return noise.numpy() / (privacy["max_grad_norm"] / rows_expected)
