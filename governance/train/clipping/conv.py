"""Per-sample gradient norms and clipped sums of ``nn.Conv2d`` and ``nn.GroupNorm`` layers for
:class:`governance.train.clipping.linear.FastLinearClipping`.

A ``Conv2d`` (one group, zero padding) is a ``Linear`` applied at every output position to the
input patch under the kernel: with the input unfolded into ``a`` (one row of ``C_in·k²`` values
per position, ``L`` positions) and the output gradient viewed as ``g`` of shape
``(n, C_out, L)``, the per-sample weight gradient is ``Σ_l g_l a_lᵀ`` and the bias gradient
``Σ_l g_l``, the sequence case of a ``Linear`` with positions for tokens. The per-sample
gradients are materialised, with the same multiplications as the layer's ordinary weight
gradient (batched products per sample), and reused for the clipped sum (one matrix-vector
product into the noise buffer): per kernel row from a row-unfolded copy of the input for layers
with stride 1 down the columns and a few channels or more (:func:`row_products`), else from the
unfolded input (:func:`patches`). Only where they would outgrow the unfolded input does the ghost norm
(two L×L Gram matrices) take over, with the native convolution backward for the sum.
A ``GroupNorm``'s per-sample gradients, ``Σ_spatial g ⊙ x̂`` and ``Σ_spatial g`` per channel
(``x̂`` its normalised input), come from one call of PyTorch's own GroupNorm backward.

The large per-layer buffers are kept from step to step (:class:`Workspace`): fresh ones made
every step fault their pages in again (figures: docs/PERFORMANCE.md).

Equivalence tests: ``tests/train/clipping/test_conv.py`` (one-sample reference for every norm path,
frozen parts, Opacus' hooks with noise) and ``tests/train/clipping/test_generated_models.py``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from collections.abc import Callable

    import torch
    from torch import nn

__all__ = [
    "ConvGrads",
    "GroupNormInput",
    "Workspace",
    "add_clipped",
    "add_conv_clipped",
    "add_group_norm_clipped",
    "add_layer_clipped",
    "conv_clippable",
    "conv_grads",
    "conv_padding",
    "group_norm_backward",
    "group_norm_clippable",
    "group_norm_grads",
    "group_norm_input",
    "layer_grads",
    "materialise_is_cheaper",
    "patches",
    "poisson_capacity",
    "row_products",
    "rows_apply",
]

#: Spare room in a grown workspace: Poisson batches vary in size from step to step.
HEADROOM = 1.125
#: Patch rows longer than ALIGN_FROM values are padded with zeros to a multiple of ALIGN: MKL's
#: batched products are slower on unaligned rows (docs/PERFORMANCE.md); short rows only pay.
ALIGN, ALIGN_FROM = 8, 32
#: Fewest input channels for which :func:`row_products` replaces the unfolded input: it copies
#: runs of ``k_w·C_in`` values, short for tiny C_in, where the channels-first patches copy longer ones.
ROW_MIN_CHANNELS = 4


def conv_padding(layer: nn.Conv2d) -> tuple[int, int] | None:
    """The layer's zero padding as two ints, or None where it is asymmetric
    (``padding='same'`` with an odd total padding)."""
    padding: Any = layer.padding
    if padding == "valid":
        return (0, 0)
    if padding == "same":
        totals = [d * (k - 1) for d, k in zip(layer.dilation, layer.kernel_size)]
        if any(t % 2 for t in totals):
            return None
        return (totals[0] // 2, totals[1] // 2)
    return (int(padding[0]), int(padding[1]))


def conv_clippable(module: nn.Module) -> bool:
    """A plain ``Conv2d``: one group and (symmetric) zero padding (``padding_mode='zeros'``)."""
    from torch import nn

    return (
        type(module) is nn.Conv2d
        and module.groups == 1
        and module.padding_mode == "zeros"
        and conv_padding(module) is not None
    )


def group_norm_clippable(module: nn.Module) -> bool:
    """A ``GroupNorm`` with an affine (per-channel weight and bias)."""
    from torch import nn

    return type(module) is nn.GroupNorm and bool(module.affine)


class Workspace:
    """Buffers one layer reuses from step to step, each sized for the largest batch seen, and
    at least ``batches_up_to`` rows.

    Why the floor: with Poisson sampling the batch size varies from step to step (Binomial
    around the expected size), so buffers sized to the first batch get outgrown and replaced,
    each leaving a hole in the heap. :func:`poisson_capacity` sizes them once for all but a few
    in 10⁴ steps.
    """

    def __init__(self, batches_up_to: int = 0) -> None:
        self.batches_up_to = int(batches_up_to)
        self._buffers: dict[str, tuple[tuple[int, ...], torch.Tensor]] = {}
        #: Views into the buffers that callers build once per batch size (:meth:`views`).
        self._views: dict[tuple[Any, ...], Any] = {}

    def views(self, key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
        """``build()``'s result (views of this workspace's buffers), kept under ``key`` until a
        buffer is reallocated: Poisson batch sizes repeat, and building a dozen views costs
        about as much as a small product."""
        held = self._views.get(key)
        if held is None:
            held = self._views[key] = build()
        return held

    def take(
        self,
        name: str,
        n: int,
        shape: tuple[int, ...],
        like: torch.Tensor,
        *,
        init: Callable[[torch.Tensor], object] | None = None,
    ) -> torch.Tensor:
        """An ``(n, *shape)`` tensor on ``name``'s buffer (contents: whatever was written last).

        ``init``: applied to the whole ``(capacity, *shape)`` buffer when it is (re)allocated,
        which happens only when ``shape`` changes or ``n`` outgrows it, so entries a caller never
        writes (the zero padding around an image, a column of ones) keep their value for any ``n``.
        """
        import math

        per = math.prod(shape)
        held = self._buffers.get(name)
        if (
            held is None
            or held[0] != shape
            or held[1].numel() < n * per
            or held[1].dtype != like.dtype
            or held[1].device != like.device
        ):
            held = None  # the old buffer is freed before the new one exists: a lower peak
            self._buffers.pop(name, None)
            self._views.clear()
            capacity = max(int(n * HEADROOM + 1), self.batches_up_to)
            buffer = like.new_empty(capacity * per)
            if init is not None:
                init(buffer.view(capacity, *shape))
            held = self._buffers[name] = (shape, buffer)
        return held[1][: n * per].view(n, *shape)


def poisson_capacity(expected_batch_size: int) -> int:
    """Rows that hold a Poisson batch of ``expected_batch_size`` on average with a margin of 4
    standard deviations (the size is Binomial, variance below its mean): exceeded in about 3 of
    10⁵ steps, when the workspace grows as usual."""
    import math

    expected = max(0, int(expected_batch_size))
    return expected + math.ceil(4 * math.sqrt(expected)) + 1


GroupNormGrads = tuple["torch.Tensor | None", "torch.Tensor | None"]


class GroupNormInput(NamedTuple):
    """What the forward hook keeps of a GroupNorm call: its input and per-(sample, group) mean
    and ``1/σ``, each ``(n, groups)``."""

    x: torch.Tensor
    mean: torch.Tensor
    rstd: torch.Tensor


def group_norm_input(layer: nn.GroupNorm, x: torch.Tensor, output: torch.Tensor) -> GroupNormInput:
    """The GroupNorm's input with its statistics, taken from the forward pass's autograd node
    where it saved them (free), else computed again."""
    import math

    import torch

    n, c, groups = x.shape[0], x.shape[1], layer.num_groups
    node = output.grad_fn
    mean, rstd = getattr(node, "_saved_result1", None), getattr(node, "_saved_result2", None)
    shape = (n, groups)
    if (
        type(node).__name__ != "NativeGroupNormBackward0"
        or not isinstance(mean, torch.Tensor)
        or not isinstance(rstd, torch.Tensor)
        or tuple(mean.shape) != shape
        or tuple(rstd.shape) != shape
    ):
        spatial = math.prod(x.shape[2:])
        _, mean, rstd = torch.native_group_norm(x, None, None, n, c, spatial, groups, layer.eps)
    return GroupNormInput(x, mean.detach(), rstd.detach())


def group_norm_grads(
    layer: nn.GroupNorm, inputs: GroupNormInput, g: torch.Tensor
) -> tuple[torch.Tensor, GroupNormGrads]:
    """Per-sample squared gradient norms ``(n,)`` of a GroupNorm with output gradient ``g``, and
    its per-sample (weight, bias) gradients ``Σ_s g ⊙ x̂`` and ``Σ_s g``, ``(n, C)`` each (None
    for a frozen parameter). See :func:`group_norm_backward`."""
    norms_sq, grads, _ = group_norm_backward(layer, inputs, g, input_grad=False)
    return norms_sq, grads


def group_norm_backward(
    layer: nn.GroupNorm,
    inputs: GroupNormInput,
    g: torch.Tensor,
    *,
    input_grad: bool,
    norms_sq: torch.Tensor | None = None,
) -> tuple[torch.Tensor, GroupNormGrads, torch.Tensor | None]:
    """:func:`group_norm_grads` and, when ``input_grad``, the gradient at the layer's input:
    ``(norms_sq, (weight, bias), input gradient or None)``.

    All come from one call of PyTorch's own GroupNorm backward with the batch laid out as a
    single sample of ``n·C`` channels in ``n·groups`` groups: the "batch sum" of its weight and
    bias gradients is then over that one sample, i.e. per sample and channel, and with the
    weight repeated ``n`` times its input gradient is the layer's (each group only ever sees its
    own sample). One fused pass over ``g`` and ``x``; normalising ``x`` again and reducing
    ``g ⊙ x̂`` measured 3x slower. ``norms_sq``: add the squared norms into it (and return it)
    instead of into a new tensor.
    """
    import math

    import torch

    n, c = g.shape[0], g.shape[1]
    groups = layer.num_groups
    want_weight, want_bias = bool(layer.weight.requires_grad), bool(layer.bias.requires_grad)
    if norms_sq is None:
        norms_sq = torch.zeros(n, dtype=g.dtype, device=g.device)
    if n == 0:
        empty = g.new_zeros(0, c)
        return (
            norms_sq,
            (empty if want_weight else None, empty if want_bias else None),
            torch.zeros_like(g) if input_grad else None,
        )
    spatial = g.shape[2:]
    # The backward kernel wants a weight even when the input gradient is not asked for.
    # expand + reshape: one copy, half the time of Tensor.repeat at these sizes.
    weight = layer.weight.detach().expand(n, c).reshape(-1) if input_grad else g.new_ones(n * c)
    g_in, gw, gb = torch.ops.aten.native_group_norm_backward(
        g.reshape(1, n * c, *spatial),
        inputs.x.reshape(1, n * c, *spatial),
        inputs.mean.reshape(1, n * groups),
        inputs.rstd.reshape(1, n * groups),
        weight,
        1,
        n * c,
        math.prod(spatial),
        n * groups,
        [input_grad, want_weight, want_bias],
    )
    grads: list[torch.Tensor | None] = []
    for per_sample in (gw if want_weight else None, gb if want_bias else None):
        if per_sample is not None:
            per_sample = per_sample.view(n, c)
            norms_sq.add_(torch.linalg.vecdot(per_sample, per_sample))
        grads.append(per_sample)
    return norms_sq, (grads[0], grads[1]), g_in.view_as(g) if input_grad else None


class ConvGrads:
    """What :func:`conv_grads` keeps of one Conv2d for the clipped sum: the materialised
    per-sample weight gradients, either ``per_row`` from :func:`row_products` or
    ``per_sample`` ``(n, C_out·width)`` from the unfolded input (per output channel the weight's
    ``features`` in (kernel row, kernel column, input channel) order, then the bias when
    ``with_bias``, then zeros); or on the ghost path the layer input and output gradient; and
    ``bias``, the per-sample bias gradients where they are not in ``per_sample``."""

    __slots__ = ("bias", "features", "grad_out", "inputs", "per_row", "per_sample", "width", "with_bias")

    def __init__(self) -> None:
        self.per_row: torch.Tensor | None = None
        self.per_sample: torch.Tensor | None = None
        self.features = self.width = 0
        self.with_bias = False
        self.inputs: torch.Tensor | None = None
        self.grad_out: torch.Tensor | None = None
        self.bias: torch.Tensor | None = None


def materialise_is_cheaper(positions: int, d: int, p: int) -> bool:
    """Whether to materialise a Conv2d's ``(n, d, p)`` per-sample weight gradients.

    In multiplications materialising always wins: it costs ``L·d·p`` per sample and the clipped
    sum is then one matrix-vector product over them, while the ghost norm's Gram matrices cost
    ``L²·(d+p)`` on top of the ``L·d·p`` of the clipped sum. What the ghost norm saves is
    memory, so materialise unless the gradients would outgrow both the unfolded input (``d·L``)
    and the Gram matrices (``L²``) held per sample: wide layers on small maps.
    """
    return p * d <= positions * max(d, positions)


def patches(
    layer: nn.Conv2d, x: torch.Tensor, workspace: Workspace, *, ones: bool
) -> tuple[torch.Tensor, bool]:
    """The unfolded input: each output position's input patch under the kernel, its ``d`` values
    in (kernel row, kernel column, channel) order, then a constant 1 when ``ones`` (the bias's
    "input"), then for long rows zeros up to a multiple of :data:`ALIGN` values.

    Returns ``(a, position_major)``: ``a`` is ``(n, L, width)`` when ``position_major``, else
    ``(n, width, L)``, whichever layout the copy fills in longer contiguous runs.

    Why not ``F.unfold``: on CPU it gathers element by element (about 2 ms for the built-in
    CNN's second layer at batch 64, a third of the whole non-private step). Here the input is
    copied once into a zero-padded buffer whose padding stays zero between steps, and every
    patch is a strided view of it, copied in one pass: from a channels-last buffer the kernel
    rows are runs of ``k_w·C_in`` values (dilation 1), from a channels-first one each kernel
    offset's plane is runs of ``W_out`` values (stride 1). With 16 channels the first is about
    10x faster than ``F.unfold``; the built-in CNN's first layer, one channel, takes the second
    (runs of 8 against 3), 2x faster than the first.
    """
    padding = conv_padding(layer)
    assert padding is not None
    n, c, h, w = x.shape
    (kh, kw), (dh, dw), (sh, sw), (ph, pw) = layer.kernel_size, layer.dilation, layer.stride, padding
    h_pad, w_pad = h + 2 * ph, w + 2 * pw
    h_out, w_out = (h_pad - dh * (kh - 1) - 1) // sh + 1, (w_pad - dw * (kw - 1) - 1) // sw + 1
    d, positions = kh * kw * c, h_out * w_out
    width = d + 1 if ones else d
    if width > ALIGN_FROM:
        width = -(-width // ALIGN) * ALIGN

    def init(buffer: torch.Tensor) -> None:
        buffer.zero_()
        if ones:
            (buffer[:, :, d] if position_major else buffer[:, d]).fill_(1.0)

    position_major = (kw * c if dw == 1 else c) >= (w_out if sw == 1 else 1)

    def build() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(the input's place in the padded buffer, NCHW order; where the patches go; the
        patches as a strided view of the padded buffer; the unfolded input)."""
        if position_major:
            padded = workspace.take("input", n, (h_pad, w_pad, c), x, init=_zero)
            interior = padded[:, ph : ph + h, pw : pw + w].permute(0, 3, 1, 2)
            row = w_pad * c
            sizes = (n, h_out, w_out, kh, kw, c)
            strides = (h_pad * row, sh * row, sw * c, dh * row, dw * c, 1)
            a = workspace.take("patches", n, (positions, width), x, init=init)
            dest = a[:, :, :d].unflatten(2, (kh, kw, c)).unflatten(1, (h_out, w_out))
        else:
            padded = workspace.take("input", n, (c, h_pad, w_pad), x, init=_zero)
            interior = padded[:, :, ph : ph + h, pw : pw + w]
            plane = h_pad * w_pad
            sizes = (n, kh, kw, c, h_out, w_out)
            strides = (c * plane, dh * w_pad, dw, plane, sh * w_pad, sw)
            a = workspace.take("patches", n, (width, positions), x, init=init)
            dest = a[:, :d].unflatten(2, (h_out, w_out)).unflatten(1, (kh, kw, c))
        return interior, dest, padded.as_strided(sizes, strides, padded.storage_offset()), a

    interior, dest, source, a = workspace.views(("patches", n, c, h, w, ones, position_major), build)
    interior.copy_(x)
    dest.copy_(source)
    return a, position_major


def _zero(buffer: torch.Tensor) -> None:
    buffer.zero_()


def rows_apply(layer: nn.Conv2d, x: torch.Tensor) -> bool:
    """Whether :func:`row_products` suits the layer: stride 1 down the columns (any stride along
    the rows) and at least :data:`ROW_MIN_CHANNELS` input channels."""
    return int(layer.stride[0]) == 1 and x.shape[1] >= ROW_MIN_CHANNELS


def row_products(layer: nn.Conv2d, x: torch.Tensor, g: torch.Tensor, workspace: Workspace) -> torch.Tensor:
    """The per-sample weight gradients of a Conv2d with stride 1 down the columns, one kernel row
    at a time: ``(k_h, n, C_out·k_w·C_in)``, per kernel row in (output channel, kernel column,
    input channel) order.

    The input is copied once, zero-padded and channels-last, into ``(H_pad, W_out, k_w·C_in)``:
    for each padded input row and output column, the ``k_w·C_in`` values under one kernel row.
    With stride 1 down the columns, the output positions' values under kernel row ``i`` are then
    the ``H_out·W_out`` consecutive entries from padded row ``i·d_h`` on: an ``(L, k_w·C_in)``
    matrix read in place, and kernel row ``i``'s gradient is one batched product with the
    output gradient ``(C_out, L)``. Against the fully unfolded input (``k_h·k_w·C_in`` values
    per position, a third more copying for 3×3 kernels) and against one product per kernel
    offset (nine narrow ``C_in``-column products), these ``k_h`` products of ``k_w·C_in``
    columns measured 15-20 % faster for the built-in CNN's second layer (docs/PERFORMANCE.md).
    """
    import torch

    padding = conv_padding(layer)
    assert padding is not None
    n, c, h, w = x.shape
    p, h_out, w_out = g.shape[1], g.shape[2], g.shape[3]
    (kh, kw), (dh, dw), (ph, pw), sw = layer.kernel_size, layer.dilation, padding, layer.stride[1]
    h_pad, w_pad, run, positions = h + 2 * ph, w + 2 * pw, kw * c, h_out * w_out

    def build() -> tuple[Any, ...]:
        padded = workspace.take("input", n, (h_pad, w_pad, c), x, init=_zero)
        row = w_pad * c
        source = padded.as_strided(
            (n, h_pad, w_out, kw, c), (h_pad * row, row, sw * c, dw * c, 1), padded.storage_offset()
        )
        unfolded = workspace.take("rows", n, (h_pad, w_out, kw, c), x)
        flat = unfolded.view(n, h_pad * w_out, run)
        out = workspace.take("per_row", n, (kh * p * run,), g).view(kh, n, p, run)
        products = [(flat[:, i * dh * w_out : i * dh * w_out + positions], out[i]) for i in range(kh)]
        return (
            padded[:, ph : ph + h, pw : pw + w].permute(0, 3, 1, 2),  # where x goes, NCHW order
            unfolded,
            source,
            products,
            out.view(kh, n, p * run),
        )

    interior, unfolded, source, products, result = workspace.views(
        ("rows", n, c, h, w, p, h_out, w_out), build
    )
    interior.copy_(x)
    unfolded.copy_(source)
    g3 = g.reshape(n, p, positions)
    for under_row, out_i in products:
        torch.bmm(g3, under_row, out=out_i)
    return result


def conv_grads(
    layer: nn.Conv2d,
    x: torch.Tensor,
    g: torch.Tensor,
    workspace: Workspace | None = None,
    *,
    materialise: bool | None = None,
) -> tuple[torch.Tensor, ConvGrads]:
    """Per-sample squared gradient norms ``(n,)`` of a Conv2d with input ``x`` and output
    gradient ``g``, and what :func:`add_conv_clipped` needs (valid until the next call with the
    same ``workspace``).

    Layers with stride 1 down the columns and :data:`ROW_MIN_CHANNELS` input channels or more
    take :func:`row_products`, the rest :func:`patches`. There the bias rides along as one more
    input feature, a constant 1 in every patch: the per-sample product then yields its gradient
    ``Σ_l g_l`` too, and the ghost norm's Gram matrix of the patches its ``+1``.
    ``materialise``: None chooses by :func:`materialise_is_cheaper`; True/False force a path.
    """
    import torch

    n, p = g.shape[0], g.shape[1]
    positions = g.shape[2] * g.shape[3]
    g3 = g.reshape(n, p, positions)
    state = ConvGrads()
    with_bias = layer.bias is not None and layer.bias.requires_grad
    if not layer.weight.requires_grad:
        if with_bias:
            state.bias = g3.sum(dim=2)
            return torch.linalg.vecdot(state.bias, state.bias), state
        return torch.zeros(n, dtype=g.dtype, device=g.device), state
    space = workspace if workspace is not None else Workspace()
    state.features = layer.weight.numel() // layer.weight.shape[0]  # no tensor op, unlike weight[0]
    if materialise is None:
        materialise = materialise_is_cheaper(positions, state.features, p)
    if materialise and rows_apply(layer, x):
        state.per_row = row_products(layer, x, g, space)
        norms_sq = torch.linalg.vector_norm(state.per_row, dim=2).square_().sum(dim=0)
        if with_bias:
            state.bias = g3.sum(dim=2)
            norms_sq.add_(torch.linalg.vecdot(state.bias, state.bias))
        return norms_sq, state
    a, position_major = patches(layer, x, space, ones=with_bias)
    a_ld = a if position_major else a.transpose(1, 2)  # (n, L, width)
    width = state.width = a_ld.shape[2]
    state.with_bias = with_bias
    if materialise:
        per_sample = space.take("per_sample", n, (p, width), g)
        torch.bmm(g3, a_ld, out=per_sample)
        state.per_sample = per_sample.view(n, p * width)
        return torch.linalg.vector_norm(state.per_sample, dim=1).square_(), state
    gram_a = torch.bmm(a_ld, a_ld.transpose(1, 2)).view(n, positions * positions)
    gram_g = torch.bmm(g3.transpose(1, 2), g3).view(n, positions * positions)
    state.inputs, state.grad_out = x, g
    return torch.linalg.vecdot(gram_a, gram_g), state


def add_clipped(buffer: torch.Tensor, per_sample: torch.Tensor, coef: torch.Tensor) -> None:
    """``buffer += Σ_i coef_i · per_sample_i`` in place (one ``addmv_``); ``per_sample`` is
    ``(n, buffer.numel())`` in the buffer's element order."""
    if buffer.is_contiguous():
        buffer.view(-1).addmv_(per_sample.t(), coef)
    else:
        buffer.add_((per_sample.t() @ coef).view_as(buffer))


def add_conv_clipped(layer: nn.Conv2d, state: ConvGrads, coef: torch.Tensor, noisy: dict[int, Any]) -> None:
    """Add the clipped per-sample gradient sums of a Conv2d into its noise buffers."""
    import torch

    weight = noisy.get(id(layer.weight))
    bias = noisy.get(id(layer.bias)) if layer.bias is not None else None
    if state.per_row is not None:
        if weight is not None:
            by_row = weight.permute(2, 0, 3, 1)  # (k_h, C_out, k_w, C_in): the products' order
            rows, n = state.per_row.shape[0], state.per_row.shape[1]
            summed = torch.bmm(coef.view(1, 1, n).expand(rows, 1, n), state.per_row)
            by_row.add_(summed.view(by_row.shape))
    elif state.per_sample is not None:
        summed = (state.per_sample.t() @ coef).view(-1, state.width)
        if weight is not None:
            by_offset = weight.permute(0, 2, 3, 1)  # the per-sample gradients' order
            by_offset.add_(summed[:, : state.features].view(by_offset.shape))
        if state.with_bias and bias is not None:
            bias.add_(summed[:, state.features])
    elif state.inputs is not None and state.grad_out is not None:
        # Σ_i c_i ∂w_i is the weight gradient of the batch with each sample's output gradient
        # scaled by c_i: the native convolution backward, no (n, d, p) tensor.
        padding = conv_padding(layer)
        assert padding is not None
        scaled = state.grad_out * coef.view(-1, 1, 1, 1)
        _, summed_weight, summed_bias = torch.ops.aten.convolution_backward(
            scaled,
            state.inputs,
            layer.weight.detach(),  # only its shape matters; no graph into the .grad
            [scaled.shape[1]] if state.with_bias else None,
            layer.stride,
            padding,
            layer.dilation,
            False,
            [0, 0],
            1,
            [False, True, state.with_bias],
        )
        if weight is not None:
            weight.add_(summed_weight)
        if state.with_bias and bias is not None:
            bias.add_(summed_bias)
    if state.bias is not None and bias is not None:
        add_clipped(bias, state.bias, coef)


def add_group_norm_clipped(
    layer: nn.GroupNorm, grads: GroupNormGrads, coef: torch.Tensor, noisy: dict[int, Any]
) -> None:
    """Add the clipped per-sample gradient sums of a GroupNorm into its noise buffers."""
    for param, per_sample in zip((layer.weight, layer.bias), grads):
        buffer = noisy.get(id(param))
        if buffer is not None and per_sample is not None:
            add_clipped(buffer, per_sample, coef)


def layer_grads(
    layer: nn.Module, x: Any, g: torch.Tensor, workspaces: dict[int, Workspace], batches_up_to: int = 0
) -> tuple[torch.Tensor, Any]:
    """:func:`conv_grads` (with the layer's entry of ``workspaces``) or
    :func:`group_norm_grads`, by the layer's type; ``x`` is what the forward hook recorded (the
    input, or for a GroupNorm a :class:`GroupNormInput`)."""
    from torch import nn

    if type(layer) is nn.Conv2d:
        workspace = workspaces.get(id(layer))
        if workspace is None:
            workspace = workspaces[id(layer)] = Workspace(batches_up_to)
        return conv_grads(layer, x, g, workspace)
    return group_norm_grads(layer, x, g)  # type: ignore[arg-type]


def add_layer_clipped(layer: nn.Module, state: Any, coef: torch.Tensor, noisy: dict[int, Any]) -> None:
    """:func:`add_conv_clipped` or :func:`add_group_norm_clipped`, by the layer's type."""
    from torch import nn

    if type(layer) is nn.Conv2d:
        add_conv_clipped(layer, state, coef, noisy)
    else:
        add_group_norm_clipped(layer, state, coef, noisy)  # type: ignore[arg-type]
