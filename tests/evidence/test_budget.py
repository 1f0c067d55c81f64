"""The privacy budget per training-data digest: every DP run counts, total_budget refuses with exit 2."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from governance.errors import InputError
from governance.evidence.budget import begin_dp_run, dataset_budget, record_discarded, start_run

DIGEST = "d" * 64


def _sum_compose(history: Any, delta: float, accountant: str) -> float:
    # A stand-in accountant for the torch-free tests: ε per step, so the composition is checkable.
    return 0.01 * sum(steps for _, _, steps in history)


def _finished(store: Path, eps: float, steps: int) -> None:
    rec = start_run(DIGEST, spec_name="s", target_epsilon=3.0, delta=1e-5, accountant="prv", store=store)
    rec.epoch(SimpleNamespace(epsilon=eps / 2, steps=steps // 2))
    rec.finish(
        {
            "epsilon": eps,
            "delta": 1e-5,
            "noise_multiplier": 1.1,
            "sample_rate": 0.01,
            "steps": steps,
            "accountant_history": [[1.1, 0.01, steps]],
        },
        compose=_sum_compose,
    )


def test_finished_runs_compose_with_the_accountant_when_histories_are_known(tmp_path: Path) -> None:
    store = tmp_path / "h.sqlite"
    _finished(store, 1.0, 100)
    _finished(store, 1.5, 200)
    composed = dataset_budget(DIGEST, store=store, compose=_sum_compose)
    assert composed.runs == 2 and composed.method == "prv" and composed.epsilon == pytest.approx(3.0)
    # Without the accountant at hand (the report), the last run's composed figure is reused.
    assert dataset_budget(DIGEST, store=store).epsilon == pytest.approx(3.0)
    assert dataset_budget(DIGEST, store=store).method == "prv"
    assert dataset_budget("e" * 64, store=store).runs == 0


def test_unfinished_and_discarded_runs_count_at_their_target_and_the_total_is_a_sum(tmp_path: Path) -> None:
    store = tmp_path / "h.sqlite"
    _finished(store, 1.0, 100)
    killed = start_run(DIGEST, spec_name="s", target_epsilon=2.0, delta=1e-5, accountant="prv", store=store)
    killed.epoch(SimpleNamespace(epsilon=0.4, steps=10))  # then kill -9: the row stays "running"
    record_discarded(
        DIGEST, spec_name="s", target_epsilon=0.5, delta=1e-5, accountant="prv", why="ghost: OOM", store=store
    )
    failed = start_run(DIGEST, spec_name="s", target_epsilon=0.25, delta=1e-5, accountant="prv", store=store)
    failed.stop("failed")
    budget = dataset_budget(DIGEST, store=store, compose=_sum_compose)
    assert budget.method == "sum" and budget.runs == 4 and budget.unfinished == 3
    assert budget.epsilon == pytest.approx(1.0 + 2.0 + 0.5 + 0.25)
    assert "added" in budget.describe() and "3 unfinished" in budget.describe()
    with sqlite3.connect(store) as conn:
        statuses = [r[0] for r in conn.execute("SELECT status FROM dp_runs ORDER BY id")]
    assert statuses == ["finished", "running", "discarded: ghost: OOM", "failed"]


def test_total_budget_refuses_a_run_that_could_pass_it(tmp_path: Path) -> None:
    store = tmp_path / "h.sqlite"
    marker = tmp_path / ".out.budget-run"
    common = dict(
        source="spec.yaml",
        data_digest=DIGEST,
        spec_name="s",
        delta=1e-5,
        accountant="prv",
        marker=marker,
        resume=False,
        store=store,
        compose=_sum_compose,
    )
    rec = begin_dp_run(target_epsilon=3.0, total_budget=10.0, **common)  # 0 + 3 <= 10
    rec.finish(
        {"epsilon": 3.0, "delta": 1e-5, "steps": 300, "accountant_history": [[1.0, 0.01, 300]]},
        compose=_sum_compose,
    )
    begin_dp_run(target_epsilon=3.0, total_budget=10.0, **common).finish(
        {"epsilon": 3.0, "delta": 1e-5, "steps": 300, "accountant_history": [[1.0, 0.01, 300]]},
        compose=_sum_compose,
    )
    with pytest.raises(InputError) as err:
        begin_dp_run(target_epsilon=4.5, total_budget=10.0, **common)  # 6 + 4.5 > 10
    assert err.value.source == "spec.yaml" and err.value.field == "train.privacy.total_budget"
    assert "ε = 6 over 2 DP runs (composed with the prv accountant)" in err.value.message
    assert "could reach 10.5, past total_budget 10" in err.value.message
    assert dataset_budget(DIGEST, store=store).runs == 2  # the refused run left no row
    begin_dp_run(target_epsilon=4.0, total_budget=10.0, **common)  # 6 + 4 = 10: allowed


def test_resume_keeps_the_interrupted_runs_row(tmp_path: Path) -> None:
    store = tmp_path / "h.sqlite"
    marker = tmp_path / ".out.budget-run"
    common = dict(
        source=None,
        data_digest=DIGEST,
        spec_name="s",
        target_epsilon=3.0,
        delta=1e-5,
        accountant="prv",
        total_budget=5.0,
        marker=marker,
        store=store,
    )
    first = begin_dp_run(resume=False, **common)
    first.stop("interrupted")
    again = begin_dp_run(resume=True, **common)  # not refused: this run is already counted
    assert again.run_id == first.run_id == marker.read_text().strip()
    assert dataset_budget(DIGEST, store=store).runs == 1
    fresh = begin_dp_run(
        resume=False, total_budget=None, **{k: v for k, v in common.items() if k != "total_budget"}
    )
    assert fresh.run_id != first.run_id and dataset_budget(DIGEST, store=store).runs == 2


@pytest.mark.slow
def test_train_records_every_dp_run_and_total_budget_exits_2_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from governance.cli import main
    from governance.train.dp import epsilon_for
    from tests.data.helpers import spec_dict, write_spec, write_split

    torch.set_num_threads(1)
    train_csv, _ = write_split(tmp_path)
    store = tmp_path / "h.sqlite"
    monkeypatch.setenv("GOVERNANCE_STORE", str(store))
    spec = write_spec(
        tmp_path,
        spec_dict(
            train__epochs=2, train__privacy={"target_epsilon": 2.0, "delta": 1e-3, "total_budget": 4.5}
        ),
    )
    assert main(["train", str(spec), "--out", str(tmp_path / "a")]) == 0
    assert main(["train", str(spec), "--out", str(tmp_path / "b")]) == 0
    ledgers = [json.loads((tmp_path / d / "training.json").read_text())["privacy"] for d in ("a", "b")]
    import hashlib

    digest = hashlib.sha256(train_csv.read_bytes()).hexdigest()
    budget = dataset_budget(digest, delta=1e-3, store=store, compose=epsilon_for)
    history = [tuple(h) for p in ledgers for h in p["accountant_history"]]
    # The independent figure: the accountant over both runs' (σ, q, steps) together.
    assert budget.method == "prv" and budget.runs == 2
    assert budget.epsilon == pytest.approx(epsilon_for(history, 1e-3, "prv"))
    assert budget.epsilon < sum(p["epsilon"] for p in ledgers)
    assert ledgers[1]["dataset_budget"]["cumulative_epsilon"] == pytest.approx(budget.epsilon)
    # A third run could spend 2 more: the composed total (about 2.8) + 2 passes 4.5, so it is
    # refused before training; the second one (about 2 + 2) was not.
    assert budget.epsilon + 2.0 > 4.5 >= ledgers[0]["epsilon"] + 2.0
    capsys.readouterr()
    assert main(["train", str(spec), "--out", str(tmp_path / "c")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "train.privacy.total_budget" in err
    assert not (tmp_path / "c").exists()
    assert dataset_budget(digest, delta=1e-3, store=store).runs == 2


def test_hf_attempts_that_failed_over_count_as_discarded_runs(tmp_path: Path) -> None:
    from governance.train.api import _finish_budget

    store = tmp_path / "h.sqlite"
    marker = tmp_path / ".out.budget-run"
    marker.write_text("x")
    recorder = start_run(DIGEST, spec_name="s", target_epsilon=1.0, delta=1e-5, accountant="prv", store=store)
    spec = SimpleNamespace(
        name="s",
        train=SimpleNamespace(privacy=SimpleNamespace(target_epsilon=1.0, delta=1e-5, accountant="prv")),
    )
    ledger: dict[str, Any] = {
        "privacy": {
            "epsilon": 0.9,
            "delta": 1e-5,
            "steps": 50,
            "accountant_history": [[1.2, 0.02, 50]],
            "grad_sample_fallbacks": ["ghost: out of memory", "fast: unsupported layer"],
        }
    }
    _finish_budget(recorder, spec, ledger, marker, store=store)  # type: ignore[arg-type]
    budget = dataset_budget(DIGEST, store=store)
    # Two discarded attempts at their target (1.0 each) and the finished run's 0.9, added.
    assert budget.runs == 3 and budget.method == "sum" and budget.epsilon == pytest.approx(2.9)
    assert ledger["privacy"]["dataset_budget"]["cumulative_epsilon"] == pytest.approx(2.9)
    assert not marker.exists()
