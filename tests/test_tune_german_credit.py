"""benchmarks/tune_german_credit.py: the German Credit settings are chosen on the train rows only."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from benchmarks import tune_german_credit as tune

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def loaded():
    from governance.data.loading import load_bundle
    from governance.spec import load_spec

    spec = load_spec(tune.SPEC)
    return spec, load_bundle(spec)


def test_folds_partition_the_train_rows_stratified(loaded):
    _, bundle = loaded
    folds = tune._folds(bundle)
    assert len(folds) == tune.FOLDS
    held = [row for _, rows in folds for row in rows.itertuples(index=False)]
    assert sorted(held) == sorted(bundle.train.itertuples(index=False))  # every train row once, no eval row
    share = (bundle.train[bundle.label] == "good").mean()
    for fit, rows in folds:
        assert len(fit) + len(rows) == len(bundle.train)
        assert abs((rows[bundle.label] == "good").mean() - share) <= 1 / len(rows)


def test_the_choice_does_not_change_when_the_eval_rows_do(loaded):
    """Validation figures (so the choice) depend on the train rows only: scrambling every eval
    label leaves them bit-identical."""
    spec, bundle = loaded
    grid = [tune.Config("sgd", 0.9, lr, (), 2, 128) for lr in (0.003, 0.03, 0.3)]
    before = tune._search(spec, bundle, tune._folds(bundle), grid, private=False)
    flipped = bundle.eval.assign(
        **{bundle.label: bundle.eval[bundle.label].map({"good": "bad", "bad": "good"})}
    )
    other = dataclasses.replace(bundle, eval=flipped)
    after = tune._search(spec, other, tune._folds(other), grid, private=False)
    assert after == before
    assert len({row["validation"] for row in before}) > 1  # the grid entries are told apart


def test_the_shipped_spec_holds_a_tuned_configuration(loaded):
    """The spec's DP settings are an entry of the DP grid and the twin's lr one of the twin grid
    (docs/GERMAN_CREDIT.md records which and why)."""
    spec, _ = loaded
    train = spec.train
    assert train is not None and train.privacy is not None
    chosen = tune.Config(
        train.optimizer,
        train.momentum,
        train.lr,
        tuple(spec.model.options.get("hidden", ())),
        train.epochs,
        train.batch_size,
    )
    assert chosen in tune._grid(tune.DP_OPTIMIZERS)
    assert train.privacy.target_epsilon == tune.EPSILON and train.privacy.delta == tune.DELTA
    twin_lr = spec.audits["privacy_cost"]["lr"]
    assert twin_lr in tune.TWIN_LRS[train.optimizer]
    assert f"lr {twin_lr}" in (ROOT / "docs" / "GERMAN_CREDIT.md").read_text(encoding="utf-8")
