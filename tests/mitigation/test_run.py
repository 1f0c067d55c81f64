"""Threshold mitigation end to end on scores: the frontier, the pick, before/after on held-out rows."""

from __future__ import annotations

import numpy as np
import pytest
from fairlearn.metrics import demographic_parity_ratio

from governance.mitigation.frontier import FrontierPoint, Target, choose, mark_dominated
from governance.mitigation.run import mitigate_threshold


def _data(n: int, seed: int):
    rng = np.random.default_rng(seed)
    sex = rng.choice(["f", "m"], n, p=[0.4, 0.6])
    age = rng.choice(["young", "old"], n)
    y = (rng.random(n) < np.where(sex == "m", 0.7, 0.45)).astype(int)
    score = np.clip(0.4 * y + 0.45 * rng.random(n) + np.where(sex == "m", 0.12, 0.0), 0, 1)
    pred = (score > 0.5).astype(int)
    return y, score, pred, {"sex": sex, "age": age}


def test_demographic_parity_reaches_four_fifths_and_reports_every_metric():
    y, score, pred, sensitive = _data(4000, 0)
    out = mitigate_threshold(
        y,
        score,
        pred,
        sensitive,
        classes=("0", "1"),
        attribute="sex",
        constraint="demographic_parity",
        seed=1,
    )
    held = out.split.held_out
    before_ratio = demographic_parity_ratio(y[held], pred[held], sensitive_features=sensitive["sex"][held])
    after_ratio = demographic_parity_ratio(
        y[held], out.after.astype(int), sensitive_features=sensitive["sex"][held]
    )
    assert before_ratio < 0.8
    assert out.frontier.chosen is not None
    assert after_ratio == pytest.approx(out.frontier.points[out.frontier.chosen].target_value, abs=1e-12)
    assert after_ratio >= 0.8
    changes = {c.metric: c for c in out.changes}
    ratio = changes["fairness.sex.demographic_parity_ratio"]
    assert ratio.targeted and not ratio.worse
    assert ratio.before == pytest.approx(before_ratio, abs=1e-12)
    assert ratio.after == pytest.approx(after_ratio, abs=1e-12)
    assert "fairness.age.equalized_odds_difference" in changes  # untargeted metrics too
    assert "fairness.sex*age.demographic_parity_ratio" in changes
    assert len(out.frontier.points) >= 9
    # the unmitigated point is on the frontier: nothing is more accurate
    assert out.frontier.points[0].knob == "none"


def test_equalized_odds_sweeps_a_blend():
    y, score, pred, sensitive = _data(3000, 2)
    out = mitigate_threshold(
        y,
        score,
        pred,
        sensitive,
        classes=("0", "1"),
        attribute="sex",
        constraint="equalized_odds",
        seed=0,
        n_boot=100,
    )
    knobs = {p.knob for p in out.frontier.points}
    assert knobs == {"none", "blend"}
    assert len(out.frontier.points) == 12


def test_an_unreachable_target_is_said_plainly():
    y, score, pred, sensitive = _data(2000, 3)
    out = mitigate_threshold(
        y,
        score,
        pred,
        sensitive,
        classes=("0", "1"),
        attribute="sex",
        constraint="demographic_parity",
        target=Target("demographic_parity_ratio", ">=", 1.01),
        n_boot=0,
    )
    assert out.frontier.chosen is None
    assert out.frontier.reason.startswith("infeasible at this accuracy")


def test_pareto_dominance_and_choice():
    pts = [
        FrontierPoint("none", None, 0.80, 0.30, 0.60, False),
        FrontierPoint("tol", 0.1, 0.78, 0.10, 0.82, True),
        FrontierPoint("tol", 0.2, 0.76, 0.15, 0.78, False),  # dominated by tol 0.1
        FrontierPoint("tol", 0.0, 0.74, 0.02, 0.97, True),
    ]
    marked = mark_dominated(pts)
    assert [p.dominated for p in marked] == [False, False, True, False]
    index, reason = choose(marked, Target("demographic_parity_ratio", ">=", 0.8))
    assert index == 1 and "0.780" in reason


def test_a_model_that_already_meets_the_target_keeps_its_own_decisions():
    y, _score, _pred, sensitive = _data(2000, 5)
    perfect = y.astype(float)  # nothing is more accurate than the model itself
    out = mitigate_threshold(
        y,
        perfect,
        y,
        sensitive,
        classes=("0", "1"),
        attribute="age",
        constraint="demographic_parity",
        target=Target("demographic_parity_ratio", ">=", 0.0),
        n_boot=0,
    )
    assert out.frontier.chosen == 0
    assert not out.rule.uses_sensitive_attribute
    assert (out.after == out.before).all()
