"""The check verdict as an in-toto Statement (``check --attestation FILE``), optionally signed.

Subject: the results file's SHA-256. Predicate: the policy pack's digest and every rule's outcome,
value, threshold and refs. With a key the Statement is wrapped in a DSSE envelope signed with it
(the envelope in-toto and sigstore use), so a reviewer can tell who vouched for the verdict.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from governance.evidence.manifest import sha256_file

__all__ = ["PAYLOAD_TYPE", "PREDICATE_TYPE", "STATEMENT_TYPE", "statement", "write_attestation"]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
PREDICATE_TYPE = "https://github.com/governance/governance/check-verdict/v1"


def statement(report: Any, results_path: str | os.PathLike[str]) -> dict[str, Any]:
    """The in-toto Statement for a :class:`~governance.policy.outcome.CheckReport`."""
    path = Path(results_path)
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": path.name, "digest": {"sha256": sha256_file(path)}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "policy": {
                "name": report.policy_name,
                "version": report.policy_version,
                "digest": {"sha256": report.policy_sha256},
            },
            "spec_name": report.spec_name,
            "evaluated_on": report.evaluated_on,
            "fail_on": report.fail_on.value,
            "passed": report.passed,
            "counts": dict(report.counts),
            "outcomes": [
                {
                    "rule": o.rule_id,
                    "metric": o.metric,
                    "status": o.status.value,
                    "severity": o.severity.value,
                    "value": o.value,
                    "op": o.op,
                    "threshold": o.threshold,
                    "refs": list(o.refs),
                }
                for o in report.outcomes
            ],
        },
    }


def write_attestation(
    report: Any,
    results_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    key: str | os.PathLike[str] | None = None,
) -> dict[str, Any]:
    """Write the Statement (or, with ``key``, its signed DSSE envelope) to ``out``; return it."""
    from governance._io import atomic_write_json

    doc: dict[str, Any] = statement(report, results_path)
    if key is not None:
        from governance.evidence.signing import sign_payload

        payload = json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")
        doc = sign_payload(payload, PAYLOAD_TYPE, key)
    atomic_write_json(out, doc)
    return doc
