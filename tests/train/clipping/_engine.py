"""One DP step through whatever engine the Trainer picks, and each sample's share of it.

The trainer's own engine construction (``Trainer._make_private``) wraps the model with σ = 0 and
SGD at lr 1, so one step moves the trainable parameters by exactly ``-Σ_i clip(∇ℓ_i) / B``. Each
sample's contribution is the step of the whole batch minus the step without that sample. The
reference is the same sum computed one sample at a time in float64 with plain autograd.
Everything runs in float64, so the comparison can be tight (1e-6 relative).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from governance.train.dp import PrivacySettings
from governance.train.sampling import TensorRows
from governance.train.trainer import Trainer


@dataclass
class Engine:
    trainer: Trainer
    model: nn.Module  # the (possibly fixed) module the engine trains
    dp_model: Any
    optimizer: Any
    criterion: Any
    proof: Any  # EngineProof (round 2) or the mode string (round 1)
    batch: int  # the expected batch size B the step divides by
    params: list[torch.Tensor]  # the parameters trainable before the engine was made

    def step(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``Σ_i clip(∇ℓ_i)`` over the rows of ``(x, y)``, flattened over the trainable parameters;
        the parameters are restored afterwards."""
        params = self.params
        before = [p.detach().clone() for p in params]
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.criterion(self.dp_model(x), y)
        loss.backward()
        self.optimizer.step()
        with torch.no_grad():
            moved = torch.cat([(b - p.detach()).reshape(-1) for p, b in zip(params, before)])
            for p, b in zip(params, before):
                p.copy_(b)
        return moved * self.batch

    def close(self) -> None:
        release = getattr(self.trainer, "_release_engine", None)
        if release is not None:
            release(self.dp_model, self.criterion)
        else:  # round 1
            Trainer._detach(self.dp_model)  # type: ignore[attr-defined]
            if hasattr(self.criterion, "close"):
                self.criterion.close()


def private_run(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, clip: float, mode: str = "auto", **trainer: Any
) -> tuple[Trainer, nn.Module, Any, list[torch.Tensor]]:
    """The Trainer on ``(x, y)`` (one batch of all rows, σ = 0, SGD at lr 1; ``trainer``: more of its
    settings) and the run its engine construction makes: (trainer, the fixed module, the run, the
    parameters trainable before the engine was made)."""
    from governance.train.dp import fix_module
    from governance.train.trainer import _Plain

    n = int(x.shape[0])
    privacy = PrivacySettings(target_epsilon=10.0, delta=1e-5, max_grad_norm=clip, grad_sample_mode=mode)
    made = Trainer(
        model=model,
        train_data=TensorRows(x, y),
        privacy=privacy,
        epochs=1,
        batch_size=n,
        lr=1.0,
        seed=0,
        num_threads=None,
        **trainer,
    )
    model, _ = fix_module(model)
    made.model = model
    plain = _Plain(
        model=model,
        optimizer=made._make_optimizer(model),
        loader=made._make_loader(torch.Generator().manual_seed(0)),
        criterion=nn.CrossEntropyLoss(),
        noise_gen=torch.Generator().manual_seed(1),
    )
    params: list[torch.Tensor] = [p for p in model.parameters() if p.requires_grad]
    return made, model, made._make_private(plain, 0.0), params


def make_engine(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, clip: float, mode: str = "auto"
) -> Engine:
    """The engine the Trainer would train ``model`` with on ``(x, y)`` (one batch of all rows)."""
    trainer, model, run, params = private_run(model, x, y, clip=clip, mode=mode)
    return Engine(trainer, model, run.model, run.optimizer, run.criterion, run.proof, int(x.shape[0]), params)


def reference_contributions(model: nn.Module, x: torch.Tensor, y: torch.Tensor, clip: float) -> torch.Tensor:
    """``clip(∇ℓ_i)`` for each row, one sample at a time (float64 copy, plain autograd), over the
    trainable parameters: shape ``(n, trainable parameters)``."""
    ref = copy.deepcopy(model).double()
    params = [p for p in ref.parameters() if p.requires_grad]
    rows = []
    for i in range(int(x.shape[0])):
        ref.zero_grad(set_to_none=True)
        out = ref(x[i : i + 1].double() if x.is_floating_point() else x[i : i + 1])
        loss = nn.functional.cross_entropy(out, y[i : i + 1])
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        flat = torch.cat(
            [(torch.zeros_like(p) if g is None else g).reshape(-1) for p, g in zip(params, grads)]
        )
        factor = min(1.0, clip / (float(flat.norm()) + 1e-6))
        rows.append(flat * factor)
    return torch.stack(rows)


def engine_contributions(engine: Engine, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Each row's contribution to the engine's clipped sum: the whole batch's step minus the step
    of the batch without that row; shape ``(n, trainable parameters)``."""
    n = int(x.shape[0])
    whole = engine.step(x, y)
    rows = []
    for i in range(n):
        keep = torch.tensor([j for j in range(n) if j != i], dtype=torch.long)
        rows.append(whole - engine.step(x.index_select(0, keep), y.index_select(0, keep)))
    return torch.stack(rows)


def worst_excess(contributions: torch.Tensor, clip: float) -> float:
    """The largest per-sample contribution norm, in units of C."""
    return float(contributions.norm(dim=1).max()) / clip


def assert_matches_reference(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, clip: float, mode: str = "auto", rtol: float = 1e-6
) -> Engine:
    """Every sample's contribution is at most C and equals the one-sample reference (1e-6 rel)."""
    reference = reference_contributions(model, x, y, clip)
    engine = make_engine(model, x, y, clip=clip, mode=mode)
    try:
        got = engine_contributions(engine, x, y)
    finally:
        engine.close()
    norms = got.norm(dim=1)
    assert float(norms.max()) <= clip * (1 + rtol), (
        f"a sample moved the clipped sum by {float(norms.max()) / clip:.3g}×C ({engine.proof})"
    )
    error = (got - reference).norm(dim=1)
    allowed = rtol * reference.norm(dim=1) + 1e-9 * clip
    worst = int(torch.argmax(error - allowed))
    assert bool((error <= allowed).all()), (
        f"sample {worst}: contribution differs from the one-sample reference by "
        f"{float(error[worst]):.3g} (norm {float(reference[worst].norm()):.3g}; engine {engine.proof})"
    )
    return engine
