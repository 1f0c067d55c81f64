"""A hand-written DP-SGD step for ``nn.Sequential`` convolutional networks (the built-in ``cnn``):
forward without autograd, backward written out layer by layer, per-sample clipping and noise
folded into it.

Why: the single-pass path (:class:`governance.train.clipping.linear.FastLinearClipping`) pays
for autograd's graph, a second GroupNorm backward per layer, forward hooks and one noise draw
per parameter on top of the per-sample gradients; here one GroupNorm backward call gives the
input gradient and the per-sample weight and bias gradients (figures: docs/PERFORMANCE.md).

Each layer type has an op in :data:`OPS` with three jobs: ``forward`` (no autograd; keeps what the
backward needs), ``backward`` (the gradient at its input from the one at its output; trainable
layers also add each sample's squared gradient norm and keep their per-sample gradients), and
``add_clipped`` (``Σ_i c_i ∇_i`` into the parameter's noise buffer). The per-sample mathematics
of Linear, Conv2d and GroupNorm is :mod:`governance.train.clipping.linear`'s and
:mod:`governance.train.clipping.conv`'s. The tests hold this step to the one-sample-at-a-time
reference, to the same weights as FastLinearClipping and Opacus' hooks with the noise off, and
its noise to one draw of the step's generator: ``tests/train/clipping/test_sequential.py`` and
``tests/train/clipping/test_generated_models.py``. The engine proof
(:mod:`governance.train.clipping.proof`) admits it only for an exact ``nn.Sequential`` of these ops.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from governance.train.clipping.linear import FusedStep

if TYPE_CHECKING:
    from collections.abc import Callable

    import torch
    from torch import nn

__all__ = ["BATCH_MULTIPLE", "OPS", "FusedSequentialStep", "supports_fused_sequential"]


class _Op:
    """One layer of the step. ``trainable`` ops add per-sample norms and clipped sums."""

    trainable = False
    #: Whether ``forward`` returns a view of its input (Flatten), so an in-place ReLU after it
    #: would write into whatever the input was.
    view = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def backward(self, g: torch.Tensor, norms_sq: torch.Tensor, input_grad: bool) -> torch.Tensor | None:
        raise NotImplementedError

    def add_clipped(self, coef: torch.Tensor, noisy: dict[int, torch.Tensor]) -> None:
        """Trainable ops only."""


class _LinearOp(_Op):
    """``a Wᵀ + b`` on 2-D inputs: per-sample norm ``‖a_i‖²(+1)·‖g_i‖²``, clipped sum ``(c⊙g)ᵀa``."""

    trainable = True

    def __init__(self, layer: nn.Linear) -> None:
        self.layer = layer
        self.a: torch.Tensor | None = None
        self.g: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        if x.dim() != 2:
            raise ValueError(f"grad_sample_mode 'fused' needs 2-D inputs to Linear, got {tuple(x.shape)}")
        self.a = x
        layer = self.layer
        return (
            torch.addmm(layer.bias, x, layer.weight.t()) if layer.bias is not None else x @ layer.weight.t()
        )

    def backward(self, g: torch.Tensor, norms_sq: torch.Tensor, input_grad: bool) -> torch.Tensor | None:
        import torch

        assert self.a is not None
        a_sq = torch.linalg.vecdot(self.a, self.a)
        if self.layer.bias is not None:
            a_sq += 1.0
        norms_sq.addcmul_(a_sq, torch.linalg.vecdot(g, g))
        self.g = g
        return g @ self.layer.weight if input_grad else None

    def add_clipped(self, coef: torch.Tensor, noisy: dict[int, torch.Tensor]) -> None:
        from governance.train.clipping.linear import add_linear_clipped

        assert self.a is not None and self.g is not None
        add_linear_clipped(self.layer, self.a, self.g, coef, noisy)
        self.a = self.g = None


class _Conv2dOp(_Op):
    """A one-group zero-padded Conv2d: PyTorch's convolution forward and input gradient, per-sample
    weight gradients by :func:`governance.train.clipping.conv.conv_grads`."""

    trainable = True

    def __init__(self, layer: nn.Conv2d) -> None:
        from governance.train.clipping.conv import Workspace, conv_padding

        self.layer = layer
        padding = conv_padding(layer)
        assert padding is not None
        self.padding = list(padding)
        self.workspace = Workspace()
        self.x: torch.Tensor | None = None
        self.state: Any = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        self.x = x
        layer = self.layer
        return F.conv2d(x, layer.weight, layer.bias, layer.stride, self.padding, layer.dilation)

    def backward(self, g: torch.Tensor, norms_sq: torch.Tensor, input_grad: bool) -> torch.Tensor | None:
        import torch

        from governance.train.clipping.conv import conv_grads

        x, layer = self.x, self.layer
        assert x is not None
        layer_sq, self.state = conv_grads(layer, x, g, self.workspace)
        norms_sq.add_(layer_sq)
        if not input_grad:
            return None
        g_in, _, _ = torch.ops.aten.convolution_backward(
            g,
            x,
            layer.weight,
            None,
            layer.stride,
            self.padding,
            layer.dilation,
            False,
            [0, 0],
            1,
            [True, False, False],
        )
        return g_in

    def add_clipped(self, coef: torch.Tensor, noisy: dict[int, torch.Tensor]) -> None:
        from governance.train.clipping.conv import add_conv_clipped

        add_conv_clipped(self.layer, self.state, coef, noisy)
        self.x = self.state = None


class _GroupNormOp(_Op):
    """An affine GroupNorm: one backward call gives the input gradient and the per-sample weight
    and bias gradients (:func:`governance.train.clipping.conv.group_norm_backward`)."""

    trainable = True

    def __init__(self, layer: nn.GroupNorm) -> None:
        self.layer = layer
        self.inputs: Any = None
        self.grads: Any = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import math

        import torch

        from governance.train.clipping.conv import GroupNormInput

        layer = self.layer
        n, c = x.shape[0], x.shape[1]
        out, mean, rstd = torch.native_group_norm(
            x, layer.weight, layer.bias, n, c, math.prod(x.shape[2:]), layer.num_groups, layer.eps
        )
        self.inputs = GroupNormInput(x, mean, rstd)
        return out

    def backward(self, g: torch.Tensor, norms_sq: torch.Tensor, input_grad: bool) -> torch.Tensor | None:
        from governance.train.clipping.conv import group_norm_backward

        _, self.grads, g_in = group_norm_backward(
            self.layer, self.inputs, g, input_grad=input_grad, norms_sq=norms_sq
        )
        return g_in

    def add_clipped(self, coef: torch.Tensor, noisy: dict[int, torch.Tensor]) -> None:
        from governance.train.clipping.conv import add_group_norm_clipped

        add_group_norm_clipped(self.layer, self.grads, coef, noisy)
        self.inputs = self.grads = None


class _ReLUOp(_Op):
    def __init__(self, layer: nn.ReLU) -> None:
        self.out: torch.Tensor | None = None
        self.in_place = False  # set by the step: only on tensors the step itself produced

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        self.out = torch.relu_(x) if self.in_place else torch.relu(x)
        return self.out

    def backward(self, g: torch.Tensor, norms_sq: torch.Tensor, input_grad: bool) -> torch.Tensor | None:
        import torch

        out, self.out = self.out, None
        return torch.ops.aten.threshold_backward(g, out, 0)  # g ⊙ [out > 0] in one op


class _AdaptiveAvgPool2dOp(_Op):
    """Where the output size divides the input's, adaptive pooling is average pooling over
    non-overlapping windows, and PyTorch's ``avg_pool2d`` kernels run in about 60 % of the
    adaptive kernels' time (docs/PERFORMANCE.md). Both sum a window in the same order; the
    adaptive kernels divide by its height and then its width, ``avg_pool2d`` once by its area,
    which rounds identically when one side is a power of two: only then is it used, so values
    and gradients are bit-identical to ``nn.AdaptiveAvgPool2d``'s (``test_pooling_is_adaptive_pooling``).
    A 1×1 output (PyTorch computes it as a mean) and other sizes keep the adaptive kernels."""

    def __init__(self, layer: nn.AdaptiveAvgPool2d) -> None:
        self.output_size = layer.output_size
        self.x: torch.Tensor | None = None
        self.window: tuple[int, int] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch.nn.functional as F

        self.x = x
        self.window = _pool_window(x.shape[-2:], self.output_size)
        if self.window is not None:
            return F.avg_pool2d(x, self.window, self.window)
        return F.adaptive_avg_pool2d(x, self.output_size)

    def backward(self, g: torch.Tensor, norms_sq: torch.Tensor, input_grad: bool) -> torch.Tensor | None:
        import torch

        x, self.x = self.x, None
        if self.window is not None:
            window = list(self.window)
            return torch.ops.aten.avg_pool2d_backward(g, x, window, window, [0, 0], False, True, None)
        return torch.ops.aten._adaptive_avg_pool2d_backward(g, x)


def _pool_window(size: Any, output_size: Any) -> tuple[int, int] | None:
    """The ``avg_pool2d`` window bit-identical to adaptive pooling from ``size`` to ``output_size``
    (``None`` entries keep that side), or None (see :class:`_AdaptiveAvgPool2dOp`)."""
    out = output_size if isinstance(output_size, tuple | list) else (output_size, output_size)
    window, shape = [], []
    for have, want in zip(size, out):
        want = int(have) if want is None else int(want)
        if want < 1 or have % want:
            return None
        window.append(int(have) // want)
        shape.append(want)
    if shape == [1, 1] or not any(side & (side - 1) == 0 for side in window):
        return None
    return (window[0], window[1])


class _FlattenOp(_Op):
    """``nn.Flatten`` and ``nn.Unflatten``: a reshape, undone on the way back."""

    view = True

    def __init__(self, layer: nn.Flatten | nn.Unflatten) -> None:
        from torch import nn

        if type(layer) is nn.Flatten:
            start, end = layer.start_dim, layer.end_dim
            self.reshape: Callable[[torch.Tensor], torch.Tensor] = lambda x: x.flatten(start, end)
        else:
            dim, sizes = layer.dim, layer.unflattened_size
            self.reshape = lambda x: x.unflatten(dim, sizes)
        self.shape: torch.Size | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.shape = x.shape
        return self.reshape(x)

    def backward(self, g: torch.Tensor, norms_sq: torch.Tensor, input_grad: bool) -> torch.Tensor | None:
        assert self.shape is not None
        return g.reshape(self.shape)


def _registry() -> dict[type, Callable[[Any], _Op]]:
    from torch import nn

    return {
        nn.Linear: _LinearOp,
        nn.Conv2d: _Conv2dOp,
        nn.GroupNorm: _GroupNormOp,
        nn.ReLU: _ReLUOp,
        nn.AdaptiveAvgPool2d: _AdaptiveAvgPool2dOp,
        nn.Flatten: _FlattenOp,
        nn.Unflatten: _FlattenOp,
    }


#: Layer type → op factory; filled on first use (torch imported lazily).
OPS: dict[type, Callable[[Any], _Op]] = {}


def _ops() -> dict[type, Callable[[Any], _Op]]:
    if not OPS:
        OPS.update(_registry())
    return OPS


#: Batches run padded with zero rows up to a multiple of this, so that oneDNN builds and caches
#: kernels for few batch shapes (Poisson batches vary; figures: docs/PERFORMANCE.md). Every layer
#: here treats samples independently (no BatchNorm under DP), so a padding row changes no real
#: sample's output, and its gradient, zero at the logits, stays zero in every layer: it adds
#: nothing to any clipped sum (``test_padding_rows_change_nothing``).
BATCH_MULTIPLE = 4


def supports_fused_sequential(model: nn.Module, criterion: Any) -> bool:
    """True for an ``nn.Sequential`` of layers in :data:`OPS` (Conv2d with one group and zero
    padding, GroupNorm with an affine), every parameter trainable, at least one Conv2d, trained
    with a default ``CrossEntropyLoss``. Linear/ReLU-only MLPs have their own step
    (:class:`governance.train.clipping.linear.FusedMLPStep`)."""
    from torch import nn

    from governance.train.clipping.conv import conv_clippable, group_norm_clippable
    from governance.train.clipping.linear import plain_cross_entropy

    if type(model) is not nn.Sequential or not plain_cross_entropy(criterion):
        return False
    ops = _ops()
    layers = list(model.children())
    if not any(type(layer) is nn.Conv2d for layer in layers):
        return False
    for layer in layers:
        if type(layer) not in ops or not all(p.requires_grad for p in layer.parameters()):
            return False
        if type(layer) is nn.Conv2d and not conv_clippable(layer):
            return False
        if type(layer) is nn.GroupNorm and not group_norm_clippable(layer):
            return False
        if type(layer) is nn.ReLU and layer.inplace:
            return False  # would write into the layer before's saved tensors under autograd too
    return True


class FusedSequentialStep(FusedStep):
    """DP-SGD for a :func:`supports_fused_sequential` model; the same update as
    :class:`governance.train.clipping.linear.FastLinearClipping` (clipping factor
    ``min(1, C/(‖∇_i‖ + 1e-6))``, sums and noise divided by the expected batch size).

    Used as both model and criterion by the training loop, like
    :class:`governance.train.clipping.linear.FusedMLPStep`: ``out = step(x)`` runs the forward pass;
    ``step.criterion(out, y).backward()`` back-propagates ``softmax − onehot`` and writes
    ``noise + Σ_i c_i ∇_i / B`` into each ``.grad`` (noise: :meth:`FusedStep._noise`).
    """

    def _prepare(self) -> None:
        from governance.train.clipping.conv import poisson_capacity

        ops = _ops()
        self.ops = [ops[type(layer)](layer) for layer in self.model.children()]
        capacity = poisson_capacity(self.expected_batch_size)
        for op in self.ops:
            if isinstance(op, _Conv2dOp):
                op.workspace.batches_up_to = capacity
        owned = False  # whether the tensor flowing into the next op is the step's own
        for op in self.ops:
            if isinstance(op, _ReLUOp):
                op.in_place = owned
            owned = owned if op.view else True
        trainable = [k for k, op in enumerate(self.ops) if op.trainable]
        self.first_trainable = trainable[0]
        self.trainable_ops = [self.ops[k] for k in trainable]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        n = int(x.shape[0])
        rows = -(-n // BATCH_MULTIPLE) * BATCH_MULTIPLE
        with torch.no_grad():
            if rows != n:
                x = torch.cat((x, x.new_zeros(rows - n, *x.shape[1:])))
            for op in self.ops:
                x = op.forward(x)
        self._logits = x[:n]
        return self._logits

    def backward(self) -> None:
        import torch

        target, log_probs = self._target, self._log_probs
        assert target is not None and log_probs is not None
        batch = int(target.shape[0])
        scale = 1.0 / self.expected_batch_size
        noisy = self._noise()
        if batch:
            with torch.no_grad():
                # d(Σ losses)/d logits = softmax − onehot.
                g: torch.Tensor | None = log_probs.exp_()
                assert g is not None
                g.scatter_add_(1, target.view(-1, 1), g.new_full((batch, 1), -1.0))
                rows = -(-batch // BATCH_MULTIPLE) * BATCH_MULTIPLE
                if rows != batch:  # the padding rows: zero gradient all the way down
                    g = torch.cat((g, g.new_zeros(rows - batch, g.shape[1])))
                norms_sq = torch.zeros(rows, dtype=g.dtype, device=g.device)
                for k in range(len(self.ops) - 1, self.first_trainable - 1, -1):
                    assert g is not None
                    g = self.ops[k].backward(g, norms_sq, k > self.first_trainable)
                # min(1, C / (‖∇_i‖ + 1e-6)) / B, DPOptimizer's clipping factor with 1/B folded in.
                coef = norms_sq.sqrt_().add_(1e-6).reciprocal_().mul_(self.max_grad_norm * scale)
                coef.clamp_(max=scale)
                self._apply_weights(coef)
                for op in self.trainable_ops:
                    op.add_clipped(coef, noisy)
        for p in self.params:
            p.grad = noisy[id(p)]
        self._logits = self._log_probs = self._target = None
