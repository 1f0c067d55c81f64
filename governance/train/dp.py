"""Differential privacy through Opacus: settings, module fixes, per-sample mode, accounting.

Everything Opacus-specific the trainer needs sits here, so :mod:`governance.train.trainer`
reads as one training loop for plain and private training alike.

Per-sample gradient modes (which one may run on a model: :mod:`governance.train.clipping.proof`)
-------------------------------------------------------------------------------------------------
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
    "epsilon_for",
    "fix_module",
    "max_steps_within",
    "supports_fast_clipping",
    "supports_fused",
]

#: Modes accepted in ``train.privacy.grad_sample_mode``. "auto": the fastest engine the engine proof
#: (governance.train.clipping.proof) admits for the model: ``fused`` (a hand-written DP step for
#: Sequential Linear/ReLU MLPs and Sequential conv nets trained with cross-entropy), ``fast``
#: (single-pass clipping of Linear, LayerNorm, Conv2d and GroupNorm layers), else Opacus' ghost
#: clipping or hooks. An explicit mode the proof does not admit is refused with its reason.
GRAD_SAMPLE_MODES = ("auto", "fused", "fast", "ghost", "hooks", "functorch", "ew")
#: Accountants: both give upper bounds on ε. Opacus' ``gdp`` is refused: its CLT approximation
#: reported ε below the tight value (by 16 % at σ 0.6) and read only the last history entry.
ACCOUNTANTS = ("prv", "rdp")
#: The largest ε a run may target: the accountants' work grows with ε (an ε of 10⁴ took more than
#: ten minutes and 3.6 GB to calibrate), and beyond 100 the guarantee means nothing.
MAX_TARGET_EPSILON = 100.0


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
        ``prv`` (default, tight) or ``rdp``.
    grad_sample_mode
        ``auto`` (``fused`` for Sequential Linear/ReLU MLPs and Sequential conv nets of Conv2d,
        GroupNorm, ReLU, AdaptiveAvgPool2d, Flatten and Linear layers, ``fast`` for other
        Linear/LayerNorm/conv models,
        else ghost clipping where every layer has an Opacus norm sampler, else hooks), ``fused``,
        ``fast``, ``ghost``, ``hooks``, ``functorch``, ``ew``.
    noise_multiplier
        Use this σ (> 0) instead of calibrating from ``target_epsilon`` (benchmarks, tests,
        resume).
    poisson_sampling
        Poisson batch sampling, which the accountants assume; must stay True (another
        sampling would be accounted as if it were Poisson).
    reproducible_noise
        Draw the Gaussian noise from the trainer's ``seed`` (research reruns only: anyone who
        holds the seed can replay every draw and subtract it, so the guarantee does not hold
        against them). Default False: the noise generator is seeded from OS entropy and that
        seed is never written, logged or returned.

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
    reproducible_noise: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.target_epsilon <= MAX_TARGET_EPSILON:
            raise ValueError(
                f"target_epsilon must be in (0, {MAX_TARGET_EPSILON:g}], got {self.target_epsilon}"
            )
        if not self.poisson_sampling:
            raise ValueError(
                "poisson_sampling must be true: the accountants' ε holds only for Poisson sampling"
            )
        if not 0 < self.delta < 1:
            raise ValueError(f"delta must be in (0, 1), got {self.delta}")
        if not self.max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be > 0, got {self.max_grad_norm}")
        if self.accountant not in ACCOUNTANTS:
            raise ValueError(f"accountant must be one of {', '.join(ACCOUNTANTS)}, got {self.accountant!r}")
        if self.grad_sample_mode not in GRAD_SAMPLE_MODES:
            raise ValueError(
                f"grad_sample_mode must be one of {GRAD_SAMPLE_MODES}, got {self.grad_sample_mode!r}"
            )
        if self.noise_multiplier is not None and not self.noise_multiplier > 0:
            raise ValueError(
                f"noise_multiplier must be > 0 for private training (σ 0 gives no privacy), "
                f"got {self.noise_multiplier}"
            )


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

    For PRV this is Opacus' upper bound (``eps_upper``), never its point estimate, with an error
    allowance of 0.01, or 0.1 % of the RDP ε above ε 10 (:data:`PRV_EXACT_UP_TO`). Results are
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


#: Above this ε the PRV accountant's absolute error allowance grows with ε (a relative
#: allowance of :data:`PRV_RELATIVE_ERROR`): its discretisation mesh otherwise grows with ε, and
#: one ε of 100 over 3,000 steps took 6-20 s instead of under one. The result stays an upper bound.
PRV_EXACT_UP_TO = 10.0
PRV_RELATIVE_ERROR = 1e-3


@lru_cache(maxsize=256)
def _epsilon(merged: tuple[tuple[float, float, int], ...], delta: float, accountant: str) -> float:
    from opacus.accountants import create_accountant

    if accountant == "rdp":
        return _rdp_epsilon(merged, delta)
    acc: Any = create_accountant(mechanism=accountant)
    acc.history = list(merged)
    if accountant != "prv":
        return float(acc.get_epsilon(delta=delta))
    rough = _epsilon(merged, delta, "rdp")  # an upper bound on the PRV ε, in microseconds
    eps_error = max(0.01, PRV_RELATIVE_ERROR * rough) if rough > PRV_EXACT_UP_TO else 0.01
    import scipy.fft

    # scipy.fft's pocketfft keeps the plans of its last 16 transform sizes for the life of the
    # process; numpy.fft computes the same transforms without keeping them (docs/PERFORMANCE.md).
    with scipy.fft.set_backend(_NumpyFFT):
        return float(acc.get_epsilon(delta=delta, eps_error=eps_error))


def _rdp_epsilon(merged: tuple[tuple[float, float, int], ...], delta: float) -> float:
    """Opacus' ``RDPAccountant.get_epsilon`` for ``merged``, bit for bit, from each (σ, q)'s RDP of
    one step: Opacus computes ``compute_rdp(q, σ, steps)`` as the one-step RDP times ``steps`` in
    pure Python over 150 orders per call, and planning a run asks for the ε after every epoch
    (``tests/train/test_dp.py`` holds the two equal)."""
    from opacus.accountants.analysis import rdp as analysis

    rdp = sum([_rdp_of_one_step(sigma, q) * steps for sigma, q, steps in merged])
    epsilon, _ = analysis.get_privacy_spent(orders=RDP_ORDERS, rdp=rdp, delta=delta)
    return float(epsilon)


#: Opacus' ``RDPAccountant.DEFAULT_ALPHAS``, the orders its ``get_epsilon`` uses.
RDP_ORDERS: list[float] = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))


@lru_cache(maxsize=256)
def _rdp_of_one_step(sigma: float, sample_rate: float) -> Any:
    """The sampled Gaussian mechanism's RDP at :data:`RDP_ORDERS` for one step (read-only)."""
    from opacus.accountants.analysis import rdp as analysis

    rdp = analysis.compute_rdp(q=sample_rate, noise_multiplier=sigma, steps=1, orders=RDP_ORDERS)
    rdp.setflags(write=False)
    return rdp


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


def calibrate_noise(
    *, target_epsilon: float, delta: float, sample_rate: float, steps: int, accountant: str = "prv"
) -> float:
    """The σ that spends at most ``target_epsilon`` at ``delta`` over exactly ``steps`` steps.

    Bisection on the RDP ε first (milliseconds per evaluation; RDP is an upper bound, so its σ is
    always safe), then, for ``prv``, a few regula-falsi steps on ``log ε`` against ``log σ``
    below that σ with a coarse PRV bound (error allowance 0.5 % of the target), keeping the
    smallest σ whose bound is at most the target, until it is within 2 % of it (at most
    :data:`CALIBRATION_PRV_EVALUATIONS` evaluations). Opacus' ``get_noise_multiplier`` bisects
    with the fine PRV bound alone to an absolute 0.01: 20-180 s at ε 100 here, where this takes
    a few seconds for any accepted target (:data:`MAX_TARGET_EPSILON`); see
    ``tests/train/test_accounting.py``.
    """
    import math

    coarse = max(0.01, 0.005 * target_epsilon)

    def rdp(sigma: float) -> float:
        return epsilon_for([(sigma, sample_rate, steps)], delta, "rdp")

    def prv(sigma: float) -> float:
        return _prv_epsilon(sigma, sample_rate, steps, delta, coarse)

    measure = rdp
    if accountant == "prv" and rdp(64.0) > target_epsilon:
        measure = prv  # below RDP's floor (log(1/δ)/(α_max - 1)): PRV alone
    low, high = 1e-3, 1.0
    while measure(high) > target_epsilon:
        low, high = high, high * 2
        if high > 1e5:
            raise ValueError(f"no noise multiplier reaches ε {target_epsilon} at δ {delta}")
    while (high - low) / high > (1e-3 if measure is rdp else 1e-2):
        mid = 0.5 * (low + high)
        if measure(mid) > target_epsilon:
            low = mid
        else:
            high = mid
    if accountant != "prv" or measure is prv:
        return high
    # PRV is tighter. (σ_ok, ε_ok): the smallest σ known to spend at most the target.
    sigma_ok, eps_ok = high, prv(high)
    while eps_ok > target_epsilon:  # PRV's error allowance can exceed RDP's slack
        sigma_ok *= 1.02
        eps_ok = prv(sigma_ok)
    sigma_bad, eps_bad = 0.0, math.inf
    for _ in range(CALIBRATION_PRV_EVALUATIONS):
        if eps_ok >= 0.98 * target_epsilon:
            break
        if sigma_bad == 0.0:
            guess = sigma_ok * eps_ok / (0.99 * target_epsilon)  # ε ≈ 1/σ
        else:
            slope = math.log(eps_bad / eps_ok) / math.log(sigma_bad / sigma_ok)
            guess = sigma_ok * math.exp(math.log(0.99 * target_epsilon / eps_ok) / slope)
            span = sigma_ok - sigma_bad
            guess = min(max(guess, sigma_bad + 0.05 * span), sigma_ok - 0.05 * span)
        value = prv(guess)
        if value <= target_epsilon:
            sigma_ok, eps_ok = guess, value
        else:
            sigma_bad, eps_bad = guess, value
    return sigma_ok


@lru_cache(maxsize=64)
def _prv_epsilon(sigma: float, sample_rate: float, steps: int, delta: float, eps_error: float) -> float:
    from opacus.accountants import create_accountant

    acc: Any = create_accountant(mechanism="prv")
    acc.history = [(sigma, sample_rate, steps)]
    return float(acc.get_epsilon(delta=delta, eps_error=eps_error))


#: PRV evaluations :func:`calibrate_noise` may spend refining the RDP σ.
CALIBRATION_PRV_EVALUATIONS = 6


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
    ledger find them. The freed arrays are then handed back to the operating system.
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
    """``malloc_trim(0)`` where the C library has it (glibc); elsewhere nothing. glibc keeps the
    accountant's freed work arrays otherwise (docs/PERFORMANCE.md)."""
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
