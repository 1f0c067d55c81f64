"""Which DP clipping engine may train the model in front of us, and why (the engine proof).

Our fast paths (:mod:`~governance.train.clipping.linear`, :mod:`~governance.train.clipping.sequential`)
compute each sample's gradient from what a layer sees in one forward pass: its input ``a`` and
its output gradient ``g``, with the batch in the first dimension. That is the per-sample
gradient only when

1. every trainable module is called exactly once per forward pass (a second call adds a second
   ``g aᵀ`` term whose cross terms the norm ``‖g‖²‖a‖²`` misses);
2. the first dimension of each trainable module's input is the batch (a Linear fed ``(T, n, d)``
   would mix samples across the clipped rows);
3. no parameter is shared between modules (its gradient would come from two places);
4. every trainable parameter sits in a layer the path has the per-sample maths for;
5. no parameter is used outside its own module (checked numerically where 1-4 hold: the fast
   path's summed, unclipped gradient of a small batch must equal autograd's). A model that fails
   this is refused outright: Opacus reads per-sample gradients from the same module hooks.

:func:`prove` checks these on the model itself before the first step: it traces the forward
pass with forward hooks on two batches of different sizes (so a sequence length or channel count
that happens to equal the batch size cannot pass as the batch), and for the ``fast`` path runs the
gradient comparison of (5). What is not proven runs Opacus: ghost clipping where every trainable
layer has an Opacus norm sampler and is called once with no sharing (its norms are per call), the
hooks otherwise (they accumulate per-sample gradients over calls and tied parameters), told where
the batch dimension is. A model whose trainable modules see the batch in no consistent dimension
cannot be trained privately at all.

Tests: ``tests/train/clipping/test_proof.py`` (the two leaks, frozen subsets, refusals) and the
generated-model differential test ``tests/train/clipping/test_generated_models.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

__all__ = ["EngineProof", "ModelTrace", "prove", "trace"]

#: Engines, as written to ``training.json`` (``privacy.engine``).
FUSED_MLP, FUSED_SEQUENTIAL, FAST = "fused-mlp", "fused-sequential", "fast"
OPACUS_GHOST, OPACUS_HOOKS = "opacus-ghost", "opacus-hooks"

#: Relative tolerance of the gradient comparison (float32 sums of a few samples).
GRADIENT_RTOL = 1e-4


@dataclass(frozen=True)
class ModelTrace:
    """What one traced forward pass per batch size showed about the trainable modules.

    ``calls``: module name → calls per forward; ``batch_dims``: module name → the input
    dimensions whose size was the batch size in both traces (empty: none); ``shared``: names of
    parameters held by more than one module; ``trainable``: trainable module names in order.
    """

    batch_sizes: tuple[int, int]
    trainable: tuple[str, ...]
    calls: Mapping[str, int]
    batch_dims: Mapping[str, tuple[int, ...]]
    shared: tuple[str, ...]
    #: module name → the number of dimensions of its input in each call of the first trace.
    ndims: Mapping[str, tuple[int, ...]] = field(default_factory=dict)

    def batch_dim(self) -> int | None:
        """The one dimension that is the batch in every trainable module's input (0 preferred),
        or None when there is no such dimension."""
        common: set[int] | None = None
        for name in self.trainable:
            if not self.calls[name]:
                continue  # never called: no input to look at (see ``unused``)
            dims = set(self.batch_dims.get(name, ()))
            common = dims if common is None else common & dims
        if not common:
            return None
        return 0 if 0 in common else min(common)

    @property
    def unused(self) -> tuple[str, ...]:
        """Trainable modules the forward pass never called: their per-sample gradient is zero."""
        return tuple(n for n in self.trainable if not self.calls[n])


@dataclass(frozen=True)
class EngineProof:
    """The engine chosen and the evidence: ``checks`` (name → passed) and, for each faster
    engine not admitted, why (``refused``)."""

    engine: str
    batch_first: bool
    checks: Mapping[str, Any]
    refused: Mapping[str, str] = field(default_factory=dict)
    #: Trainable modules never called in the forward pass. Opacus has no per-sample gradient for
    #: them and refuses to step, so the trainer freezes them for the run (their gradient is zero
    #: for every sample; freezing changes nothing but the noise they would get) and unfreezes them
    #: afterwards.
    unused: tuple[str, ...] = ()

    @property
    def grad_sample_mode(self) -> str:
        return {FUSED_MLP: "fused", FUSED_SEQUENTIAL: "fused", FAST: "fast"}.get(
            self.engine, self.engine.removeprefix("opacus-")
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "checks": dict(self.checks),
            "refused": dict(self.refused),
            "unused_modules_frozen": list(self.unused),
        }


def trace(model: nn.Module, batches: tuple[Any, Any]) -> ModelTrace:
    """Run ``model`` on two batches of different sizes under forward hooks (no gradients, the
    global RNG restored) and record what each trainable module saw."""
    import torch

    names = {id(m): name for name, m in model.named_modules()}
    trainable = [m for m in model.modules() if any(p.requires_grad for p in m.parameters(recurse=False))]
    owners: dict[int, list[str]] = {}
    for name, m in model.named_modules(remove_duplicate=False):
        for p_name, p in m.named_parameters(recurse=False):
            if p.requires_grad:
                owners.setdefault(id(p), []).append(f"{name}.{p_name}" if name else p_name)
    shared = tuple(sorted(n[0] for n in owners.values() if len(set(n)) > 1))
    sizes = tuple(int(_rows(b)) for b in batches)
    seen: list[dict[str, list[tuple[int, ...]]]] = []
    was_training = model.training
    with torch.random.fork_rng(devices=_cuda_devices(model)):  # dropout draws leave no trace
        for batch in batches:
            seen.append(_shapes_seen(model, batch, trainable, names))
            model.train(was_training)
    return _summarise(seen, sizes, trainable, names, shared)


def _cuda_devices(model: nn.Module) -> list[int]:
    return sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})


def _shapes_seen(
    model: nn.Module, batch: Any, trainable: list[nn.Module], names: Mapping[int, str]
) -> dict[str, list[tuple[int, ...]]]:
    """Input shapes of every call of each trainable module during one forward pass."""
    import torch

    shapes: dict[str, list[tuple[int, ...]]] = {names[id(m)]: [] for m in trainable}

    def record(module: nn.Module, inputs: tuple[Any, ...], _out: Any) -> None:
        first: Any = inputs[0] if inputs else None
        shapes[names[id(module)]].append(tuple(first.shape) if hasattr(first, "shape") else ())

    handles = [m.register_forward_hook(record) for m in trainable]
    try:
        with torch.no_grad():
            model(batch)
    finally:
        for handle in handles:
            handle.remove()
    return shapes


def _summarise(
    seen: list[dict[str, list[tuple[int, ...]]]],
    sizes: tuple[int, ...],
    trainable: list[nn.Module],
    names: Mapping[int, str],
    shared: tuple[str, ...],
) -> ModelTrace:
    calls: dict[str, int] = {}
    batch_dims: dict[str, tuple[int, ...]] = {}
    for m in trainable:
        name = names[id(m)]
        first, second = seen[0][name], seen[1][name]
        calls[name] = max(len(first), len(second))  # data-dependent calls count at their most
        dims: set[int] | None = None
        for shape_a, shape_b in zip(first, second):
            here = {
                d
                for d in range(min(len(shape_a), len(shape_b)))
                if shape_a[d] == sizes[0] and shape_b[d] == sizes[1]
            }
            dims = here if dims is None else dims & here
        batch_dims[name] = tuple(sorted(dims or ()))
    return ModelTrace(
        batch_sizes=(sizes[0], sizes[1]),
        trainable=tuple(names[id(m)] for m in trainable),
        calls=calls,
        batch_dims=batch_dims,
        shared=shared,
        ndims={names[id(m)]: tuple(len(shape) for shape in seen[0][names[id(m)]]) for m in trainable},
    )


def _rows(batch: Any) -> int:
    return int(batch.shape[0])


def prove(
    model: nn.Module,
    criterion: Any,
    batches: tuple[Any, Any],
    *,
    requested: str = "auto",
    fast_allowed: bool = True,
    gradient_check: Callable[[], str | None] | None = None,
) -> EngineProof:
    """Choose the fastest engine proven for ``model``, or raise for an explicit mode that fails.

    Parameters
    ----------
    model, criterion
        The model as it will be trained (after Opacus' module fixes) and its loss.
    batches
        Two input batches of different sizes (rows of the training data).
    requested
        ``grad_sample_mode``: ``auto`` takes the fastest proven engine; ``fused``/``fast``/
        ``ghost`` must be proven or :class:`ValueError` says why; ``hooks``, ``functorch``, ``ew``
        are Opacus' own modes and only need a batch dimension.
    fast_allowed
        False where the fast paths cannot run at all (``max_physical_batch_size``).
    gradient_check
        Runs check (5) for the ``fast`` path: None when it passed, else the reason.

    Raises
    ------
    ValueError
        An explicit mode the model does not satisfy, or no consistent batch dimension.
    """
    from governance.train.clipping.linear import clippable, supports_fused_mlp
    from governance.train.clipping.sequential import supports_fused_sequential

    seen = trace(model, batches)
    modules = dict(model.named_modules())
    batch_dim = seen.batch_dim()
    if batch_dim is None:
        lost = [n for n in seen.trainable if not seen.batch_dims.get(n) and seen.calls[n]] or list(
            seen.trainable
        )
        raise ValueError(
            f"cannot train privately: no input dimension of module {lost[0]!r} follows the batch size "
            f"(traced with batches of {seen.batch_sizes[0]} and {seen.batch_sizes[1]} rows)"
        )
    once = [n for n in seen.trainable if seen.calls[n] > 1]
    not_first = [n for n in seen.trainable if seen.calls[n] and 0 not in seen.batch_dims.get(n, ())]
    unsupported = [n for n in seen.trainable if not clippable(modules[n])]
    checks: dict[str, Any] = {
        "traced_batch_sizes": list(seen.batch_sizes),
        "trainable_modules": len(seen.trainable),
        "each_called_once": not once and not seen.unused,
        "batch_first": not not_first,
        "no_shared_parameters": not seen.shared,
        "all_layers_supported": not unsupported,
    }
    reasons: list[str] = []
    if not fast_allowed:
        reasons.append("max_physical_batch_size is set (the fast paths take whole batches)")
    if once:
        reasons.append(f"module {once[0]!r} is called {seen.calls[once[0]]} times per forward pass")
    if not_first:
        reasons.append(f"the input of module {not_first[0]!r} does not have the batch in its first dimension")
    if seen.shared:
        reasons.append(f"parameter {seen.shared[0]!r} is shared between modules")
    if seen.unused:
        reasons.append(f"module {seen.unused[0]!r} is never called in the forward pass")
    if unsupported:
        reasons.append(
            f"module {unsupported[0]!r} ({type(modules[unsupported[0]]).__name__}) has trainable "
            "parameters but no per-sample clipping in the fast paths (they cover Linear, LayerNorm, "
            "one-group zero-padded Conv2d, affine GroupNorm)"
        )
    refused: dict[str, str] = {}
    structural = "; ".join(reasons)
    fused_engine = None
    if supports_fused_mlp(model, criterion):
        fused_engine = FUSED_MLP
    elif supports_fused_sequential(model, criterion):
        fused_engine = FUSED_SEQUENTIAL
    from torch import nn

    fused_reason = structural
    if fused_engine is not None:
        # The fused steps' Linear takes (n, features) only; a Linear on (n, T, d) is the fast path's.
        flat = [n for n in seen.trainable if type(modules[n]) is nn.Linear and seen.ndims[n] != (2,)]
        if flat:
            fused_reason = fused_reason or f"the input of Linear {flat[0]!r} is not 2-D (rows, features)"
    if requested in ("auto", "fused"):
        if fused_engine is not None and not fused_reason:
            checks["fused_structure"] = fused_engine
            return EngineProof(fused_engine, True, checks, refused, seen.unused)
        refused["fused"] = fused_reason or (
            "the model is not an nn.Sequential of the fused steps' layers (Linear/ReLU, or Conv2d, "
            "GroupNorm, ReLU, AdaptiveAvgPool2d, Flatten, Linear) trained with plain cross-entropy"
        )
        if requested == "fused":
            raise ValueError(f"grad_sample_mode 'fused' is not proven for this model: {refused['fused']}")
    if requested in ("auto", "fast"):
        reason = structural
        if not reason and gradient_check is not None:
            failed = gradient_check()
            checks["gradient_matches_autograd"] = failed is None
            if failed:
                # Opacus' per-sample gradients come from the same module hooks: none is right.
                raise ValueError(f"cannot train privately: {failed}")
        if not reason:
            return EngineProof(FAST, True, checks, refused, seen.unused)
        refused["fast"] = reason
        if requested == "fast":
            raise ValueError(f"grad_sample_mode 'fast' is not proven for this model: {reason}")
    ghost_reason = _ghost_refusal(seen, modules, once, need_norm_samplers=requested == "auto")
    if requested in ("auto", "ghost") and not ghost_reason and batch_dim == 0:
        return EngineProof(OPACUS_GHOST, True, checks, refused, seen.unused)
    if requested == "ghost":
        raise ValueError(
            "grad_sample_mode 'ghost' is not proven for this model: "
            + (ghost_reason or "the batch is not the first dimension of every trainable module's input")
        )
    if requested == "auto":
        refused["ghost"] = ghost_reason or "the batch is not in the first dimension"
        return EngineProof(OPACUS_HOOKS, batch_dim == 0, checks, refused, seen.unused)
    return EngineProof(f"opacus-{requested}", batch_dim == 0, checks, refused, seen.unused)


def _ghost_refusal(
    seen: ModelTrace, modules: Mapping[str, Any], once: list[str], *, need_norm_samplers: bool
) -> str | None:
    """Why Opacus' ghost clipping cannot (or, for ``auto``, should not) train the model, or None.

    Its norm samplers keep one norm per parameter per step, the last call's, and it rejects tied
    parameters. Layers without a norm sampler (Conv2d, GroupNorm) materialise per-sample
    gradients and then pay ghost clipping's second backward pass on top: correct, but slower
    than the hooks (CNN on digits, CPU: 2.8x against 1.6x), so ``auto`` takes the hooks there."""
    from opacus.grad_sample.grad_sample_module_fast_gradient_clipping import (
        GradSampleModuleFastGradientClipping as Ghost,
    )

    if once:
        return f"module {once[0]!r} is called {seen.calls[once[0]]} times per forward pass"
    if seen.shared:
        return f"parameter {seen.shared[0]!r} is shared between modules"
    for name in seen.trainable if need_norm_samplers else ():
        if type(modules[name]) not in Ghost.NORM_SAMPLERS:
            return f"module {name!r} ({type(modules[name]).__name__}) has no Opacus norm sampler"
    return None


def sample_batches(dataset: Any, batch_size: int) -> tuple[Any, Any]:
    """Two input batches of different sizes from the first rows of ``dataset`` (the trace's)."""
    from torch.utils.data import default_collate

    rows = len(dataset)
    first = max(1, min(batch_size, rows, 8))
    second = first - 1 if first > 1 else min(2, rows)
    if second == first:
        raise ValueError("cannot prove a DP engine on a training set of one row")
    if hasattr(dataset, "gather"):
        return dataset.gather(list(range(first)))[0], dataset.gather(list(range(second)))[0]
    return (
        default_collate([dataset[i] for i in range(first)])[0],
        default_collate([dataset[i] for i in range(second)])[0],
    )


def fast_gradient_check(
    model: nn.Module, criterion: Any, batch: Any, target: Any
) -> Callable[[], str | None]:
    """Check (5) for the ``fast`` path: on ``batch``, its summed gradient with clipping and noise
    off must equal autograd's. Catches a parameter used outside its module (through
    ``module.weight`` in another module's forward), which no hook sees."""

    def check() -> str | None:
        import torch

        with torch.random.fork_rng(devices=_cuda_devices(model)):  # dropout draws leave no trace
            return _compare_gradients(model, criterion, batch, target)

    return check


def _compare_gradients(model: nn.Module, criterion: Any, batch: Any, target: Any) -> str | None:
    import torch

    from governance.train.clipping.linear import FastLinearClipping

    params = [p for p in model.parameters() if p.requires_grad]
    saved = [p.grad for p in params]
    was_training = model.training
    model.train()
    clipping = FastLinearClipping(
        model,
        torch.optim.SGD(params, lr=0.0),
        criterion,
        noise_multiplier=0.0,
        max_grad_norm=1e30,  # no clipping: the plain summed gradient
        expected_batch_size=1,
        generator=None,
    )
    try:
        losses = clipping(model(batch), target).losses
        expected = torch.autograd.grad(losses.sum(), params, retain_graph=True, allow_unused=True)
        clipping.backward(losses)
        wanted = [torch.zeros_like(p) if w is None else w for p, w in zip(params, expected)]
        # One scale for all: a bias before a normalisation has a gradient of rounding size.
        scale = max((float(w.abs().max()) for w in wanted if w.numel()), default=0.0)
        names = [n for n, p in model.named_parameters() if p.requires_grad]
        for name, p, want in zip(names, params, wanted):
            got = p.grad
            if got is None or not torch.allclose(
                got, want, rtol=GRADIENT_RTOL, atol=GRADIENT_RTOL * scale + 1e-12
            ):
                return f"parameter {name!r} gets gradient from outside its module's traced call"
        return None
    finally:
        clipping.close()
        model.train(was_training)
        for p, g in zip(params, saved):
            p.grad = g
