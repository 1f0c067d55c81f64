"""The metric catalog matches what the audits really emit, and rules are checked against it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from governance.metrics_catalog import CATALOG, CHOICES, is_known_metric, register_metric_pattern, suggest

REPO = Path(__file__).resolve().parents[1]


def test_closed_lists_equal_the_audits_own_registries() -> None:
    from governance.audit._attacks import attack_names
    from governance.audit._disparity import DISPARITIES
    from governance.text.perturb import perturbation_names

    assert CHOICES["disparity"] == DISPARITIES
    assert set(CHOICES["attack"]) == set(attack_names())
    assert set(CHOICES["perturbation"]) == set(perturbation_names())


def test_every_metric_of_the_reference_results_is_known() -> None:
    raw = json.loads((REPO / "tests" / "report" / "data" / "german_credit_results.json").read_text())
    unknown = [m for m in raw["metrics"] if not is_known_metric(m)]
    assert unknown == []


def test_every_rule_of_the_built_in_packs_is_known() -> None:
    from governance.policy.loader import builtin_pack_names, load_policy

    for name in builtin_pack_names():
        assert all(is_known_metric(r.metric) for r in load_policy(name).rules), name


@pytest.mark.parametrize(
    "metric",
    [
        "privacy.canary.epsilon_lower_bound",
        "privacy.canary.count",
        "privacy_cost.accuracy_drop",
        "privacy_cost.worst_group_accuracy_drop",
        "privacy_cost.sex.accuracy_drop_gap",
        "compression.int8.accuracy_drop",
        "compression.prune_90.latency_ms_p95",
        "compression.fp32.size_bytes",
        "performance.baseline.majority_accuracy",
        "performance.baseline.logistic_accuracy",
        "performance.lift_over_majority",
        "mitigation.threshold.fairness.sex.demographic_parity_ratio",
        "robustness.fgsm.eps_1e-05.accuracy",
        "robustness.gaussian_noise.sigma_0.5.worst_group_accuracy_drop",
        "robustness.char_typo.rate_0.1.flip_rate",
        "fairness.sex*age_group.equalized_odds_difference",
    ],
)
def test_contract_ids_round_one_and_two_are_known(metric: str) -> None:
    assert is_known_metric(metric)


@pytest.mark.parametrize(
    ("metric", "known"),
    [
        ("fairness.*.demographic_parity_ratio", True),
        ("fairness.*[*]*.demographic_parity_ratio", True),
        ("robustness.*.eps_0.1.accuracy_drop", True),
        ("robustness.gaussian_noise.*.accuracy_drop", True),
        ("*.accuracy", True),
        ("privacy.membership_inference.[lb]*.auc", True),
        ("fairness.*.demographic_parity_ration", False),
        ("robustness.fsgm.eps_0.1.accuracy", False),
        ("robustness.*.eps_0.1.acuracy_drop", False),
        ("compression.fp32.disagreement_rate", False),
        ("performance.acuracy", False),
        ("privacy.membership_inference.[xyz]*.auc", False),
        ("performance.?", False),
    ],
)
def test_globs_are_known_when_they_can_match_an_emitted_id(metric: str, known: bool) -> None:
    assert is_known_metric(metric) is known


def test_suggestion_names_the_closest_id() -> None:
    assert suggest("performance.acuracy") == "performance.accuracy"
    assert suggest("robustness.fsgm.eps_0.1.accuracy") == "robustness.fgsm.eps_<number>.accuracy"


def test_a_third_party_pattern_can_be_registered() -> None:
    assert not is_known_metric("data_quality.my_score")
    register_metric_pattern("data_quality.my_score")
    try:
        assert is_known_metric("data_quality.my_score")
    finally:
        CATALOG["data_quality"].remove("data_quality.my_score")
        register_metric_pattern("data_quality.rows")  # clears the caches
    with pytest.raises(ValueError, match="unknown placeholder"):
        register_metric_pattern("x.<nope>")


def test_catalog_imports_nothing_heavy() -> None:
    code = (
        "import sys, governance.metrics_catalog, governance.policy.schema;"
        "print(sorted(m for m in ('torch','numpy','pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]"


@pytest.mark.slow
def test_every_metric_a_full_tabular_run_emits_is_in_the_catalog(tmp_path: Path) -> None:
    """Train a tiny model and run every audit: each emitted ID must match a catalog pattern."""
    from governance.pipeline import run_audit
    from governance.spec import load_spec

    rng = np.random.default_rng(0)
    n = 240
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=n),
            "x2": rng.choice(["u", "v"], n),
            "sex": rng.choice(["F", "M"], n),
            "age group": rng.choice(["young", "old"], n),
            "y": rng.choice(["no", "yes"], n),
        }
    )
    frame.iloc[:160].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[160:].to_csv(tmp_path / "eval.csv", index=False)
    (tmp_path / "spec.yaml").write_text(
        "name: catalog\ntask: binary_classification\nseed: 0\n"
        "data: {train: train.csv, eval: eval.csv, label: y, sensitive: [sex, age group]}\n"
        "model: {architecture: mlp, options: {hidden: [4]}}\ntrain: {epochs: 1, batch_size: 32}\n"
        "audits:\n  data_quality: {}\n  performance: {}\n  fairness: {intersections: true, bootstrap: 0}\n"
        "  attribution: {max_rows: 20, n_steps: 8, infidelity_rows: 5, infidelity_samples: 2}\n"
        "  robustness: {max_rows: 20, eps: [0.1], pgd_steps: 2, hopskipjump_rows: 2}\n"
        "  privacy: {max_rows: 60, n_boot: 5}\n"
    )
    outcome = run_audit(load_spec(tmp_path / "spec.yaml"), tmp_path / "out", device="cpu", progress=False)
    assert not outcome.errored, {n: s.error for n, s in outcome.results.sections.items()}
    emitted = set(outcome.results.metrics)
    assert {m.split(".")[0] for m in emitted} >= {"data_quality", "performance", "fairness", "robustness"}
    assert sorted(m for m in emitted if not is_known_metric(m)) == []


def test_policy_metrics_lists_the_catalog(capsys: pytest.CaptureFixture[str]) -> None:
    from governance.cli import main

    assert main(["policy", "metrics"]) == 0
    out = capsys.readouterr().out
    assert "  fairness.<attr>.<disparity>" in out
    assert "  compression.<variant>.<variant_metric>" in out
    assert "<attack> = fgsm | pgd" in out
