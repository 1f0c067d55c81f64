"""``check`` fails closed: results beside a manifest they no longer match are an ERROR outcome.

The rule ``evidence.integrity`` is added to the policy's outcomes when a ``manifest.json`` sits
beside the results (or a signature is required): every file the manifest lists must still hash
to what it says, the results file among them, and with ``--require-signature`` the folder must be
signed with that key. Blocking severity, so the gate turns red whatever ``--fail-on`` says.
"""

from __future__ import annotations

import os
from pathlib import Path

from governance.errors import InputError
from governance.evidence.manifest import MANIFEST_NAME, compare, load_manifest
from governance.evidence.verify import signature_status
from governance.policy.outcome import Outcome, Status
from governance.results import Severity

__all__ = ["RULE_ID", "integrity_outcome"]

RULE_ID = "evidence.integrity"
_TITLE = "The results and their folder match the manifest (and signature) written with them"
_REFS = ("EU AI Act Annex IV 2(g)",)


def _outcome(status: Status, message: str, problems: int) -> Outcome:
    return Outcome(
        rule_id=RULE_ID,
        title=_TITLE,
        status=status,
        severity=Severity.BLOCKING,
        metric=RULE_ID,
        op="==",
        threshold=0.0,
        value=float(problems),
        message=message,
        refs=_REFS,
    )


def _v1_outcome(results: Path, manifest_path: Path) -> Outcome | None:
    """A manifest of the first format (absolute paths, no file list): the results' own digest."""
    import json

    from governance.evidence.manifest import sha256_file

    try:
        raw = json.loads(manifest_path.read_text(encoding="utf-8"))
        expected = raw["outputs"]["results"]["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if "manifest_version" in raw or not isinstance(expected, str):
        return None
    if sha256_file(results) != expected:
        return _outcome(Status.ERROR, f"does not match {manifest_path} (format 1): {results.name} changed", 1)
    return _outcome(Status.PASS, f"{results.name} matches {manifest_path} (format 1: results only)", 0)


def integrity_outcome(
    results_path: str | os.PathLike[str], *, require_signature: str | os.PathLike[str] | None = None
) -> Outcome | None:
    """The ``evidence.integrity`` outcome for a results file; None when there is nothing to check.

    Only the files the manifest lists are hashed (a report ``check --output`` writes into the
    folder afterwards is no tampering); ``governance verify`` also finds added files.
    """
    results = Path(results_path)
    folder = results.parent
    manifest_path = folder / MANIFEST_NAME
    if not manifest_path.is_file():
        if require_signature is None:
            return None
        return _outcome(Status.ERROR, f"no {MANIFEST_NAME} beside {results}: the folder is not signed", 1)
    try:
        manifest = load_manifest(manifest_path)
    except InputError as exc:
        legacy = _v1_outcome(results, manifest_path) if require_signature is None else None
        return legacy or _outcome(Status.ERROR, f"the manifest cannot be checked: {exc}", 1)
    rel = results.name
    report = compare(folder, manifest, only=[*manifest.files, rel])
    problems = [f"{p} changed" for p in report.changed] + [f"{p} missing" for p in report.missing]
    if rel not in manifest.files:
        problems = [p for p in problems if not p.startswith(f"{rel} ")]
        problems.insert(0, f"{rel} is not listed in {MANIFEST_NAME}")
    if require_signature is not None:
        status, ok = signature_status(folder, require_signature, require=True)
        if not ok:
            problems.append(f"signature {status}")
    if problems:
        return _outcome(
            Status.ERROR, f"does not match {manifest_path}: " + "; ".join(problems), len(problems)
        )
    what = "every listed file matches the manifest" + (" and the signature" if require_signature else "")
    return _outcome(Status.PASS, f"{report.checked} files: {what}", 0)
