"""The CycloneDX 1.6 ML-BOM: validates strictly against the schema the library ships, offline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from governance.cli import main
from governance.evidence.bom import build_bom
from tests.evidence.conftest import results_doc


def _validate(text: str) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    assert error is None, error


def _audited() -> dict[str, Any]:
    doc = results_doc(
        {"performance.accuracy": 0.70, "performance.f1": 0.8, "privacy.epsilon": 2.99, "privacy.delta": 1e-5}
    )
    doc["run"]["task"] = "binary_classification"
    doc["run"]["intended_purpose"] = "Demonstration only."
    doc["subject"]["data_license"] = "CC-BY-4.0"
    doc["subject"]["data_source"] = "UCI"
    doc["subject"]["sensitive"] = ["sex"]
    doc["subject"]["model"]["files"] = {"model.safetensors": "c" * 64, "config.json": "e" * 64}
    doc["sections"] = {
        "fairness": {
            "status": "ok",
            "metrics": {},
            "tables": {
                "groups": [
                    {
                        "attribute": "sex",
                        "group": "female",
                        "selection_rate": 0.6,
                        "accuracy": 0.7,
                        "count": 10,
                    },
                    {
                        "attribute": "sex",
                        "group": "male",
                        "selection_rate": 0.8,
                        "accuracy": 0.72,
                        "count": 20,
                    },
                ],
                "disparities": [
                    {
                        "attribute": "sex",
                        "metric": "demographic_parity_ratio",
                        "value": 0.75,
                        "ci_low": 0.6,
                        "ci_high": 0.9,
                    }
                ],
            },
            "details": {},
            "findings": [],
        }
    }
    doc["findings"] = [
        {"id": "data_quality.small_group", "severity": "minor", "message": "a group has 10 rows"}
    ]
    return doc


def test_bom_holds_model_hash_datasets_licences_metrics_intervals_and_considerations(tmp_path: Path) -> None:
    from governance.policy.engine import check
    from governance.results import Results

    results = Results.from_dict(_audited())
    report = check(results, "baseline")
    bom = build_bom(results, report)
    text = json.dumps(bom)
    _validate(text)
    assert bom["specVersion"] == "1.6" and bom["bomFormat"] == "CycloneDX"
    model = bom["metadata"]["component"]
    assert model["type"] == "machine-learning-model"
    assert model["hashes"] == [{"alg": "SHA-256", "content": "c" * 64}]
    data = {c["bom-ref"]: c for c in bom["components"]}
    assert set(data) == {"data-train", "data-eval"}
    assert data["data-eval"]["type"] == "data"
    assert data["data-eval"]["hashes"][0]["content"] == "b" * 64
    assert data["data-eval"]["licenses"] == [{"license": {"id": "CC-BY-4.0"}}]
    assert data["data-eval"]["data"][0]["sensitiveData"] == ["sex"]
    card = model["modelCard"]
    assert card["modelParameters"]["datasets"] == [{"ref": "data-eval"}, {"ref": "data-train"}]
    metrics = card["quantitativeAnalysis"]["performanceMetrics"]
    assert {"type": "accuracy", "value": "0.7", "slice": "eval"} in metrics
    assert {"type": "selection_rate", "value": "0.6", "slice": "sex=female"} in metrics
    ratio = next(m for m in metrics if m["type"] == "demographic_parity_ratio")
    assert ratio["confidenceInterval"] == {"lowerBound": "0.6", "upperBound": "0.9"}
    considerations = card["considerations"]
    assessment = considerations["fairnessAssessments"][0]
    assert (
        assessment["groupAtRisk"] == "sex=female"
        and "demographic_parity_ratio 0.75 [0.6, 0.9]" in assessment["harms"]
    )
    assert considerations["useCases"] == ["Demonstration only."]
    assert considerations["technicalLimitations"] == ["minor: a group has 10 rows"]
    assert "ε = 2.99" in considerations["performanceTradeoffs"][0]
    not_passed = [o for o in report.outcomes if o.status.value != "PASS"]
    assert len(considerations.get("ethicalConsiderations", [])) == len(not_passed)
    assert {"name": "governance:verdict", "value": "PASSED" if report.passed else "FAILED"} in card[
        "properties"
    ]
    deps = {d["ref"]: d.get("dependsOn", []) for d in bom["dependencies"]}
    assert sorted(deps["model"]) == ["data-eval", "data-train"]


def test_report_command_writes_a_valid_bom_without_policy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "results.json"
    doc = _audited()
    doc["subject"]["data_license"] = "Some custom licence v2"
    path.write_text(json.dumps(doc))
    out = tmp_path / "bom.json"
    assert main(["report", str(path), "--format", "cyclonedx", "--output", str(out)]) == 0
    text = out.read_text()
    _validate(text)
    bom = json.loads(text)
    assert bom["components"][0]["licenses"] == [{"license": {"name": "Some custom licence v2"}}]
    assert "ethicalConsiderations" not in bom["metadata"]["component"]["modelCard"]["considerations"]


def test_a_bom_of_a_predictions_only_audit_validates(tmp_path: Path) -> None:
    doc = results_doc()
    doc["subject"] = {
        "data": {"eval": {"path": "log.parquet", "sha256": "b" * 64}},
        "predictions": {"path": "log.parquet", "sha256": "b" * 64},
    }
    bom = build_bom(doc)
    _validate(json.dumps(bom))
    assert bom["metadata"]["component"]["hashes"][0]["content"] == "b" * 64


def test_the_validator_is_strict() -> None:
    bom = build_bom(_audited())
    bom["metadata"]["component"]["modelCard"]["quantitativeAnalysis"]["performanceMetrics"][0]["value"] = 0.7
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(bom)) is not None
