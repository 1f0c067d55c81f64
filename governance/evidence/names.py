"""File names of an audit folder's evidence, shared by the manifest and the signature modules."""

from __future__ import annotations

__all__ = ["MANIFEST_NAME", "SIGNATURE_NAME"]

MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "evidence.sigstore.json"
