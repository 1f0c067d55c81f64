"""What an audit run does with its evidence once its outputs are written (called by the pipeline).

Kept in one place so the pipeline holds three lines: write the manifest, record the history row,
sign the folder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from governance.evidence.manifest import build_manifest, write_manifest

__all__ = ["planned_signoff", "record_audit_run", "sign_audit_folder", "verdict_of", "write_audit_manifest"]


def write_audit_manifest(
    folder: Path, inputs: Mapping[str, Path], *, hashes: Any = None, tool_version: str = ""
) -> Path:
    """``folder/manifest.json``: every file of the folder and every input, relative to the folder."""
    return write_manifest(
        folder, build_manifest(folder, inputs=inputs, hashes=hashes, tool_version=tool_version)
    )


def verdict_of(check_report: Any) -> str:
    """The policy verdict a history row records: PASSED, FAILED or ``no policy``."""
    if check_report is None:
        return "no policy"
    return "PASSED" if check_report.passed else "FAILED"


def record_audit_run(results: Any, check_report: Any, *, store: str | os.PathLike[str] | None = None) -> int:
    """Append the run (its whole results.json) to the history store; return the row id."""
    from governance.evidence.store import record_audit

    return record_audit(results.to_dict(), verdict_of(check_report), store=store)


def planned_signoff(key: str | os.PathLike[str] | None, signer: str | None = None) -> dict[str, Any] | None:
    """The sign-off a run signed with ``key`` will carry (checked up front: a bad key is exit 2)."""
    if key is None:
        return None
    from governance.evidence.signing import _who, key_fingerprint

    return {"signer": signer or _who(), "key_fingerprint": key_fingerprint(key)}


def sign_audit_folder(folder: Path, key: str | os.PathLike[str] | None, signer: str | None = None) -> Any:
    """Sign the finished folder when a key was given; None otherwise."""
    if key is None:
        return None
    from governance.evidence.signing import sign_folder

    return sign_folder(folder, key, signer=signer)
