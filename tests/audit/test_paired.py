"""The paired comparison engine against a slow row-level reference and independent libraries."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governance.audit.paired import compare_predictions, mcnemar_exact_p


def _row_reference(y, a, b, groups, positive):
    """Every metric of every group by looping over rows, in plain Python floats."""
    out = {}
    for g in sorted(set(groups)):
        rows = [i for i in range(len(y)) if groups[i] == g]
        n = len(rows)
        ref_ok = sum(1 for i in rows if y[i] == a[i])
        cand_ok = sum(1 for i in rows if y[i] == b[i])
        vals = {"accuracy": (ref_ok / n, cand_ok / n)}
        if positive is not None:
            pos = [i for i in rows if y[i] == positive]
            neg = [i for i in rows if y[i] != positive]
            vals["selection_rate"] = (
                sum(1 for i in rows if a[i] == positive) / n,
                sum(1 for i in rows if b[i] == positive) / n,
            )
            vals["true_positive_rate"] = (
                (sum(1 for i in pos if a[i] == positive) / len(pos)) if pos else math.nan,
                (sum(1 for i in pos if b[i] == positive) / len(pos)) if pos else math.nan,
            )
            vals["false_positive_rate"] = (
                (sum(1 for i in neg if a[i] == positive) / len(neg)) if neg else math.nan,
                (sum(1 for i in neg if b[i] == positive) / len(neg)) if neg else math.nan,
            )
        disagree = sum(1 for i in rows if a[i] != b[i]) / n
        ref_only = sum(1 for i in rows if y[i] == a[i] and y[i] != b[i])
        cand_only = sum(1 for i in rows if y[i] == b[i] and y[i] != a[i])
        out[g] = (vals, disagree, ref_only, cand_only, n)
    return out


def _same(x: float, y: float) -> bool:
    return (math.isnan(x) and math.isnan(y)) or abs(x - y) <= 1e-12


def _assert_matches_reference(cmp, attribute, y, a, b, groups, positive):
    reference = _row_reference(y, a, b, groups, positive)
    rows = {(r.group, r.metric): r for r in cmp.metrics if r.attribute == attribute}
    agree = {r.group: r for r in cmp.groups if r.attribute == attribute}
    assert set(agree) == set(reference)
    for g, (vals, disagree, ref_only, cand_only, n) in reference.items():
        for metric, (ref, cand) in vals.items():
            row = rows[(g, metric)]
            assert _same(row.reference, ref), (g, metric)
            assert _same(row.candidate, cand), (g, metric)
            assert _same(row.difference, cand - ref), (g, metric)
        assert agree[g].rows == n
        assert abs(agree[g].disagreement_rate - disagree) <= 1e-12
        assert (agree[g].reference_only_correct, agree[g].candidate_only_correct) == (ref_only, cand_only)


labels_strategy = st.integers(min_value=2, max_value=4)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    k=labels_strategy,
    n=st.integers(min_value=1, max_value=120),
    n_groups=st.integers(min_value=1, max_value=4),
    seed=st.integers(min_value=0, max_value=2**31 - 1),
)
def test_point_values_equal_a_row_level_reference(k, n, n_groups, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    a = rng.integers(0, k, n)
    b = np.where(rng.random(n) < 0.7, a, rng.integers(0, k, n))
    sex = rng.choice([f"g{i}" for i in range(n_groups)], n)
    age = rng.choice(["old", "young"], n)
    cmp = compare_predictions(y, a, b, {"sex": sex, "age": age}, classes=list(range(k)), n_boot=0)
    positive = "1" if k == 2 else None
    ys, as_, bs = y.astype(str).tolist(), a.astype(str).tolist(), b.astype(str).tolist()
    _assert_matches_reference(cmp, "sex", ys, as_, bs, sex.tolist(), positive)
    _assert_matches_reference(cmp, "overall", ys, as_, bs, ["overall"] * n, positive)
    inter = [f"{s}*{t}" for s, t in zip(sex.tolist(), age.tolist())]
    _assert_matches_reference(cmp, "sex*age", ys, as_, bs, inter, positive)


def test_a_bootstrap_replicate_is_the_comparison_of_the_resampled_rows():
    """The count-level replicate equals recomputing everything on resampled rows (1e-12)."""
    from governance.audit._bootstrap import resample_counts
    from governance.audit.paired import _joint_cells, _reduce, metrics_from_cells

    rng = np.random.default_rng(3)
    n = 400
    y, a, b = rng.integers(0, 2, n), rng.integers(0, 2, n), rng.integers(0, 2, n)
    g = rng.integers(0, 3, n)
    for _ in range(20):
        idx = rng.integers(0, n, n)
        cells = _joint_cells([g[idx]], [3], y[idx], a[idx], b[idx], 2)
        values = metrics_from_cells(_reduce(cells, 1, (0,)), positive=1)
        ref = _row_reference(y[idx].tolist(), a[idx].tolist(), b[idx].tolist(), g[idx].tolist(), positive=1)
        for group, (vals, *_rest) in ref.items():
            for metric, (r, c) in vals.items():
                assert _same(float(values[metric][0][group]), r)
                assert _same(float(values[metric][1][group]), c)
    # and a multinomial draw of the joint table has the shape and total of a row resample
    joint = _joint_cells([g], [3], y, a, b, 2)
    draws = resample_counts(joint, 50, seed=1)
    assert draws.shape == (50, *joint.shape)
    assert (draws.sum(axis=(1, 2, 3, 4)) == n).all()


def test_paired_interval_agrees_with_a_row_resampling_bootstrap():
    """Drawing cell counts is distributed as resampling rows: the intervals agree within MC error."""
    rng = np.random.default_rng(0)
    n = 2000
    y = rng.integers(0, 2, n)
    a = np.where(rng.random(n) < 0.8, y, 1 - y)
    b = np.where(rng.random(n) < 0.9, a, 1 - a)
    g = rng.choice(["a", "b"], n, p=[0.8, 0.2])
    cmp = compare_predictions(y, a, b, {"g": g}, n_boot=4000, seed=5)
    row = cmp.metric("accuracy", "g", "b")
    diffs = []
    mask = g == "b"
    for _ in range(4000):
        idx = rng.integers(0, n, n)
        m = mask[idx]
        if not m.any():
            continue
        yy, aa, bb = y[idx][m], a[idx][m], b[idx][m]
        diffs.append((bb == yy).mean() - (aa == yy).mean())
    lo, hi = np.quantile(diffs, [0.025, 0.975])
    assert row.ci_low is not None and row.ci_high is not None
    assert abs(row.ci_low - lo) < 0.01
    assert abs(row.ci_high - hi) < 0.01
    assert row.ci_low <= row.difference <= row.ci_high


def test_identical_models_have_zero_difference_and_no_disagreement():
    rng = np.random.default_rng(1)
    y, a = rng.integers(0, 2, 300), rng.integers(0, 2, 300)
    cmp = compare_predictions(y, a, a, {"s": rng.choice(["x", "y"], 300)}, n_boot=200)
    assert all(r.difference == 0.0 for r in cmp.metrics if not math.isnan(r.difference))
    assert all(r.ci_low == 0.0 and r.ci_high == 0.0 for r in cmp.metrics if r.ci_low is not None)
    assert all(gr.disagreement_rate == 0.0 and gr.mcnemar_p == 1.0 for gr in cmp.groups)
    assert cmp.drop_gap["s"][0] == 0.0


@pytest.mark.parametrize(("b", "c"), [(0, 0), (1, 0), (5, 2), (10, 30), (7, 7), (0, 25)])
def test_mcnemar_exact_equals_the_binomial_formula(b, c):
    n = b + c
    if n == 0:
        expected = 1.0
    else:
        tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n
        expected = min(1.0, 2 * tail)
    assert mcnemar_exact_p(b, c) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_selection_rates_equal_fairlearn():
    from fairlearn.metrics import MetricFrame, selection_rate
    from sklearn.metrics import accuracy_score

    rng = np.random.default_rng(7)
    n = 500
    y, a, b = rng.integers(0, 2, n), rng.integers(0, 2, n), rng.integers(0, 2, n)
    s = rng.choice(["f", "m", "x"], n)
    cmp = compare_predictions(y, a, b, {"sex": s}, n_boot=0)
    for pred, side in ((a, "reference"), (b, "candidate")):
        frame = MetricFrame(
            metrics={"selection_rate": selection_rate, "accuracy": accuracy_score},
            y_true=y,
            y_pred=pred,
            sensitive_features=s,
        )
        for group in ("f", "m", "x"):
            for metric in ("selection_rate", "accuracy"):
                got = getattr(cmp.metric(metric, "sex", group), side)
                assert got == pytest.approx(frame.by_group.loc[group, metric], abs=1e-12)


def test_worst_group_drop_and_gap():
    # group x loses 3 of 4 correct answers, group y loses none
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0])
    a = y.copy()
    b = np.array([0, 0, 0, 1, 0, 0, 0, 0])
    s = np.array(["x"] * 4 + ["y"] * 4)
    cmp = compare_predictions(y, a, b, {"s": s}, n_boot=300, seed=2)
    group, drop, lo, hi = cmp.worst_group_drop["s"]
    assert (group, drop) == ("x", 0.75)
    assert lo is not None and hi is not None and lo <= drop <= hi
    assert cmp.drop_gap["s"][0] == 0.75
    assert cmp.metric("accuracy").difference == pytest.approx(-3 / 8)


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="lengths differ"):
        compare_predictions([0, 1], [0], [0, 1], {})
    with pytest.raises(ValueError, match="not among the classes"):
        compare_predictions([0, 1], [0, 2], [0, 1], {}, classes=[0, 1])
    with pytest.raises(ValueError, match="attribute 's'"):
        compare_predictions([0, 1], [0, 1], [0, 1], {"s": ["a"]})


def test_groups_under_the_min_share_are_left_out_of_worst_and_gap():
    rng = np.random.default_rng(4)
    n = 1000
    y = rng.integers(0, 2, n)
    a = y.copy()
    b = y.copy()
    s = np.array(["big"] * (n - 3) + ["tiny"] * 3)
    b[-3:] = 1 - y[-3:]  # the tiny group loses everything, the big one nothing
    cmp = compare_predictions(y, a, b, {"s": s}, n_boot=0)
    assert cmp.worst_group_drop["s"][:2] == ("big", 0.0)
    assert cmp.drop_gap["s"][0] == 0.0
    assert cmp.metric("accuracy", "s", "tiny").difference == -1.0  # still reported per group
    kept = compare_predictions(y, a, b, {"s": s}, n_boot=0, min_group_share=0.0)
    assert kept.worst_group_drop["s"][:2] == ("tiny", 1.0)


def test_disparities_of_both_models_equal_fairlearn():
    from fairlearn.metrics import (
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
    )

    rng = np.random.default_rng(11)
    n = 800
    y = rng.integers(0, 2, n)
    a = np.where(rng.random(n) < 0.75, y, 1 - y)
    b = np.where(rng.random(n) < 0.8, a, 1 - a)
    s = rng.choice(["f", "m", "x"], n, p=[0.5, 0.4, 0.1])
    cmp = compare_predictions(y, a, b, {"sex": s}, n_boot=200)
    rows = {(r.attribute, r.metric): r for r in cmp.disparities}
    for pred, side in ((a, "reference"), (b, "candidate")):
        expected = {
            "demographic_parity_difference": demographic_parity_difference(y, pred, sensitive_features=s),
            "demographic_parity_ratio": demographic_parity_ratio(y, pred, sensitive_features=s),
            "equalized_odds_difference": equalized_odds_difference(y, pred, sensitive_features=s),
        }
        for metric, value in expected.items():
            assert getattr(rows[("sex", metric)], side) == pytest.approx(value, abs=1e-12)
    row = rows[("sex", "demographic_parity_difference")]
    assert row.difference == pytest.approx(row.candidate - row.reference)
    assert row.ci_low is not None and row.ci_low <= row.ci_high
