"""Shared fixtures: hand-written results files and policy packs in tmp folders."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

# `make test` runs two xdist workers on two cores: one math thread each. torch's default (one per
# core) makes the workers fight over the cores; a 1500-step fit went from 3 s to 50 s that way.
# Set before any test module imports torch, which reads it once.
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

BASE_RESULTS: dict[str, Any] = {
    "schema_version": 1,
    "run": {
        "tool_version": "0.1.0",
        "spec_name": "hand-written",
        "seed": 0,
        "started_at": "2026-11-23T10:00:00+00:00",
        "finished_at": "2026-11-23T10:01:00+00:00",
        "device": "cpu",
    },
    "subject": {},
    "metrics": {
        "performance.accuracy": 0.74,
        "performance.balanced_accuracy": 0.66,
        "fairness.sex.demographic_parity_ratio": 0.85,
        "fairness.age_group.demographic_parity_ratio": 0.70,
        "fairness.sex*age_group.demographic_parity_ratio": 0.62,
        "data_quality.duplicate_rate": 0.0,
    },
    "sections": {},
    "findings": [],
}


@pytest.fixture(autouse=True)
def _history_store(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every audit records itself in a history store: keep the tests' out of the working tree."""
    monkeypatch.setenv("GOVERNANCE_STORE", str(tmp_path_factory.mktemp("store") / "history.sqlite"))


@pytest.fixture
def write_results(tmp_path: Path) -> Callable[..., Path]:
    """Write a results.json with BASE_RESULTS' metrics updated by ``metrics`` (None deletes)."""

    def _write(metrics: dict[str, Any] | None = None, name: str = "results.json", **top: Any) -> Path:
        doc = json.loads(json.dumps(BASE_RESULTS))
        for key, value in (metrics or {}).items():
            doc["metrics"][key] = value
        doc.update(top)
        path = tmp_path / name
        path.write_text(json.dumps(doc))
        return path

    return _write


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[[str, str], Path]:
    def _write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path

    return _write


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip ``@pytest.mark.gpu`` tests unless CUDA is available (``make test-gpu`` runs them).

    torch is imported only when a collected test is marked ``gpu``, so collecting the policy and
    report tests stays free of it.
    """
    gpu_items = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu_items:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(
        reason="needs CUDA (torch.cuda.is_available() is False); run `make test-gpu` on a GPU"
    )
    for item in gpu_items:
        item.add_marker(skip)
