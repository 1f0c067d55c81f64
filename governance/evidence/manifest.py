"""``manifest.json``: the SHA-256 of every file in an audit folder and of every input it read.

Paths are relative to the audit folder (inputs outside it as ``../``-style relative paths), so a
folder verifies wherever it is copied. :func:`verify_folder` compares the folder with its manifest
and names each file that changed, went missing or was added.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from governance.errors import InputError
from governance.evidence.names import MANIFEST_NAME, SIGNATURE_NAME  # re-exported

__all__ = [
    "MANIFEST_NAME",
    "MANIFEST_VERSION",
    "SIGNATURE_NAME",
    "UNLISTED",
    "Manifest",
    "VerifyReport",
    "build_manifest",
    "folder_files",
    "load_manifest",
    "write_manifest",
]

MANIFEST_VERSION = 2
#: Files of an audit folder that the manifest cannot list: itself, and the signature written after it
#: (the signature covers the manifest instead).
UNLISTED: frozenset[str] = frozenset({MANIFEST_NAME, SIGNATURE_NAME})


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_files(folder: Path) -> list[str]:
    """Every regular file under ``folder`` but :data:`UNLISTED`, as sorted POSIX paths relative to it.

    A symbolic link is listed as a file of its own (its target's content is hashed): a link that
    points elsewhere after copying shows up as changed.
    """
    out: list[str] = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        rel_root = Path(root).relative_to(folder)
        for name in files:
            rel = (rel_root / name).as_posix()
            if rel not in UNLISTED:
                out.append(rel)
    return sorted(out)


@dataclass(frozen=True)
class Manifest:
    """What ``manifest.json`` holds.

    Attributes
    ----------
    files
        Path relative to the audit folder → SHA-256, for every file in the folder (results,
        reports, the model folder when it lies inside) but the manifest and the signature.
    inputs
        Input name (``spec``, ``data.eval``, ``model/model.safetensors``…) → ``{"path", "sha256"}``,
        the path relative to the audit folder.
    tool_version, written_at
        Who wrote it and when (ISO 8601, UTC).
    """

    files: Mapping[str, str]
    inputs: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    tool_version: str = ""
    written_at: str = ""
    #: Who signed the folder, with which key fingerprint, when (written by ``sign``; None unsigned).
    signoff: Mapping[str, Any] | None = None
    #: Output name (``results``, ``html``…) → ``{"path", "sha256"}``, as manifest v1 listed them.
    outputs: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: The spec's user factory the run was allowed to execute (``--trust-code``), else None.
    trusted_code: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "manifest_version": MANIFEST_VERSION,
            "algorithm": "sha256",
            "files": dict(sorted(self.files.items())),
            "inputs": {k: dict(v) for k, v in self.inputs.items()},
            "outputs": {k: dict(v) for k, v in self.outputs.items()},
            "tool_version": self.tool_version,
            "written_at": self.written_at,
            "trusted_code": self.trusted_code,
        } | ({} if self.signoff is None else {"signoff": dict(self.signoff)})


def _relative(path: Path, folder: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), folder.resolve())).as_posix()


def build_manifest(
    folder: str | os.PathLike[str],
    *,
    inputs: Mapping[str, str | os.PathLike[str]] | None = None,
    outputs: Mapping[str, str | os.PathLike[str]] | None = None,
    hashes: Any = None,
    tool_version: str = "",
    trusted_code: str | None = None,
) -> Manifest:
    """Hash every file of ``folder`` and every input.

    Parameters
    ----------
    folder
        The audit folder.
    inputs
        Input name → file (anywhere); its path is stored relative to ``folder``.
    outputs
        Output name → file written by the run (named as in manifest v1; the digests are those of
        ``files``).
    hashes
        A callable path → SHA-256 hex that may already know some digests (the audit run's cache).
    """
    root = Path(folder)
    digest = hashes if hashes is not None else sha256_file
    files = {rel: sha256_file(root / rel) for rel in folder_files(root)}
    ins = {
        name: {"path": _relative(Path(p), root), "sha256": digest(Path(p))}
        for name, p in (inputs or {}).items()
        if Path(p).is_file()
    }
    outs = {
        name: {
            "path": _relative(Path(p), root),
            "sha256": files.get(_relative(Path(p), root)) or sha256_file(Path(p)),
        }
        for name, p in (outputs or {}).items()
        if Path(p).is_file()
    }
    return Manifest(
        files=files,
        inputs=ins,
        outputs=outs,
        tool_version=tool_version,
        written_at=datetime.now(UTC).isoformat(timespec="seconds"),
        trusted_code=trusted_code,
    )


def write_manifest(folder: str | os.PathLike[str], manifest: Manifest) -> Path:
    """Write ``folder/manifest.json`` atomically; return its path."""
    from governance._io import atomic_write_json

    path = Path(folder) / MANIFEST_NAME
    atomic_write_json(path, manifest.to_dict())
    return path


def load_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read a ``manifest.json``; :class:`InputError` when it is not one we can verify against."""
    source = str(path)
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(source, None, "no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(source, None, f"expected a JSON manifest: {exc}") from None
    if not isinstance(raw, dict):
        raise InputError(source, None, "expected a JSON object")
    if raw.get("manifest_version") != MANIFEST_VERSION:
        raise InputError(
            source,
            "manifest_version",
            f"expected {MANIFEST_VERSION} (paths relative to the audit folder), got "
            f"{raw.get('manifest_version')!r}; rerun the audit to write a current manifest",
        )
    files = raw.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and len(v) == 64 for k, v in files.items()
    ):
        raise InputError(source, "files", "expected an object from relative path to SHA-256 hex")
    for rel in files:
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            raise InputError(source, f"files.{rel}", "expected a path inside the audit folder")
    inputs = raw.get("inputs", {})
    if not isinstance(inputs, dict):
        raise InputError(source, "inputs", "expected an object")
    return Manifest(
        files=files,
        inputs=inputs,
        tool_version=str(raw.get("tool_version", "")),
        written_at=str(raw.get("written_at", "")),
        signoff=raw["signoff"] if isinstance(raw.get("signoff"), dict) else None,
        outputs=raw["outputs"] if isinstance(raw.get("outputs"), dict) else {},
        trusted_code=raw["trusted_code"] if isinstance(raw.get("trusted_code"), str) else None,
    )


@dataclass(frozen=True)
class VerifyReport:
    """The verdict of :func:`verify_folder`.

    ``changed``, ``missing`` and ``added`` are paths relative to the folder; ``signature`` is
    ``"valid"``, ``"absent"``, ``"not checked"`` or why it failed.
    """

    folder: str
    checked: int
    changed: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    added: tuple[str, ...] = ()
    signature: str = "not checked"
    signature_ok: bool = True

    @property
    def ok(self) -> bool:
        return not (self.changed or self.missing or self.added) and self.signature_ok

    def lines(self) -> list[str]:
        out = [f"changed: {p}" for p in self.changed]
        out += [f"missing: {p}" for p in self.missing]
        out += [f"added: {p}" for p in self.added]
        if not self.signature_ok:
            out.append(f"signature: {self.signature}")
        return out

    def summary_line(self) -> str:
        verdict = "VERIFIED" if self.ok else "FAILED"
        return (
            f"verify {self.folder}: {verdict} ({self.checked} files; {len(self.changed)} changed, "
            f"{len(self.missing)} missing, {len(self.added)} added; signature {self.signature})"
        )


def compare(folder: Path, manifest: Manifest, *, only: Iterable[str] | None = None) -> VerifyReport:
    """Compare the files of ``folder`` with ``manifest``.

    ``only`` restricts the comparison to those listed paths (``check`` hashes just what it reads);
    without it every file of the folder is compared, so added files are found too.
    """
    listed = dict(manifest.files)
    present = set(folder_files(folder)) if only is None else None
    names = sorted(listed) if only is None else sorted(set(only))
    changed: list[str] = []
    missing: list[str] = []
    for rel in names:
        path = folder / rel
        expected = listed.get(rel)
        if expected is None:
            changed.append(rel)  # a file check reads that the manifest does not vouch for
        elif not path.is_file():
            missing.append(rel)
        elif sha256_file(path) != expected:
            changed.append(rel)
    added = () if present is None else tuple(sorted(present - set(listed)))
    return VerifyReport(
        folder=str(folder),
        checked=len(names),
        changed=tuple(changed),
        missing=tuple(missing),
        added=added,
    )
