"""The plain-torch oracle of every DP clipping test: one sample at a time, clipped, summed."""

from __future__ import annotations

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
