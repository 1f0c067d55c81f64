"""results.json: round trip, schema version and bad files."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from governance.errors import InputError
from governance.results import (
    AuditSection,
    Finding,
    Results,
    RunInfo,
    Severity,
    load_results,
    metric_id,
    save_results,
)


def test_round_trip(tmp_path):
    section = AuditSection(
        name="fairness",
        metrics={"fairness.sex.demographic_parity_ratio": np.float64(0.8), "fairness.sex.x": math.nan},
        tables={"groups": [{"group": "<script>", "count": np.int64(3)}]},
        findings=(Finding(id="small_group", severity=Severity.MAJOR, message="m", audit="fairness"),),
    )
    run = RunInfo(
        tool_version="0.1.0", spec_name="s", seed=3, started_at="a", finished_at="b", libraries={"torch": "2"}
    )
    results = Results.from_sections(run, [section], subject={"model_sha256": "ab"})
    path = tmp_path / "results.json"
    save_results(results, path)
    raw = json.loads(path.read_text())
    assert raw["schema_version"] == 1
    assert raw["metrics"] == {"fairness.sex.demographic_parity_ratio": 0.8, "fairness.sex.x": None}
    back = load_results(path)
    assert back.metrics["fairness.sex.demographic_parity_ratio"] == 0.8
    assert back.metrics["fairness.sex.x"] is None
    assert back.sections["fairness"].tables["groups"][0] == {"group": "<script>", "count": 3}
    assert back.findings[0].severity is Severity.MAJOR
    assert back.run.seed == 3 and back.run.libraries == {"torch": "2"}


def test_duplicate_metric_across_sections_is_a_bug():
    run = RunInfo(tool_version="0", spec_name="s", seed=0, started_at="", finished_at="")
    a = AuditSection(name="a", metrics={"performance.accuracy": 1.0})
    b = AuditSection(name="b", metrics={"performance.accuracy": 0.5})
    with pytest.raises(ValueError, match="more than one audit"):
        Results.from_sections(run, [a, b])


@pytest.mark.parametrize(
    ("doc", "field", "message"),
    [
        ({"schema_version": 2, "metrics": {}}, "schema_version", "schema_version 2 is not supported"),
        ({"schema_version": 0, "metrics": {}}, "schema_version", "reads schema_version 1"),
        ({"metrics": {}}, "schema_version", "missing"),
        ({"schema_version": 1}, "metrics", "missing"),
        (
            {"schema_version": 1, "metrics": {"performance.accuracy": "high"}},
            "metrics.performance.accuracy",
            "expected a number",
        ),
        ({"schema_version": 1, "metrics": {"Accuracy": 1}}, "metrics.Accuracy", "not a metric ID"),
        ({"schema_version": 1, "metrics": []}, "metrics", "expected an object"),
    ],
)
def test_bad_results(tmp_path, doc, field, message):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError) as info:
        load_results(path)
    assert (info.value.source, info.value.field) == (str(path), field)
    assert message in info.value.message


def test_not_json(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("{nope")
    with pytest.raises(InputError, match="not valid JSON"):
        load_results(path)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        load_results(tmp_path / "absent.json")


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        (
            ("fairness", "Age Group", "demographic_parity_ratio"),
            "fairness.age_group.demographic_parity_ratio",
        ),
        (("robustness", "fgsm", "eps_0.1", "accuracy"), "robustness.fgsm.eps_0.1.accuracy"),
        (("fairness", "sex*age_group", "accuracy_difference"), "fairness.sex*age_group.accuracy_difference"),
        (
            ("privacy", "membership_inference", "tpr_at_fpr_0.001"),
            "privacy.membership_inference.tpr_at_fpr_0.001",
        ),
    ],
)
def test_metric_id(parts, expected):
    assert metric_id(*parts) == expected
