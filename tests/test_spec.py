"""The audit spec: validation errors name file and field; paths resolve against the spec file."""

from __future__ import annotations

import pytest

from governance.errors import InputError
from governance.spec import load_spec

BASE = "name: s\ntask: binary_classification\n"


def test_paths_resolve_against_the_spec_file(write_file):
    spec = load_spec(
        write_file(
            "sub/spec.yaml",
            BASE + "data: {train: t.csv, eval: e.csv, label: y}\nmodel: {architecture: mlp}\n",
        )
    )
    assert spec.data.train == spec.source.resolve().parent / "t.csv"
    assert spec.data.eval is not None and spec.data.eval.name == "e.csv"


def test_a_decision_log_alone_is_the_eval_data(write_file):
    spec = load_spec(
        write_file("spec.yaml", BASE + "data: {label: y, sensitive: [sex]}\nmodel: {predictions: log.csv}\n")
    )
    assert spec.data.eval == spec.model.predictions
    assert spec.data.train is None and not spec.trains


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ("data: {label: y}\nmodel: {architecture: mlp}\n", "(top level)", "give data.train and/or data.eval"),
        (
            "data: {eval: e.csv, label: y, sensitive: [y]}\nmodel: {architecture: mlp}\n",
            "data",
            "is also the label",
        ),
        (
            "data: {eval: e.csv, label: y}\nmodel: {architecture: mlp, predictions: p.csv}\n",
            "model",
            "exactly one of",
        ),
        (
            "data: {eval: e.csv, label: y}\nmodel: {architecture: mlp}\ntrain: {privacy: {target_epsilon: 0}}\n",
            "train.privacy.target_epsilon",
            "must be in (0, 100]",
        ),
        ("data: {eval: e.csv, label: y}\nmodel: {architecture: mlp}\nextra: 1\n", "extra", "unknown field"),
        ("data: {eval: e.csv}\nmodel: {architecture: mlp}\n", "data.label", "required field is missing"),
    ],
)
def test_bad_specs_name_the_field(write_file, body, field, message):
    path = write_file("spec.yaml", BASE + body)
    with pytest.raises(InputError) as info:
        load_spec(path)
    assert info.value.source == str(path)
    assert info.value.field == field
    assert message in info.value.message


def test_task_must_be_known(write_file):
    path = write_file(
        "spec.yaml", "name: s\ntask: regression\ndata: {eval: e.csv, label: y}\nmodel: {architecture: mlp}\n"
    )
    with pytest.raises(InputError) as info:
        load_spec(path)
    assert info.value.field == "task"
