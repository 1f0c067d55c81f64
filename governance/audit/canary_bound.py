"""The one-run ε lower bound of Steinke, Nasr & Jagielski (2023), "Privacy Auditing with One (1)
Training Run" (NeurIPS 2023, arXiv:2305.08846).

The game: m canaries are each included in training independently with probability ½. After the
run the auditor ranks the canaries by a score, guesses "included" for the ``k_plus`` highest,
"excluded" for the ``k_minus`` lowest and abstains on the rest. Under (ε, δ)-DP the number of
correct guesses ``v`` out of ``r = k_plus + k_minus`` is stochastically dominated by
``Binomial(r, e^ε / (1 + e^ε))`` up to a δ term (their Theorem 5.2); the p-value below is the
paper's Algorithm for it (the binomial tail plus ``2·m·δ·α``, with ``α`` the largest average of
the binomial's mass just below ``v``). The ε lower bound at confidence ``1 − β`` is the largest ε
whose p-value stays below ``β``, found by bisection as in the paper.

Choosing the number of guesses after seeing the scores would spend the confidence several times
over, so :func:`one_run_bound` tries a fixed grid of ``k`` (``k_plus = k_minus = k``) and runs
each at ``β / len(grid)`` (Bonferroni): the maximum over the grid then holds at ``1 − β``.

Pure numpy/scipy; no torch. Tests: ``tests/audit/test_canary_bound.py``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "DEFAULT_K_GRID",
    "CanaryBound",
    "epsilon_lower_bound",
    "gaussian_ideal_scores",
    "gdp_mu",
    "guess_counts",
    "one_run_bound",
    "p_value",
    "reference_bound",
]

#: Guesses per side tried by :func:`one_run_bound` (capped at m // 2); each at β / len(grid).
DEFAULT_K_GRID = (10, 25, 50, 100, 200, 300, 500)
#: Bisection steps: ε to within 2⁻⁴⁰ of the bracket, far below any figure we print.
_BISECTION_STEPS = 40


def p_value(m: int, r: int, v: int, epsilon: float, delta: float) -> float:
    """P[at least ``v`` of ``r`` guesses correct] under (ε, δ)-DP with ``m`` canaries (an upper
    bound on it: Steinke et al. 2023, Theorem 5.2 and its algorithm)."""
    from scipy import stats

    if not 0 <= v <= r <= m:
        raise ValueError(f"need 0 <= v <= r <= m, got v={v}, r={r}, m={m}")
    if epsilon < 0 or not 0 <= delta <= 1:
        raise ValueError(f"need epsilon >= 0 and 0 <= delta <= 1, got {epsilon}, {delta}")
    q = 1.0 / (1.0 + math.exp(-epsilon))  # accuracy of ε-DP randomized response
    beta = float(stats.binom.sf(v - 1, r, q))  # P[Binomial(r, q) >= v]
    if v == 0 or delta == 0:
        return min(1.0, beta)
    # α = max_i P[v > Binomial(r, q) >= v − i] / i, i = 1..v
    mass_below = np.cumsum(stats.binom.pmf(np.arange(v - 1, -1, -1), r, q))
    alpha = float(np.max(mass_below / np.arange(1, v + 1)))
    return min(1.0, beta + alpha * delta * 2 * m)


def epsilon_lower_bound(m: int, r: int, v: int, delta: float, beta: float = 0.05) -> float:
    """The largest ε whose p-value for ``v`` correct guesses out of ``r`` is below ``beta``
    (0 when even ε = 0 cannot be rejected)."""
    if not 0 < beta < 1:
        raise ValueError(f"beta must be in (0, 1), got {beta}")
    if p_value(m, r, v, 0.0, delta) >= beta:
        return 0.0
    low, high = 0.0, 1.0
    while p_value(m, r, v, high, delta) < beta:
        low, high = high, high * 2
        if high > 1e4:  # only with δ = 0 and v = r = m huge; never for a real run
            return math.inf
    for _ in range(_BISECTION_STEPS):
        mid = (low + high) / 2
        if p_value(m, r, v, mid, delta) < beta:
            low = mid
        else:
            high = mid
    return low


def guess_counts(scores: np.ndarray, included: np.ndarray, k_plus: int, k_minus: int) -> tuple[int, int]:
    """(guesses, correct guesses): "included" for the ``k_plus`` highest scores, "excluded" for
    the ``k_minus`` lowest, abstain on the rest. Ties are broken by canary index (the scores
    carry no information about the index, so this is as good as random)."""
    scores = np.asarray(scores, dtype=np.float64)
    included = np.asarray(included, dtype=bool)
    if scores.shape != included.shape or scores.ndim != 1:
        raise ValueError("scores and included must be 1-D and of the same length")
    m = len(scores)
    if k_plus < 0 or k_minus < 0 or k_plus + k_minus > m:
        raise ValueError(f"need k_plus + k_minus <= m = {m}, got {k_plus} + {k_minus}")
    order = np.argsort(scores, kind="stable")  # ascending
    top = order[m - k_plus :] if k_plus else order[:0]
    bottom = order[:k_minus]
    correct = int(included[top].sum()) + int((~included[bottom]).sum())
    return k_plus + k_minus, correct


@dataclass(frozen=True)
class CanaryBound:
    """The bound and how it was reached (every k tried, for the report)."""

    epsilon: float
    canaries: int
    included: int
    guesses: int
    correct: int
    k: int
    delta: float
    confidence: float
    #: Confidence of each k's own bound (Bonferroni over the grid).
    confidence_per_k: float
    #: One row per k tried: k, guesses, correct, epsilon (at confidence_per_k).
    table: tuple[dict[str, float], ...] = field(default=())

    def to_dict(self) -> dict[str, object]:
        return {
            "epsilon_lower_bound": self.epsilon,
            "canaries": self.canaries,
            "included": self.included,
            "guesses": self.guesses,
            "correct": self.correct,
            "k": self.k,
            "delta": self.delta,
            "confidence": self.confidence,
            "confidence_per_k": self.confidence_per_k,
            "per_k": [dict(row) for row in self.table],
        }


def one_run_bound(
    scores: Sequence[float] | np.ndarray,
    included: Sequence[bool] | np.ndarray,
    *,
    delta: float,
    beta: float = 0.05,
    k_grid: Sequence[int] = DEFAULT_K_GRID,
) -> CanaryBound:
    """Steinke et al.'s bound at confidence ``1 − beta`` from one run's canary scores: the best
    k of ``k_grid`` (guess k per side), each k at ``beta / len(grid)``."""
    scores_a = np.asarray(scores, dtype=np.float64)
    included_a = np.asarray(included, dtype=bool)
    m = len(scores_a)
    if m < 2:
        raise ValueError(f"need at least 2 canaries, got {m}")
    if not np.all(np.isfinite(scores_a)):
        raise ValueError("canary scores must be finite")
    grid = sorted({min(int(k), m // 2) for k in k_grid if int(k) >= 1})
    per_k_beta = beta / len(grid)
    rows: list[dict[str, float]] = []
    best: dict[str, float] | None = None
    for k in grid:
        r, v = guess_counts(scores_a, included_a, k, k)
        eps = epsilon_lower_bound(m, r, v, delta, per_k_beta)
        row = {"k": k, "guesses": r, "correct": v, "epsilon": eps}
        rows.append(row)
        if best is None or eps > best["epsilon"]:
            best = row
    assert best is not None
    return CanaryBound(
        epsilon=float(best["epsilon"]),
        canaries=m,
        included=int(included_a.sum()),
        guesses=int(best["guesses"]),
        correct=int(best["correct"]),
        k=int(best["k"]),
        delta=float(delta),
        confidence=1 - beta,
        confidence_per_k=1 - per_k_beta,
        table=tuple(rows),
    )


def gaussian_ideal_scores(m: int, mu: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The paper's idealised setting: each canary included w.p. ½, its score ``N(μ, 1)`` when
    included and ``N(0, 1)`` when not (a μ-GDP mechanism per canary). For the report's reference
    figures and the tests."""
    included = rng.random(m) < 0.5
    return rng.standard_normal(m) + mu * included, included


def gdp_mu(epsilon: float, delta: float) -> float:
    """The μ of the Gaussian mechanism (μ-GDP) that is exactly (ε, δ)-DP: the idealised canary
    of a mechanism claiming (ε, δ) (Dong, Roth & Su 2022, Corollary 2.13)."""
    from scipy import optimize, stats

    def excess(mu: float) -> float:
        return (
            float(
                stats.norm.cdf(-epsilon / mu + mu / 2)
                - math.exp(epsilon) * stats.norm.cdf(-epsilon / mu - mu / 2)
            )
            - delta
        )

    return float(optimize.brentq(excess, 1e-6, 100.0))


def reference_bound(
    epsilon: float, delta: float, m: int, *, beta: float = 0.05, runs: int = 25, seed: int = 0
) -> float:
    """The median bound the game reaches in the paper's idealised setting (every canary a
    Gaussian mechanism exactly at the claimed (ε, δ), :func:`gaussian_ideal_scores`): the best a
    one-run audit with ``m`` canaries can show for an honest mechanism, the yardstick the report
    puts beside our bound (Steinke et al. 2023, Fig. 2 plots the same curve)."""
    rng = np.random.default_rng(seed)
    mu = gdp_mu(epsilon, delta)
    bounds = [
        one_run_bound(*gaussian_ideal_scores(m, mu, rng), delta=delta, beta=beta).epsilon for _ in range(runs)
    ]
    return float(np.median(bounds))
