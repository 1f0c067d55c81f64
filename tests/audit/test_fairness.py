"""The fairness audit: options, findings, bootstrap intervals, mergeable counts, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from governance.audit._bootstrap import percentile_interval, resample_counts
from governance.audit._confusion import JointCounts
from governance.audit._disparity import disparities
from governance.audit._encode import MISSING_GROUP, group_codes
from governance.audit.base import AuditContext, Predictions
from governance.audit.fairness import FairnessAudit, FairnessOptions, audit_counts
from governance.data.bundle import DataBundle
from governance.errors import InputError
from governance.spec import Spec


def _spec(audits: dict | None = None) -> Spec:
    return Spec.model_validate(
        {
            "name": "t",
            "task": "binary_classification",
            "data": {"eval": "e.csv", "label": "y", "sensitive": ["sex", "race"]},
            "model": {"predictions": "p.csv"},
            "audits": audits or {"fairness": {}},
        }
    ).model_copy(update={"source": Path("spec.yaml")})


def _context(frame: pd.DataFrame, y_pred: np.ndarray, options: dict | None = None) -> AuditContext:
    spec = _spec({"fairness": options or {}})
    bundle = DataBundle(
        task="binary_classification",
        label="y",
        classes=("0", "1"),
        features=(),
        sensitive=("sex", "race"),
        train=None,
        eval=frame,
    )
    preds = Predictions(y_true=frame["y"].astype(str).to_numpy(), y_pred=y_pred.astype(str))
    return AuditContext(
        spec=spec, data=bundle, model=None, eval_predictions=preds, options=options or {}, seed=7
    )


def _frame(n: int = 600, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "y": rng.integers(0, 2, n),
            "sex": rng.choice(["F", "M"], n),
            "race": rng.choice(["a", "b", "c", "d", "e"], n, p=[0.4, 0.3, 0.2, 0.09, 0.01]),
        }
    )
    y_pred = np.where(rng.random(n) < 0.8, frame["y"], 1 - frame["y"])
    return frame, y_pred


def test_section_has_contract_metrics_tables_and_small_group_finding() -> None:
    frame, y_pred = _frame()
    section = FairnessAudit().run(_context(frame, y_pred))
    for q in ("sex", "race", "sex*race", "worst"):
        for m in ("demographic_parity_difference", "demographic_parity_ratio", "equalized_odds_difference"):
            assert f"fairness.{q}.{m}" in section.metrics
    groups = section.tables["groups"]
    race_e = next(r for r in groups if r["attribute"] == "race" and r["group"] == "e")
    assert race_e["small"] and race_e["count"] == int((frame["race"] == "e").sum())
    assert any(f.id == "fairness.small_groups.race" for f in section.findings)
    # every intersection cell is listed, empty ones included
    assert len([r for r in groups if r["attribute"] == "sex*race"]) == 10
    worst = [r for r in section.tables["disparities"] if r["attribute"] == "worst"]
    assert {r["metric"] for r in worst} == {
        "demographic_parity_difference",
        "demographic_parity_ratio",
        "equalized_odds_difference",
        "equal_opportunity_difference",
        "accuracy_difference",
    }


def test_intervals_bracket_the_estimate_and_are_seeded() -> None:
    frame, y_pred = _frame(2000)
    a = FairnessAudit().run(_context(frame, y_pred, {"bootstrap": 300}))
    b = FairnessAudit().run(_context(frame, y_pred, {"bootstrap": 300}))
    c = FairnessAudit().run(_context(frame, y_pred, {"bootstrap": 300, "seed": 99}))
    assert a.tables["disparities"] == b.tables["disparities"]
    assert a.tables["disparities"] != c.tables["disparities"]
    for row in a.tables["disparities"]:
        if row["attribute"] in ("sex", "race") and row["value"] is not None:
            assert row["ci_low"] <= row["value"] + 0.05 and row["ci_high"] >= row["value"] - 0.05
            assert row["ci_low"] <= row["ci_high"]


def test_count_bootstrap_equals_row_bootstrap_in_distribution() -> None:
    """Multinomial count draws and row resamples give the same replicate distribution."""
    rng = np.random.default_rng(5)
    n = 3000
    g = rng.choice(3, n, p=[0.6, 0.3, 0.1])
    yt = rng.integers(0, 2, n)
    yp = (rng.random(n) < 0.3 + 0.2 * g).astype(int)
    joint = JointCounts.from_codes([g], [("a", "b", "c")], yt, yp, ("0", "1"))
    by_counts = disparities(resample_counts(joint.counts, 4000, seed=1), 1)["demographic_parity_difference"]
    by_rows = []
    for _ in range(1500):
        idx = rng.integers(0, n, n)
        jc = JointCounts.from_codes([g[idx]], [("a", "b", "c")], yt[idx], yp[idx], ("0", "1"))
        by_rows.append(float(disparities(jc.counts, 1)["demographic_parity_difference"]))
    rows = np.array(by_rows)
    assert abs(by_counts.mean() - rows.mean()) < 0.003
    assert abs(by_counts.std() - rows.std()) < 0.15 * rows.std()
    # and the replicate total is always n
    assert (resample_counts(joint.counts, 10, seed=0).sum(axis=(1, 2, 3)) == n).all()


def test_percentile_interval_skips_undefined_replicates() -> None:
    assert percentile_interval(np.array([np.nan, np.nan]), 0.95) == (None, None)
    lo, hi = percentile_interval(np.array([0.0, np.nan, 1.0]), 0.5)
    assert lo == pytest.approx(0.25) and hi == pytest.approx(0.75)


def test_counts_merge_across_shards() -> None:
    frame, y_pred = _frame(1000)
    whole = JointCounts.from_codes(
        [group_codes(frame["sex"])[0], group_codes(frame["race"])[0]],
        [group_codes(frame["sex"])[1], group_codes(frame["race"])[1]],
        frame["y"].to_numpy(),
        y_pred,
        ("0", "1"),
        attributes=["sex", "race"],
    )
    shards = []
    for part, preds in ((frame.iloc[:300], y_pred[:300]), (frame.iloc[300:], y_pred[300:])):
        sc, sn = group_codes(part["sex"])
        rc, rn = group_codes(part["race"])
        shards.append(
            JointCounts.from_codes(
                [sc, rc], [sn, rn], part["y"].to_numpy(), preds, ("0", "1"), attributes=["sex", "race"]
            )
        )
    merged = shards[0].merge(shards[1])
    opts = FairnessOptions(bootstrap=0)
    assert audit_counts(merged, opts, seed=0).metrics == audit_counts(whole, opts, seed=0).metrics
    with pytest.raises(ValueError, match="cannot merge"):
        shards[0].merge(JointCounts.from_codes([sc], [sn], part["y"].to_numpy(), preds, ("0", "1")))


def test_missing_sensitive_values_are_their_own_group() -> None:
    codes, names = group_codes(pd.Series(["a", None, "b", "a"]))
    assert names == ("a", "b", MISSING_GROUP)
    assert codes.tolist() == [0, 2, 1, 0]


def test_single_group_attribute_is_bad_input() -> None:
    frame, y_pred = _frame()
    frame["sex"] = "F"
    with pytest.raises(InputError, match=r"data\.sensitive\.sex: has a single group \('F'\)"):
        FairnessAudit().run(_context(frame, y_pred))


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"bootstrap": -1}, "bootstrap"),
        ({"confidence": 1.5}, "confidence"),
        ({"min_group_share": 2}, "min_group_share"),
        ({"intersections": "yes"}, "intersections"),
        ({"nope": 1}, "nope"),
        ({"positive_label": "maybe"}, "positive_label"),
    ],
)
def test_bad_options_name_the_field(options: dict, field: str) -> None:
    frame, y_pred = _frame()
    with pytest.raises(InputError, match=rf"spec\.yaml: audits\.fairness\.{field}"):
        FairnessAudit().run(_context(frame, y_pred, options))


def test_positive_label_flips_selection() -> None:
    frame, y_pred = _frame()
    one = FairnessAudit().run(_context(frame, y_pred, {"bootstrap": 0}))
    zero = FairnessAudit().run(_context(frame, y_pred, {"bootstrap": 0, "positive_label": "0"}))
    key = "fairness.sex.demographic_parity_difference"
    assert one.metrics[key] == pytest.approx(zero.metrics[key])  # 1 - s flips sign only
    assert (
        one.metrics["fairness.sex.equal_opportunity_difference"]
        != zero.metrics["fairness.sex.equal_opportunity_difference"]
    )
    assert zero.details["positive_label"] == "0"
