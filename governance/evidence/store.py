"""The history store: every audit, hash-chained, and every DP run's spent ε, in one SQLite file.

Default ``.governance/history.sqlite`` under the working directory; ``--store PATH`` or the
``GOVERNANCE_STORE`` environment variable override it. WAL journal and ``BEGIN IMMEDIATE``
transactions make concurrent writers (two audits at once) safe: each insert reads the chain's head
and appends in one transaction.

Each audit row carries the SHA-256 of its own content and of the previous row, so editing a row,
deleting one from the middle or from the end (the AUTOINCREMENT counter remembers the highest id)
is found by :func:`check_chain`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from governance.errors import InputError

__all__ = [
    "DEFAULT_STORE",
    "ENV_STORE",
    "GENESIS",
    "AuditRecord",
    "ChainProblem",
    "audit_row",
    "check_chain",
    "check_store",
    "connect",
    "list_audits",
    "model_digest",
    "record_audit",
    "resolve_store",
]

DEFAULT_STORE = Path(".governance") / "history.sqlite"
ENV_STORE = "GOVERNANCE_STORE"
GENESIS = "0" * 64

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audits (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recorded_at TEXT NOT NULL,
    spec_name TEXT NOT NULL,
    model_digest TEXT,
    data_digests TEXT NOT NULL,
    verdict TEXT NOT NULL,
    results TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    row_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audits_by_spec ON audits (spec_name, id);
CREATE TABLE IF NOT EXISTS dp_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id TEXT NOT NULL UNIQUE,
    data_digest TEXT NOT NULL,
    spec_name TEXT NOT NULL,
    started_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    status TEXT NOT NULL,
    accountant TEXT,
    delta REAL NOT NULL,
    noise_multiplier REAL,
    sample_rate REAL,
    steps INTEGER NOT NULL DEFAULT 0,
    epsilon REAL NOT NULL DEFAULT 0,
    target_epsilon REAL NOT NULL,
    history TEXT,
    cumulative_epsilon REAL,
    cumulative_method TEXT,
    cumulative_runs INTEGER
);
CREATE INDEX IF NOT EXISTS dp_runs_by_data ON dp_runs (data_digest);
"""

_AUDIT_FIELDS = (
    "id",
    "recorded_at",
    "spec_name",
    "model_digest",
    "data_digests",
    "verdict",
    "results",
    "prev_hash",
)


def resolve_store(path: str | os.PathLike[str] | None = None) -> Path:
    """The store's path: ``path``, else ``$GOVERNANCE_STORE``, else ``.governance/history.sqlite``."""
    if path is not None:
        return Path(path)
    env = os.environ.get(ENV_STORE)
    return Path(env) if env else DEFAULT_STORE


def check_store(path: str | os.PathLike[str] | None = None) -> Path:
    """Fail before any work, creating nothing, when the store could not be written.

    Raises
    ------
    InputError
        Naming the store: it is a folder, or no folder on its way can be written.
    """
    store = resolve_store(path)
    if store.is_dir():
        raise InputError(str(store), None, "is a folder; expected the history store's file (--store)")
    if store.exists():
        if not os.access(store, os.R_OK | os.W_OK):
            raise InputError(str(store), None, "the history store is not writable")
        return store
    probe = store.parent
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(
            str(store), None, f"cannot create the history store: {probe} is not a writable folder"
        )
    return store


@contextmanager
def connect(
    path: str | os.PathLike[str] | None = None, *, create: bool = True
) -> Iterator[sqlite3.Connection]:
    """An open store (created with its folder when missing and ``create``), closed on exit.

    Raises
    ------
    InputError
        The store cannot be created or is not a governance store.
    """
    store = resolve_store(path)
    if not create and not store.is_file():
        raise InputError(
            str(store), None, "no history store here (run `governance audit` first, or pass --store)"
        )
    try:
        store.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(store, timeout=60.0, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise InputError(str(store), None, f"cannot open the history store: {exc}") from None
    try:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=60000")
            conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise InputError(
                str(store), None, f"expected a governance history store (SQLite): {exc}"
            ) from None
        yield conn
    finally:
        conn.close()


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``: the write lock is taken before the chain's head is read."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


def _row_hash(row: Mapping[str, Any]) -> str:
    return hashlib.sha256(_canonical([row[k] for k in _AUDIT_FIELDS]).encode("utf-8")).hexdigest()


def model_digest(subject: Mapping[str, Any]) -> str | None:
    """One SHA-256 for the audited model: of its files' digests, or of the audited predictions."""
    model = subject.get("model")
    if isinstance(model, Mapping) and isinstance(model.get("files"), Mapping):
        files = model["files"]
        if len(files) == 1:
            return str(next(iter(files.values())))
        return hashlib.sha256(_canonical(dict(files)).encode("utf-8")).hexdigest()
    predictions = subject.get("predictions")
    if isinstance(predictions, Mapping) and predictions.get("sha256"):
        return str(predictions["sha256"])
    return None


def data_digests(subject: Mapping[str, Any]) -> dict[str, str]:
    data = subject.get("data")
    if not isinstance(data, Mapping):
        return {}
    return {str(k): str(v["sha256"]) for k, v in data.items() if isinstance(v, Mapping) and "sha256" in v}


@dataclass(frozen=True)
class AuditRecord:
    """One recorded audit (a row of the ``audits`` table)."""

    id: int
    recorded_at: str
    spec_name: str
    model_digest: str | None
    data_digests: Mapping[str, str]
    verdict: str
    results: Mapping[str, Any]

    def to_dict(self, *, with_results: bool = False) -> dict[str, Any]:
        out = {
            "id": self.id,
            "recorded_at": self.recorded_at,
            "spec_name": self.spec_name,
            "model_digest": self.model_digest,
            "data_digests": dict(self.data_digests),
            "verdict": self.verdict,
        }
        return out | ({"results": dict(self.results)} if with_results else {})


def record_audit(
    results: Mapping[str, Any], verdict: str, *, store: str | os.PathLike[str] | None = None
) -> int:
    """Append an audit (its whole results.json) to the chain; return its id."""
    subject = results.get("subject") or {}
    run = results.get("run") or {}
    with connect(store) as conn, transaction(conn):
        head = conn.execute("SELECT row_hash FROM audits ORDER BY id DESC LIMIT 1").fetchone()
        seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audits'").fetchone()
        row: dict[str, Any] = {
            "id": (seq[0] if seq else 0) + 1,
            "recorded_at": datetime.now(UTC).isoformat(timespec="microseconds"),
            "spec_name": str(run.get("spec_name", "")),
            "model_digest": model_digest(subject),
            "data_digests": _canonical(data_digests(subject)),
            "verdict": verdict,
            "results": _canonical(results),
            "prev_hash": head[0] if head else GENESIS,
        }
        row["row_hash"] = _row_hash(row)
        conn.execute(
            f"INSERT INTO audits ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})",
            tuple(row.values()),
        )
        return int(row["id"])


def audit_row(key: int, *, store: str | os.PathLike[str] | None = None) -> AuditRecord:
    """The audit recorded under id ``key``; :class:`InputError` if there is none."""
    with connect(store, create=False) as conn:
        row = conn.execute(
            "SELECT id, recorded_at, spec_name, model_digest, data_digests, verdict, results FROM audits WHERE id = ?",
            (key,),
        ).fetchone()
    if row is None:
        raise InputError(str(resolve_store(store)), f"audits[{key}]", "no audit recorded with this id")
    return _record(row)


def _record(row: tuple[Any, ...]) -> AuditRecord:
    return AuditRecord(
        id=int(row[0]),
        recorded_at=row[1],
        spec_name=row[2],
        model_digest=row[3],
        data_digests=json.loads(row[4]),
        verdict=row[5],
        results=json.loads(row[6]),
    )


def list_audits(
    *, name: str | None = None, store: str | os.PathLike[str] | None = None, limit: int | None = None
) -> list[AuditRecord]:
    """Recorded audits, newest first (only those of spec ``name`` when given)."""
    sql = "SELECT id, recorded_at, spec_name, model_digest, data_digests, verdict, results FROM audits"
    params: tuple[Any, ...] = ()
    if name is not None:
        sql += " WHERE spec_name = ?"
        params = (name,)
    sql += " ORDER BY id DESC"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    with connect(store, create=False) as conn:
        return [_record(r) for r in conn.execute(sql, params).fetchall()]


@dataclass(frozen=True)
class ChainProblem:
    """A row of the chain that was changed or deleted."""

    row_id: int
    problem: str

    def line(self) -> str:
        return f"audit {self.row_id}: {self.problem}"


def check_chain(*, store: str | os.PathLike[str] | None = None) -> list[ChainProblem]:
    """Every changed or deleted audit row; empty when the chain is intact."""
    problems: list[ChainProblem] = []
    with connect(store, create=False) as conn:
        rows = conn.execute(f"SELECT {', '.join(_AUDIT_FIELDS)}, row_hash FROM audits ORDER BY id").fetchall()
        seq = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audits'").fetchone()
    prev_hash, prev_id = GENESIS, 0
    for raw in rows:
        row = dict(zip((*_AUDIT_FIELDS, "row_hash"), raw, strict=True))
        rid = int(row["id"])
        for gone in range(prev_id + 1, rid):
            problems.append(ChainProblem(gone, "deleted"))
        if _row_hash(row) != row["row_hash"]:
            problems.append(ChainProblem(rid, "changed (its content no longer matches its hash)"))
        elif (
            row["prev_hash"] != prev_hash
            and rid == prev_id + 1
            and not any(p.row_id == prev_id for p in problems)
        ):
            # This row is intact, so the one it links to was rewritten (with a recomputed hash).
            problems.append(
                ChainProblem(prev_id or rid, "changed (the next audit's link no longer matches it)")
            )
        prev_hash, prev_id = row["row_hash"], rid
    for gone in range(prev_id + 1, (seq[0] if seq else 0) + 1):
        problems.append(ChainProblem(gone, "deleted"))
    return problems
