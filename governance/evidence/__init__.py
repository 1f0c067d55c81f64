"""Evidence a reviewer can verify: manifest, signatures, attestations, history and privacy budget.

Nothing here imports torch, ``governance.train`` or ``governance.audit``: ``verify``, ``check`` and
``history`` run on a reviewer's laptop with the audit folder alone.
"""

from governance.evidence.manifest import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    Manifest,
    VerifyReport,
    build_manifest,
    load_manifest,
    write_manifest,
)
from governance.evidence.verify import verify_folder

__all__ = [
    "MANIFEST_NAME",
    "SIGNATURE_NAME",
    "Manifest",
    "VerifyReport",
    "build_manifest",
    "load_manifest",
    "verify_folder",
    "write_manifest",
]
