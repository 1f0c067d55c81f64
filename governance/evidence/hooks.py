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

__all__ = [
    "planned_signoff",
    "record_audit_run",
    "sign_audit_folder",
    "verdict_of",
    "with_evidence",
    "write_audit_manifest",
]


def write_audit_manifest(
    folder: Path,
    inputs: Mapping[str, Path],
    *,
    outputs: Mapping[str, Path] | None = None,
    hashes: Any = None,
    tool_version: str = "",
    trusted_code: str | None = None,
) -> Path:
    """``folder/manifest.json``: every file of the folder and every input, relative to the folder."""
    manifest = build_manifest(
        folder,
        inputs=inputs,
        outputs=outputs,
        hashes=hashes,
        tool_version=tool_version,
        trusted_code=trusted_code,
    )
    return write_manifest(folder, manifest)


def verdict_of(check_report: Any) -> str:
    """The policy verdict a history row records: PASSED, FAILED or ``no policy``."""
    if check_report is None:
        return "no policy"
    return "PASSED" if check_report.passed else "FAILED"


def record_audit_run(results: Any, check_report: Any, *, store: str | os.PathLike[str] | None = None) -> int:
    """Append the run (its whole results.json) to the history store; return the row id."""
    from governance.evidence.store import record_audit

    return record_audit(results.to_dict(), verdict_of(check_report), store=store)


def planned_signoff(
    key: str | os.PathLike[str] | None,
    signer: str | None = None,
    *,
    store: str | os.PathLike[str] | None = None,
) -> dict[str, Any] | None:
    """The sign-off a run signed with ``key`` will carry (checked up front: a bad key is exit 2).

    The history store is checked here too, so a run that could not record itself stops before any
    work.

    The report, rendered before the folder is signed, shows it; the signature then uses the same
    signer and time.
    """
    from governance.evidence.store import check_store

    check_store(store)
    if key is None:
        return None
    from datetime import UTC, datetime

    from governance.evidence.signing import _fingerprint, _load_private_key, _who

    return {
        "signer": signer or _who(),
        "key_fingerprint": _fingerprint(_load_private_key(key).public_key()),
        "signed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "what": "every file of the audit folder (results, reports, manifest, model)",
    }


def sign_audit_folder(
    folder: Path, key: str | os.PathLike[str] | None, signoff: Mapping[str, Any] | None = None
) -> Any:
    """Sign the finished folder when a key was given; None otherwise."""
    if key is None:
        return None
    from governance.evidence.signing import sign_folder

    signoff = signoff or {}
    return sign_folder(folder, key, signer=signoff.get("signer"), signed_at=signoff.get("signed_at"))


def with_evidence(
    results: Any, policy: Any = None, *, store: str | os.PathLike[str] | None = None, signoff: Any = None
) -> Any:
    """``results`` with what the report shows about evidence in ``run.extra``.

    ``signoff``: who signs the folder, with which key, when. ``since_last_audit``: every metric's
    change since the last audit of this spec in the store (none when there is none).
    ``privacy_budget``: the training data's cumulative ε over every recorded DP run.
    """
    from dataclasses import replace

    extra = dict(results.run.extra)
    if signoff:
        extra["signoff"] = dict(signoff)
    since = since_last_audit(results, policy, store=store)
    if since is not None:
        extra["since_last_audit"] = since
    budget = _budget(results, store=store)
    if budget is not None:
        extra["privacy_budget"] = budget
    return replace(results, run=replace(results.run, extra=extra))


def since_last_audit(
    results: Any, policy: Any = None, *, store: str | os.PathLike[str] | None = None
) -> dict[str, Any] | None:
    """The changes since the newest recorded audit of the same spec, or None."""
    from governance.evidence.diff import Verdict, diff_results
    from governance.evidence.store import list_audits, resolve_store

    if not resolve_store(store).is_file():
        return None
    previous = list_audits(name=results.run.spec_name, store=store, limit=1)
    if not previous:
        return None
    last = previous[0]
    report = diff_results(last.results, results.to_dict(), policy=policy)
    changed = [c.to_dict() for c in report.changes if c.verdict is not Verdict.UNCHANGED]
    return {
        "id": last.id,
        "recorded_at": last.recorded_at,
        "verdict": last.verdict,
        "model_digest": last.model_digest,
        "policy": report.policy,
        "unchanged": len(report.changes) - len(changed),
        "regressions": len(report.regressions),
        "changes": changed,
    }


def _budget(results: Any, *, store: str | os.PathLike[str] | None) -> dict[str, Any] | None:
    """The training data's cumulative ε now (the store), else as the training run left it (ledger)."""
    training = results.run.extra.get("training")
    if not isinstance(training, Mapping) or not isinstance(training.get("privacy"), Mapping):
        return None
    privacy = training["privacy"]
    train_data = (
        (training.get("data") or {}).get("train") if isinstance(training.get("data"), Mapping) else None
    )
    digest = train_data.get("sha256") if isinstance(train_data, Mapping) else None
    from governance.evidence.budget import dataset_budget
    from governance.evidence.store import resolve_store

    if digest and resolve_store(store).is_file():
        budget = dataset_budget(str(digest), delta=float(privacy.get("delta") or 1e-5), store=store)
        if budget.runs:
            return budget.to_dict() | {"run_epsilon": privacy.get("epsilon")}
    recorded = privacy.get("dataset_budget")
    if isinstance(recorded, Mapping):
        return dict(recorded) | {"run_epsilon": privacy.get("epsilon")}
    return None
