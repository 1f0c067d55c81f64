"""Verifying an audit folder: every file against its manifest, and the signature.

Kept apart from :mod:`governance.evidence.manifest` (which the signature modules read) so that the
evidence package has no import circle.
"""

from __future__ import annotations

import os
from pathlib import Path

from governance.errors import InputError
from governance.evidence.manifest import VerifyReport, compare, load_manifest
from governance.evidence.names import MANIFEST_NAME, SIGNATURE_NAME

__all__ = ["signature_status", "verify_folder"]


def verify_folder(
    folder: str | os.PathLike[str],
    *,
    public_key: str | os.PathLike[str] | None = None,
    require_signature: bool = False,
) -> VerifyReport:
    """Check every file of an audit folder against its manifest, and the signature.

    Parameters
    ----------
    folder
        An audit folder holding ``manifest.json``.
    public_key
        A P-256 public key (PEM). With it the signature must exist and verify; without it an
        existing signature is checked for internal consistency only (``"present, key not given"``).
    require_signature
        Treat an absent signature as a failure even without a key.

    Raises
    ------
    InputError
        ``folder`` is not a folder (exit 2). A missing or garbled manifest is reported as such.
    """
    root = Path(folder)
    if not root.is_dir():
        raise InputError(str(root), None, "expected an audit folder (with manifest.json)")
    manifest_path = root / MANIFEST_NAME
    status, ok = signature_status(root, public_key, require=require_signature or public_key is not None)
    try:
        manifest = load_manifest(manifest_path)
    except InputError as exc:
        # A deleted or garbled manifest is tampering like any other: exit 1, naming it.
        gone = not manifest_path.is_file()
        why = f"{exc.field}: {exc.message}" if exc.field else exc.message
        return VerifyReport(
            folder=str(root),
            checked=0,
            changed=() if gone else (f"{MANIFEST_NAME} (unreadable: {why})",),
            missing=(MANIFEST_NAME,) if gone else (),
            signature=status,
            signature_ok=ok,
        )
    report = compare(root, manifest)
    return VerifyReport(
        folder=report.folder,
        checked=report.checked,
        changed=report.changed,
        missing=report.missing,
        added=report.added,
        signature=status,
        signature_ok=ok,
    )


def signature_status(
    root: Path, public_key: str | os.PathLike[str] | None, *, require: bool
) -> tuple[str, bool]:
    """(what the signature check found, whether that passes)."""
    bundle = root / SIGNATURE_NAME
    if not bundle.is_file():
        return ("absent", not require)
    if public_key is None:
        return ("present, key not given", True)
    from governance.evidence.signing import SignatureError, verify_signature

    try:
        verify_signature(root, public_key)
    except SignatureError as exc:
        return (f"invalid: {exc}", False)
    return ("valid", True)
