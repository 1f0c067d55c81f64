"""The history store: every audit recorded, hash-chained, safe with concurrent writers."""

from __future__ import annotations

import json
import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from governance.cli import main
from governance.evidence.store import (
    DEFAULT_STORE,
    check_chain,
    list_audits,
    record_audit,
    resolve_store,
)
from tests.evidence.conftest import results_doc


def _fill(store: Path, n: int = 4) -> None:
    for i in range(n):
        doc = results_doc({"performance.accuracy": 0.7 + i / 100}, spec_name="a" if i % 2 == 0 else "b")
        record_audit(doc, "PASSED" if i else "FAILED", store=store)


def test_store_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert resolve_store(tmp_path / "x.sqlite") == tmp_path / "x.sqlite"
    monkeypatch.setenv("GOVERNANCE_STORE", str(tmp_path / "env.sqlite"))
    assert resolve_store() == tmp_path / "env.sqlite"
    monkeypatch.delenv("GOVERNANCE_STORE")
    assert resolve_store() == DEFAULT_STORE == Path(".governance/history.sqlite")


def test_history_lists_newest_first_with_digests_and_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "h.sqlite"
    _fill(store)
    records = list_audits(store=store)
    assert [r.id for r in records] == [4, 3, 2, 1]
    assert records[-1].verdict == "FAILED" and records[0].verdict == "PASSED"
    assert records[0].model_digest == "c" * 64
    assert dict(records[0].data_digests) == {"train": "a" * 64, "eval": "b" * 64}
    assert records[0].results["metrics"]["performance.accuracy"] == pytest.approx(0.73)
    assert [r.id for r in list_audits(name="a", store=store)] == [3, 1]
    assert main(["history", "--store", str(store), "--name", "b"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert (
        len(lines) == 2 and lines[0].split()[0] == "4" and " b " in lines[0] and lines[0].endswith("PASSED")
    )
    assert main(["history", "--store", str(store), "--format", "json"]) == 0
    assert [r["id"] for r in json.loads(capsys.readouterr().out)] == [4, 3, 2, 1]


def test_store_is_in_wal_mode(tmp_path: Path) -> None:
    store = tmp_path / "h.sqlite"
    _fill(store, 1)
    with sqlite3.connect(store) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_an_intact_chain_checks(tmp_path: Path) -> None:
    store = tmp_path / "h.sqlite"
    _fill(store)
    assert check_chain(store=store) == []
    assert main(["history", "--check", "--store", str(store)]) == 0


@pytest.mark.parametrize(
    ("tamper", "expected"),
    [
        ("UPDATE audits SET verdict = 'PASSED' WHERE id = 1", ["audit 1: changed"]),
        (
            "UPDATE audits SET results = replace(results, '0.72', '0.99') WHERE id = 3",
            ["audit 3: changed"],
        ),
        ("DELETE FROM audits WHERE id = 2", ["audit 2: deleted"]),
        ("DELETE FROM audits WHERE id = 4", ["audit 4: deleted"]),
        ("UPDATE audits SET prev_hash = row_hash WHERE id = 3", ["audit 3: changed"]),
    ],
)
def test_a_changed_or_deleted_row_is_named(
    tmp_path: Path, tamper: str, expected: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "h.sqlite"
    _fill(store)
    with sqlite3.connect(store) as conn:
        conn.execute(tamper)
    assert [p.line().split(" (")[0] for p in check_chain(store=store)] == expected
    assert main(["history", "--check", "--store", str(store)]) == 1
    assert capsys.readouterr().out.startswith(expected[0])


def test_a_rewritten_row_with_a_recomputed_hash_is_found_by_the_next_link(tmp_path: Path) -> None:
    from governance.evidence import store as store_mod

    store = tmp_path / "h.sqlite"
    _fill(store)
    with sqlite3.connect(store) as conn:
        cols = (*store_mod._AUDIT_FIELDS, "row_hash")
        row = dict(
            zip(
                cols,
                conn.execute(f"SELECT {', '.join(cols)} FROM audits WHERE id = 2").fetchone(),
                strict=True,
            )
        )
        row["verdict"] = "PASSED" if row["verdict"] != "PASSED" else "FAILED"
        conn.execute(
            "UPDATE audits SET verdict = ?, row_hash = ? WHERE id = 2",
            (row["verdict"], store_mod._row_hash(row)),
        )
    assert [p.row_id for p in check_chain(store=store)] == [2]


def test_history_of_a_missing_store_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["history", "--store", str(tmp_path / "none.sqlite")]) == 2
    assert "no history store here" in capsys.readouterr().err
    junk = tmp_path / "junk.sqlite"
    junk.write_text("not a database at all, just text" * 100)
    assert main(["history", "--store", str(junk)]) == 2
    assert "expected a governance history store" in capsys.readouterr().err


def _writer(store: str, tag: str, n: int, go: object = None) -> None:
    if go is not None:
        go.wait(60)  # type: ignore[attr-defined]
    for i in range(n):
        record_audit(results_doc({"performance.accuracy": i / n}, spec_name=tag), "PASSED", store=store)


def test_two_concurrent_writer_processes_keep_the_chain(tmp_path: Path) -> None:
    store = tmp_path / "h.sqlite"
    _writer(str(store), "init", 1)  # the schema exists before the race
    ctx = multiprocessing.get_context("spawn")
    go = ctx.Event()
    procs = [ctx.Process(target=_writer, args=(str(store), tag, 15, go)) for tag in ("left", "right")]
    for p in procs:
        p.start()
    go.set()  # both write at once, not one after the other's start-up
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    records = list_audits(store=store)
    assert len(records) == 31
    assert sorted(r.id for r in records) == list(range(1, 32))
    assert {r.spec_name for r in records} == {"init", "left", "right"}
    assert check_chain(store=store) == []
