"""The benchmark harness (`make bench`) in smoke form: every module is importable and runnable,
and the harness reports a failing benchmark without crashing. The full run is not part of CI."""

from __future__ import annotations

import importlib
import json

import pytest

from benchmarks import run as harness


def test_every_benchmark_module_exposes_run():
    names = harness.discover()
    assert {
        "bench_check",
        "bench_fairness",
        "bench_training",
        "bench_attribution",
        "bench_robustness",
        "bench_audit",
        "bench_evidence",
    } <= set(names)
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        assert callable(module.run), name


def test_check_latency_smoke_meets_its_target():
    figures = harness.run_one("bench_check", smoke=True)
    assert figures["status"] in {"ok", "missed"}, figures
    assert figures["figures"]["check_median_s"] > 0


def test_verify_latency_smoke_runs():
    figures = harness.run_one("bench_evidence", smoke=True)
    assert figures["status"] in {"ok", "missed"}, figures
    assert figures["figures"]["verify_median_s"] > 0 and figures["figures"]["verify_with_key_median_s"] > 0


def test_a_failing_benchmark_is_reported_not_raised(monkeypatch):
    def boom(smoke: bool) -> dict[str, float]:
        raise RuntimeError("broken")

    module = importlib.import_module("benchmarks.bench_check")
    monkeypatch.setattr(module, "run", boom)
    result = harness.run_one("bench_check", smoke=True)
    assert result["status"] == "failed" and "RuntimeError: broken" in result["figures"]["error"]
    json.dumps(result)


@pytest.mark.slow
def test_fairness_smoke_agrees_with_fairlearn():
    figures = harness.run_one("bench_fairness", smoke=True)["figures"]
    assert "error" not in figures, figures
    assert figures["agrees_with_fairlearn"] is True
    assert figures["max_abs_diff_vs_fairlearn"] <= 1e-9
