"""Atomic file writes: no command may leave a half-written output behind."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "atomic_open",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "check_output_dir",
    "sha256_file",
]


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path`` and move it into place only on success.

    The rename is atomic on POSIX, so readers see either the old file or the complete new one.
    A target that exists and is not a regular file (``/dev/null``, ``/dev/stdout``, a pipe) is
    written in place: renaming over it would replace the device node itself.
    """
    target = Path(path)
    if target.exists() and not target.is_file() and not target.is_dir():
        special: IO[Any] = open(target, mode) if "b" in mode else open(target, mode, encoding="utf-8")  # noqa: SIM115
        with special:
            yield special
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    handle: IO[Any]
    try:
        handle = os.fdopen(fd, mode) if "b" in mode else os.fdopen(fd, mode, encoding="utf-8", newline="\n")
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates 0600 files; outputs are meant to be read by others (CI artefacts, reviewers).
        os.chmod(tmp_name, 0o666 & ~_umask())
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_open(path, "w") as handle:
        handle.write(text)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, allow_nan=False) + "\n")


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_output_dir(path: str | os.PathLike[str], *, option: str = "--out") -> Path:
    """Fail early, creating nothing, when ``path`` cannot become a writable output folder.

    Checked before any training or auditing, so a typo in ``--out`` costs seconds, not a run.

    Raises
    ------
    InputError
        Naming the option and the path.
    """
    from governance.errors import InputError

    folder = Path(path)
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise InputError(option, str(folder), f"cannot create output folder: {probe} is a file")
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(option, str(folder), f"cannot create output folder: {probe} is not writable")
    return folder
