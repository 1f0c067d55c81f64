"""Gradient canaries through every DP engine (governance.train.canaries, issue 18).

What a canary's score must be, whatever engine clips and noises it: after the real rows'
contribution is subtracted, the noise plus exactly C per step in which the canary was sampled
(its raw gradient is gradient_norm × C; the engine's clipping brings it to C). So in units of C/B
an excluded canary's score is N(0, σ²T) and an included one's is shifted by its sampled steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from governance.canary_options import CanaryOptions
from governance.train.canaries import CANARY_ENGINES, CanaryError, GradientCanaries
from governance.train.trainer import PrivacySettings, Trainer
from tests.train import canary_harness as h


def _scores(ledger: dict) -> tuple[np.ndarray, np.ndarray]:
    canaries = ledger["privacy"]["canaries"]
    return np.asarray(canaries["scores"]), np.asarray(canaries["included"])


class _NotSequential(nn.Module):
    """The MLP outside nn.Sequential: the proof admits the (unfused) fast path."""

    def __init__(self) -> None:
        super().__init__()
        self.net = h.mlp()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "engine"),
    [("auto", "fused-mlp"), ("fast", "fast"), ("hooks", "opacus-hooks"), ("ghost", "opacus-ghost")],
)
def test_each_engine_clips_the_canary_to_c_and_the_scores_are_noise_plus_signal(
    mode: str, engine: str
) -> None:
    result = h.run(0, 8.0, model=_NotSequential() if mode == "fast" else None, mode=mode)
    assert result.engine == engine
    privacy = result.ledger["privacy"]
    scores, included = _scores(result.ledger)
    steps = privacy["steps"]
    spread = privacy["noise_multiplier"] * np.sqrt(steps)  # σ√T in units of C/B
    # Excluded: pure noise (the real rows' contribution was subtracted exactly).
    assert abs(scores[~included].mean()) < 4 * spread / np.sqrt((~included).sum())
    assert scores[~included].std() == pytest.approx(spread, rel=0.15)
    # Included, q = 1: exactly C in each of the T steps, i.e. T in these units (10 × C unclipped).
    shift = scores[included].mean() - scores[~included].mean()
    assert shift == pytest.approx(steps, abs=4 * spread * np.sqrt(2 / (len(scores) / 2)))


def test_without_noise_a_canary_scores_exactly_its_clipped_steps() -> None:
    """The fused step with its noise removed (a fault from canary_harness): every included canary
    reached its coordinate with exactly C in each of the T full-batch steps, every excluded one 0."""
    with h.noise_scaled(0.0):
        result = h.run(0, 2.0)
    scores, included = _scores(result.ledger)
    steps = result.ledger["privacy"]["steps"]
    np.testing.assert_allclose(scores[included], steps, rtol=1e-4)
    np.testing.assert_allclose(scores[~included], 0.0, atol=1e-4)


def test_poisson_sampling_draws_canaries_like_rows_and_scores_them_by_likelihood_ratio() -> None:
    """q = 1/4, the fused step's noise removed: x_t is exactly 1 in a step where the canary was
    drawn and 0 otherwise, so a score is n·f(1) + (T − n)·f(0) with f the per-step log-likelihood
    ratio of the subsampled Gaussian and n the canary's sampled steps; the n of the included
    canaries add up to the canary rows the run added, about q·T each."""
    x, y = h.data(0)
    trainer = Trainer(
        model=h.mlp(),
        train_data=(x, y),
        privacy=PrivacySettings(target_epsilon=8.0, delta=h.DELTA, max_grad_norm=1.0),
        epochs=3,
        batch_size=h.ROWS // 4,
        lr=0.1,
        seed=0,
        canaries=CanaryOptions(count=1000),
    )
    with h.noise_scaled(0.0):
        ledger = trainer.fit().ledger
    canaries = ledger["privacy"]["canaries"]
    q, sigma, steps = canaries["sample_rate"], canaries["noise_multiplier"], ledger["privacy"]["steps"]
    assert q == pytest.approx(0.25) and canaries["score"] == "subsampled-gaussian-llr"

    def f(value: float) -> float:
        return float(np.logaddexp(np.log1p(-q), np.log(q) + (value - 0.5) / sigma**2))

    scores, included = _scores(ledger)
    np.testing.assert_allclose(scores[~included], steps * f(0.0), rtol=1e-5)
    sampled = (scores[included] - steps * f(0.0)) / (f(1.0) - f(0.0))
    np.testing.assert_allclose(sampled, np.round(sampled), atol=1e-3)
    assert round(sampled.sum()) == canaries["rows_added"]
    assert sampled.mean() == pytest.approx(q * steps, rel=0.1)


def test_ledger_reveals_the_bits_only_after_the_run_and_never_a_seed() -> None:
    first, second = h.run(3, 2.0, count=200), h.run(3, 2.0, count=200)
    a, b = first.ledger["privacy"]["canaries"], second.ledger["privacy"]["canaries"]
    # Same spec seed, different OS-entropy secrets: the inclusion bits differ.
    assert a["included"] != b["included"]
    assert not {"seed", "secret", "rng"} & set(a)
    assert len(set(a["coordinates"])) == 200 and max(a["coordinates"]) < h.FEATURES * h.HIDDEN
    assert a["layer"] == "0" and a["release_candidate"] is False and a["count"] == 200
    assert 0 < a["batch_share"] < 1


def test_a_cnn_with_canaries_takes_the_next_proven_engine_and_bad_settings_are_refused() -> None:
    x = torch.randn(64, 1, 8, 8)
    y = torch.randint(0, 2, (64,))
    cnn = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 40))
    privacy = PrivacySettings(target_epsilon=2.0, delta=1e-5, max_grad_norm=1.0)
    trainer = Trainer(
        model=cnn,
        train_data=(x, y),
        privacy=privacy,
        epochs=1,
        batch_size=64,
        canaries=CanaryOptions(count=100),
    )
    # The fused CNN step carries no canaries: the proof passes it over for the next proven engine.
    privacy_ledger = trainer.fit().ledger["privacy"]
    assert privacy_ledger["engine"] in CANARY_ENGINES
    assert "canaries" in privacy_ledger["engine_proof"]["refused"]["fused"]
    assert len(privacy_ledger["canaries"]["scores"]) == 100
    fused_only = PrivacySettings(target_epsilon=2.0, delta=1e-5, max_grad_norm=1.0, grad_sample_mode="fused")
    with pytest.raises(ValueError, match="canaries"):
        Trainer(
            model=nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(144, 40)),
            train_data=(x, y),
            privacy=fused_only,
            epochs=1,
            batch_size=64,
            canaries=CanaryOptions(count=100),
        ).fit()
    with pytest.raises(ValueError, match="set privacy"):
        Trainer(model=h.mlp(), train_data=h.data(0), canaries=CanaryOptions(count=100))
    with pytest.raises(CanaryError, match="as many weights"):
        Trainer(
            model=nn.Sequential(nn.Linear(h.FEATURES, 2)),
            train_data=h.data(0),
            privacy=privacy,
            epochs=1,
            batch_size=64,
            canaries=CanaryOptions(count=100),
        ).fit()


@pytest.mark.parametrize(("count", "rate"), [(24, 0.3), (1000, 0.01)])
def test_canaries_are_drawn_bernoulli_per_canary_and_step(count: int, rate: float) -> None:
    """Only included canaries are drawn, each in each step with probability q independently:
    frequencies q, joint frequencies q² for pairs of canaries and for consecutive steps, and
    Binomial per-step counts."""
    canaries = GradientCanaries(CanaryOptions(count=count), max_grad_norm=1.0)
    canaries.bind(
        nn.Sequential(nn.Linear(40, 40)),
        engine="fused-mlp",
        sample_rate=rate,
        expected_batch_size=100,
        noise_multiplier=1.0,
    )
    included = np.asarray(canaries._included)
    steps = 20_000 if count < 100 else 6_000
    hits = np.zeros((steps, count), dtype=bool)
    for t in range(steps):
        canaries.begin_step()
        drawn = canaries._active.numpy()
        assert len(set(drawn.tolist())) == len(drawn) == canaries.active
        hits[t, drawn] = True
    assert not hits[:, ~included].any()
    pool = hits[:, included]
    tolerance = 4.5 * np.sqrt(rate * (1 - rate) / steps)
    assert np.abs(pool.mean(axis=0) - rate).max() < tolerance
    joint = 4.5 * np.sqrt(rate**2 * (1 - rate**2) / steps)
    assert abs((pool[:, 0] & pool[:, 1]).mean() - rate**2) < joint
    assert abs((pool[1:, 0] & pool[:-1, 0]).mean() - rate**2) < joint
    counts = pool.sum(axis=1)
    assert counts.mean() == pytest.approx(pool.shape[1] * rate, rel=0.03)
    assert counts.var() == pytest.approx(pool.shape[1] * rate * (1 - rate), rel=0.1)


def _fused_step_with_canaries(rate: float) -> tuple[object, GradientCanaries, nn.Sequential]:
    from governance.train.clipping.linear import FusedMLPStep

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 200), nn.ReLU(), nn.Linear(200, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    step = FusedMLPStep(
        model, optimizer, noise_multiplier=0.0, max_grad_norm=1.0, expected_batch_size=16, generator=None
    )
    canaries = GradientCanaries(CanaryOptions(count=1000), max_grad_norm=1.0)
    canaries.bind(model, engine="fused-mlp", sample_rate=rate, expected_batch_size=16, noise_multiplier=1.0)
    step.canaries = canaries
    return step, canaries, model


def test_the_fused_step_clips_its_canaries_with_its_own_factors_even_without_real_rows() -> None:
    """Setting ``step.canaries`` hands the canaries the step's norm and factor code (so no canary
    can ride along unclipped or be left out), and a step whose Poisson batch drew no real row
    still adds and reads its canaries: C/B at each drawn canary's coordinate, nothing else."""
    step, canaries, model = _fused_step_with_canaries(rate=0.05)
    assert canaries.row_factors is not None
    drawn = 0
    for _ in range(40):
        canaries.begin_step()
        out = step(torch.zeros((0, 8)))
        step.criterion(out, torch.zeros(0, dtype=torch.long)).backward()
        grad = model[0].weight.grad.reshape(-1)
        expected = torch.zeros_like(grad)
        if canaries.active:
            expected[canaries._flat[canaries._active]] = 1.0 / 16  # clipped to C, scaled by 1/B
        torch.testing.assert_close(grad, expected, rtol=1e-4, atol=1e-9)  # the bias takes 1/A²
        torch.testing.assert_close(
            canaries._xs_rows[canaries._xs_at], expected[canaries._flat], rtol=1e-4, atol=1e-9
        )
        drawn += canaries.active
        canaries.end_step()
    assert drawn > 0  # ~0.05 × 500 included canaries per step


def test_a_broken_factor_code_reaches_the_canaries_of_the_fused_step() -> None:
    """The canaries' factors are the step's own: with clip_factors broken (nothing clipped), a
    canary row reaches its coordinate with its raw norm, not C."""
    from tests.train.canary_harness import clipping_off

    with clipping_off():
        step, canaries, model = _fused_step_with_canaries(rate=0.05)
        for _ in range(10):
            canaries.begin_step()
            if canaries.active:
                break
        step.criterion(step(torch.zeros((0, 8))), torch.zeros(0, dtype=torch.long)).backward()
    grad = model[0].weight.grad.reshape(-1)[canaries._flat[canaries._active]]
    assert canaries.active
    torch.testing.assert_close(grad, torch.full_like(grad, canaries.raw_norm / 16), rtol=1e-5, atol=0)
