"""Reweighing: Kamiran-Calders weights against AIF360, the strength frontier, before/after."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import demographic_parity_difference, demographic_parity_ratio
from hypothesis import given, settings
from hypothesis import strategies as st

from governance.mitigation.reweigh import STRENGTHS, kamiran_calders, mitigate_reweigh


def _aif360_weights(groups: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """AIF360's ``Reweighing`` on a binary attribute (1 privileged) and binary label (1 favourable)."""
    from aif360.algorithms.preprocessing import Reweighing
    from aif360.datasets import BinaryLabelDataset

    frame = pd.DataFrame({"a": groups.astype(float), "y": labels.astype(float), "x": np.arange(len(groups))})
    data = BinaryLabelDataset(
        df=frame,
        label_names=["y"],
        protected_attribute_names=["a"],
        favorable_label=1.0,
        unfavorable_label=0.0,
    )
    reweighing = Reweighing(unprivileged_groups=[{"a": 0.0}], privileged_groups=[{"a": 1.0}])
    return np.asarray(reweighing.fit_transform(data).instance_weights, dtype=np.float64)


@pytest.mark.parametrize(("n", "seed"), [(50, 0), (400, 1), (3000, 2)])
def test_weights_equal_aif360_reweighing(n: int, seed: int) -> None:
    pytest.importorskip("aif360")
    rng = np.random.default_rng(seed)
    groups = (rng.random(n) < 0.3).astype(int)
    labels = (rng.random(n) < np.where(groups == 1, 0.7, 0.4)).astype(int)
    ours = kamiran_calders(groups, labels, attribute="a", label="y")
    np.testing.assert_allclose(ours.weights, _aif360_weights(groups, labels), rtol=1e-12, atol=0)
    assert sum(c.rows for c in ours.cells) == n


@settings(max_examples=60, deadline=None, database=None)
@given(
    cells=st.lists(
        st.tuples(st.sampled_from("abcd"), st.sampled_from(["no", "yes", "maybe"])), min_size=1, max_size=80
    )
)
def test_weighted_labels_are_independent_of_the_group(cells: list[tuple[str, str]]) -> None:
    """Independent of the formula: with the weights, each non-empty cell weighs N·P(a)·P(y) (each
    group's label distribution is then the overall one), the total is N when no cell is empty, and
    each weight is n_a·n_y/(N·n_ay)."""
    groups = np.array([g for g, _ in cells], dtype=object)
    labels = np.array([y for _, y in cells], dtype=object)
    w = kamiran_calders(groups, labels).weights
    n = len(cells)
    if len(set(cells)) == len(set(groups)) * len(set(labels)):
        assert w.sum() == pytest.approx(n, rel=1e-12)
    for g in set(groups):
        for y in set(labels):
            cell = (groups == g) & (labels == y)
            if cell.any():
                expected = (groups == g).sum() * (labels == y).sum() / n
                assert w[cell].sum() == pytest.approx(expected, rel=1e-12)
                by_hand = (groups == g).sum() * (labels == y).sum() / (n * cell.sum())
                assert np.allclose(w[cell], by_hand, rtol=1e-12)


def test_strength_zero_is_unweighted_and_one_is_full() -> None:
    kc = kamiran_calders(["f", "f", "m", "m", "m"], [1, 0, 1, 1, 0])
    assert np.array_equal(kc.at(0.0), np.ones(5))
    np.testing.assert_allclose(kc.at(1.0), kc.weights)
    np.testing.assert_allclose(kc.at(0.5), np.sqrt(kc.weights))
    assert len(STRENGTHS) >= 8 and max(STRENGTHS) == 1.0 and min(STRENGTHS) > 0


def test_a_missing_group_value_is_refused() -> None:
    with pytest.raises(ValueError, match="missing value"):
        kamiran_calders(pd.Series(["f", None, "m"]), [1, 0, 1], attribute="sex")


def _decisions(n: int, seed: int):
    """Labels, groups, and decisions whose selection-rate gap shrinks as the strength grows."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["f", "m"], n, p=[0.4, 0.6])
    age = rng.choice(["young", "old"], n)
    y = (rng.random(n) < np.where(sex == "m", 0.65, 0.45)).astype(int)
    noise = rng.random(n)

    def decide(strength: float) -> np.ndarray:
        boost = np.where(sex == "m", 0.15 * (1 - strength), 0.12 * strength)
        return ((0.5 * y + 0.5 * noise + boost) > 0.6).astype(int)

    return y, sex, age, decide


def test_frontier_picks_the_most_accurate_strength_meeting_four_fifths_and_reports_every_metric() -> None:
    y, sex, age, decide = _decisions(3000, 0)
    kc = kamiran_calders(sex, y, attribute="sex", label="y")
    candidates = {s: decide(s) for s in STRENGTHS}
    out = mitigate_reweigh(
        y,
        decide(0.0),
        candidates,
        {"sex": sex, "age": age},
        weights=kc,
        classes=("0", "1"),
        attribute="sex",
        constraint="demographic_parity",
        seed=0,
        n_boot=200,
    )
    points = out.frontier.points
    assert len(points) == 1 + len(STRENGTHS) >= 9
    assert [p.value for p in points] == [0.0, *STRENGTHS] and points[0].knob == "none"
    for p, s in zip(points, [0.0, *STRENGTHS]):
        assert p.target_value == pytest.approx(
            demographic_parity_ratio(y, decide(s), sensitive_features=sex), abs=1e-12
        )
        assert p.disparity == pytest.approx(
            demographic_parity_difference(y, decide(s), sensitive_features=sex), abs=1e-12
        )
    meeting = [p for p in points if p.target_value >= 0.8]
    best = max(meeting, key=lambda p: (p.accuracy, -p.disparity))
    assert out.frontier.chosen is not None and points[out.frontier.chosen] == best
    assert out.strength == best.value
    assert np.array_equal(out.after.astype(int), decide(out.strength))
    changes = {c.metric: c for c in out.changes}
    ratio = changes["fairness.sex.demographic_parity_ratio"]
    assert ratio.targeted and ratio.before == pytest.approx(points[0].target_value, abs=1e-12)
    assert ratio.after == pytest.approx(best.target_value, abs=1e-12)
    assert ratio.ci_low is not None and ratio.ci_high is not None  # paired bootstrap interval
    assert "fairness.age.equalized_odds_difference" in changes and "performance.accuracy" in changes


def test_no_strength_reaching_the_target_deploys_full_weights_and_says_so() -> None:
    y, sex, _age, decide = _decisions(2000, 1)
    kc = kamiran_calders(sex, y)
    biased = {s: decide(0.0) for s in STRENGTHS}
    out = mitigate_reweigh(
        y,
        decide(0.0),
        biased,
        {"sex": sex},
        weights=kc,
        classes=("0", "1"),
        attribute="sex",
        constraint="demographic_parity",
        n_boot=0,
    )
    assert out.frontier.chosen is None and out.strength == 1.0
    assert out.frontier.reason.startswith("infeasible at this accuracy")


def test_a_model_that_already_meets_the_target_is_kept() -> None:
    y, sex, _age, decide = _decisions(2000, 2)
    fair = decide(1.0)
    out = mitigate_reweigh(
        y,
        fair,
        {s: decide(0.0) for s in STRENGTHS},  # every reweighed model is worse and less fair
        {"sex": sex},
        weights=kamiran_calders(sex, y),
        classes=("0", "1"),
        attribute="sex",
        constraint="demographic_parity",
        n_boot=0,
    )
    assert out.frontier.points[0].meets_target
    assert out.frontier.chosen == 0 and out.strength == 0.0 and np.array_equal(out.after, out.before)
