"""A fast DP-SGD step for models whose trainable parameters sit in ``nn.Linear``, ``nn.LayerNorm``,
``nn.Conv2d`` (one group, zero padding) and ``nn.GroupNorm`` layers; the convolution and
GroupNorm per-sample math lives in :mod:`governance.train.clipping.conv`.

Why this exists: on CPU, Opacus' per-step bookkeeping (module hooks, per-sample gradient
tensors or ghost clipping's second backward pass, optimizer wrappers) costs several times the
whole non-private step of a small model (figures: docs/PERFORMANCE.md). For a ``Linear`` layer with 2-D input ``a`` and output gradient ``g`` the per-sample gradient is
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
ignored; a partly frozen layer's norm counts only its trainable tensors.

Everything else stays Opacus': the Poisson data loader, the accountant, and the noise, drawn
exactly as ``DPOptimizer`` draws it (``N(0, σC)`` per parameter in parameter order from the
same generator, then divided by the expected batch size). The tests keep Opacus as the
oracle: with the same seed a run here and a run through Opacus' hooks produce the same weights.
The trainer uses this path only where :mod:`governance.train.clipping.proof` admits it.

Equivalence tests: ``tests/train/test_dp.py`` (one-sample reference, Opacus with noise),
``tests/train/clipping/test_proof.py`` (partly frozen layers, the leaks the proof closes) and
``tests/train/clipping/test_generated_models.py`` (generated models, float64 reference).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = [
    "FastLinearClipping",
    "FastOptimizer",
    "FusedMLPStep",
    "FusedStep",
    "add_linear_clipped",
    "clip_factors",
    "clippable",
    "plain_cross_entropy",
    "supports_fast_clipping",
    "supports_fused_mlp",
]


def clippable(module: nn.Module) -> bool:
    """Layers this module clips: ``Linear``, ``LayerNorm`` with an elementwise affine, and (see
    :mod:`governance.train.clipping.conv`) one-group zero-padded ``Conv2d`` and affine ``GroupNorm``."""
    from torch import nn

    if type(module) is nn.Linear or (type(module) is nn.LayerNorm and module.elementwise_affine):
        return True
    from governance.train.clipping.conv import conv_clippable, group_norm_clippable

    return conv_clippable(module) or group_norm_clippable(module)


def supports_fast_clipping(model: nn.Module) -> bool:
    """True when every trainable parameter belongs to a layer :func:`clippable` accepts and none
    is shared; at least one trainable ``Linear`` or ``Conv2d`` is required."""
    from torch import nn

    seen: set[int] = set()
    has_linear = False
    for module in model.modules():
        own = [p for p in module.parameters(recurse=False) if p.requires_grad]
        if not own:
            continue
        if not clippable(module):
            return False
        has_linear = has_linear or type(module) in (nn.Linear, nn.Conv2d)
        for p in own:
            if id(p) in seen:
                return False
            seen.add(id(p))
    return has_linear


class _Loss:
    """The per-sample losses of one batch; ``backward()`` writes clipped, noised gradients."""

    def __init__(
        self, clipping: FastLinearClipping, losses: torch.Tensor, weights: torch.Tensor | None = None
    ) -> None:
        self.clipping = clipping
        self.losses = losses
        self.weights = weights

    def item(self) -> float:
        return float(self.losses.detach().mean()) if self.losses.numel() else float("nan")

    def backward(self) -> None:
        self.clipping.backward(self.losses, self.weights)


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
        from governance.train.clipping.conv import poisson_capacity

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
            if clippable(m) and any(p.requires_grad for p in m.parameters(recurse=False))
        ]
        self._records: list[tuple[nn.Module, Any, torch.Tensor]] = []
        self._workspaces: dict[int, Any] = {}  # conv layers' buffers, kept between steps (clipping.conv)
        self._capacity = poisson_capacity(self.expected_batch_size)  # their rows (Poisson batches)
        self._handles = [layer.register_forward_hook(self._record) for layer in self.layers]

    def _record(self, layer: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        if layer.training and output.requires_grad:
            x: Any = inputs[0].detach()
            if type(layer).__name__ == "LayerNorm":
                import torch.nn.functional as F

                # The normalised input x̂: the LayerNorm's weight gradient is g ⊙ x̂.
                norm: Any = layer
                x = F.layer_norm(x, norm.normalized_shape, None, None, norm.eps)
            elif type(layer).__name__ == "GroupNorm":
                from governance.train.clipping.conv import group_norm_input

                # Its statistics too: the autograd graph frees them in the backward pass.
                x = group_norm_input(layer, x, output)  # type: ignore[arg-type]
            self._records.append((layer, x, output))

    def __call__(
        self, output: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None
    ) -> _Loss:
        """``weights``: per-sample weights applied after clipping (governance.train.sample_weights)."""
        old = self.criterion.reduction
        self.criterion.reduction = "none"
        try:
            losses = self.criterion(output, target)
        finally:
            self.criterion.reduction = old
        return _Loss(self, losses, weights)

    def backward(self, losses: torch.Tensor, weights: torch.Tensor | None = None) -> None:
        import torch
        from torch import nn

        from governance.train.clipping.conv import add_layer_clipped, layer_grads

        records, self._records = self._records, []
        if len(records) != len(self.layers):
            raise RuntimeError("fast clipping needs each trainable layer called once per forward")
        outputs = [out for _, _, out in records]
        grads = (
            torch.autograd.grad(losses.sum(), outputs)
            if losses.numel()
            else [torch.zeros_like(o) for o in outputs]
        )
        batch = n_real = losses.shape[0]
        canaries = getattr(self, "canaries", None)  # issue 18: canary rows join the records
        if canaries is not None:
            layers = [layer for layer, _, _ in records]
            xs, grads = canaries.extend_records(layers, [x for _, x, _ in records], list(grads), batch)
            records = [(layer, x, out) for (layer, _, out), x in zip(records, xs)]
            batch += canaries.active
        if batch == 0:  # an empty Poisson batch: the step is its noise alone, as DPOptimizer's is
            self._write_noise({})
            return
        norms_sq = torch.zeros(batch, device=losses.device, dtype=losses.dtype)
        sequence: dict[int, Any] = {}
        for k, ((layer, a, _), g) in enumerate(zip(records, grads)):
            if type(layer) in (nn.Conv2d, nn.GroupNorm):
                layer_sq, sequence[k] = layer_grads(layer, a, g, self._workspaces, self._capacity)
                norms_sq += layer_sq
            elif type(layer) is not nn.Linear:
                gw, gb = _layer_norm_grads(layer, a, g)  # type: ignore[arg-type]
                sequence[k] = (gw, gb)
                # Only the trainable tensors count: a frozen one's gradient is never applied.
                if _trains(layer.weight):
                    norms_sq += (gw * gw).sum(dim=1)
                if _trains(layer.bias):
                    norms_sq += (gb * gb).sum(dim=1)
            elif a.dim() == 2:
                # ‖[a_i, 1]‖²·‖g_i‖²: the bias gradient is g_i itself; a frozen part counts nothing.
                a_sq = torch.linalg.vecdot(a, a) if _trains(layer.weight) else torch.zeros_like(losses)
                if _trains(layer.bias):
                    a_sq += 1.0
                norms_sq.addcmul_(a_sq, torch.linalg.vecdot(g, g))
            else:
                a3, g3 = a.reshape(batch, -1, a.shape[-1]), g.reshape(batch, -1, g.shape[-1])
                sequence[k] = (a3, g3)
                if _trains(layer.weight):
                    norms_sq += _linear_norm_sq(a3, g3)
                if _trains(layer.bias):
                    norms_sq += g3.sum(dim=1).pow(2).sum(dim=1)
        # The same clipping factor as Opacus' DPOptimizer.clip_and_accumulate, with the division
        # by the expected batch size folded in (it scales clipped sums and noise alike).
        scale = 1.0 / self.expected_batch_size
        coef = (self.max_grad_norm / (norms_sq.sqrt() + 1e-6)).clamp(max=1.0).mul_(scale)
        if weights is not None:  # w_i·clip(g_i): after the clipping (governance.train.sample_weights)
            coef.mul_(weights.to(device=coef.device, dtype=coef.dtype))
        if canaries is not None:
            canaries.note_clipped(layers, [x for _, x, _ in records], list(grads), coef, n_real)
        # Each gradient starts as its noise and the clipped sum is accumulated into it in place
        # (addmm_ for 2-D Linear weights): no per-parameter temporaries, sums, divisions or views,
        # which dominate a small model's step on CPU (docs/PERFORMANCE.md). The noise is
        # drawn per parameter in parameter order with normal_, the draws DPOptimizer makes
        # (torch.normal(0, σC, shape)), only scaled by 1/B first; the Opacus-oracle test holds.
        noisy = self._draw_noise()
        summed: dict[int, torch.Tensor] = {}
        for k, ((layer, a, _), g) in enumerate(zip(records, grads)):
            if type(layer) in (nn.Conv2d, nn.GroupNorm):
                add_layer_clipped(layer, sequence[k], coef, noisy)
                continue
            if type(layer) is not nn.Linear:
                gw, gb = sequence[k]
                summed[id(layer.weight)] = (gw * coef.unsqueeze(1)).sum(dim=0)  # flat
                if layer.bias is not None:
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
        self._write_noise(summed, noisy)

    def _draw_noise(self) -> dict[int, torch.Tensor]:
        """This step's noise per parameter, ``N(0, σC/B)``, drawn in parameter order."""
        import torch

        std = self.noise_multiplier * self.max_grad_norm / self.expected_batch_size
        return {id(p): torch.empty_like(p).normal_(0, std, generator=self.generator) for p in self.params}

    def _write_noise(
        self, summed: dict[int, torch.Tensor], noisy: dict[int, torch.Tensor] | None = None
    ) -> None:
        """``p.grad`` = the noise (drawn here unless given) plus the clipped sums not yet in it."""
        if noisy is None:
            noisy = self._draw_noise()
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


def _trains(param: Any) -> bool:
    """A parameter that exists and is trained (a frozen tensor counts nothing in a norm)."""
    return param is not None and bool(param.requires_grad)


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


# -- the fused MLP step ----------------------------------------------------------------------
#
# Why a second path next to FastLinearClipping: on a small MLP the single-pass path's forward
# hooks, autograd graph and per-parameter temporaries cost about half the plain step
# (docs/PERFORMANCE.md). For the one shape of model the
# built-in ``mlp`` architecture produces, nn.Sequential of Linear/ReLU trained with plain
# cross-entropy, the backward pass is short enough to write by hand, and the per-sample norms
# and clipped sums fall out of it with no graph and no hooks. Anything else (other layers, a
# weighted or smoothed loss, sequence inputs) stays on FastLinearClipping or Opacus; the tests
# hold this path to the same weights as FastLinearClipping and Opacus' hooks for the same seed.


def plain_cross_entropy(criterion: Any) -> bool:
    """A default ``CrossEntropyLoss`` (no weight, no smoothing, mean reduction): the loss whose
    gradient the fused steps write out as ``softmax − onehot``."""
    from torch import nn

    return (
        type(criterion) is nn.CrossEntropyLoss
        and criterion.weight is None
        and criterion.label_smoothing == 0.0
        and criterion.reduction == "mean"
    )


def supports_fused_mlp(model: nn.Module, criterion: Any) -> bool:
    """True for ``nn.Sequential`` of ``Linear``/``ReLU`` only, Linear first and last, every Linear
    parameter trainable, trained with a default ``CrossEntropyLoss`` (no weight, no smoothing,
    mean reduction)."""
    from torch import nn

    if type(model) is not nn.Sequential or not plain_cross_entropy(criterion):
        return False
    layers = list(model.children())
    if not layers or type(layers[0]) is not nn.Linear or type(layers[-1]) is not nn.Linear:
        return False
    for layer in layers:
        if type(layer) is nn.ReLU:
            continue
        if type(layer) is not nn.Linear or not all(p.requires_grad for p in layer.parameters()):
            return False
    return True


class _FusedLoss:
    """What :meth:`FusedMLPStep.__call__` returns: ``backward()`` writes the DP gradients."""

    def __init__(self, step: Any, loss_sum: float, batch: int) -> None:
        self.step, self.loss_sum, self.batch = step, loss_sum, batch

    def item(self) -> float:
        return self.loss_sum / self.batch if self.batch else float("nan")

    def backward(self) -> None:
        self.step.backward()


class FusedStep:
    """What the hand-written DP steps share (:class:`FusedMLPStep`,
    :class:`governance.train.clipping.sequential.FusedSequentialStep`): the settings, the flat noise
    buffer, and the criterion. The training loop calls ``model.train()`` / ``model(x)`` /
    ``criterion(out, y).backward()``: a step is both model and criterion.

    The noise of all parameters is one ``normal_`` draw into one flat buffer whose views become
    the ``.grad`` tensors, reused every step: the same distribution as DPOptimizer's (i.i.d.
    ``N(0, σC/B)`` per coordinate, independent of the data), but not its draw order, which is
    one call per parameter (one draw is measurably cheaper on a small model: docs/PERFORMANCE.md).
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        noise_multiplier: float,
        max_grad_norm: float,
        expected_batch_size: int,
        generator: torch.Generator | None,
    ) -> None:
        self.model = model
        self.noise_multiplier = float(noise_multiplier)
        self.max_grad_norm = float(max_grad_norm)
        self.expected_batch_size = max(1, int(expected_batch_size))
        self.generator = generator
        self.params = [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]
        self._logits: torch.Tensor | None = None
        self._log_probs: torch.Tensor | None = None
        self._target: torch.Tensor | None = None
        self._weights: torch.Tensor | None = None
        self.training = True
        self._buffers: tuple[torch.Tensor, dict[int, torch.Tensor]] | None = (
            None  # made on first use, where the parameters then live
        )
        self._prepare()

    def _prepare(self) -> None:
        """The subclass's own set-up from ``self.model``."""

    def _step_buffers(self) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """(flat noise buffer, its per-parameter views), made where the parameters live."""
        import torch

        first = self.params[0]
        if self._buffers is None or self._buffers[0].device != first.device:
            flat = torch.empty(sum(p.numel() for p in self.params), dtype=first.dtype, device=first.device)
            parts = flat.split([p.numel() for p in self.params])
            self._buffers = (flat, {id(p): part.view_as(p) for p, part in zip(self.params, parts)})
        return self._buffers

    def _noise(self) -> dict[int, torch.Tensor]:
        """This step's noise, ``N(0, σC/B)``, drawn into the flat buffer: per-parameter views."""
        flat, noisy = self._step_buffers()
        std = self.noise_multiplier * self.max_grad_norm / self.expected_batch_size
        flat.normal_(0, std, generator=self.generator)
        return noisy

    def train(self, mode: bool = True) -> FusedStep:
        self.model.train(mode)
        return self

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def criterion(
        self, logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None
    ) -> _FusedLoss:
        """``weights``: per-sample weights applied after clipping (governance.train.sample_weights)."""
        import torch

        if logits is not self._logits:
            raise RuntimeError("the fused step's criterion needs the logits of its own forward pass")
        self._target = target
        self._weights = weights
        with torch.no_grad():
            self._log_probs = torch.log_softmax(logits, dim=1)
            batch = int(target.shape[0])
            loss_sum = -float(self._log_probs.gather(1, target.view(-1, 1)).sum()) if batch else 0.0
        return _FusedLoss(self, loss_sum, batch)

    def backward(self) -> None:
        raise NotImplementedError

    def _apply_weights(self, coef: torch.Tensor) -> None:
        """``c_i ← w_i·c_i`` for the batch's rows (padding rows after them keep theirs), once."""
        weights, self._weights = self._weights, None
        if weights is not None:
            n = int(weights.shape[0])
            coef[:n].mul_(weights.to(device=coef.device, dtype=coef.dtype))

    def close(self) -> None:
        """Nothing to remove: the model was never wrapped."""


class FusedMLPStep(FusedStep):
    """DP-SGD for a :func:`supports_fused_mlp` model: forward, hand-written backward, clipping and
    noise in one go; FastLinearClipping's formulas (clipping factor, 1/B scaling) and noise draws.

    Used as both model and criterion by the training loop: ``out = step(x)`` runs the forward pass
    without autograd and keeps each Linear's input; ``step.criterion(out, y).backward()`` then
    back-propagates ``softmax − onehot`` through the layers, computing each sample's squared
    gradient norm ``Σ_layers ‖a_i‖²‖g_i‖²`` (``+ ‖g_i‖²`` for the bias), the clipping factors
    ``c_i``, and writes ``noise + Σ_i c_i g_i a_iᵀ / B`` into each ``.grad`` (``addmm_``/``addmv_``
    into the noise buffer, :meth:`FusedStep._noise`). ``model`` itself is left untouched (no hooks).
    """

    def _prepare(self) -> None:
        from torch import nn

        self.layers: list[nn.Linear | None] = [
            m if type(m) is nn.Linear else None
            for m in self.model.children()  # None: a ReLU
        ]
        self._inputs: list[torch.Tensor] = []
        self._canaries: Any = None

    @property
    def canaries(self) -> Any:
        """Issue 18: the :class:`governance.train.canaries.GradientCanaries` this step's batches
        carry as extra rows of their canary layer (None: none). Setting them hands the canaries
        this step's own norm and factor code for their clipping factors (:meth:`_canary_factors`);
        their clipped sum goes through :func:`add_linear_clipped` into the same noise buffer as
        the real rows'."""
        return self._canaries

    @canaries.setter
    def canaries(self, canaries: Any) -> None:
        if canaries is not None:
            canaries.row_factors = self._canary_factors
        self._canaries = canaries

    def _canary_factors(self, a: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """The clipping factors of canary rows, 2-D records ``(a, g)`` of the canary layer (zero on
        every other layer, where they add nothing to a norm): what :meth:`backward` computes for a
        real row."""
        import torch

        with torch.no_grad():
            norms = torch.zeros(a.shape[0], dtype=a.dtype, device=a.device)
            _add_linear_norms(norms, self.canaries.layer, a, g)
            return clip_factors(norms.sqrt_(), self.max_grad_norm, 1.0 / self.expected_batch_size)

    def _add_canaries(self, layer: nn.Linear, noisy: dict[int, torch.Tensor]) -> None:
        """This step's canary rows' clipped sum into the canary layer's noise buffers, then the
        update read for the scores: noise plus the canaries' clipped rows, before the real rows'
        sum ``r_t`` goes in (what the applied update ``ĝ_t`` is minus ``r_t``, read at the canary
        coordinates without a second buffer)."""
        rows = self.canaries.fused_rows
        if rows is not None:
            a, g, coef = rows
            add_linear_clipped(layer, a, g, coef, noisy)
        self.canaries.read_update(noisy[id(layer.weight)])

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        if x.dim() != 2:  # a Linear on (n, T, d) acts per token: FastLinearClipping's case
            raise ValueError(f"grad_sample_mode 'fused' needs 2-D inputs, got shape {tuple(x.shape)}")
        inputs: list[torch.Tensor] = []
        with torch.no_grad():
            a = x
            for layer in self.layers:
                if layer is None:
                    a = torch.relu_(a)  # a is this step's own Linear output: in place is safe
                    continue
                inputs.append(a)
                a = (
                    torch.addmm(layer.bias, a, layer.weight.t())
                    if layer.bias is not None
                    else a @ layer.weight.t()
                )
        self._inputs = inputs
        self._logits = a
        return a

    def backward(self) -> None:
        import torch

        assert self._target is not None
        target, inputs = self._target, self._inputs
        batch = int(target.shape[0])
        scale = 1.0 / self.expected_batch_size
        noisy = self._noise()
        linears = [layer for layer in self.layers if layer is not None]
        canary_layer: nn.Linear | None = self.canaries.layer if self.canaries is not None else None
        if batch:
            with torch.no_grad():
                # d(Σ losses)/d logits = softmax − onehot.
                assert self._log_probs is not None
                g = self._log_probs.exp_()
                g.scatter_add_(1, target.view(-1, 1), _minus_ones(batch, g))
                grads: list[torch.Tensor] = [g]
                # Walk back through the layers: g is the gradient at the current Linear's output.
                k = len(inputs)
                for module in reversed(self.layers):
                    if module is None:
                        # ReLU: inputs[k] is the ReLU's output; one fused op for g ⊙ [out > 0].
                        g = torch.ops.aten.threshold_backward(g, inputs[k], 0)
                        grads[-1] = g
                        continue
                    k -= 1
                    if k > 0:
                        g = g @ module.weight
                        grads.append(g)
                grads.reverse()  # grads[k]: gradient at the output of linears[k]
                # Σ_l (‖a_i‖² + 1 for the bias) ‖g_i‖². Per-layer vecdots on the contiguous
                # tensors: one concatenation and a product with a 0/1 segment matrix measured
                # slower (MKL is slow for a 3-column product; the copies are not free).
                norms = torch.zeros(batch, dtype=g.dtype, device=g.device)
                for layer, a, g in zip(linears, inputs, grads):
                    _add_linear_norms(norms, layer, a, g)
                norms.sqrt_()
                # min(1, C / (‖∇_i‖ + 1e-6)) / B, DPOptimizer's clipping factor with 1/B folded in.
                coef = clip_factors(norms, self.max_grad_norm, scale)
                self._apply_weights(coef)
                for layer, a, g in zip(linears, inputs, grads):
                    if layer is canary_layer:
                        self._add_canaries(layer, noisy)
                    add_linear_clipped(layer, a, g, coef, noisy)
        elif canary_layer is not None:  # no real row was sampled; the canaries still were
            with torch.no_grad():
                self._add_canaries(canary_layer, noisy)
        for p in self.params:
            p.grad = noisy[id(p)]
        self._inputs, self._logits, self._target = [], None, None


def _add_linear_norms(norms: torch.Tensor, layer: nn.Linear, a: torch.Tensor, g: torch.Tensor) -> None:
    """``norms += (‖a_i‖² + 1 for the bias)·‖g_i‖²``: the squared per-sample gradient norms of a
    Linear on 2-D inputs (its weight gradient ``g_i a_iᵀ`` has norm ``‖g_i‖‖a_i‖``)."""
    import torch

    a_sq = torch.linalg.vecdot(a, a)
    if layer.bias is not None:
        a_sq += 1.0
    norms.addcmul_(a_sq, torch.linalg.vecdot(g, g))


def clip_factors(norms: torch.Tensor, max_grad_norm: float, scale: float) -> torch.Tensor:
    """``min(1, C / (‖∇_i‖ + 1e-6)) · scale`` in place on ``norms``: DPOptimizer's clipping factor
    with the 1/B scaling folded in (the fused step's; one place, so tests can break it on purpose)."""
    return norms.add_(1e-6).reciprocal_().mul_(max_grad_norm * scale).clamp_(max=scale)


def add_linear_clipped(
    layer: nn.Linear, a: torch.Tensor, g: torch.Tensor, coef: torch.Tensor, noisy: dict[int, torch.Tensor]
) -> None:
    """``Σ_i c_i g_i a_iᵀ`` (and ``Σ_i c_i g_i`` for the bias) of a Linear on 2-D inputs ``a``
    with output gradients ``g``, added into the parameters' noise buffers."""
    # Scale the narrower of a and g by c_i: fewer multiplications, same product.
    if a.shape[1] <= g.shape[1]:
        noisy[id(layer.weight)].addmm_(g.t(), a.mul(coef.unsqueeze(1)))
    else:
        noisy[id(layer.weight)].addmm_(g.mul(coef.unsqueeze(1)).t(), a)
    if layer.bias is not None:
        noisy[id(layer.bias)].addmv_(g.t(), coef)


def _minus_ones(batch: int, like: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.full((batch, 1), -1.0, dtype=like.dtype, device=like.device)
