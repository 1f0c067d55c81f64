"""Bad canary options (issue 18) exit 2 with one line naming the spec and the field, before any
training where the spec alone shows it, and write nothing (the corpus harness checks both)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.bad_inputs.test_corpus import AUDIT, Case, run_case, set_, steps, tabular

DP = {"target_epsilon": 3.0, "delta": 1e-5, "max_grad_norm": 1.0}
FIELD = "audits.privacy.canaries"


def dp_with(canaries: object, **train: object) -> object:
    actions = [set_("train.privacy", DP), set_("audits.privacy", {"canaries": canaries})]
    actions += [set_(f"train.{k}", v) for k, v in train.items()]

    def change(doc: dict[str, object]) -> None:
        for action in actions:
            action(doc)

    return tabular(spec=change)


CASES = [
    Case(
        "canary-count-not-int",
        dp_with({"count": "many"}),
        AUDIT,
        "spec.yaml",
        f"{FIELD}.count",
        "expected an integer",
    ),
    Case(
        "canary-count-too-small",
        dp_with({"count": 5}),
        AUDIT,
        "spec.yaml",
        f"{FIELD}.count",
        "greater than or equal to 20",
    ),
    Case("canary-unknown-kind", dp_with({"kind": "input"}), AUDIT, "spec.yaml", f"{FIELD}.kind", "gradient"),
    Case(
        "canary-unknown-option", dp_with({"seed": 3}), AUDIT, "spec.yaml", f"{FIELD}.seed", "unknown option"
    ),
    Case(
        "canary-gradient-norm-not-above-c",
        dp_with({"gradient_norm": 1.0}),
        AUDIT,
        "spec.yaml",
        f"{FIELD}.gradient_norm",
        "greater than 1",
    ),
    Case(
        "canary-without-dp",
        steps(tabular(spec=set_("audits.privacy", {"canaries": {"count": 100}}))),
        AUDIT,
        "spec.yaml",
        FIELD,
        "expected train.privacy",
    ),
    Case(
        "canary-with-physical-batches",
        dp_with({"count": 100}, max_physical_batch_size=8),
        AUDIT,
        "spec.yaml",
        FIELD,
        "whole logical batches",
    ),
    Case(
        "canary-layer-too-small",
        dp_with({"count": 5000}),
        AUDIT,
        "spec.yaml",
        FIELD,
        r"5000 canaries need as many weights in one Linear layer",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_canary_input(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_case(case, tmp_path, monkeypatch, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert code == 2, lines[0]
    assert "Traceback" not in err
    assert case.file in lines[0] and case.field is not None and case.field in lines[0], lines[0]
    assert re.search(case.message, lines[0]), lines[0]
