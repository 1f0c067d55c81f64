"""Differential privacy through Opacus: settings, module fixes, per-sample mode, accounting.

Everything Opacus-specific the trainer needs sits here, so :mod:`governance.train.trainer`
reads as one training loop for plain and private training alike.

Per-sample gradient modes
-------------------------
``fused``
    A hand-written DP step, forward and backward without autograd, for ``nn.Sequential`` models
    trained with plain cross-entropy: Linear/ReLU MLPs (:class:`governance.train.clipping.linear.
    FusedMLPStep`) and conv nets (:class:`governance.train.clipping.sequential.FusedSequentialStep`).
``fast``
    Single-pass per-sample clipping (:class:`governance.train.clipping.linear.FastLinearClipping`) for
    any model of Linear, LayerNorm, Conv2d and GroupNorm layers (e.g. a transformer's top layers).
``ghost``
    Opacus' fast gradient clipping (``grad_sample_mode="ghost"``): per-sample gradient *norms*
    of ``Linear``/``Embedding`` layers from activations and backprops without materialising
    per-sample gradients, other layers through their per-sample gradient samplers, then a
    second backward pass with the clipping coefficients. Needs the criterion wrapped by
    ``make_private(criterion=...)``; we use it by default because it is the fast one.
``hooks``
    Opacus' classic mode (per-sample gradients through hooks), the fallback when ghost
    clipping does not support a layer (e.g. tied parameters).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "GRAD_SAMPLE_MODES",
    "PrivacySettings",
    "choose_grad_sample_mode",
    "epsilon_for",
    "fix_module",
    "max_steps_within",
    "supports_fast_clipping",
    "supports_fused",
]

#: Modes accepted in ``train.privacy.grad_sample_mode``. "auto": ``fused`` (a hand-written DP step:
#: governance.train.clipping.linear.FusedMLPStep for Sequential Linear/ReLU MLPs,
#: governance.train.clipping.sequential.FusedSequentialStep for Sequential conv nets) with cross-entropy,
#: ``fast`` (our single-pass ghost clipping) for other models of Linear, LayerNorm, Conv2d and
#: GroupNorm layers, else ghost or hooks.
GRAD_SAMPLE_MODES = ("auto", "fused", "fast", "ghost", "hooks", "functorch", "ew")
ACCOUNTANTS = ("prv", "rdp", "gdp")


@dataclass(frozen=True, kw_only=True)
class PrivacySettings:
    """What a researcher asks of DP training.

    Parameters
    ----------
    target_epsilon
        The privacy budget ε at ``delta``; the noise is calibrated to spend at most this over
        the planned epochs, and training stops early if the budget would be exceeded.
    delta
        δ; should be well below 1/rows.
    max_grad_norm
        Per-sample gradient clipping bound C.
    accountant
        ``prv`` (default, tight), ``rdp`` or ``gdp``.
    grad_sample_mode
        ``auto`` (``fused`` for Sequential Linear/ReLU MLPs and Sequential conv nets of Conv2d,
        GroupNorm, ReLU, AdaptiveAvgPool2d, Flatten and Linear layers, ``fast`` for other
        Linear/LayerNorm/conv models,
        else ghost clipping where every layer has an Opacus norm sampler, else hooks), ``fused``,
        ``fast``, ``ghost``, ``hooks``, ``functorch``, ``ew``.
    noise_multiplier
        Use this σ instead of calibrating from ``target_epsilon`` (benchmarks, tests, resume).
    poisson_sampling
        Poisson (uniform with replacement) batch sampling, which the accountants assume.

    Examples
    --------
    >>> PrivacySettings(target_epsilon=3.0, delta=1e-5, max_grad_norm=1.0).accountant
    'prv'
    """

    target_epsilon: float
    delta: float = 1e-5
    max_grad_norm: float = 1.0
    accountant: str = "prv"
    grad_sample_mode: str = "auto"
    noise_multiplier: float | None = None
    poisson_sampling: bool = True

    def __post_init__(self) -> None:
        if not self.target_epsilon > 0:
            raise ValueError(f"target_epsilon must be > 0, got {self.target_epsilon}")
        if not 0 < self.delta < 1:
            raise ValueError(f"delta must be in (0, 1), got {self.delta}")
        if not self.max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be > 0, got {self.max_grad_norm}")
        if self.accountant not in ACCOUNTANTS:
            raise ValueError(f"accountant must be one of {ACCOUNTANTS}, got {self.accountant!r}")
        if self.grad_sample_mode not in GRAD_SAMPLE_MODES:
            raise ValueError(
                f"grad_sample_mode must be one of {GRAD_SAMPLE_MODES}, got {self.grad_sample_mode!r}"
            )
        if self.noise_multiplier is not None and self.noise_multiplier < 0:
            raise ValueError(f"noise_multiplier must be >= 0, got {self.noise_multiplier}")


@dataclass(frozen=True)
class ModuleFixReport:
    """What ``ModuleValidator.fix`` changed (e.g. BatchNorm → GroupNorm), for the user."""

    problems: tuple[str, ...] = field(default_factory=tuple)

    @property
    def fixed(self) -> bool:
        return bool(self.problems)


def fix_module(model: nn.Module) -> tuple[nn.Module, ModuleFixReport]:
    """Make ``model`` Opacus-compatible, returning the (possibly new) module and what changed.

    Raises
    ------
    ValueError
        When Opacus cannot fix a problem itself.
    """
    from opacus.validators import ModuleValidator

    problems = ModuleValidator.validate(model, strict=False)
    if not problems:
        return model, ModuleFixReport()
    fixed = ModuleValidator.fix(model)
    remaining = ModuleValidator.validate(fixed, strict=False)
    if remaining:
        raise ValueError(f"model cannot be trained privately: {remaining[0]}")
    return fixed, ModuleFixReport(tuple(sorted({str(p) for p in problems})))


def choose_grad_sample_mode(model: nn.Module, requested: str) -> str:
    """Resolve ``auto``: ghost clipping where it pays, else Opacus' hooks.

    Ghost clipping computes per-sample gradient norms without per-sample gradients only for
    layers with an Opacus norm sampler (``Linear``, ``Embedding``); other layers (``Conv2d``,
    ``GroupNorm``) still materialise per-sample gradients and then pay ghost clipping's second
    backward pass on top, which measured slower than hooks (CNN on digits, CPU: 2.8x vs 1.6x
    the non-private time). So ``auto`` picks ghost when every parameterised layer has a norm
    sampler and no parameter is shared (Opacus' ghost mode rejects tying), hooks otherwise.
    """
    if requested != "auto":
        return requested
    from opacus.grad_sample.grad_sample_module_fast_gradient_clipping import (
        GradSampleModuleFastGradientClipping as Ghost,
    )

    seen: set[int] = set()
    for module in model.modules():
        own = [p for p in module.parameters(recurse=False) if p.requires_grad]
        if own and type(module) not in Ghost.NORM_SAMPLERS:
            return "hooks"
        for p in own:
            if id(p) in seen:
                return "hooks"
            seen.add(id(p))
    return "ghost"


def supports_fast_clipping(model: nn.Module) -> bool:
    """Whether :mod:`governance.train.clipping.linear` can train ``model`` (every parameter in a Linear,
    LayerNorm, one-group zero-padded Conv2d or GroupNorm)."""
    from governance.train.clipping.linear import supports_fast_clipping as supports

    return supports(model)


def supports_fused(model: nn.Module, criterion: Any) -> bool:
    """Whether a hand-written fused step can train ``model``: FusedMLPStep (Sequential
    Linear/ReLU) or FusedSequentialStep (Sequential convolutional nets), with cross-entropy."""
    from governance.train.clipping.linear import supports_fused_mlp
    from governance.train.clipping.sequential import supports_fused_sequential

    return supports_fused_mlp(model, criterion) or supports_fused_sequential(model, criterion)


def epsilon_for(history: Sequence[tuple[float, float, int]], delta: float, accountant: str = "prv") -> float:
    """ε spent by a list of (noise_multiplier, sample_rate, steps) at ``delta``.

    For PRV this is Opacus' upper bound (``eps_upper``), never its point estimate. Results are
    memoised per (merged history, δ, accountant): a PRV ε takes 0.3-1 s and a few MB of work
    arrays, and training asks for the same histories again (the epoch's projection, then the
    ledger's ε of the history actually spent).
    """
    if not history or all(steps == 0 for _, _, steps in history):
        return 0.0
    # Merge consecutive runs of the same (σ, q) as Opacus' accountants do when they step, so
    # that a projected history and the one actually spent give the same number.
    merged: list[tuple[float, float, int]] = []
    for s, q, n in history:
        if n <= 0:
            continue
        if merged and merged[-1][0] == float(s) and merged[-1][1] == float(q):
            merged[-1] = (float(s), float(q), merged[-1][2] + int(n))
        else:
            merged.append((float(s), float(q), int(n)))
    return _epsilon(tuple(merged), float(delta), accountant)


@lru_cache(maxsize=256)
def _epsilon(merged: tuple[tuple[float, float, int], ...], delta: float, accountant: str) -> float:
    import scipy.fft
    from opacus.accountants import create_accountant

    acc: Any = create_accountant(mechanism=accountant)
    acc.history = list(merged)
    # The PRV accountant composes with scipy.fft, whose pocketfft keeps the plans (twiddle
    # factors) of its last 16 transform sizes for the life of the process: after the trainer's
    # projections that held 7 MB, a third of what DP added to the built-in CNN's peak memory.
    # numpy.fft computes the same transforms (both are pocketfft) without keeping them.
    with scipy.fft.set_backend(_NumpyFFT):
        return float(acc.get_epsilon(delta=delta))


class _NumpyFFT:
    """A ``scipy.fft`` backend (its documented uarray protocol) that computes with ``numpy.fft``;
    scipy-only arguments (``workers``, ``overwrite_x``, ``plan``) are dropped."""

    __ua_domain__ = "numpy.scipy.fft"
    _KEEP = frozenset({"n", "s", "axis", "axes", "norm"})

    @classmethod
    def __ua_function__(cls, method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        import numpy as np

        function = getattr(np.fft, method.__name__, None)
        # Past (x, n or s, axis or axes, norm) the positional parameters differ (numpy: out).
        if function is None or len(args) > 4:
            return NotImplemented  # scipy's own implementation runs instead
        return function(*args, **{k: v for k, v in kwargs.items() if k in cls._KEEP})


def planned_epsilons(
    history: Sequence[tuple[float, float, int]],
    noise_multiplier: float,
    sample_rate: float,
    steps_per_epoch: int,
    epochs: int,
    *,
    target_epsilon: float,
    delta: float,
    accountant: str = "prv",
) -> list[float]:
    """ε after each of the next ``epochs`` full epochs, stopping after the first over the target.

    The trainer calls this before its first step so that the accountant's work arrays come and
    go before training allocates anything (peak memory is then the larger of the two, not their
    sum); the values land in :func:`epsilon_for`'s memo, where each epoch's projection and the
    ledger find them. The freed arrays are then handed back to the operating system: glibc keeps
    freed heap memory by default, and that alone added 8 MB (a third) to the peak resident
    memory of the benchmark MLP's DP training.
    """
    out: list[float] = []
    for k in range(1, epochs + 1):
        out.append(
            epsilon_for([*history, (noise_multiplier, sample_rate, k * steps_per_epoch)], delta, accountant)
        )
        if out[-1] > target_epsilon:
            break
    _return_freed_memory()
    return out


def _return_freed_memory() -> None:
    """``malloc_trim(0)`` where the C library has it (glibc); elsewhere nothing."""
    import ctypes

    try:
        trim = ctypes.CDLL(None).malloc_trim  # the process's own symbols: libc on Linux
    except (OSError, AttributeError, TypeError):
        return
    trim(0)


def max_steps_within(
    history: Sequence[tuple[float, float, int]],
    noise_multiplier: float,
    sample_rate: float,
    limit: int,
    *,
    target_epsilon: float,
    delta: float,
    accountant: str = "prv",
) -> int:
    """The most further steps (≤ ``limit``) that keep the spent ε at or below the target."""
    if epsilon_for([*history, (noise_multiplier, sample_rate, limit)], delta, accountant) <= target_epsilon:
        return limit
    low, high = 0, limit  # ε(low) ≤ target < ε(high)
    while high - low > 1:
        mid = (low + high) // 2
        if epsilon_for([*history, (noise_multiplier, sample_rate, mid)], delta, accountant) <= target_epsilon:
            low = mid
        else:
            high = mid
    return low
