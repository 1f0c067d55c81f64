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


def test_each_benchmark_records_into_a_fresh_store_of_its_own(monkeypatch, tmp_path):
    """A benchmark's audits must not join the user's history store (nor its privacy budget), and
    must not see the audits that ran before it: each gets a fresh temporary store, and the
    user's setting comes back afterwards."""
    import os

    user_store = tmp_path / "user.sqlite"
    monkeypatch.setenv("GOVERNANCE_STORE", str(user_store))
    seen: list[str] = []

    def record(smoke: bool) -> dict[str, bool]:
        store = os.environ["GOVERNANCE_STORE"]
        seen.append(store)
        assert not os.path.exists(store)
        open(store, "w").close()  # what an audit's record would create
        return {"met": True}

    module = importlib.import_module("benchmarks.bench_check")
    monkeypatch.setattr(module, "run", record)
    assert harness.run_one("bench_check", smoke=True)["status"] == "ok"
    assert harness.run_one("bench_check", smoke=True)["status"] == "ok"
    assert len(set(seen)) == 2 and str(user_store) not in seen
    assert not any(os.path.exists(store) for store in seen)  # removed with its folder
    assert os.environ["GOVERNANCE_STORE"] == str(user_store) and not user_store.exists()
