"""Audit names and options are checked before any data is read or any model trained.

Every audit's options are one pydantic model (unknown keys rejected) registered with the audit
registry; a bad option is one :class:`InputError` naming the spec file and the field.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governance._options import Options, parse_options
from governance.audit.registry import audit_names, options_model, register_audit
from governance.audit.suite import audit_options, check_audits
from governance.errors import InputError
from governance.pipeline import run_audit
from governance.spec import load_spec


def _spec(tmp_path: Path, audits: str, *, task: str = "binary_classification") -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(
        f"name: s\ntask: {task}\n"
        "data: {train: missing-train.csv, eval: missing-eval.csv, label: y, sensitive: [sex]}\n"
        "model: {architecture: mlp}\ntrain: {epochs: 1}\n"
        f"audits: {audits}\n"
    )
    return path


def test_every_audit_registers_one_options_model_that_forbids_unknown_keys() -> None:
    for name in audit_names():
        model = options_model(name)
        assert issubclass(model, Options), name
        assert model.model_config.get("extra") == "forbid", name
        assert model.model_config.get("frozen") is True, name
        defaults = model()  # every option has a default
        assert parse_options(model, {}, source=None, where=f"audits.{name}") == defaults
        with pytest.raises(InputError, match="unknown option"):
            parse_options(model, {"no_such_option": 1}, source="s.yaml", where=f"audits.{name}")
    for name in ("attribution", "robustness"):
        assert options_model(name, text=True) is not options_model(name)
    assert options_model("fairness", text=True) is options_model("fairness")


@pytest.mark.parametrize(
    ("audits", "field"),
    [
        ("{robustness: {epsilons: [0.1]}}", "audits.robustness.epsilons"),
        ("{robustness: {eps: [0.1, -0.2]}}", "audits.robustness.eps[1]"),
        ("{robustness: {attacks: [pgd, deepfool]}}", "audits.robustness.attacks[1]"),
        ("{robustness: {max_rows: 0}}", "audits.robustness.max_rows"),
        ("{robustness: {clip: [1, 0]}}", "audits.robustness.clip"),
        ("{attribution: {n_steps: many}}", "audits.attribution.n_steps"),
        ("{attribution: {engine: shap}}", "audits.attribution.engine"),
        ("{attribution: {n_step: 5}}", "audits.attribution.n_step"),
        ("{privacy: {attack_model: svm}}", "audits.privacy.attack_model"),
        ("{privacy: {alpha: 2}}", "audits.privacy.alpha"),
        ("{privacy: {max_rows: 5}}", "audits.privacy.max_rows"),
        ("{fairness: {bootstrap: true}}", "audits.fairness.bootstrap"),
        ("{fairness: {counterfactual: {term_column: t}}}", "audits.fairness.counterfactual.pair_column"),
        ("{fairness: {counterfactual: {pair_column: p, oops: 1}}}", "audits.fairness.counterfactual.oops"),
        ("{performance: {max_gap: 2}}", "audits.performance.max_gap"),
        ("{data_quality: {max_duplicate_rate: 1.5}}", "audits.data_quality.max_duplicate_rate"),
        ("{data_quality: {pii_severity: huge}}", "audits.data_quality.pii_severity"),
        ("{fairnes: {}}", "audits.fairnes"),
    ],
)
def test_bad_options_exit_before_any_data_is_read(tmp_path: Path, audits: str, field: str) -> None:
    """The data files do not exist: the option error must come first, naming the spec field."""
    path = _spec(tmp_path, audits)
    spec = load_spec(path)
    with pytest.raises(InputError) as info:
        check_audits(spec)
    assert info.value.field == field and info.value.source == str(path)
    with pytest.raises(InputError) as again:
        run_audit(spec, tmp_path / "out", progress=False)
    assert again.value.field == field
    assert not (tmp_path / "out").exists()


def test_text_models_get_their_own_options(tmp_path: Path) -> None:
    spec = load_spec(_spec(tmp_path, "{robustness: {rates: [0.1]}}", task="text_classification"))
    assert audit_options(spec, "robustness").rates == (0.1,)  # type: ignore[attr-defined]
    spec = load_spec(_spec(tmp_path, "{robustness: {perturbations: [nope]}}", task="text_classification"))
    with pytest.raises(InputError) as info:
        check_audits(spec)
    assert info.value.field == "audits.robustness.perturbations[0]"
    with pytest.raises(InputError, match="unknown option"):
        check_audits(load_spec(_spec(tmp_path, "{robustness: {rates: [0.1]}}")))


def test_numbers_are_accepted_where_labels_and_floats_are_expected(tmp_path: Path) -> None:
    spec = load_spec(_spec(tmp_path, "{performance: {positive_label: 1, max_gap: 0}}"))
    options = check_audits(spec)["performance"]
    assert options.positive_label == "1" and options.max_gap == 0.0  # type: ignore[attr-defined]


@settings(max_examples=60, deadline=None)
@given(
    value=st.one_of(
        st.booleans(),
        st.integers(-5, 5),
        st.floats(allow_nan=True, allow_infinity=True),
        st.text(max_size=4),
        st.lists(st.integers(-2, 2), max_size=3),
        st.none(),
    ),
    name=st.sampled_from(["robustness", "attribution", "privacy", "fairness", "performance", "data_quality"]),
)
def test_any_value_is_accepted_or_one_input_error(name: str, value: object) -> None:
    """Whatever YAML gives an option, parsing never raises anything but InputError naming the audit."""
    model = options_model(name)
    for field in model.model_fields:
        try:
            parse_options(model, {field: value}, source="s.yaml", where=f"audits.{name}")
        except InputError as exc:
            assert exc.field is not None and exc.field.startswith(f"audits.{name}.{field}")


def test_a_registered_audit_without_options_rejects_any(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from governance.audit import registry

    monkeypatch.setattr(registry, "_AUDITS", registry.Registry("audit", dict(registry._AUDITS._entries)))
    monkeypatch.setattr(
        registry, "_OPTIONS", registry.Registry("audit options", dict(registry._OPTIONS._entries))
    )
    register_audit("custom", "tests.audit.test_suite:_Never")
    assert options_model("custom") is Options
    spec = load_spec(_spec(tmp_path, "{custom: {x: 1}}"))
    with pytest.raises(InputError) as info:
        check_audits(spec)
    assert info.value.field == "audits.custom.x"


def test_the_pipeline_checks_options_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import governance.train.api as train_api

    def no_training(*args: object, **kwargs: object) -> None:
        raise AssertionError("trained before validating the audit options")

    monkeypatch.setattr(train_api, "train", no_training)
    frame = pd.DataFrame({"x1": np.arange(40.0), "sex": ["F", "M"] * 20, "y": ["no", "yes"] * 20})
    frame.to_csv(tmp_path / "missing-train.csv", index=False)
    frame.to_csv(tmp_path / "missing-eval.csv", index=False)
    spec = load_spec(_spec(tmp_path, "{performance: {}, robustness: {epsilons: [0.1]}}"))
    with pytest.raises(InputError, match=r"audits\.robustness\.epsilons: unknown option"):
        run_audit(spec, tmp_path / "out", progress=False)


def test_option_choices_match_what_the_audits_dispatch_on() -> None:
    from typing import get_args

    from governance.audit._attacks import ENGINES
    from governance.audit.robustness import RobustnessOptions

    assert get_args(RobustnessOptions.model_fields["engine"].annotation) == ENGINES
