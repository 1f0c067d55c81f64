"""Output folders that appear whole, one writer at a time.

``train --out`` and ``audit --out`` write a folder of files that only mean something together
(weights beside the ledger that describes them; results beside the manifest that hashes them).
:func:`output_folder` gives a run an empty staging folder beside the target and, when the run
succeeds, swaps it in with one rename of the whole folder, so a reader sees the old folder or
the new one, never a mix. While a run holds the target, an exclusive lock (``flock`` on
``.NAME.lock`` beside it) makes a second run exit 2 naming the holder.

A run killed half-way leaves at most a staging folder (``.NAME.staging-*``) or, when killed
inside a non-atomic swap, the old folder set aside (``.NAME.replaced``); the next run on the same
target cleans the first and puts the second back (:func:`recover`).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from governance.errors import InputError

__all__ = [
    "ERR_LOCKED",
    "ERR_NOT_OURS",
    "OutputLock",
    "check_target",
    "output_folder",
    "recover",
    "swap_in",
]

ERR_LOCKED = "another governance run is writing this folder (pid {pid} on {host}, started {started}); wait for it or choose another --out"
ERR_NOT_OURS = (
    "exists and is not a governance output folder (none of {marks} in it); "
    "give a new or empty folder, it would be replaced"
)
ERR_CWD = "holds the current directory; give a folder below it"
STAGING_INFIX = ".staging-"
REPLACED_SUFFIX = ".replaced"
LOCK_SUFFIX = ".lock"


def _hidden(target: Path, suffix: str) -> Path:
    return target.parent / f".{target.name}{suffix}"


# -- the lock -------------------------------------------------------------------------------------


class OutputLock:
    """An exclusive, non-blocking ``flock`` on ``.NAME.lock`` beside ``target``.

    The file records the holder (pid, host, start time) for the error a second run prints, and is
    removed on release. Removing it is safe because a locker checks, once it holds the lock, that
    the path still names the file it locked (else it retries on the new one).
    """

    def __init__(self, target: Path, *, option: str = "--out") -> None:
        self.target = target
        self.option = option
        self.path = _hidden(target, LOCK_SUFFIX)
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        import fcntl

        for _ in range(20):
            try:
                handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release
            except OSError as exc:
                if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                    raise
                raise InputError(
                    self.option, str(self.target), f"cannot write beside the folder ({exc.strerror})"
                ) from None
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_holder(self.path)
                handle.close()
                raise InputError(self.option, str(self.target), ERR_LOCKED.format(**holder)) from None
            try:
                same = os.fstat(handle.fileno()).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the previous holder removed the file between our open and flock
                handle.close()
                continue
            handle.seek(0)
            handle.truncate()
            holder = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            handle.write(json.dumps(holder) + "\n")
            handle.flush()
            self._handle = handle
            return
        raise InputError(
            self.option, str(self.target), "could not lock the folder (lock file keeps changing)"
        )

    def release(self) -> None:
        if self._handle is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        self._handle.close()
        self._handle = None

    def __enter__(self) -> OutputLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_holder(path: Path) -> dict[str, Any]:
    holder: dict[str, Any] = {"pid": "?", "host": "?", "started": "?"}
    with contextlib.suppress(OSError, ValueError):
        found = json.loads(path.read_text(encoding="utf-8") or "{}")
        if isinstance(found, dict):
            holder.update({k: found[k] for k in holder if k in found})
    return holder


# -- checks, recovery and the swap ----------------------------------------------------------------


def check_target(target: Path, *, marks: Sequence[str], option: str = "--out") -> None:
    """Refuse a target that must not be replaced: not a folder, holds the cwd, or not ours.

    ``marks`` are the file names one of which a folder written by this command holds; an
    existing non-empty folder with none of them is someone else's and is never replaced.
    """
    if target.is_symlink() and not target.exists():
        raise InputError(option, str(target), "is a dangling symbolic link; expected a folder to write")
    if not target.exists():
        return
    if not target.is_dir():
        raise InputError(option, str(target), "is a file; expected a folder to write")
    cwd = Path.cwd().resolve()
    resolved = target.resolve()
    if cwd == resolved or resolved in cwd.parents:
        raise InputError(option, str(target), ERR_CWD)
    if not _ours(target, marks) and not all(
        entry.name.startswith(".") or (entry.is_dir() and _ours(entry, KNOWN_MARKS))
        for entry in target.iterdir()
    ):
        # Someone else's folder: a governance folder holding other governance folders (an audit
        # folder around the model folder it audits) is fine, anything else is not replaced.
        raise InputError(option, str(target), ERR_NOT_OURS.format(marks=", ".join(marks)))


#: Files that mark a folder written by governance (model folder or audit folder).
KNOWN_MARKS = ("config.json", "training.json", "results.json", "manifest.json")


def _ours(folder: Path, marks: Sequence[str]) -> bool:
    return any((folder / m).exists() for m in marks)


def recover(target: Path) -> None:
    """Finish or undo what a killed run left beside ``target`` (call while holding the lock)."""
    replaced = _hidden(target, REPLACED_SUFFIX)
    if replaced.exists():
        if target.exists() or target.is_symlink():
            shutil.rmtree(replaced, ignore_errors=True)  # the new folder made it in
        else:
            os.rename(replaced, target)  # killed between the two renames: the old one comes back
    prefix = f".{target.name}{STAGING_INFIX}"
    for orphan in target.parent.glob(f"{prefix}*"):
        shutil.rmtree(orphan, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def swap_in(staging: Path, target: Path) -> None:
    """Make ``staging`` the folder at ``target`` in one step; the old folder is then deleted.

    A new target is one rename. An existing one is exchanged atomically where the system can
    (Linux); elsewhere it is set aside (``.NAME.replaced``), the new one renamed in and the old one
    deleted, and :func:`recover` repairs a run killed between those renames.
    """
    if not target.exists():
        os.rename(staging, target)
        return
    if _exchange(staging, target):
        shutil.rmtree(staging, ignore_errors=True)  # now holds the old folder
        return
    replaced = _hidden(target, REPLACED_SUFFIX)
    if replaced.exists():
        shutil.rmtree(replaced)
    os.rename(target, replaced)
    os.rename(staging, target)
    shutil.rmtree(replaced, ignore_errors=True)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def carry_over(target: Path, staging: Path, *, ours: Sequence[str]) -> None:
    """Bring the entries of an existing target that this command does not write into ``staging``.

    Hard links where possible (no data copied); what the run writes itself (``ours``) is not
    carried, so no stale output survives beside the new ones.
    """
    if not target.is_dir():
        return
    for entry in target.iterdir():
        if entry.name in ours or entry.name.startswith(".") or (staging / entry.name).exists():
            continue
        if any(entry.name.startswith(prefix) for prefix in ours if prefix.endswith(".")):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, staging / entry.name, symlinks=True, copy_function=_link_or_copy)
        elif entry.is_symlink():
            os.symlink(os.readlink(entry), staging / entry.name)
        else:
            _link_or_copy(str(entry), str(staging / entry.name))


@contextlib.contextmanager
def output_folder(
    target: str | os.PathLike[str],
    *,
    marks: Sequence[str],
    ours: Sequence[str] = (),
    option: str = "--out",
    lock: bool = True,
) -> Iterator[Path]:
    """Yield an empty staging folder beside ``target``; on success it replaces ``target`` whole.

    Parameters
    ----------
    target
        The output folder (``--out``).
    marks
        File names that identify a folder this command wrote (see :func:`check_target`).
    ours
        Entry names this command writes (a trailing ``.`` matches a prefix, e.g. ``report.``);
        every other entry of an existing target is carried into the new folder.
    lock
        Take the exclusive lock (off for a folder nested in another run's staging folder, which
        that run's lock already covers).

    Raises
    ------
    InputError
        The target cannot be written or another run holds it; nothing is written.
    """
    target = Path(target)
    check_target(target, marks=marks, option=option)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (NotADirectoryError, FileExistsError):
        raise InputError(option, str(target), "cannot create the folder: a parent is a file") from None
    except PermissionError:
        raise InputError(option, str(target), "cannot create the folder: permission denied") from None
    with OutputLock(target, option=option) if lock else contextlib.nullcontext():
        recover(target)
        check_target(target, marks=marks, option=option)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}{STAGING_INFIX}", dir=target.parent))
        try:
            yield staging
            # Outputs are read by others (CI artefacts, reviewers); mkdtemp made the folder 0700.
            for path in staging.rglob("*"):
                if not path.is_symlink():
                    os.chmod(path, 0o755 if path.is_dir() else 0o644)
            os.chmod(staging, 0o755)
            carry_over(target, staging, ours=ours)
            swap_in(staging, target)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)


def is_no_space(exc: BaseException) -> bool:
    """Whether ``exc`` is a full disk or quota (the CLI's exit 1 with "no space left").

    Libraries that write through their own code (safetensors) wrap the OS error in theirs, so
    its text is read too.
    """
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return "No space left on device" in str(exc) or "Disk quota exceeded" in str(exc)
