"""DP correctness: clipping against a microbatch reference, ε against an independent accountant."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from governance.train.clipping.linear import supports_fused_mlp
from governance.train.clipping.proof import prove
from governance.train.dp import (
    PrivacySettings,
    epsilon_for,
    max_steps_within,
    supports_fast_clipping,
)
from governance.train.trainer import Trainer
from tests.train._reference import assert_noise_is_one_flat_draw, clipped_sums, clipping_only


def _data(n: int = 64, d: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype("float32") * 3  # large inputs: most samples get clipped
    y = (x[:, 0] + x[:, 1] > 0).astype("int64")
    return x, y


def _model(d: int = 5) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(d, 6), nn.ReLU(), nn.Linear(6, 2))


def _microbatch_reference(model: nn.Module, x: np.ndarray, y: np.ndarray, clip: float, lr: float) -> dict:
    """One SGD step on the mean of per-sample gradients, each clipped to ``clip`` (plain torch)."""
    summed = clipped_sums(model, x, y, clip)
    return {k: (p.detach() - lr * summed[k] / len(x)) for k, p in model.named_parameters()}


@pytest.mark.parametrize(
    ("mode", "physical"),
    [("fused", None), ("fast", None), ("ghost", None), ("hooks", None), ("ghost", 16), ("hooks", 16)],
)
def test_per_sample_clipping_matches_microbatch_reference(mode: str, physical: int | None) -> None:
    x, y = _data()
    clip, lr = 0.5, 1.0
    expected = _microbatch_reference(_model(), x, y, clip, lr)
    privacy = clipping_only(
        target_epsilon=1.0,
        max_grad_norm=clip,
        noise_multiplier=0.0,
        poisson_sampling=False,
        grad_sample_mode=mode,
    )
    trainer = Trainer(
        model=_model(),
        train_data=(x, y),
        privacy=privacy,
        epochs=1,
        batch_size=len(x),  # one logical step over every sample
        lr=lr,
        max_physical_batch_size=physical,
    )
    result = trainer.fit()
    assert result.ledger["privacy"]["grad_sample_mode"] == mode
    assert result.ledger["steps"] == 1
    for name, param in result.model.named_parameters():
        torch.testing.assert_close(param.detach(), expected[name], rtol=1e-4, atol=1e-5)


def _pld_epsilon(noise_multiplier: float, sample_rate: float, steps: int, delta: float) -> float:
    import dp_accounting
    from dp_accounting.pld import pld_privacy_accountant

    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(sample_rate, dp_accounting.GaussianDpEvent(noise_multiplier)),
        steps,
    )
    accountant = pld_privacy_accountant.PLDAccountant()
    accountant.compose(event)
    return float(accountant.get_epsilon(delta))


@pytest.fixture(scope="module")
def private_run() -> dict:
    x, y = _data(n=600)
    trainer = Trainer(
        model=_model(),
        train_data=(x, y),
        eval_data=(x[:100], y[:100]),
        privacy=PrivacySettings(target_epsilon=2.0, delta=1e-4, max_grad_norm=1.0),
        epochs=3,
        batch_size=60,
        lr=0.2,
        seed=3,
    )
    return dict(trainer.fit().ledger)


def test_ledger_epsilon_is_never_below_pld(private_run: dict) -> None:
    p = private_run["privacy"]
    pld = _pld_epsilon(p["noise_multiplier"], p["sample_rate"], p["steps"], p["delta"])
    assert p["epsilon"] >= pld - 1e-9
    assert p["epsilon"] == pytest.approx(pld, rel=0.05)  # and tight: PRV and PLD agree closely


def test_spent_epsilon_within_target_and_ledger_complete(private_run: dict) -> None:
    p = private_run["privacy"]
    assert 0 < p["epsilon"] <= p["target_epsilon"]
    assert p["accountant"] == "prv" and p["grad_sample_mode"] == "fused"  # auto on a Linear/ReLU MLP
    assert p["steps"] == private_run["steps"] == sum(h["steps"] for h in private_run["history"])
    assert p["sample_rate"] == pytest.approx(0.1)
    epsilons = [h["epsilon"] for h in private_run["history"]]
    assert epsilons == sorted(epsilons) and epsilons[-1] == pytest.approx(p["epsilon"])


def test_training_stops_when_budget_is_reached() -> None:
    x, y = _data(n=200)
    # σ fixed and small: the 5 planned epochs would far exceed ε = 1.
    privacy = PrivacySettings(target_epsilon=1.0, delta=1e-3, noise_multiplier=0.8)
    result = Trainer(
        model=_model(), train_data=(x, y), privacy=privacy, epochs=5, batch_size=20, lr=0.1
    ).fit()
    p = result.ledger["privacy"]
    assert p["stopped_early"] and p["epsilon"] <= 1.0
    assert result.ledger["steps"] < 5 * 10
    # one more step would have overspent
    assert epsilon_for([(0.8, 0.1, p["steps"] + 1)], 1e-3) > 1.0


def test_max_steps_within_is_the_boundary() -> None:
    steps = max_steps_within([], 1.0, 0.02, 1000, target_epsilon=1.0, delta=1e-5)
    assert 0 < steps < 1000
    assert epsilon_for([(1.0, 0.02, steps)], 1e-5) <= 1.0 < epsilon_for([(1.0, 0.02, steps + 1)], 1e-5)


def test_epsilon_for_merges_runs() -> None:
    a = epsilon_for([(1.1, 0.02, 300), (1.1, 0.02, 200)], 1e-5)
    b = epsilon_for([(1.1, 0.02, 500)], 1e-5)
    assert a == b


def test_auto_mode_falls_back_to_hooks_for_tied_parameters() -> None:
    shared = nn.Sequential(nn.Linear(5, 5), nn.Linear(5, 5), nn.Linear(5, 2))
    shared[1].weight = shared[0].weight
    x = torch.randn(8, 5)
    proof = prove(shared, nn.CrossEntropyLoss(), (x, x[:7]))
    assert proof.engine == "opacus-hooks" and "shared" in proof.refused["ghost"]
    assert prove(_model(), nn.CrossEntropyLoss(), (x, x[:7]), requested="ghost").engine == "opacus-ghost"
    assert not supports_fast_clipping(shared) and supports_fast_clipping(_model())


def test_batchnorm_is_fixed_and_reported() -> None:
    x, y = _data(n=100)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))
    privacy = PrivacySettings(target_epsilon=50.0, delta=1e-3, noise_multiplier=1.0)
    result = Trainer(model=model, train_data=(x, y), privacy=privacy, epochs=1, batch_size=20).fit()
    fixes = result.ledger["privacy"]["module_fixes"]
    assert fixes and any("BatchNorm" in f for f in fixes)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in result.model.modules())
    assert result.ledger["train_loss"] is None  # DP: the loss on private batches is never published


def test_privacy_settings_validate() -> None:
    for bad in (
        {"target_epsilon": 0},
        {"target_epsilon": 1, "delta": 1},
        {"target_epsilon": 1, "accountant": "x"},
    ):
        with pytest.raises(ValueError):
            PrivacySettings(**bad)


def test_auto_mode_uses_our_paths_for_plain_convolutions_and_hooks_for_others() -> None:
    """Opacus alone would pick hooks for a CNN (its ghost mode has no Conv2d norm sampler); a
    Sequential net with a one-group zero-padded Conv2d takes the fused step, a grouped one stays
    on hooks."""
    x, y = _data(n=40, d=16)
    modes = {}
    for name, groups in (("plain", 1), ("grouped", 2)):
        torch.manual_seed(0)
        cnn = nn.Sequential(
            nn.Unflatten(1, (2, 2, 4)), nn.Conv2d(2, 2, (1, 3), groups=groups), nn.Flatten(), nn.Linear(8, 2)
        )
        batch = torch.from_numpy(x[:8])
        engine = prove(cnn, nn.CrossEntropyLoss(), (batch, batch[:7])).engine
        assert engine == ("fused-sequential" if groups == 1 else "opacus-hooks")
        assert (
            prove(cnn, nn.CrossEntropyLoss(), (batch, batch[:7]), requested="ghost").engine == "opacus-ghost"
        )
        assert supports_fast_clipping(cnn) == (groups == 1)
        privacy = PrivacySettings(target_epsilon=50.0, delta=1e-3, noise_multiplier=1.0)
        result = Trainer(model=cnn, train_data=(x, y), privacy=privacy, epochs=1, batch_size=20).fit()
        modes[name] = result.ledger["privacy"]["grad_sample_mode"]
    assert modes == {"plain": "fused", "grouped": "hooks"}  # a Sequential conv net: the fused step


def test_fast_path_reproduces_opacus_with_noise() -> None:
    """Same seed: the fast path draws Poisson batches and noise exactly as Opacus does, so a
    noisy run through it and one through Opacus' hooks end with the same weights and ε."""
    x, y = _data(n=300)
    results = {}
    for mode in ("fast", "hooks"):
        privacy = PrivacySettings(
            target_epsilon=50.0,
            delta=1e-3,
            noise_multiplier=0.7,
            grad_sample_mode=mode,
            reproducible_noise=True,
        )
        trainer = Trainer(
            model=_model(), train_data=(x, y), privacy=privacy, epochs=2, batch_size=30, lr=0.3, seed=5
        )
        results[mode] = trainer.fit()
    fast, hooks = results["fast"], results["hooks"]
    assert fast.ledger["privacy"]["grad_sample_mode"] == "fast"
    assert fast.epsilon == hooks.epsilon and fast.ledger["steps"] == hooks.ledger["steps"]
    for (name, p), q in zip(fast.model.named_parameters(), hooks.model.parameters()):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-4, atol=1e-5, msg=name)
    assert not fast.model[0]._forward_hooks  # hooks removed after training


def test_fused_step_matches_fast_path_and_opacus() -> None:
    """The hand-written MLP step (FusedMLPStep) is the same DP-SGD update as FastLinearClipping
    and Opacus' hooks (the oracle): same Poisson batches, same clipping, same SGD with momentum,
    so the same weights after three epochs to float rounding. Noise off here: the fused step
    draws its noise in one call (see test_fused_step_noise_is_one_flat_gaussian_draw)."""
    x, y = _data(n=300)
    results = {}
    for mode in ("fused", "fast", "hooks"):
        privacy = clipping_only(
            target_epsilon=50.0, delta=1e-3, noise_multiplier=0.0, max_grad_norm=0.5, grad_sample_mode=mode
        )
        torch.manual_seed(0)
        model = nn.Sequential(
            nn.Linear(x.shape[1], 8), nn.ReLU(), nn.Linear(8, 5), nn.ReLU(), nn.Linear(5, 2)
        )
        trainer = Trainer(
            model=model,
            train_data=(x, y),
            privacy=privacy,
            epochs=3,
            batch_size=30,
            lr=0.3,
            momentum=0.9,
            seed=5,
        )
        results[mode] = trainer.fit()
    fused = results["fused"]
    assert fused.ledger["privacy"]["grad_sample_mode"] == "fused"
    for other in ("fast", "hooks"):
        assert fused.ledger["steps"] == results[other].ledger["steps"]
        assert fused.ledger["train_loss"] is None  # DP: the private batches' loss is not published
        for (name, p), q in zip(fused.model.named_parameters(), results[other].model.parameters()):
            torch.testing.assert_close(p.detach(), q.detach(), rtol=0, atol=1e-6, msg=f"{other} {name}")


def test_fused_step_noise_is_one_flat_gaussian_draw() -> None:
    """With noise on, each fused gradient is the clipped sum (FastLinearClipping's, the
    Opacus-checked path) plus N(0, σC/B) noise: exactly one normal_ draw of the step's generator
    over all parameters in optimizer order, fresh every step."""
    from governance.train.clipping.linear import FastLinearClipping, FusedMLPStep

    x, y = (torch.from_numpy(a) for a in _data(n=40))
    sigma, clip, expected_batch = 0.7, 0.5, 32

    def model() -> nn.Module:
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 5), nn.ReLU(), nn.Linear(5, 2))

    fused_model, clean_model = model(), model()
    generator = torch.Generator().manual_seed(3)
    step = FusedMLPStep(
        fused_model,
        torch.optim.SGD(fused_model.parameters(), lr=0.1),
        noise_multiplier=sigma,
        max_grad_norm=clip,
        expected_batch_size=expected_batch,
        generator=generator,
    )
    clean = FastLinearClipping(
        clean_model,
        torch.optim.SGD(clean_model.parameters(), lr=0.1),
        nn.CrossEntropyLoss(),
        noise_multiplier=0.0,
        max_grad_norm=clip,
        expected_batch_size=expected_batch,
        generator=None,
    )
    clean(clean_model(x), y).backward()
    both = assert_noise_is_one_flat_draw(
        lambda: step.criterion(step(x), y).backward(),
        fused_model,
        clean_model,
        generator,
        sigma * clip / expected_batch,
    )
    # The draw itself: mean 0 and standard deviation σC/B (4 standard errors).
    sd = sigma * clip / expected_batch
    assert abs(float(both.mean())) < 4 * sd / len(both) ** 0.5
    assert abs(float(both.std()) / sd - 1) < 4 / (2 * len(both)) ** 0.5


def test_auto_picks_fused_only_for_plain_mlps() -> None:
    ce = nn.CrossEntropyLoss()
    assert supports_fused_mlp(_model(), ce)
    assert not supports_fused_mlp(_model(), nn.CrossEntropyLoss(label_smoothing=0.1))
    assert not supports_fused_mlp(nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)), ce)
    assert not supports_fused_mlp(nn.Sequential(nn.Linear(4, 3), nn.LayerNorm(3), nn.Linear(3, 2)), ce)
    x, y = _data(n=100)
    privacy = PrivacySettings(target_epsilon=50.0, delta=1e-3, noise_multiplier=0.7, grad_sample_mode="fused")
    tanh = nn.Sequential(nn.Linear(x.shape[1], 3), nn.Tanh(), nn.Linear(3, 2))
    with pytest.raises(ValueError, match="fused"):
        Trainer(model=tanh, train_data=(x, y), privacy=privacy, epochs=1, batch_size=20).fit()


def test_planned_epsilons_project_each_epoch_and_stop_past_the_target() -> None:
    from governance.train.dp import planned_epsilons

    history = [(1.3, 0.02, 40)]
    planned = planned_epsilons(history, 0.9, 0.05, 20, 6, target_epsilon=1e9, delta=1e-5)
    expected = [epsilon_for([*history, (0.9, 0.05, 20 * k)], 1e-5) for k in range(1, 7)]
    assert planned == expected and planned == sorted(planned)
    # The first projection past the target is the last one computed.
    cut = planned_epsilons(history, 0.9, 0.05, 20, 6, target_epsilon=planned[2], delta=1e-5)
    assert cut == planned[:4]
    # Memoised: merged histories hit the same entry, and a fresh accountant agrees.
    assert epsilon_for([*history, (0.9, 0.05, 20), (0.9, 0.05, 20)], 1e-5) == planned[1]
    from opacus.accountants import create_accountant

    acc = create_accountant(mechanism="prv")
    acc.history = [(1.3, 0.02, 40), (0.9, 0.05, 40)]
    assert acc.get_epsilon(delta=1e-5) == planned[1]


def test_prv_epsilon_equals_opacus_own_and_stays_an_upper_bound_above_ten() -> None:
    """Up to ε 10 epsilon_for is Opacus' PRV upper bound exactly (error allowance 0.01); above,
    the allowance is 0.1 % of ε, so the value is at least Opacus' tight one and within that."""
    from opacus.accountants import create_accountant

    from governance.train.dp import epsilon_for

    for history in ([(1.1, 0.01, 300)], [(1.0, 0.05, 50), (1.3, 0.02, 70), (0.9, 0.05, 10)]):
        accountant = create_accountant(mechanism="prv")
        accountant.history = list(history)
        assert epsilon_for(history, 1e-5) == pytest.approx(accountant.get_epsilon(delta=1e-5), rel=1e-9)
    history = [(0.45, 0.05, 400)]
    accountant = create_accountant(mechanism="prv")
    accountant.history = list(history)
    tight = accountant.get_epsilon(delta=1e-5)
    assert tight > 10
    assert tight - 1e-9 <= epsilon_for(history, 1e-5) <= tight * 1.002 + 0.01


def test_prv_epsilon_through_numpy_fft_equals_opacus_own() -> None:
    """epsilon_for composes the PRVs with numpy.fft (scipy.fft's plan cache held 7 MB for the
    life of the process: docs/PERFORMANCE.md); the transforms are the same pocketfft, so ε
    matches Opacus' own computation, heterogeneous histories (scipy.signal.convolve) included."""
    import numpy as np
    import scipy.fft

    from governance.train.dp import _NumpyFFT

    x = np.random.default_rng(0).random(1000)
    with scipy.fft.set_backend(_NumpyFFT):
        np.testing.assert_allclose(scipy.fft.irfft(scipy.fft.rfft(x), 1000), x, atol=1e-12)
        spectrum = scipy.fft.rfft(x, 1000, -1, None, False)  # a 5th positional: scipy's own
    np.testing.assert_allclose(spectrum, np.fft.rfft(x), atol=1e-9)


@pytest.mark.parametrize("layer_norm", [True, False], ids=["layernorm", "linear-only"])
def test_fast_path_step_on_an_empty_poisson_batch_is_its_noise_alone(layer_norm: bool) -> None:
    """Poisson sampling can draw no row at all; the step then applies DPOptimizer's noise alone
    (the same draws, in parameter order), where a LayerNorm's per-sample gradients used to raise."""
    from governance.train.clipping.linear import FastLinearClipping

    torch.manual_seed(0)
    middle = [nn.LayerNorm(8)] if layer_norm else []
    model = nn.Sequential(nn.Linear(4, 8), *middle, nn.ReLU(), nn.Linear(8, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    clipping = FastLinearClipping(
        model,
        optimizer,
        nn.CrossEntropyLoss(),
        noise_multiplier=1.3,
        max_grad_norm=0.7,
        expected_batch_size=5,
        generator=torch.Generator().manual_seed(11),
    )
    clipping(model(torch.randn(0, 4)), torch.zeros(0, dtype=torch.long)).backward()
    replay = torch.Generator().manual_seed(11)
    for p in model.parameters():
        expected = torch.empty_like(p).normal_(0, 1.3 * 0.7 / 5, generator=replay)
        torch.testing.assert_close(p.grad, expected, rtol=0, atol=0)


def test_rdp_epsilon_is_opacus_own_bit_for_bit() -> None:
    """epsilon_for's RDP (each (σ, q)'s one-step RDP, kept, times the steps) is the number Opacus'
    RDPAccountant gives for the same history, to the last bit."""
    from opacus.accountants import RDPAccountant

    from governance.train.dp import RDP_ORDERS, _rdp_epsilon

    assert RDP_ORDERS == RDPAccountant.DEFAULT_ALPHAS
    histories = [
        ((1.0, 0.01, 1),),
        ((0.7, 1 / 6, 360),),
        ((1.3, 256 / 40_000, 469),),
        ((0.5, 0.5, 10_000),),
        ((4.0, 1.0, 3),),
        ((1.1, 0.02, 100), (0.9, 0.02, 50), (1.1, 0.05, 7)),
    ]
    for merged in histories:
        accountant = RDPAccountant()
        accountant.history = list(merged)
        for delta in (1e-5, 1e-3):
            assert _rdp_epsilon(merged, delta) == accountant.get_epsilon(delta=delta), merged


@settings(max_examples=40, deadline=None)
@given(
    segments=st.lists(
        st.tuples(
            st.floats(min_value=0.3, max_value=20.0),
            st.floats(min_value=1e-4, max_value=1.0),
            st.integers(min_value=1, max_value=20_000),
        ),
        min_size=1,
        max_size=3,
    ),
    delta=st.sampled_from([1e-7, 1e-5, 1e-3]),
)
def test_rdp_epsilon_equals_opacus_for_any_history(
    segments: list[tuple[float, float, int]], delta: float
) -> None:
    from opacus.accountants import RDPAccountant

    from governance.train.dp import _rdp_epsilon

    accountant = RDPAccountant()
    accountant.history = list(segments)
    assert _rdp_epsilon(tuple(segments), delta) == accountant.get_epsilon(delta=delta)
