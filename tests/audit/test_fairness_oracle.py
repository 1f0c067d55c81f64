"""The count-based fairness engine against fairlearn.metrics, to 1e-9, on random inputs and edge cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equal_opportunity_difference,
    equalized_odds_difference,
    false_negative_rate,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score, precision_score

from governance.audit._confusion import JointCounts
from governance.audit._disparity import DISPARITIES
from governance.audit._encode import group_codes
from governance.audit.fairness import FairnessOptions, audit_counts

TOL = 1e-9


def _fairlearn(y_true: np.ndarray, y_pred: np.ndarray, sf: object) -> dict[str, float]:
    return {
        "demographic_parity_difference": demographic_parity_difference(y_true, y_pred, sensitive_features=sf),
        "demographic_parity_ratio": demographic_parity_ratio(y_true, y_pred, sensitive_features=sf),
        "equalized_odds_difference": equalized_odds_difference(
            y_true, y_pred, sensitive_features=sf, agg="worst_case"
        ),
        "equal_opportunity_difference": equal_opportunity_difference(y_true, y_pred, sensitive_features=sf),
        "accuracy_difference": MetricFrame(
            metrics=accuracy_score, y_true=y_true, y_pred=y_pred, sensitive_features=sf
        ).difference(),
    }


def _ours(y_true: np.ndarray, y_pred: np.ndarray, attrs: dict[str, np.ndarray], **options: object):
    codes, cats = zip(*(group_codes(pd.Series(v)) for v in attrs.values()))
    joint = JointCounts.from_codes(
        list(codes), list(cats), y_true, y_pred, ("0", "1"), attributes=list(attrs)
    )
    return audit_counts(joint, FairnessOptions(bootstrap=0, **options), seed=0)  # type: ignore[arg-type]


def _close(ours: float | None, ref: float) -> bool:
    if ours is None:
        return bool(np.isnan(ref))
    return abs(ours - ref) <= TOL


def _check_all(y_true: np.ndarray, y_pred: np.ndarray, attrs: dict[str, np.ndarray]) -> None:
    section = _ours(y_true, y_pred, attrs)
    names = list(attrs)
    targets: list[tuple[str, object]] = [(n, attrs[n]) for n in names]
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            targets.append((f"{a}*{b}", pd.DataFrame({a: attrs[a], b: attrs[b]})))
    worst: dict[str, list[float]] = {m: [] for m in DISPARITIES}
    for qualifier, sf in targets:
        ref = _fairlearn(y_true, y_pred, sf)
        for metric, value in ref.items():
            got = section.metrics[f"fairness.{qualifier}.{metric}"]
            assert _close(got, value), (qualifier, metric, got, value)
            worst[metric].append(value)
    assert _close(
        section.metrics["fairness.worst.demographic_parity_ratio"],
        np.nanmin(worst["demographic_parity_ratio"]),
    )
    for metric in DISPARITIES:
        if metric != "demographic_parity_ratio":
            assert _close(section.metrics[f"fairness.worst.{metric}"], np.nanmax(worst[metric]))


@pytest.mark.parametrize("seed", range(6))
def test_random_inputs_match_fairlearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(50, 3000))
    n_a = int(rng.integers(2, 6))
    sizes = rng.dirichlet(np.ones(n_a) * 0.7)
    attrs = {
        "race": rng.choice([f"r{i}" for i in range(n_a)], n, p=sizes),
        "sex": rng.choice(["F", "M"], n, p=[0.3, 0.7]),
        "age": rng.choice(["young", "mid", "old"], n),
    }
    base = rng.random()
    y_true = (rng.random(n) < base).astype(int)
    y_pred = np.where(rng.random(n) < 0.7, y_true, 1 - y_true)
    _check_all(y_true, y_pred, attrs)


def test_group_with_one_class_counts_rate_as_zero_like_fairlearn() -> None:
    rng = np.random.default_rng(1)
    n = 400
    g = rng.choice(["a", "b", "c"], n)
    y_true = rng.integers(0, 2, n)
    y_pred = rng.integers(0, 2, n)
    y_true[g == "a"] = 1  # no negatives: FPR undefined → 0
    y_true[g == "b"] = 0  # no positives: TPR undefined → 0
    _check_all(y_true, y_pred, {"g": g, "h": rng.choice(["x", "y"], n)})


def test_one_row_group_and_empty_intersection() -> None:
    rng = np.random.default_rng(2)
    n = 300
    a = rng.choice(["p", "q"], n)
    b = np.where(a == "p", rng.choice(["u", "v"], n), "u")  # q*v is empty
    a[0], b[0] = "r", "w"  # a one-row group in both attributes
    y_true = rng.integers(0, 2, n)
    y_pred = rng.integers(0, 2, n)
    _check_all(y_true, y_pred, {"a": a, "b": b})


def test_all_selection_rates_zero_gives_undefined_ratio() -> None:
    n = 60
    g = np.array(["a", "b", "c"] * 20)
    y_true = np.tile([0, 1], 30)
    y_pred = np.zeros(n, dtype=int)
    section = _ours(y_true, y_pred, {"g": g})
    assert np.isnan(demographic_parity_ratio(y_true, y_pred, sensitive_features=g))
    assert section.metrics["fairness.g.demographic_parity_ratio"] is None
    assert section.metrics["fairness.g.demographic_parity_difference"] == 0.0


def test_group_rates_match_fairlearn_by_group() -> None:
    rng = np.random.default_rng(3)
    n = 1000
    g = rng.choice(["a", "b", "c", "d"], n, p=[0.4, 0.3, 0.29, 0.01])
    y_true = rng.integers(0, 2, n)
    y_pred = rng.integers(0, 2, n)
    y_true[g == "d"] = 1
    mf = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "true_positive_rate": true_positive_rate,
            "false_positive_rate": false_positive_rate,
            "false_negative_rate": false_negative_rate,
            "precision": lambda t, p: precision_score(t, p, zero_division=0),
            "accuracy": accuracy_score,
            "count": lambda t, p: len(t),
        },
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=g,
    )
    rows = {r["group"]: r for r in _ours(y_true, y_pred, {"g": g}).tables["groups"] if r["attribute"] == "g"}
    for group, ref in mf.by_group.iterrows():
        row = rows[str(group)]
        assert row["count"] == ref["count"]
        for col in (
            "selection_rate",
            "true_positive_rate",
            "false_positive_rate",
            "false_negative_rate",
            "precision",
            "accuracy",
        ):
            assert abs(row[col] - ref[col]) <= TOL, (group, col)
    assert rows["d"]["small"] is True and rows["a"]["small"] is False


def test_multiclass_is_worst_one_vs_rest_fairlearn() -> None:
    rng = np.random.default_rng(4)
    n = 1500
    classes = ("cat", "dog", "fox")
    g = rng.choice(["a", "b", "c"], n)
    y_true = rng.integers(0, 3, n)
    y_pred = np.where(rng.random(n) < 0.6, y_true, rng.integers(0, 3, n))
    codes, cats = group_codes(pd.Series(g))
    joint = JointCounts.from_codes([codes], [cats], y_true, y_pred, classes, attributes=["g"])
    section = audit_counts(joint, FairnessOptions(bootstrap=0), seed=0)
    per_class = [_fairlearn((y_true == c).astype(int), (y_pred == c).astype(int), g) for c in range(3)]
    for metric in (
        "demographic_parity_difference",
        "equalized_odds_difference",
        "equal_opportunity_difference",
    ):
        assert _close(section.metrics[f"fairness.g.{metric}"], max(p[metric] for p in per_class))
    assert _close(
        section.metrics["fairness.g.demographic_parity_ratio"],
        min(p["demographic_parity_ratio"] for p in per_class),
    )
    ref_acc = MetricFrame(
        metrics=accuracy_score, y_true=y_true, y_pred=y_pred, sensitive_features=g
    ).difference()
    assert _close(section.metrics["fairness.g.accuracy_difference"], ref_acc)
    assert section.details["mode"] == "one_vs_rest"
