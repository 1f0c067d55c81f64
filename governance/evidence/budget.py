"""The privacy budget of a training dataset across runs: every DP run's spent ε, in the store.

A run is recorded when it starts (status ``running``, counted at its target ε: it may spend that
much before it stops), updated after every epoch, and closed with its final ε and accountant
history (``finished``), or marked ``interrupted``/``failed``/``discarded``. Retries, runs killed
midway and runs that start over without ``--resume`` are separate rows; a resumed run keeps its row.

The dataset's total: when every run finished with a known (σ, q, steps) history at the same δ and
accountant, the caller's accountant composes all histories together (``method`` = ``prv``/``rdp``);
otherwise the ε values are added (``method`` = ``sum``: basic composition, at the sum of the δs).
This module never imports the accountant (it would import torch): ``governance.train`` passes it in.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from governance.evidence.store import connect, resolve_store, transaction

__all__ = [
    "Budget",
    "Compose",
    "RunRecorder",
    "begin_dp_run",
    "dataset_budget",
    "record_discarded",
    "start_run",
]

#: (history of (σ, q, steps), δ, accountant name) → ε.
Compose = Callable[[Sequence[tuple[float, float, int]], float, str], float]
FINISHED = "finished"


@dataclass(frozen=True)
class Budget:
    """A dataset's cumulative ε over its recorded DP runs."""

    data_digest: str
    runs: int
    epsilon: float
    method: str
    delta: float
    unfinished: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "data_digest": self.data_digest,
            "runs": self.runs,
            "cumulative_epsilon": self.epsilon,
            "method": self.method,
            "delta": self.delta,
            "unfinished_runs": self.unfinished,
        }

    def describe(self) -> str:
        how = "added" if self.method == "sum" else f"composed with the {self.method} accountant"
        more = f", {self.unfinished} unfinished counted at their target ε" if self.unfinished else ""
        return f"ε = {self.epsilon:.4g} over {self.runs} DP runs ({how}{more})"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _rows(conn: Any, digest: str) -> list[dict[str, Any]]:
    cur = conn.execute(
        "SELECT run_id, status, accountant, delta, epsilon, target_epsilon, history, cumulative_epsilon, "
        "cumulative_method, cumulative_runs FROM dp_runs WHERE data_digest = ? ORDER BY id",
        (digest,),
    )
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def _total(rows: list[dict[str, Any]], digest: str, delta: float, compose: Compose | None) -> Budget:
    if not rows:
        return Budget(digest, 0, 0.0, "none", delta)
    unfinished = [r for r in rows if r["status"] != FINISHED]
    histories = [json.loads(r["history"]) if r["history"] else None for r in rows]
    same = len({(r["accountant"], r["delta"]) for r in rows}) == 1
    composable = not unfinished and same and all(h for h in histories)
    if composable and compose is not None:
        merged = [tuple(step) for h in histories for step in h]  # type: ignore[union-attr]
        eps = float(compose(merged, float(rows[0]["delta"]), str(rows[0]["accountant"])))
        return Budget(digest, len(rows), eps, str(rows[0]["accountant"]), float(rows[0]["delta"]))
    last = rows[-1]
    if composable and last["cumulative_runs"] == len(rows) and last["cumulative_epsilon"] is not None:
        # Composed by the last run's accountant when it finished, over exactly these runs.
        return Budget(
            digest, len(rows), float(last["cumulative_epsilon"]), str(last["cumulative_method"]), delta
        )
    eps = sum(
        float(r["epsilon"])
        if r["status"] == FINISHED
        else max(float(r["epsilon"]), float(r["target_epsilon"]))
        for r in rows
    )
    return Budget(digest, len(rows), eps, "sum", delta, unfinished=len(unfinished))


def dataset_budget(
    digest: str,
    *,
    delta: float = 1e-5,
    store: str | os.PathLike[str] | None = None,
    compose: Compose | None = None,
) -> Budget:
    """The cumulative ε recorded for the training data with SHA-256 ``digest``."""
    if not resolve_store(store).is_file():
        return Budget(digest, 0, 0.0, "none", delta)
    with connect(store) as conn:
        return _total(_rows(conn, digest), digest, delta, compose)


@dataclass
class RunRecorder:
    """One DP run's row: :meth:`epoch` after each epoch, :meth:`finish` or :meth:`stop` at the end."""

    run_id: str
    data_digest: str
    store: str | os.PathLike[str] | None

    def _update(self, **values: Any) -> None:
        values["updated_at"] = _now()
        sets = ", ".join(f"{k} = ?" for k in values)
        with connect(self.store) as conn, transaction(conn):
            conn.execute(f"UPDATE dp_runs SET {sets} WHERE run_id = ?", (*values.values(), self.run_id))

    def epoch(self, record: Any) -> None:
        """A trainer callback: the ε spent so far (None while σ = 0) and the steps."""
        eps = getattr(record, "epsilon", None)
        if eps is None:
            return
        with connect(self.store) as conn, transaction(conn):
            conn.execute(
                "UPDATE dp_runs SET epsilon = ?, steps = steps + ?, updated_at = ? WHERE run_id = ?",
                (float(eps), int(getattr(record, "steps", 0)), _now(), self.run_id),
            )

    def finish(self, privacy: dict[str, Any], *, compose: Compose | None = None) -> Budget:
        """Close the run with the ledger's privacy block; return the dataset's new total."""
        history = [list(h) for h in privacy.get("accountant_history") or []]
        self._update(
            status=FINISHED,
            epsilon=float(privacy.get("epsilon") or 0.0),
            noise_multiplier=privacy.get("noise_multiplier"),
            sample_rate=privacy.get("sample_rate"),
            steps=int(privacy.get("steps") or 0),
            history=json.dumps(history) if history else None,
        )
        with connect(self.store) as conn, transaction(conn):
            rows = _rows(conn, self.data_digest)
            total = _total(rows, self.data_digest, float(privacy.get("delta") or 1e-5), compose)
            conn.execute(
                "UPDATE dp_runs SET cumulative_epsilon = ?, cumulative_method = ?, cumulative_runs = ? WHERE run_id = ?",
                (total.epsilon, total.method, total.runs, self.run_id),
            )
        return total

    def stop(self, status: str) -> None:
        """The run ended without a model (``interrupted``, ``failed``): it stays counted."""
        self._update(status=status)


def start_run(
    data_digest: str,
    *,
    spec_name: str,
    target_epsilon: float,
    delta: float,
    accountant: str,
    store: str | os.PathLike[str] | None = None,
    run_id: str | None = None,
) -> RunRecorder:
    """Record a DP run as started (or, with the ``run_id`` of an interrupted run, as resumed)."""
    rid = run_id or uuid.uuid4().hex
    now = _now()
    with connect(store) as conn, transaction(conn):
        conn.execute(
            "INSERT INTO dp_runs (run_id, data_digest, spec_name, started_at, updated_at, status, accountant, "
            "delta, target_epsilon) VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?) "
            "ON CONFLICT(run_id) DO UPDATE SET status = 'running', updated_at = excluded.updated_at",
            (rid, data_digest, spec_name, now, now, accountant, float(delta), float(target_epsilon)),
        )
    return RunRecorder(run_id=rid, data_digest=data_digest, store=store)


def record_discarded(
    data_digest: str,
    *,
    spec_name: str,
    target_epsilon: float,
    delta: float,
    accountant: str,
    why: str,
    store: str | os.PathLike[str] | None = None,
) -> None:
    """A discarded attempt (the HF path's failed clipping mode): counted at its target ε."""
    recorder = start_run(
        data_digest,
        spec_name=spec_name,
        target_epsilon=target_epsilon,
        delta=delta,
        accountant=accountant,
        store=store,
    )
    recorder.stop(f"discarded: {why}"[:200])


ERR_OVER_BUDGET = (
    "the training data ({digest}) has spent {spent}; this run may spend up to ε = {target:g}, "
    "so the total could reach {total:.4g}, past total_budget {budget:g}"
)


def begin_dp_run(
    *,
    source: str | None,
    data_digest: str,
    spec_name: str,
    target_epsilon: float,
    delta: float,
    accountant: str,
    total_budget: float | None,
    marker: os.PathLike[str] | str,
    resume: bool,
    store: str | os.PathLike[str] | None = None,
    compose: Compose | None = None,
) -> RunRecorder:
    """Refuse a run that could take the data past ``total_budget`` (exit 2), else record its start.

    The refusal is conservative: the run may spend up to its target ε, and that is added to what the
    data has spent already (composed with the accountant when it can be). ``marker`` is a file
    beside the checkpoints holding the run's id, so ``--resume`` continues the same row.
    """
    from pathlib import Path

    from governance.errors import InputError

    marker_path = Path(marker)
    previous = marker_path.read_text(encoding="utf-8").strip() if resume and marker_path.is_file() else None
    if total_budget is not None:
        spent = dataset_budget(data_digest, delta=delta, store=store, compose=compose)
        # A resumed run is already among the recorded ones (at its target ε while unfinished).
        if previous is None and spent.epsilon + target_epsilon > total_budget + 1e-12:
            raise InputError(
                source,
                "train.privacy.total_budget",
                ERR_OVER_BUDGET.format(
                    digest=data_digest[:12],
                    spent=spent.describe(),
                    target=target_epsilon,
                    total=spent.epsilon + target_epsilon,
                    budget=total_budget,
                ),
            )
    recorder = start_run(
        data_digest,
        spec_name=spec_name,
        target_epsilon=target_epsilon,
        delta=delta,
        accountant=accountant,
        store=store,
        run_id=previous,
    )
    from governance._io import atomic_write_text

    atomic_write_text(marker_path, recorder.run_id + "\n")
    return recorder
