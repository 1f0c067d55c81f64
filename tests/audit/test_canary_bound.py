"""Steinke, Nasr & Jagielski's one-run bound (governance.audit.canary_bound) against independent
computations: the paper's own algorithm transcribed as a plain loop, scipy's binomial tail, the
closed form of an all-correct guess, and the bound's coverage on a mechanism that is exactly ε-DP."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from governance.audit.canary_bound import (
    epsilon_lower_bound,
    gaussian_ideal_scores,
    gdp_mu,
    guess_counts,
    one_run_bound,
    p_value,
    reference_bound,
)


def paper_p_value(m: int, r: int, v: int, eps: float, delta: float) -> float:
    """The paper's algorithm, line by line (its appendix's p-value of v correct guesses)."""
    q = 1 / (1 + math.exp(-eps))
    beta = stats.binom.sf(v - 1, r, q)
    alpha = 0.0
    total = 0.0
    for i in range(1, v + 1):
        total = total + stats.binom.pmf(v - i, r, q)
        if total > i * alpha:
            alpha = total / i
    return min(beta + alpha * delta * 2 * m, 1.0)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 2000).flatmap(
        lambda m: st.tuples(
            st.just(m),
            st.integers(0, m).flatmap(lambda r: st.tuples(st.just(r), st.integers(0, r))),
        )
    ),
    st.floats(0, 12),
    st.sampled_from([0.0, 1e-8, 1e-5, 1e-3]),
)
def test_p_value_is_the_papers_algorithm(mrv: tuple[int, tuple[int, int]], eps: float, delta: float) -> None:
    m, (r, v) = mrv
    assert p_value(m, r, v, eps, delta) == pytest.approx(
        paper_p_value(m, r, v, eps, delta), rel=1e-9, abs=1e-15
    )


def test_without_delta_the_p_value_is_the_binomial_tail() -> None:
    for r, v, eps in [(100, 80, 1.0), (1000, 700, 0.5), (50, 50, 3.0)]:
        q = math.exp(eps) / (1 + math.exp(eps))
        assert p_value(1000, r, v, eps, 0.0) == pytest.approx(float(stats.binom.sf(v - 1, r, q)), rel=1e-12)


@pytest.mark.parametrize("r", [10, 100, 1000])
def test_all_guesses_correct_without_delta_has_a_closed_form(r: int) -> None:
    """P[r of r correct] = q^r: the bound is the ε whose q = e^ε/(1+e^ε) makes q^r = β."""
    beta = 0.05
    q = beta ** (1 / r)
    assert epsilon_lower_bound(r, r, r, 0.0, beta) == pytest.approx(math.log(q / (1 - q)), rel=1e-9)


def test_the_bound_covers_an_exactly_eps_dp_mechanism() -> None:
    """Randomized response at ε makes each guess right with probability e^ε/(1+e^ε), the worst
    case the theorem allows: the 95% bound may exceed ε in at most about 5% of runs."""
    rng = np.random.default_rng(0)
    eps, r, runs = 1.0, 500, 400
    q = math.exp(eps) / (1 + math.exp(eps))
    over = sum(epsilon_lower_bound(r, r, int(rng.binomial(r, q)), 0.0, 0.05) > eps for _ in range(runs))
    # Binomial(400, 0.05) exceeds 32 with probability < 0.1%.
    assert over <= 32


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=2, max_size=60), st.data())
def test_guess_counts_match_brute_force(scores: list[float], data: st.DataObject) -> None:
    m = len(scores)
    included = data.draw(st.lists(st.booleans(), min_size=m, max_size=m))
    k_plus = data.draw(st.integers(0, m))
    k_minus = data.draw(st.integers(0, m - k_plus))
    order = sorted(range(m), key=lambda i: (scores[i], i))
    expected = sum(included[i] for i in order[m - k_plus :]) + sum(not included[i] for i in order[:k_minus])
    assert guess_counts(np.array(scores), np.array(included), k_plus, k_minus) == (k_plus + k_minus, expected)


def test_one_run_bound_pays_for_its_choice_of_k() -> None:
    """Perfect separation: every k guesses right, and each k's bound is taken at β / |grid|."""
    included = np.arange(1000) % 2 == 0
    scores = included.astype(float)
    grid = (10, 100, 500)
    bound = one_run_bound(scores, included, delta=0.0, beta=0.05, k_grid=grid)
    assert bound.confidence_per_k == pytest.approx(1 - 0.05 / 3)
    assert bound.k == 500 and bound.correct == 1000
    assert bound.epsilon == pytest.approx(epsilon_lower_bound(1000, 1000, 1000, 0.0, 0.05 / 3), rel=1e-12)
    assert [row["correct"] for row in bound.table] == [20, 200, 1000]


def test_uninformative_scores_give_no_evidence() -> None:
    rng = np.random.default_rng(1)
    included = rng.random(1000) < 0.5
    assert one_run_bound(rng.standard_normal(1000), included, delta=1e-5).epsilon < 0.5


def test_gdp_mu_is_exactly_eps_delta() -> None:
    """The Gaussian mechanism's (ε, δ) curve (Balle & Wang 2018) at the μ found."""
    for eps, delta in [(1.0, 1e-5), (4.0, 1e-5), (8.0, 1e-6)]:
        mu = gdp_mu(eps, delta)
        d = stats.norm.cdf(-eps / mu + mu / 2) - math.exp(eps) * stats.norm.cdf(-eps / mu - mu / 2)
        assert d == pytest.approx(delta, rel=1e-6)


def test_idealised_reference_is_below_the_claim_and_grows_with_it() -> None:
    """Steinke et al.'s idealised setting (their Fig. 2): m = 1000 canaries reach a fraction of ε,
    more for larger ε, and never more than ε."""
    figures = [reference_bound(eps, 1e-5, 1000, runs=9) for eps in (1.0, 2.0, 4.0, 8.0)]
    assert figures == sorted(figures)
    assert all(0 < f < eps for f, eps in zip(figures, (1.0, 2.0, 4.0, 8.0)))


def test_ideal_scores_have_the_promised_shape() -> None:
    scores, included = gaussian_ideal_scores(20000, 1.5, np.random.default_rng(2))
    assert scores[included].mean() - scores[~included].mean() == pytest.approx(1.5, abs=0.05)
    assert abs(included.mean() - 0.5) < 0.02
