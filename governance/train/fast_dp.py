"""A fast DP-SGD step for models whose trainable parameters sit in ``nn.Linear`` (and ``nn.LayerNorm``).

Why this exists: on CPU, Opacus' per-step bookkeeping (module hooks, per-sample gradient
tensors or ghost clipping's second backward pass, optimizer wrappers) costs several
milliseconds, 6-10x the whole non-private step of a small MLP, far from the 1.25x we promise.
For a ``Linear`` layer with 2-D input ``a`` and output gradient ``g`` the per-sample gradient is
the outer product ``g_i a_iᵀ``, so its squared norm is ``‖g_i‖²‖a_i‖²`` and the sum of clipped
per-sample gradients is ``(c ⊙ g)ᵀ a``: one backward pass to the layer outputs plus one matrix
product per layer, the cost of an ordinary backward pass. That is ghost clipping (Li et al.
2022, Bu et al. 2023) done in one pass instead of two.

Sequence inputs (a transformer's top layers, fine-tuned on text): a ``Linear`` applied to
``a`` of shape ``(n, T, d)`` has the per-sample gradient ``Σ_t g_t a_tᵀ``, whose squared norm is
``Σ_{t,s} (a_t·a_s)(g_t·g_s)`` (two T×T Gram matrices: the ghost norm) or, when that is dearer,
the norm of the materialised ``(n, p, d)`` gradient; the clipped sum is still one matrix product.
A ``LayerNorm``'s per-sample gradients are ``Σ_t g_t ⊙ x̂_t`` and ``Σ_t g_t`` (``x̂`` its
normalised input), small enough to materialise. Frozen layers (no trainable parameter) are
ignored. Measured on all-MiniLM-L6-v2 with its top two layers trained (CPU): Opacus' ghost
clipping took 1.57x the non-private step, this path about 1.1x (benchmarks/bench_text.py).

Everything else stays Opacus': the Poisson data loader, the accountant, and the noise, drawn
exactly as ``DPOptimizer`` draws it (``N(0, σC)`` per parameter in parameter order from the
same generator, then divided by the expected batch size). The tests keep Opacus as the
oracle: with the same seed a run here and a run through Opacus' hooks produce the same weights.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["FastLinearClipping", "FastOptimizer", "supports_fast_clipping"]


def _clippable(module: nn.Module) -> bool:
    """Layers this module clips: ``Linear``, and ``LayerNorm`` with an elementwise affine."""
    from torch import nn

    return type(module) is nn.Linear or (type(module) is nn.LayerNorm and module.elementwise_affine)


def supports_fast_clipping(model: nn.Module) -> bool:
    """True when every trainable parameter belongs to an ``nn.Linear`` (or ``nn.LayerNorm``) and
    none is shared; at least one trainable ``Linear`` is required."""
    from torch import nn

    seen: set[int] = set()
    has_linear = False
    for module in model.modules():
        own = [p for p in module.parameters(recurse=False) if p.requires_grad]
        if not own:
            continue
        if not _clippable(module):
            return False
        has_linear = has_linear or type(module) is nn.Linear
        for p in own:
            if id(p) in seen:
                return False
            seen.add(id(p))
    return has_linear


class _Loss:
    """The per-sample losses of one batch; ``backward()`` writes clipped, noised gradients."""

    def __init__(self, clipping: FastLinearClipping, losses: torch.Tensor) -> None:
        self.clipping = clipping
        self.losses = losses

    def item(self) -> float:
        return float(self.losses.detach().mean()) if self.losses.numel() else float("nan")

    def backward(self) -> None:
        self.clipping.backward(self.losses)


class FastLinearClipping:
    """Criterion wrapper: ``loss = clip(out, y); loss.backward()`` does a DP-SGD gradient.

    Parameters
    ----------
    module
        A model accepted by :func:`supports_fast_clipping`; each trainable ``Linear`` /
        ``LayerNorm`` must be called once per forward pass, batch first.
    optimizer
        The plain optimizer; its parameter order is the order noise is drawn in.
    criterion
        A loss with ``reduction`` (e.g. ``CrossEntropyLoss``); per-sample values are used.
    noise_multiplier, max_grad_norm, expected_batch_size, generator
        As in Opacus' ``DPOptimizer``.
    """

    def __init__(
        self,
        module: nn.Module,
        optimizer: torch.optim.Optimizer,
        criterion: Any,
        *,
        noise_multiplier: float,
        max_grad_norm: float,
        expected_batch_size: int,
        generator: torch.Generator | None,
    ) -> None:
        self.criterion = criterion
        self.noise_multiplier = float(noise_multiplier)
        self.max_grad_norm = float(max_grad_norm)
        self.expected_batch_size = max(1, int(expected_batch_size))
        self.generator = generator
        self.params = [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]
        # Only layers with trainable parameters: frozen ones (a fine-tuned encoder's lower layers)
        # need no per-sample gradients and do not record.
        self.layers = [
            m
            for m in module.modules()
            if _clippable(m) and any(p.requires_grad for p in m.parameters(recurse=False))
        ]
        self._records: list[tuple[nn.Module, torch.Tensor, torch.Tensor]] = []
        self._handles = [layer.register_forward_hook(self._record) for layer in self.layers]

    def _record(self, layer: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if layer.training and output.requires_grad:
            x = inputs[0].detach()
            if type(layer).__name__ == "LayerNorm":
                import torch.nn.functional as F

                # The normalised input x̂: the LayerNorm's weight gradient is g ⊙ x̂.
                norm: Any = layer
                x = F.layer_norm(x, norm.normalized_shape, None, None, norm.eps)
            self._records.append((layer, x, output))

    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> _Loss:
        old = self.criterion.reduction
        self.criterion.reduction = "none"
        try:
            losses = self.criterion(output, target)
        finally:
            self.criterion.reduction = old
        return _Loss(self, losses)

    def backward(self, losses: torch.Tensor) -> None:
        import torch
        from torch import nn

        records, self._records = self._records, []
        if len(records) != len(self.layers):
            raise RuntimeError("fast clipping needs each trainable Linear/LayerNorm called once per forward")
        outputs = [out for _, _, out in records]
        grads = (
            torch.autograd.grad(losses.sum(), outputs)
            if losses.numel()
            else [torch.zeros_like(o) for o in outputs]
        )
        batch = losses.shape[0]
        norms_sq = torch.zeros(batch, device=losses.device, dtype=losses.dtype)
        sequence: dict[int, tuple[torch.Tensor, ...]] = {}
        for k, ((layer, a, _), g) in enumerate(zip(records, grads)):
            if type(layer) is not nn.Linear:
                gw, gb = _layer_norm_grads(layer, a, g)  # type: ignore[arg-type]
                sequence[k] = (gw, gb)
                norms_sq += (gw * gw).sum(dim=1) + (gb * gb).sum(dim=1)
            elif a.dim() == 2:
                a_sq = torch.linalg.vecdot(a, a)
                if layer.bias is not None and layer.bias.requires_grad:
                    a_sq += 1.0  # ‖[a_i, 1]‖²: the bias gradient is g_i itself
                norms_sq += a_sq.mul_(torch.linalg.vecdot(g, g))
            else:
                a3, g3 = a.reshape(batch, -1, a.shape[-1]), g.reshape(batch, -1, g.shape[-1])
                sequence[k] = (a3, g3)
                norms_sq += _linear_norm_sq(a3, g3)
                if layer.bias is not None and layer.bias.requires_grad:
                    norms_sq += g3.sum(dim=1).pow(2).sum(dim=1)
        # The same clipping factor as Opacus' DPOptimizer.clip_and_accumulate, with the division
        # by the expected batch size folded in (it scales clipped sums and noise alike).
        scale = 1.0 / self.expected_batch_size
        coef = (self.max_grad_norm / (norms_sq.sqrt() + 1e-6)).clamp(max=1.0).mul_(scale)
        # Each gradient starts as its noise and the clipped sum is accumulated into it in place
        # (addmm_ for 2-D Linear weights): no per-parameter temporaries, sums, divisions or views;
        # on CPU a small MLP's step is dominated by per-op overhead, and this measured 5-8 % off
        # the DP step of the benchmark MLP (together with vecdot norms above). The noise is
        # drawn per parameter in parameter order with normal_, the draws DPOptimizer makes
        # (torch.normal(0, σC, shape)), only scaled by 1/B first; the Opacus-oracle test holds.
        std = self.noise_multiplier * self.max_grad_norm * scale
        noisy: dict[int, torch.Tensor] = {}
        for p in self.params:
            noisy[id(p)] = torch.empty_like(p).normal_(0, std, generator=self.generator)
        summed: dict[int, torch.Tensor] = {}
        for k, ((layer, a, _), g) in enumerate(zip(records, grads)):
            if type(layer) is not nn.Linear:
                gw, gb = sequence[k]
                summed[id(layer.weight)] = (gw * coef.unsqueeze(1)).sum(dim=0)  # flat
                summed[id(layer.bias)] = (gb * coef.unsqueeze(1)).sum(dim=0)
                continue
            if a.dim() != 2:
                a3, g3 = sequence[k]
                a, g = a3.reshape(-1, a3.shape[-1]), (g3 * coef.view(-1, 1, 1)).reshape(-1, g3.shape[-1])
            else:
                g = g * coef.unsqueeze(1)
            weight = noisy.get(id(layer.weight))
            if weight is not None:
                weight.addmm_(g.t(), a)
            if layer.bias is not None:
                summed[id(layer.bias)] = g.sum(dim=0)
        for p in self.params:
            grad = noisy[id(p)]
            clipped = summed.get(id(p))
            if clipped is not None:
                grad.add_(clipped.view_as(grad))
            p.grad = grad

    def close(self) -> None:
        """Remove the forward hooks: the module is a plain ``nn.Module`` again."""
        for handle in self._handles:
            handle.remove()
        self._handles = []


def _linear_norm_sq(a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Squared norms of the per-sample weight gradients ``Σ_t g_t a_tᵀ`` of a Linear on sequences.

    Ghost norm (two T×T Gram matrices, cost n·T²·(d+p)) unless materialising the (n, p, d)
    gradients is cheaper (cost n·T·d·p), i.e. for long sequences through narrow layers.
    """
    import torch

    _, t, d = a.shape
    p = g.shape[-1]
    if t * (d + p) <= d * p:
        return ((a @ a.transpose(1, 2)) * (g @ g.transpose(1, 2))).sum(dim=(1, 2))
    return torch.einsum("btp,btd->bpd", g, a).pow(2).sum(dim=(1, 2))


def _layer_norm_grads(
    layer: nn.LayerNorm, xhat: torch.Tensor, g: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample (weight, bias) gradients of a LayerNorm, flattened: ``(n, numel)`` each."""
    batch = g.shape[0]
    shape = tuple(layer.normalized_shape)
    gw = (g * xhat).reshape(batch, -1, *shape).sum(dim=1).reshape(batch, -1)
    gb = g.reshape(batch, -1, *shape).sum(dim=1).reshape(batch, -1)
    return gw, gb


class FastOptimizer:
    """The plain optimizer plus one accountant step per ``step()``."""

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        accountant: Any,
        *,
        noise_multiplier: float,
        sample_rate: float,
    ):
        self.original_optimizer = optimizer
        self.accountant = accountant
        self.noise_multiplier = noise_multiplier
        self.sample_rate = sample_rate

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.original_optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        self.original_optimizer.step()
        self.accountant.step(noise_multiplier=self.noise_multiplier, sample_rate=self.sample_rate)

    def state_dict(self) -> dict[str, Any]:
        return self.original_optimizer.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.original_optimizer.load_state_dict(state)
