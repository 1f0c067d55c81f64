"""Threshold mitigation against fairlearn's ThresholdOptimizer run directly."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.base import BaseEstimator, ClassifierMixin

from governance.mitigation.threshold import CONSTRAINTS, calibration_split, fit_threshold_rule
from governance.models.decision_rule import DecisionRule


def _data(n: int, seed: int):
    rng = np.random.default_rng(seed)
    g = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    shift = np.select([g == "a", g == "b"], [0.15, -0.1], -0.2)
    y = (rng.random(n) < 0.5 + shift).astype(int)
    score = np.clip(0.35 * y + 0.5 * rng.random(n) + shift, 0, 1)
    return score, y, g


class _Identity(ClassifierMixin, BaseEstimator):
    """What a user would hand fairlearn: a prefit estimator over one score column."""

    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        s = np.asarray(X, dtype=float).reshape(-1)
        return np.column_stack([1 - s, s])


@pytest.mark.parametrize("constraint", CONSTRAINTS)
@pytest.mark.parametrize("tol", [None, 0.05])
def test_held_out_decisions_equal_fairlearn_run_directly(constraint, tol):
    from fairlearn.postprocessing import ThresholdOptimizer

    score, y, g = _data(1200, 0)
    if tol is not None and constraint == "equalized_odds":
        with pytest.raises(ValueError, match="not supported for equalized odds"):
            fit_threshold_rule(
                score, y == 1, g, attribute="g", constraint=constraint, classes=("0", "1"), tol=tol
            )
        return
    split = calibration_split(y, g, seed=3)
    cal, held = split.calibration, split.held_out
    rule = fit_threshold_rule(
        score[cal],
        y[cal] == 1,
        g[cal],
        attribute="g",
        constraint=constraint,
        classes=("0", "1"),
        tol=tol,
        random_state=7,
    )
    direct = ThresholdOptimizer(
        estimator=_Identity().fit(None, None),
        constraints=constraint,
        objective="accuracy_score",
        prefit=True,
        predict_method="predict_proba",
        tol=tol,
    ).fit(score[cal].reshape(-1, 1), y[cal], sensitive_features=g[cal])
    ours = rule.decide(score[held], g[held], random_state=7)
    theirs = direct.predict(score[held].reshape(-1, 1), sensitive_features=g[held], random_state=7)
    assert (ours == theirs).all()
    pmf = direct._pmf_predict(score[held].reshape(-1, 1), sensitive_features=g[held])[:, 1]
    np.testing.assert_allclose(rule.positive_probability(score[held], g[held]), pmf, rtol=0, atol=1e-12)
    # the same rule after a trip through JSON
    again = DecisionRule.from_dict(json.loads(json.dumps(rule.to_dict())))
    assert (again.decide(score[held], g[held]) == theirs).all()


def test_split_is_stratified_disjoint_and_seeded():
    _score, y, g = _data(500, 1)
    split = calibration_split(y, g, seed=0)
    assert np.intersect1d(split.calibration, split.held_out).size == 0
    assert len(split.calibration) + len(split.held_out) == 500
    for value in ("a", "b", "c"):
        for label in (0, 1):
            cell = np.flatnonzero((g == value) & (y == label))
            inside = np.isin(cell, split.calibration).sum()
            assert abs(inside - len(cell) / 2) <= 1
    again = calibration_split(y, g, seed=0)
    assert (again.calibration == split.calibration).all()


def test_a_group_too_small_to_split_is_refused():
    with pytest.raises(ValueError, match="group 'x'"):
        calibration_split([0, 1, 0, 1], ["a", "a", "a", "x"], attribute="g")


def test_unknown_group_at_decision_time_is_refused():
    score, y, g = _data(300, 2)
    rule = fit_threshold_rule(
        score, y == 1, g, attribute="g", constraint="demographic_parity", classes=("0", "1")
    )
    with pytest.raises(ValueError, match="no threshold for g='zzz'"):
        rule.decide(np.array([0.5]), ["zzz"])


@settings(max_examples=25, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), n=st.integers(60, 400))
def test_random_data_matches_fairlearn(seed, n):
    from fairlearn.postprocessing import ThresholdOptimizer

    score, y, g = _data(n, seed)
    if min(np.unique(g, return_counts=True)[1]) < 4:
        return
    rule = fit_threshold_rule(
        score, y == 1, g, attribute="g", constraint="demographic_parity", classes=("0", "1")
    )
    direct = ThresholdOptimizer(
        estimator=_Identity().fit(None, None),
        constraints="demographic_parity",
        prefit=True,
        predict_method="predict_proba",
    ).fit(score.reshape(-1, 1), y, sensitive_features=g)
    pmf = direct._pmf_predict(score.reshape(-1, 1), sensitive_features=g)[:, 1]
    np.testing.assert_allclose(rule.positive_probability(score, g), pmf, rtol=0, atol=1e-12)
