"""Per-sample weights through the trainer: a weighted loss without DP, ``w_i·clip(g_i)`` with it.

Without privacy a weight scales its sample's loss: the batch loss is ``Σ_i w_i ℓ_i / n``.

Under DP the weights are first divided by their maximum (so ``0 ≤ w_i ≤ 1``) and applied *after*
the per-sample clipping: each sample adds ``w_i·clip(g_i)`` to the clipped sum, a vector of norm at
most ``w_i·C ≤ C``. The sum's sensitivity to one sample is therefore still ``C``, the noise
``N(0, σ²C²)`` is unchanged, and so is the accounting: the ε of a weighted run equals the
unweighted run's with the same σ, sample rate and steps. (Weighting the loss before clipping would
give ``clip(w_i g_i)``, which also stays within ``C`` but shrinks or ignores the weight wherever the
clipping bites; after clipping the weight always acts.) What the ε treats as fixed is the weights
themselves: where they are computed from the training rows (Kamiran-Calders weights are a function
of the group × label counts), that computation is outside the guarantee and the caller names it in
``privacy.scope.outside`` (:class:`SampleWeights`).

Every engine the trainer may pick applies the weight after its clipping:

========================  =========================================================================
``fused-mlp``,            the hand-written steps multiply their clipping factors ``c_i`` by ``w_i``
``fused-sequential``      (:class:`governance.train.clipping.linear.FusedStep`)
``fast``                  :class:`governance.train.clipping.linear.FastLinearClipping` likewise
``opacus-ghost``          Opacus' two-pass loss, its clipping coefficient times ``w_i`` in the
                          second pass (:class:`_GhostWeightedLoss`)
``opacus-hooks`` (and     Opacus' ``DPOptimizer.clip_and_accumulate`` with the weighted factor
``functorch``, ``ew``)    (:class:`_WeightedClipping`); an optimizer that clips otherwise is refused
========================  =========================================================================

``tests/train/test_sample_weights.py`` holds every engine to the float64 one-sample-at-a-time
reference: each sample's contribution is at most ``C`` and equals ``w_i`` times its reference
clipped gradient to 1e-6 relative.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = ["SCOPE_NOTE", "SampleWeights", "prepare_weights", "weighted_criterion", "weights_ledger"]

#: What ``privacy.scope.sample_weights`` says in the ledger of a weighted DP run.
SCOPE_NOTE = (
    "per-sample weights, divided by their maximum (so each is at most 1), multiply each sample's "
    "clipped gradient (w_i·clip(g_i), norm at most C): the sensitivity, the noise and the ε are "
    "those of the unweighted run; the weights themselves are treated as fixed numbers"
)
ERR_WEIGHTS = "sample_weights: {what}"


@dataclass(frozen=True)
class SampleWeights:
    """Weights for the training rows (in their order), where they came from, and what their
    computation publishes about the rows outside a DP guarantee (``privacy.scope.outside`` items)."""

    values: np.ndarray
    origin: str
    outside: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)
    #: Extra facts for the ledger (e.g. the reweighing strength and the weight of each cell).
    details: Mapping[str, Any] = field(default_factory=dict)


def prepare_weights(weights: Any, rows: int, *, private: bool) -> torch.Tensor:
    """The weights as a float tensor of ``rows`` values, divided by their maximum under DP.

    Raises
    ------
    ValueError
        Not one finite, non-negative weight per row, or all of them zero.
    """
    import numpy as np
    import torch

    w = torch.as_tensor(np.asarray(weights, dtype=np.float64)).reshape(-1)
    if int(w.numel()) != rows:
        raise ValueError(ERR_WEIGHTS.format(what=f"{int(w.numel())} weights for {rows} training rows"))
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
        raise ValueError(ERR_WEIGHTS.format(what="every weight must be finite and at least 0"))
    top = float(w.max()) if rows else 0.0
    if top <= 0:
        raise ValueError(ERR_WEIGHTS.format(what="at least one weight must be above 0"))
    # float64: the engines cast to their own dtype; the exact ratio survives until then.
    return w / top if private else w


def weights_ledger(weights: torch.Tensor, *, private: bool) -> dict[str, Any]:
    """The ledger's ``sample_weights`` block: how the weights were applied, and their range."""
    return {
        "rows": int(weights.numel()),
        "min": float(weights.min()),
        "max": float(weights.max()),
        "mean": float(weights.double().mean()),
        "normalised_to_max_1": private,
        "applied": "after per-sample clipping: w_i·clip(g_i)" if private else "weighted loss: Σ w_i·ℓ_i / n",
    }


def weighted_criterion(criterion: Any, *, engine: str | None, optimizer: Any) -> Any:
    """A loss callable as ``loss_fn(output, target, weights)`` for the engine that trains.

    ``engine`` is the proof's engine (``privacy.engine``), None for non-private training. Our own
    engines take the weights themselves; Opacus' get the wrappers below.

    Raises
    ------
    ValueError
        An Opacus optimizer whose clipping is not Opacus' flat per-sample clipping.
    """
    from governance.train.clipping.proof import FAST, FUSED_MLP, FUSED_SEQUENTIAL, OPACUS_GHOST

    if engine is None:
        return _WeightedLoss(criterion)
    if engine in (FUSED_MLP, FUSED_SEQUENTIAL, FAST):
        return criterion  # their criterion takes (output, target, weights)
    if engine == OPACUS_GHOST:
        return _GhostWeightedLoss(criterion)
    return _HooksWeightedLoss(criterion, optimizer)


class _WeightedLoss:
    """Non-private: ``Σ_i w_i ℓ_i / n`` with the criterion's per-sample losses."""

    def __init__(self, criterion: Any) -> None:
        self.criterion = criterion

    def __call__(self, output: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        old = self.criterion.reduction
        self.criterion.reduction = "none"
        try:
            losses = self.criterion(output, target)
        finally:
            self.criterion.reduction = old
        return (losses * weights.to(losses.dtype)).sum() / max(1, int(losses.shape[0]))


class _GhostWeightedLoss:
    """Opacus' ghost clipping loss (``DPLossFastGradientClipping``) with the weights applied to
    its clipping coefficients, in Opacus' own two-pass ``backward``."""

    def __init__(self, dp_loss: Any) -> None:
        self.dp_loss = dp_loss

    def __call__(self, output: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> _GhostWeighted:
        return _GhostWeighted(self.dp_loss(output, target), weights)


class _GhostWeighted:
    def __init__(self, loss: Any, weights: torch.Tensor) -> None:
        self.loss, self.weights = loss, weights

    def item(self) -> float:
        return float(self.loss.item())

    def backward(self) -> None:
        # The second pass back-propagates Σ_i coef_i ℓ_i with coef_i = min(1, C/(‖g_i‖ + 1e-6));
        # giving it w_i·coef_i makes sample i's share w_i·clip(g_i). Only for this one call.
        module = self.loss.module
        own = module.get_clipping_coef
        weights = self.weights

        def weighted() -> torch.Tensor:
            coef = own()
            return coef * weights.to(device=coef.device, dtype=coef.dtype)

        module.get_clipping_coef = weighted
        try:
            self.loss.backward()
        finally:
            del module.get_clipping_coef


class _HooksWeightedLoss:
    """Opacus' per-sample gradients (hooks, functorch, expanded weights): the loss as usual; the
    weights go to the optimizer, whose clipping applies them (:class:`_WeightedClipping`)."""

    def __init__(self, criterion: Any, optimizer: Any) -> None:
        from opacus.optimizers import DPOptimizer

        cls = type(optimizer)
        if (
            not isinstance(optimizer, DPOptimizer)
            or cls.clip_and_accumulate is not DPOptimizer.clip_and_accumulate
        ):
            raise ValueError(
                f"sample weights need Opacus' flat per-sample clipping; {cls.__name__} clips otherwise"
            )
        if not isinstance(optimizer, _WeightedClipping):
            optimizer.__class__ = type(f"Weighted{cls.__name__}", (_WeightedClipping, cls), {})
        self.criterion, self.optimizer = criterion, optimizer

    def __call__(self, output: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> Any:
        self.optimizer.sample_weights = weights
        return self.criterion(output, target)


class _WeightedClipping:
    """Mixed into an Opacus ``DPOptimizer``: ``clip_and_accumulate`` adds ``Σ_i w_i·clip(g_i)``.

    Each per-sample gradient is scaled by ``w_i·min(1, C/(‖g_i‖ + 1e-6))`` (Opacus' own clipping
    factor, computed the way Opacus computes it) and Opacus' accumulation then runs with no further
    clipping (``max_grad_norm`` infinite for that call only; the noise reads it afterwards).
    """

    sample_weights: torch.Tensor | None = None
    max_grad_norm: float

    def clip_and_accumulate(self) -> None:
        import torch

        weights, self.sample_weights = self.sample_weights, None
        if weights is None:
            raise RuntimeError("a weighted DP step needs the batch's weights (pass them to the loss)")
        samples: list[torch.Tensor] = self.grad_samples  # type: ignore[attr-defined]
        if samples and len(samples[0]):
            norms = torch.stack([g.reshape(len(g), -1).norm(2, dim=-1) for g in samples], dim=1).norm(
                2, dim=1
            )
            factor = (self.max_grad_norm / (norms + 1e-6)).clamp(max=1.0)
            factor = factor * weights.to(device=factor.device, dtype=factor.dtype)
            for p in self.params:  # type: ignore[attr-defined]
                sample = p.grad_sample
                if not isinstance(sample, torch.Tensor):
                    raise RuntimeError("sample weights need one batch of per-sample gradients per step")
                p.grad_sample = sample * factor.to(sample).view(-1, *([1] * (sample.dim() - 1)))
        bound = self.max_grad_norm
        self.max_grad_norm = math.inf
        try:
            super().clip_and_accumulate()  # type: ignore[misc]
        finally:
            self.max_grad_norm = bound
