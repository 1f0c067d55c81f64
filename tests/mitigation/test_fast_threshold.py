"""The vectorised ThresholdOptimizer fit against fairlearn's own, on generated data of every shape."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.base import BaseEstimator, ClassifierMixin

from governance.mitigation import fast_threshold
from governance.mitigation._codes import group_codes
from governance.mitigation.fast_threshold import threshold_fitter
from governance.mitigation.run import mitigate_threshold

SIMPLE = ("demographic_parity", "true_positive_rate_parity")


class _Identity(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X):
        s = np.asarray(X, dtype=float).reshape(-1)
        return np.column_stack([1 - s, s])


def _fairlearn(scores, y, g, constraint, tol):
    from fairlearn.postprocessing import ThresholdOptimizer

    return ThresholdOptimizer(
        estimator=_Identity().fit(None, None),
        constraints=constraint,
        objective="accuracy_score",
        prefit=True,
        predict_method="predict_proba",
        tol=tol,
    ).fit(scores.reshape(-1, 1), y, sensitive_features=g)


def _ours(scores, y, g, constraint, tol):
    prepared = fast_threshold._prepare(scores, y.astype(np.int64), *group_codes(g), constraint, 1000)
    return fast_threshold.fit_group_thresholds(*prepared, constraint, tol)


def _assert_same(scores, y, g, constraint, tol):
    """Every number of fairlearn's interpolation, and its decisions for a random state, to 1e-9."""
    direct = _fairlearn(scores, y, g, constraint, tol)
    ours = _ours(scores, y, g, constraint, tol)
    theirs = direct.interpolated_thresholder_.interpolation_dict
    assert sorted(ours) == sorted(str(k) for k in theirs)
    for key, t in theirs.items():
        mine = ours[str(key)]
        assert (mine.operator0, mine.operator1) == (t.operation0.operator, t.operation1.operator)
        expected = [t.p0, t.operation0.threshold, t.p1, t.operation1.threshold]
        expected += [t.get("p_ignore", 0.0), t.get("prediction_constant", 0.0)]
        got = [mine.p0, mine.threshold0, mine.p1, mine.threshold1, mine.p_ignore, mine.constant]
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9)
    from governance.models.decision_rule import DecisionRule

    rule = DecisionRule("g", constraint, tol, ("0", "1"), ours, random_state=11)
    pmf = direct._pmf_predict(scores.reshape(-1, 1), sensitive_features=g)[:, 1]
    np.testing.assert_allclose(rule.positive_probability(scores, g), pmf, rtol=0, atol=1e-9)
    decisions = direct.predict(scores.reshape(-1, 1), sensitive_features=g, random_state=11)
    assert (rule.decide(scores, g) == decisions).all()


def _data(n: int, seed: int, decimals: int | None = None):
    rng = np.random.default_rng(seed)
    g = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    shift = np.select([g == "a", g == "b"], [0.15, -0.1], -0.2)
    y = (rng.random(n) < 0.5 + shift).astype(int)
    score = np.clip(0.35 * y + 0.5 * rng.random(n) + shift, 0, 1)
    return (score if decimals is None else np.round(score, decimals)), y, g


@pytest.mark.parametrize("constraint", [*SIMPLE, "equalized_odds"])
@pytest.mark.parametrize("decimals", [None, 2])  # all distinct scores; heavy ties
def test_equals_fairlearn_at_every_tolerance_of_the_sweep(constraint, decimals):
    from governance.mitigation.run import TOL_GRID

    score, y, g = _data(1500, 7, decimals)
    for tol in (None,) if constraint == "equalized_odds" else (None, *TOL_GRID):
        _assert_same(score, y, g, constraint, tol)


@st.composite
def _groups(draw):
    """Groups of 2 to 40 rows with both labels; scores from few values (ties), or one (constant)."""
    n_groups = draw(st.integers(1, 4))
    level_count = draw(st.sampled_from([1, 2, 3, 7, 1000]))
    levels = np.round(np.linspace(0, 1, level_count), 6) if level_count > 1 else np.array([0.5])
    scores, labels, groups = [], [], []
    for k in range(n_groups):
        size = draw(st.integers(2, 40))
        y = draw(st.lists(st.integers(0, 1), min_size=size, max_size=size))
        y[0], y[1] = 0, 1  # fairlearn needs both labels in every group
        constant = draw(st.booleans())
        picks = draw(st.lists(st.integers(0, len(levels) - 1), min_size=size, max_size=size))
        s = np.full(size, levels[picks[0]]) if constant else levels[picks]
        scores.append(s)
        labels.extend(y)
        groups.extend([f"g{k}"] * size)
    return np.concatenate(scores).astype(float), np.asarray(labels), np.asarray(groups, dtype=object)


@settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=_groups(),
    constraint=st.sampled_from([*SIMPLE, "equalized_odds"]),
    tol=st.sampled_from([None, 0.0, 0.05, 0.3]),
)
def test_generated_data_equals_fairlearn(data, constraint, tol):
    scores, y, g = data
    _assert_same(scores, y, g, constraint, None if constraint == "equalized_odds" else tol)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(seed=st.integers(0, 10_000), n=st.integers(40, 3000), decimals=st.sampled_from([None, 1, 3, 5]))
def test_random_scores_equal_fairlearn(seed, n, decimals):
    score, y, g = _data(n, seed, decimals)
    for value in np.unique(g):  # every group needs both labels
        rows = g == value
        if y[rows].min() == y[rows].max():
            return
    for constraint in (*SIMPLE, "equalized_odds"):
        _assert_same(score, y, g, constraint, None if constraint == "equalized_odds" else 0.02)


def test_the_fitter_checks_itself_against_fairlearn_on_the_rows_in_front_of_it():
    score, y, g = _data(800, 1)
    fit = threshold_fitter(
        score, y == 1, g, attribute="g", constraint="demographic_parity", classes=("0", "1")
    )
    assert fit.engine == "vectorised"
    assert "at tol=None and 0.05 on all 800 calibration rows" in fit.check  # the sweep's windows too
    rule = fit(0.05)
    direct = _fairlearn(score, y, g, "demographic_parity", 0.05)
    decisions = direct.predict(score.reshape(-1, 1), sensitive_features=g, random_state=0)
    assert (rule.decide(score, g) == decisions).all()


def test_above_the_exact_limit_the_check_runs_on_a_stratified_sample(monkeypatch):
    monkeypatch.setattr(fast_threshold, "CHECK_EXACT_ROWS", 500)
    monkeypatch.setattr(fast_threshold, "CHECK_SAMPLE_ROWS", 300)
    score, y, g = _data(2000, 2)
    fit = threshold_fitter(
        score, y, g, attribute="g", constraint="true_positive_rate_parity", classes=("0", "1")
    )
    assert fit.engine == "vectorised"
    assert "a stratified sample of" in fit.check and "of the 2,000 calibration rows" in fit.check
    _assert_same(score, y, g, "true_positive_rate_parity", 0.1)  # and the full data agree too


def test_fairlearn_runs_where_the_check_fails_or_the_version_is_not_replicated(monkeypatch):
    score, y, g = _data(600, 3)
    direct = _fairlearn(score, y, g, "demographic_parity", 0.02)
    expected = direct.predict(score.reshape(-1, 1), sensitive_features=g, random_state=0)

    monkeypatch.setattr(fast_threshold, "_same", lambda a, b: False)
    fit = threshold_fitter(score, y, g, attribute="g", constraint="demographic_parity", classes=("0", "1"))
    assert fit.engine == "fairlearn" and "differed from fairlearn" in fit.check
    assert (fit(0.02).decide(score, g) == expected).all()
    monkeypatch.undo()

    monkeypatch.setattr(fast_threshold, "REPLICATED_FAIRLEARN", ("0.1",))
    fit = threshold_fitter(score, y, g, attribute="g", constraint="demographic_parity", classes=("0", "1"))
    assert fit.engine == "fairlearn" and "not a version this replica was made from" in fit.check
    assert (fit(0.02).decide(score, g) == expected).all()


def test_a_nan_score_or_a_one_label_group_is_refused_plainly():
    score, y, g = _data(300, 4)
    bad = score.copy()
    bad[5] = np.nan
    with pytest.raises(ValueError, match="a score is NaN"):
        threshold_fitter(bad, y, g, attribute="g", constraint="demographic_parity", classes=("no", "yes"))
    y = y.copy()
    y[g == "c"] = 1
    with pytest.raises(ValueError, match="group 'c' of 'g' has only label 'yes'"):
        threshold_fitter(score, y, g, attribute="g", constraint="demographic_parity", classes=("no", "yes"))


@pytest.mark.parametrize("constraint", [*SIMPLE, "equalized_odds"])
def test_the_whole_mitigation_is_the_same_with_fairlearn_itself(monkeypatch, constraint):
    """Frontier, pick, rule and every before/after number: vectorised sweep == fairlearn sweep."""
    rng = np.random.default_rng(5)
    n = 3000
    sex = rng.choice(["f", "m"], n, p=[0.4, 0.6])
    age = rng.choice(["young", "old"], n)
    y = (rng.random(n) < np.where(sex == "m", 0.7, 0.45)).astype(int)
    score = np.round(np.clip(0.4 * y + 0.45 * rng.random(n) + np.where(sex == "m", 0.12, 0.0), 0, 1), 3)
    args = (y, score, (score > 0.5).astype(int), {"sex": sex, "age": age})
    kwargs = {"classes": ("0", "1"), "attribute": "sex", "constraint": constraint, "seed": 3, "n_boot": 50}
    fast = mitigate_threshold(*args, **kwargs)
    assert fast.engine.startswith("vectorised replica of fairlearn")
    monkeypatch.setattr(fast_threshold, "REPLICATED_FAIRLEARN", ())
    slow = mitigate_threshold(*args, **kwargs)
    assert "not a version" in slow.engine
    assert fast.rule == slow.rule
    assert fast.frontier == slow.frontier
    assert fast.changes == slow.changes
    assert (fast.after == slow.after).all()
