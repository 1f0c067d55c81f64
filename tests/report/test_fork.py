"""The report's fork helper stays out of processes with other threads (a lock held at the fork
would hang the child)."""

from __future__ import annotations

import threading

import pytest

from governance.report._fork import cpus, fork, stop


def _echo(conn) -> None:  # type: ignore[no-untyped-def]
    conn.send("ready")
    conn.close()


@pytest.mark.skipif(cpus() < 2, reason="the helpers fork only with a second CPU")
def test_forks_alone_and_refuses_while_another_thread_lives() -> None:
    started = fork(_echo, name="test-fork")
    assert started is not None
    process, conn = started
    assert conn.recv() == "ready"
    stop(process, conn)

    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        assert fork(_echo, name="test-fork") is None
    finally:
        release.set()
        other.join()
