"""Forking a helper process for part of a report (the PDF's layout, half of the charts).

Only POSIX ``fork``: the child starts with everything this process has imported and built
(matplotlib, the chart builders' closures), which is what makes a helper cheap. None wherever a
helper cannot run or cannot help: no CPU for it (this process keeps one, and each helper still
running keeps one), no ``fork``, or a daemonic process (a report worker), which multiprocessing
allows no children. A helper beyond the CPUs would only take turns with the others: on two
CPUs the PDF's layout, the longest part, keeps the second one to itself.
"""

from __future__ import annotations

import os
import sys
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from multiprocessing.connection import Connection
    from multiprocessing.process import BaseProcess

__all__ = ["cpus", "fork", "ignore_interrupts", "stop"]

#: The helpers this process forked (a finished one no longer counts).
_HELPERS: weakref.WeakSet[BaseProcess] = weakref.WeakSet()


def cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return os.cpu_count() or 1


def fork(target: Callable[..., None], *args: Any, name: str) -> tuple[BaseProcess, Connection] | None:
    """Start ``target(conn, *args)`` in a forked child; this side's end of the pipe, or None."""
    if sys.platform == "win32":
        return None
    import multiprocessing
    import warnings

    if multiprocessing.current_process().daemon or cpus() < 2 + _running():
        return None
    try:
        ctx = multiprocessing.get_context("fork")
    except ValueError:  # pragma: no cover - platforms without fork
        return None
    parent, child = ctx.Pipe(duplex=True)
    process = ctx.Process(target=target, args=(child, *args), name=name, daemon=True)
    try:
        with warnings.catch_warnings():
            # Python 3.12+ warns about fork in a process with threads; the children render and
            # draw, they never touch the parent's thread pools.
            warnings.simplefilter("ignore", DeprecationWarning)
            process.start()
    except OSError:
        parent.close()
        child.close()
        return None
    child.close()
    _HELPERS.add(process)
    return process, parent


def _running() -> int:
    """Helpers of this process still running."""
    return sum(1 for process in list(_HELPERS) if process.is_alive())


def stop(process: BaseProcess, conn: Connection) -> None:
    """Close the pipe and wait for the child; one still busy after 5 s is terminated."""
    conn.close()
    process.join(timeout=5)
    if process.is_alive():
        process.terminate()
        process.join(timeout=5)


def ignore_interrupts() -> None:
    """In a child: Ctrl-C goes to the whole process group; the parent decides what happens to it."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
