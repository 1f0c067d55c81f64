"""Privacy audit: ROC/AUC vs scikit-learn, Clopper–Pearson vs scipy, ε bounds by hand."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from governance.audit._mia import (
    bootstrap_ci,
    clopper_pearson,
    clopper_pearson_upper,
    empirical_epsilon,
    epsilon_from_rates,
    mia_auc,
    roc_curve,
    tpr_at_fpr,
)
from governance.audit.privacy import PrivacyAudit, epsilon_finding
from governance.errors import InputError
from governance.results import Severity
from tests.audit.tiny_models import make_context, tabular_handle


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_and_roc_match_sklearn_with_ties(seed: int) -> None:
    from sklearn.metrics import roc_auc_score
    from sklearn.metrics import roc_curve as sk_roc

    rng = np.random.default_rng(seed)
    m = rng.normal(0.4, 1, 300).round(1)
    n = rng.normal(0.0, 1, 200).round(1)
    y = np.r_[np.ones(len(m)), np.zeros(len(n))]
    assert mia_auc(m, n) == pytest.approx(roc_auc_score(y, np.r_[m, n]), abs=1e-12)
    fpr, tpr, thr = roc_curve(m, n)
    sk_fpr, sk_tpr, sk_thr = sk_roc(y, np.r_[m, n], drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    np.testing.assert_allclose(thr[1:], sk_thr[1:])


def test_tpr_at_fpr_by_hand() -> None:
    members = np.array([3.0, 2.0, 1.0])
    nonmembers = np.array([2.5, 0.0, -1.0])
    assert tpr_at_fpr(members, nonmembers, 0.001) == pytest.approx(1 / 3)
    assert tpr_at_fpr(members, nonmembers, 0.34) == pytest.approx(1.0)
    assert tpr_at_fpr(members, nonmembers, 0.3) == pytest.approx(1 / 3)


@pytest.mark.parametrize(("k", "n"), [(0, 50), (3, 50), (25, 50), (50, 50), (7, 1000)])
def test_clopper_pearson_matches_the_beta_quantile_formula(k: int, n: int) -> None:
    from scipy.stats import beta, binomtest

    low, high = clopper_pearson(k, n, alpha=0.05)
    ref_low = 0.0 if k == 0 else beta.ppf(0.025, k, n - k + 1)
    ref_high = 1.0 if k == n else beta.ppf(0.975, k + 1, n - k)
    assert (low, high) == pytest.approx((ref_low, ref_high), abs=1e-12)
    # scipy's own exact binomial interval is a second, independent reference.
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
    assert (low, high) == pytest.approx((ci.low, ci.high), abs=1e-9)
    if k == 0:  # closed form: 1 - (alpha)^(1/n) for the one-sided bound
        assert clopper_pearson_upper(0, n, 0.05) == pytest.approx(1 - 0.05 ** (1 / n))


def test_epsilon_from_rates_by_hand() -> None:
    assert epsilon_from_rates(0.05, 0.5, 0.0) == pytest.approx(math.log(10))
    assert epsilon_from_rates(0.5, 0.05, 0.0) == pytest.approx(math.log(10))  # the symmetric term
    assert epsilon_from_rates(0.5, 0.5, 0.0) == 0.0  # a coin flip proves nothing
    assert epsilon_from_rates(0.2, 0.3, 1e-5) == pytest.approx(math.log((1 - 1e-5 - 0.3) / 0.2))


def test_empirical_epsilon_on_a_perfect_attack_by_hand() -> None:
    # Perfectly separated scores: at the chosen threshold FP = FN = 0, so each rate's one-sided
    # (1 - alpha/2) Clopper–Pearson upper bound is 1 - (alpha/2)^(1/n).
    members, nonmembers = np.arange(100.0, 200.0), np.arange(0.0, 100.0)
    bound = empirical_epsilon(members, nonmembers, members, nonmembers, delta=1e-5, alpha=0.05)
    upper = 1 - 0.025 ** (1 / 100)
    assert bound.false_positives == 0 and bound.false_negatives == 0
    assert bound.epsilon == pytest.approx(math.log((1 - 1e-5 - upper) / upper))
    # Identical score distributions prove (almost) nothing.
    rng = np.random.default_rng(0)
    same = empirical_epsilon(*(rng.normal(size=500) for _ in range(4)), delta=1e-5)
    assert same.epsilon < 0.5


def test_bootstrap_ci_is_seeded_and_covers_the_estimate() -> None:
    rng = np.random.default_rng(0)
    m, n = rng.normal(0.5, 1, 200), rng.normal(0, 1, 200)
    low, high = bootstrap_ci(m, n, "auc", n_boot=100, seed=1)
    assert low < mia_auc(m, n) < high
    assert bootstrap_ci(m, n, "auc", n_boot=100, seed=1) == (low, high)


def test_audit_reports_ledger_attacks_and_the_stronger_one() -> None:
    handle, bundle = tabular_handle()
    ledger = {"privacy": {"epsilon": 1000.0, "delta": 1e-5, "accountant": "prv"}}
    section = PrivacyAudit().run(make_context(handle, bundle, {"n_boot": 20}, ledger=ledger))
    metrics = section.metrics
    assert metrics["privacy.epsilon"] == 1000.0 and metrics["privacy.delta"] == 1e-5
    per_attack = [metrics[f"privacy.membership_inference.{a}.auc"] for a in ("loss_threshold", "black_box")]
    assert metrics["privacy.membership_inference.auc"] == max(per_attack)  # type: ignore[type-var]
    for key in ("tpr_at_fpr_0.001", "tpr_at_fpr_0.01"):
        assert 0.0 <= metrics[f"privacy.membership_inference.{key}"] <= 1.0  # type: ignore[operator]
    rows = section.tables["membership_inference"]
    assert {r["attack"] for r in rows} == {"loss_threshold", "black_box"}
    assert rows[0]["members"] == rows[0]["nonmembers"] == len(bundle.eval) // 2  # balanced
    assert section.findings == ()  # a claimed ε of 1000 is not contradicted
    assert section.details["roc"]["loss_threshold"][0]["fpr"] == pytest.approx(1e-3)


@pytest.mark.parametrize("source", ["eval", "file"])
def test_loss_attack_auc_equals_sklearn_on_independently_computed_losses(source: str, tmp_path: Path) -> None:
    """Non-members from the eval split, or from a ``nonmembers`` file of held-out rows."""
    from sklearn.metrics import roc_auc_score

    from tests.audit.tiny_models import credit_frames

    handle, bundle = tabular_handle()
    options: dict[str, object] = {"n_boot": 0, "max_rows": None}
    pool = bundle.eval
    if source == "file":
        pool = credit_frames(seed=7)[0].iloc[:150]
        pool.to_csv(tmp_path / "held_out.csv", index=False)
        options["nonmembers"] = str(tmp_path / "held_out.csv")
    section = PrivacyAudit().run(make_context(handle, bundle, options))
    assert section.details["nonmember_source"] == (
        "eval split" if source == "eval" else options["nonmembers"]
    )
    # Rebuild the evaluation halves exactly as documented: balanced seeded samples, then halves.
    from governance.audit._inputs import sample_frame

    n = min(len(bundle.train), len(pool))
    rng = np.random.default_rng(0)
    losses = []
    for frame in (sample_frame(bundle.train, n, 0), sample_frame(pool, n, 1)):
        p = handle.predict_proba(frame)
        y = (frame["risk"] == "good").to_numpy().astype(int)
        order = rng.permutation(len(frame))
        idx = order[len(frame) // 2 :]
        losses.append(np.log(np.clip(p[idx, y[idx]], 1e-12, 1)))
    truth = np.r_[np.ones(len(losses[0])), np.zeros(len(losses[1]))]
    expected = roc_auc_score(truth, np.r_[losses[0], losses[1]])
    assert section.metrics["privacy.membership_inference.loss_threshold.auc"] == pytest.approx(expected)


@pytest.mark.slow
def test_overfit_model_contradicting_a_tiny_claimed_epsilon_is_blocking() -> None:
    handle, bundle = tabular_handle(hidden=256, steps=1500)
    ledger = {"privacy": {"epsilon": 0.05, "delta": 1e-5}}
    a = PrivacyAudit().run(make_context(handle, bundle, {"n_boot": 20}, ledger=ledger))
    b = PrivacyAudit().run(make_context(handle, bundle, {"n_boot": 20}, ledger=ledger))
    assert a.metrics == b.metrics  # seeded, ART's attack model included
    assert a.metrics["privacy.empirical_epsilon_lower_bound"] > 0.05  # type: ignore[operator]
    assert [f.id for f in a.findings] == ["privacy.empirical_epsilon_exceeds_claim"]
    assert a.findings[0].severity is Severity.BLOCKING


def test_epsilon_finding_logic() -> None:
    assert epsilon_finding(None, 5.0, 0.05) is None  # not trained privately: nothing to contradict
    assert epsilon_finding(3.0, 2.9, 0.05) is None
    found = epsilon_finding(3.0, 3.5, 0.05)
    assert found is not None and found.severity is Severity.BLOCKING


def test_no_ledger_means_no_epsilon_metrics() -> None:
    handle, bundle = tabular_handle()
    section = PrivacyAudit().run(make_context(handle, bundle, {"n_boot": 0}))
    assert "privacy.epsilon" not in section.metrics and "privacy.delta" not in section.metrics
    assert section.metrics["privacy.membership_inference.auc"] is not None


@pytest.mark.parametrize(
    ("options", "field"),
    [({"attack_model": "svm"}, "audits.privacy.attack_model"), ({"alpha": 2}, "audits.privacy.alpha")],
)
def test_bad_options(options: dict[str, object], field: str) -> None:
    handle, bundle = tabular_handle()
    with pytest.raises(InputError) as info:
        PrivacyAudit().run(make_context(handle, bundle, options))
    assert info.value.field == field


@pytest.mark.slow
def test_real_german_credit_model_through_all_three_audits(tmp_path: object) -> None:
    # The trainer's handle (governance.models.handle), not the test double: DP-trained, so the
    # attacks must not prove more than the accountant's ε, and the IG axiom must hold.
    from dataclasses import replace

    from governance.audit.attribution import AttributionAudit
    from governance.audit.robustness import RobustnessAudit
    from tests.audit.tiny_models import german_credit_context

    context = german_credit_context(tmp_path, "privacy")
    privacy = PrivacyAudit().run(context)
    claimed = privacy.metrics["privacy.epsilon"]
    assert claimed is not None and 0 < claimed <= 3.0 + 1e-6
    assert privacy.metrics["privacy.empirical_epsilon_lower_bound"] <= claimed  # type: ignore[operator]
    assert privacy.findings == ()
    attribution = AttributionAudit().run(replace(context, options={}))
    assert attribution.metrics["attribution.completeness_gap_relative"] < 0.05  # type: ignore[operator]
    assert "age" in attribution.details["sensitive_features_counted"]  # declared proxy of age_group
    robustness = RobustnessAudit().run(replace(context, options={"hopskipjump_rows": 5}))
    assert robustness.details["onehot_columns_frozen"] is True
    assert 0.0 <= robustness.metrics["robustness.pgd.eps_0.1.accuracy"] <= 1.0  # type: ignore[operator]


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        ("missing", "file not found"),
        ("no_label", "lacks column 'risk'"),
        ("unknown_label", "not in the model's labels"),
        ("train_rows", "also train rows"),
        ("not_a_path", "expected a"),
    ],
)
def test_bad_nonmembers_file_is_one_input_error(problem: str, message: str, tmp_path: Path) -> None:
    handle, bundle = tabular_handle()
    path = tmp_path / "held_out.csv"
    frame = bundle.eval.copy()
    if problem == "no_label":
        frame = frame.drop(columns=["risk"])
    elif problem == "unknown_label":
        frame.loc[frame.index[0], "risk"] = "maybe"
    elif problem == "train_rows":
        frame = bundle.train.iloc[:3]
    if problem != "missing":
        frame.to_csv(path, index=False)
    options: dict[str, object] = {"nonmembers": 5 if problem == "not_a_path" else str(path)}
    context = make_context(handle, bundle, options)
    for call in (
        lambda: PrivacyAudit().preflight(context.spec, bundle, options),
        lambda: PrivacyAudit().run(context),
    ):
        with pytest.raises(InputError) as info:
            call()
        assert info.value.field == "audits.privacy.nonmembers" and message in info.value.message


def test_nonmembers_path_is_relative_to_the_spec_and_hashed(tmp_path: Path) -> None:
    from governance.audit.privacy import nonmember_path

    handle, bundle = tabular_handle()
    spec = make_context(handle, bundle).spec.model_copy(update={"source": tmp_path / "audits" / "spec.yaml"})
    assert (
        nonmember_path(spec, {"nonmembers": "data/held.csv"})
        == (tmp_path / "audits" / "data" / "held.csv").resolve()
    )
    assert nonmember_path(spec, {}) is None
    assert PrivacyAudit().input_files(spec, {"nonmembers": "/x/held.csv"}) == (Path("/x/held.csv"),)


def test_headline_epsilon_bound_is_bonferroni_over_the_attacks() -> None:
    """The headline bound is a maximum over k attacks: each bound at α/k, so the maximum holds at 1 − α.

    Each attack's own bound (in its row) holds at 1 − α alone; their maximum would hold only at
    1 − kα (90% for two attacks), which the report used to call 95%.
    """
    from governance.audit.privacy import _epsilon_bound

    handle, bundle = tabular_handle(hidden=256, steps=1500)
    section = PrivacyAudit().run(make_context(handle, bundle, {"n_boot": 0, "max_rows": None}))
    rows = section.tables["membership_inference"]
    k = len(rows)
    assert k == 2 and section.details["confidence"] == 0.95
    assert section.details["bound_confidence_per_attack"] == pytest.approx(1 - 0.05 / k)
    headline = section.metrics["privacy.empirical_epsilon_lower_bound"]
    assert headline is not None and headline > 0  # the overfit model leaks: a bound that says something
    # Never more than the largest per-attack (α) bound: a stricter confidence gives a smaller ε.
    assert headline <= max(r["epsilon_lower_bound"] for r in rows) + 1e-12
    # Recomputed by hand for the loss attack at α/k, with the same halves the audit used.
    from governance.audit._inputs import sample_frame

    n = min(len(bundle.train), len(bundle.eval))
    rng = np.random.default_rng(0)
    parts = {}
    for side, frame in (("m", sample_frame(bundle.train, n, 0)), ("n", sample_frame(bundle.eval, n, 1))):
        p = handle.predict_proba(frame)
        y = (frame["risk"] == "good").to_numpy().astype(int)
        order = rng.permutation(len(frame))
        for part, idx in (("fit", order[: len(frame) // 2]), ("eval", order[len(frame) // 2 :])):
            parts[f"{side}_{part}"] = np.log(
                np.clip(p[idx, y[idx]].astype(np.float32).astype(np.float64), 1e-12, 1)
            )
    loss = _epsilon_bound(
        parts["m_eval"], parts["n_eval"], (parts["m_fit"], parts["n_fit"]), 1e-5, 0.05 / k, 0
    ).epsilon
    assert headline >= loss - 1e-12


def test_bonferroni_bound_covers_jointly_where_the_plain_maximum_does_not() -> None:
    """Under no leakage (members and non-members alike) any ε > 0 is a false claim; count them.

    Two independent attacks whose bounds each fail with probability ≈ α: their maximum fails
    with ≈ 2α, the Bonferroni maximum with ≤ α. The Clopper–Pearson bound is conservative, so
    this is shown on its building block: the one-sided upper bound on a rate.
    """
    rng = np.random.default_rng(0)
    n, rate, alpha, trials = 200, 0.3, 0.05, 4000
    plain = bonferroni = 0
    for _ in range(trials):
        counts = rng.binomial(n, rate, size=2)  # two attacks' false-positive counts
        plain += any(clopper_pearson_upper(int(c), n, alpha) < rate for c in counts)
        bonferroni += any(clopper_pearson_upper(int(c), n, alpha / 2) < rate for c in counts)
    assert plain / trials > alpha  # the plain maximum over-claims its confidence
    assert bonferroni / trials <= alpha
