"""The trainer: determinism, resume after a crash, ghost vs hooks, plain training."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from governance.train.dp import PrivacySettings
from governance.train.trainer import EpochRecord, Trainer


def _data(n: int = 400, d: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype("float32")
    w = rng.normal(size=d)
    return x, (x @ w > 0).astype("int64")


def _model(d: int = 8, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(d, 16), nn.ReLU(), nn.Linear(16, 2))


def _trainer(tmp: Path | None = None, **kw) -> Trainer:
    x, y = _data()
    args = {
        "model": _model(),
        "train_data": (x[:300], y[:300]),
        "eval_data": (x[300:], y[300:]),
        # Bit-identical reruns and resumes need the seeded noise (the default is OS entropy).
        "privacy": PrivacySettings(
            target_epsilon=4.0, delta=1e-3, noise_multiplier=1.0, reproducible_noise=True
        ),
        "epochs": 4,
        "batch_size": 30,
        "lr": 0.5,
        "seed": 7,
        "checkpoint_dir": tmp,
    }
    args.update(kw)
    return Trainer(**args)


def _weights(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


def test_same_seed_same_weights_and_ledger() -> None:
    a, b = _trainer().fit(), _trainer().fit()
    for p, q in zip(_weights(a.model), _weights(b.model)):
        assert torch.equal(p, q)
    assert a.ledger["history"] == b.ledger["history"]
    c = _trainer(seed=8).fit()
    assert not torch.equal(_weights(a.model)[0], _weights(c.model)[0])


def test_resume_after_a_crash_matches_the_uninterrupted_run(tmp_path: Path) -> None:
    uninterrupted = _trainer().fit()

    class Crash(Exception):
        pass

    def crash_after_two(record: EpochRecord) -> None:
        if record.epoch == 2:
            raise Crash

    with pytest.raises(Crash):
        _trainer(tmp_path / "ckpt", callbacks=[crash_after_two]).fit()
    resumed = _trainer(
        tmp_path / "ckpt", resume=True, model=_model(seed=99)
    ).fit()  # fresh init is overwritten
    assert resumed.ledger["resumed"] and resumed.ledger["attempts"] == 2
    assert resumed.epsilon == uninterrupted.epsilon
    assert resumed.ledger["privacy"]["steps"] == uninterrupted.ledger["privacy"]["steps"]
    assert [h["epsilon"] for h in resumed.ledger["history"]] == [
        h["epsilon"] for h in uninterrupted.ledger["history"]
    ]
    for p, q in zip(_weights(resumed.model), _weights(uninterrupted.model)):
        torch.testing.assert_close(p, q)


@pytest.mark.parametrize(
    "target_epsilon",
    [
        4.0,  # the budget holds all four epochs
        2.3,  # the budget stops the resumed run during epoch 3
        2.0,  # the budget stopped epoch 2 before the crash: the resumed run takes no step
    ],
)
def test_a_resumed_run_writes_the_uninterrupted_runs_ledger(tmp_path: Path, target_epsilon: float) -> None:
    """The whole ledger (history, totals, privacy block) is the uninterrupted run's, timings and
    the resume's own record aside, also when the budget stops the run after or before the crash."""
    privacy = PrivacySettings(
        target_epsilon=target_epsilon, delta=1e-3, noise_multiplier=1.0, reproducible_noise=True
    )
    uninterrupted = _trainer(privacy=privacy).fit()

    def stop_after_two(record: EpochRecord) -> None:
        if record.epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _trainer(tmp_path / "ckpt", privacy=privacy, callbacks=[stop_after_two]).fit()
    resumed = _trainer(tmp_path / "ckpt", privacy=privacy, resume=True).fit()
    assert (resumed.ledger["resumed"], resumed.ledger["attempts"]) == (True, 2)
    own = {"seconds", "step_seconds", "resumed", "attempts"}

    def drop(ledger: Mapping[str, Any]) -> dict[str, Any]:
        return {key: value for key, value in ledger.items() if key not in own}

    assert drop(resumed.ledger) == drop(uninterrupted.ledger)
    expected_stop = target_epsilon < 4.0
    assert resumed.ledger["privacy"]["stopped_early"] is expected_stop


def test_resume_refuses_a_different_configuration(tmp_path: Path) -> None:
    from governance.errors import InputError

    _trainer(tmp_path / "ckpt", epochs=1).fit()
    with pytest.raises(InputError, match="different configuration"):
        _trainer(tmp_path / "ckpt", resume=True, epochs=1, lr=0.1).fit()


@pytest.mark.slow
def test_ghost_and_hooks_reach_the_same_accuracy_for_the_same_sigma() -> None:
    """Opacus has had reports of ghost clipping losing accuracy: check it on several seeds."""
    x, y = _data(n=3000, d=10, seed=1)
    accuracy: dict[str, list[float]] = {"ghost": [], "hooks": []}
    for mode in accuracy:
        for seed in range(3):
            trainer = Trainer(
                model=_model(d=10, seed=seed),
                train_data=(x[:2000], y[:2000]),
                eval_data=(x[2000:], y[2000:]),
                privacy=PrivacySettings(target_epsilon=100.0, noise_multiplier=1.0, grad_sample_mode=mode),
                epochs=3,
                batch_size=100,
                lr=0.5,
                seed=seed,
            )
            result = trainer.fit()
            assert result.ledger["privacy"]["grad_sample_mode"] == mode
            accuracy[mode].append(result.ledger["eval_accuracy"])
    ghost, hooks = np.mean(accuracy["ghost"]), np.mean(accuracy["hooks"])
    assert ghost > 0.85 and hooks > 0.85  # both learn
    # eval set of 1000: one binomial standard error of accuracy near 0.9 is ~0.01
    assert abs(ghost - hooks) <= 0.02


def test_non_private_training_learns_and_has_no_privacy_block() -> None:
    result = _trainer(privacy=None, epochs=5).fit()
    assert "privacy" not in result.ledger and result.epsilon is None
    assert result.ledger["eval_accuracy"] > 0.85
    assert result.ledger["steps"] == 5 * 10 and result.ledger["rows"] == 300
    assert result.ledger["seconds"] >= result.ledger["step_seconds"] > 0


def test_adam_and_momentum_state_survive_resume(tmp_path: Path) -> None:
    full = _trainer(optimizer="adam", lr=0.01).fit()

    def stop(record: EpochRecord) -> None:
        if record.epoch == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _trainer(tmp_path / "c", optimizer="adam", lr=0.01, callbacks=[stop]).fit()
    resumed = _trainer(tmp_path / "c", optimizer="adam", lr=0.01, resume=True).fit()
    for p, q in zip(_weights(resumed.model), _weights(full.model)):
        torch.testing.assert_close(p, q)
