"""Checking a model-signing bundle (``evidence.sigstore.json``, key-signed) without importing it.

``model_signing``'s own verifier imports sigstore, TUF and pydantic models: 2-3 s before it reads a
byte, against ``governance verify``'s 0.5 s budget. A key-signed bundle needs far less: the key
hint, one ECDSA signature over the DSSE pre-authentication encoding, the in-toto statement's root
digest over its resources, and each resource's SHA-256. That is what this module checks, with
``cryptography`` only. tests/evidence/test_signing.py holds ``model_signing.verifying`` as the
oracle: both accept the same bundles and reject the same tampering.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from governance.evidence.manifest import sha256_file

__all__ = ["BundleError", "verify_bundle"]

_MEDIA_TYPES = (
    "application/vnd.dev.sigstore.bundle.v0.3+json",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
)
_PAYLOAD_TYPE = "application/vnd.in-toto+json"
_PREDICATE_TYPE = "https://model_signing/signature/v1.0"
#: What model-signing leaves out of a folder's signature unless told otherwise.
_GIT_PATHS = (".git", ".github", ".gitignore", ".gitattributes")


class BundleError(Exception):
    """The bundle is malformed, made with another key, or the folder differs from what was signed."""


def _pae(payload: bytes) -> bytes:
    t = _PAYLOAD_TYPE.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(t), t, len(payload), payload)


def _b64(text: Any) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, TypeError, ValueError) as exc:
        raise BundleError(f"malformed base64 in the bundle: {exc}") from None


#: The fields a bundle of ours may hold, per object. model-signing's reader refuses an unknown
#: field anywhere (an edited field name, e.g. ``tlogEntries`` or a signature's ``keyid``), so an
#: edit it refuses is refused here too, even where the edited field is not signed.
_KNOWN_FIELDS: dict[str, frozenset[str]] = {
    "bundle": frozenset({"mediaType", "verificationMaterial", "dsseEnvelope"}),
    "verificationMaterial": frozenset({"publicKey", "tlogEntries"}),
    "publicKey": frozenset({"hint"}),
    "dsseEnvelope": frozenset({"payload", "payloadType", "signatures"}),
    "signature": frozenset({"sig", "keyid"}),
}


def _only_known_fields(bundle: dict[str, Any]) -> None:
    material = bundle.get("verificationMaterial")
    envelope = bundle.get("dsseEnvelope")
    objects: list[tuple[str, Any]] = [
        ("bundle", bundle),
        ("verificationMaterial", material),
        ("publicKey", material.get("publicKey") if isinstance(material, dict) else None),
        ("dsseEnvelope", envelope),
    ]
    signatures = envelope.get("signatures") if isinstance(envelope, dict) else None
    objects += [("signature", s) for s in signatures or () if isinstance(signatures, list)]
    for name, obj in objects:
        if not isinstance(obj, dict):
            continue  # a missing or mistyped object is refused by the checks that read it
        unknown = sorted(set(obj) - _KNOWN_FIELDS[name])
        if unknown:
            raise BundleError(f"unexpected field {unknown[0]!r} in the bundle's {name}")
    entries = material.get("tlogEntries", []) if isinstance(material, dict) else []
    if entries != []:
        raise BundleError("unexpected transparency-log entries in a key-signed bundle")


def _statement(bundle_path: Path, public: Any) -> dict[str, Any]:
    """The signed in-toto statement, once the key hint and the signature check out."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        bundle = json.loads(bundle_path.read_text(encoding="utf-8"))
        envelope = bundle["dsseEnvelope"]
        hint = bundle.get("verificationMaterial", {}).get("publicKey", {}).get("hint")
        media = bundle.get("mediaType")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise BundleError(f"not a sigstore bundle: {exc.__class__.__name__}: {exc}") from None
    if media not in _MEDIA_TYPES:
        raise BundleError(f"unexpected bundle media type {media!r}")
    _only_known_fields(bundle)
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    if hint != hashlib.sha256(pem).hexdigest():
        raise BundleError("key mismatch: the bundle was made with another key")
    if not isinstance(envelope, dict) or envelope.get("payloadType") != _PAYLOAD_TYPE:
        raise BundleError("the bundle's DSSE envelope is not an in-toto statement")
    payload = _b64(envelope.get("payload"))
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or len(signatures) != 1 or not isinstance(signatures[0], dict):
        raise BundleError("expected exactly one signature in the envelope")
    try:
        public.verify(_b64(signatures[0].get("sig")), _pae(payload), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise BundleError("the signature does not verify with this key") from None
    try:
        statement = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"the signed statement is not JSON: {exc}") from None
    if not isinstance(statement, dict) or statement.get("predicateType") != _PREDICATE_TYPE:
        raise BundleError("the signed statement is not a model-signing statement")
    return statement


def _signed_files(statement: dict[str, Any]) -> tuple[dict[str, str], tuple[str, ...]]:
    """(file → SHA-256 as signed, ignored paths), after checking the root digest over them."""
    try:
        predicate = statement["predicate"]
        resources = predicate["resources"]
        serialization_ = predicate["serialization"]
        subjects = statement["subject"]
        root = subjects[0]["digest"]["sha256"]
        if (
            len(subjects) != 1
            or serialization_.get("method") != "files"
            or serialization_.get("hash_type") != "sha256"
        ):
            raise ValueError("only file-by-file SHA-256 signatures of one folder are read here")
        files = {str(r["name"]): str(r["digest"]) for r in resources if r["algorithm"] == "sha256"}
        if len(files) != len(resources):
            raise ValueError("a resource is not hashed with SHA-256")
        ignored = tuple(str(p) for p in serialization_.get("ignore_paths", ()))
        hasher = hashlib.sha256()
        for name in sorted(files):
            hasher.update(bytes.fromhex(files[name]))
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise BundleError(f"unexpected signed statement: {exc}") from None
    if hasher.hexdigest() != root:
        raise BundleError("the statement's root digest does not match its resources")
    return files, ignored


def _present(folder: Path, ignored: tuple[str, ...]) -> set[str]:
    skip = {p.rstrip("/") for p in (*ignored, *_GIT_PATHS)}
    out: set[str] = set()
    for root, dirs, files in os.walk(folder):
        rel_root = Path(root).relative_to(folder)
        dirs[:] = [d for d in dirs if (rel_root / d).as_posix() not in skip]
        out.update(rel for rel in ((rel_root / n).as_posix() for n in files) if rel not in skip)
    return out


def verify_bundle(folder: str | os.PathLike[str], bundle: str | os.PathLike[str], public: Any) -> None:
    """Raise :class:`BundleError` unless ``bundle`` signs exactly the files of ``folder`` with ``public``."""
    root = Path(folder)
    files, ignored = _signed_files(_statement(Path(bundle), public))
    present = _present(root, ignored)
    changed = sorted(n for n in files if n in present and sha256_file(root / n) != files[n])
    missing = sorted(set(files) - present)
    added = sorted(present - set(files))
    parts = [f"changed since signing: {', '.join(changed)}"] if changed else []
    parts += [f"missing since signing: {', '.join(missing)}"] if missing else []
    parts += [f"added since signing: {', '.join(added)}"] if added else []
    if parts:
        raise BundleError("; ".join(parts))
