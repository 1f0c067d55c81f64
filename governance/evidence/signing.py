"""Signing an audit folder with OpenSSF ``model-signing`` (P-256 PEM keys, sigstore bundle).

The whole folder is signed (results, reports, manifest, model), the signature file itself
excepted, into ``DIR/evidence.sigstore.json``. The bundle is the library's own, so
``model_signing verify key DIR --signature DIR/evidence.sigstore.json --public_key PUB.pem``
accepts it as well as ``governance verify DIR --key PUB.pem``.

Keyless (sigstore OIDC) signing needs a network and an identity provider; it is not built here
(see the README's reviewer workflow for the ``model_signing sign sigstore`` command that does it).
"""

from __future__ import annotations

import getpass
import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from governance.errors import InputError
from governance.evidence.names import MANIFEST_NAME, SIGNATURE_NAME

__all__ = [
    "SignOff",
    "SignatureError",
    "key_fingerprint",
    "sign_folder",
    "sign_payload",
    "verify_payload",
    "verify_signature",
    "verify_with_model_signing",
]

ERR_EXTRA = "signing needs the evidence extra: pip install 'governance[evidence]' ({exc})"


class SignatureError(Exception):
    """The signature is missing, malformed, made with another key, or does not cover the folder."""


@dataclass(frozen=True)
class SignOff:
    """Who signed what, with which key, and when (recorded in the signed manifest)."""

    signer: str
    key_fingerprint: str
    signed_at: str
    files: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "signer": self.signer,
            "key_fingerprint": self.key_fingerprint,
            "signed_at": self.signed_at,
            "files": self.files,
            "bundle": SIGNATURE_NAME,
        }


def _load_private_key(key: str | os.PathLike[str]) -> Any:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec
    except ImportError as exc:  # pragma: no cover - the evidence extra brings it
        raise InputError(str(key), None, ERR_EXTRA.format(exc=exc)) from None

    try:
        data = Path(key).read_bytes()
    except OSError as exc:
        raise InputError(str(key), None, f"cannot read the key: {exc.strerror or exc}") from None
    try:
        private = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise InputError(str(key), None, f"expected an unencrypted PEM private key (P-256): {exc}") from None
    if not isinstance(private, ec.EllipticCurvePrivateKey) or private.curve.name != "secp256r1":
        raise InputError(str(key), None, "expected a P-256 (secp256r1) elliptic-curve private key")
    return private


def _load_public_key(key: str | os.PathLike[str]) -> Any:
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec
    except ImportError as exc:  # pragma: no cover - the evidence extra brings it
        raise InputError(str(key), None, ERR_EXTRA.format(exc=exc)) from None

    try:
        data = Path(key).read_bytes()
    except OSError as exc:
        raise InputError(str(key), None, f"cannot read the key: {exc.strerror or exc}") from None
    try:
        public = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise InputError(str(key), None, f"expected a PEM public key (P-256): {exc}") from None
    if not isinstance(public, ec.EllipticCurvePublicKey) or public.curve.name != "secp256r1":
        raise InputError(str(key), None, "expected a P-256 (secp256r1) elliptic-curve public key")
    return public


def _fingerprint(public: Any) -> str:
    from cryptography.hazmat.primitives import serialization

    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "SHA256:" + hashlib.sha256(der).hexdigest()


def key_fingerprint(key: str | os.PathLike[str]) -> str:
    """SHA-256 of the public key's DER SubjectPublicKeyInfo, from a private or public PEM key."""
    text = Path(key).read_bytes() if Path(key).is_file() else b""
    if b"PRIVATE KEY" in text:
        return _fingerprint(_load_private_key(key).public_key())
    return _fingerprint(_load_public_key(key))


def sign_folder(
    folder: str | os.PathLike[str],
    key: str | os.PathLike[str],
    *,
    signer: str | None = None,
    signed_at: str | None = None,
) -> SignOff:
    """Sign every file of an audit folder into ``folder/evidence.sigstore.json``.

    The sign-off (signer, key fingerprint, time) is first written into ``manifest.json``, so the
    signature covers it too.

    Raises
    ------
    InputError
        No such folder, no manifest, or the key is not an unencrypted P-256 PEM private key.
    """
    import json

    root = Path(folder)
    manifest_path = root / MANIFEST_NAME
    if not manifest_path.is_file():
        raise InputError(str(root), None, f"expected an audit folder with {MANIFEST_NAME}")
    private = _load_private_key(key)
    try:
        from model_signing import hashing, signing
    except ImportError as exc:  # pragma: no cover - the extra is installed in CI
        raise InputError(str(key), None, ERR_EXTRA.format(exc=exc)) from None
    from governance._io import atomic_write_json
    from governance.evidence.manifest import folder_files, load_manifest

    load_manifest(manifest_path)  # refuse to sign a folder whose manifest we cannot read
    doc = json.loads(manifest_path.read_text(encoding="utf-8"))
    signoff = SignOff(
        signer=signer or _who(),
        key_fingerprint=_fingerprint(private.public_key()),
        signed_at=signed_at or datetime.now(UTC).isoformat(timespec="seconds"),
        files=len(folder_files(root)) + 1,  # the folder's files and the manifest
    )
    doc["signoff"] = signoff.to_dict()
    atomic_write_json(manifest_path, doc)
    config = signing.Config().set_hashing_config(
        hashing.Config().set_ignored_paths(paths=[SIGNATURE_NAME], ignore_git_paths=True)
    )
    config.use_elliptic_key_signer(private_key=Path(key)).sign(root, root / SIGNATURE_NAME)
    return signoff


def verify_signature(folder: str | os.PathLike[str], public_key: str | os.PathLike[str]) -> None:
    """Check ``folder/evidence.sigstore.json`` with ``public_key`` against every file of the folder.

    Raises
    ------
    SignatureError
        Absent, made with another key, or a file differs from what was signed (the message names it).
    InputError
        The public key cannot be read.
    """
    root = Path(folder)
    bundle = root / SIGNATURE_NAME
    if not bundle.is_file():
        raise SignatureError(f"{SIGNATURE_NAME} is absent")
    public = _load_public_key(public_key)
    # Read with cryptography alone (see governance.evidence.bundle for why, and its oracle test).
    from governance.evidence.bundle import BundleError, verify_bundle

    try:
        verify_bundle(root, bundle, public)
    except BundleError as exc:
        raise SignatureError(str(exc)) from None


def verify_with_model_signing(folder: str | os.PathLike[str], public_key: str | os.PathLike[str]) -> None:
    """The same check through ``model_signing.verifying`` (slow to import; the tests' oracle)."""
    root = Path(folder)
    from model_signing import verifying

    try:
        verifying.Config().use_elliptic_key_verifier(public_key=Path(public_key)).verify(
            root, root / SIGNATURE_NAME
        )
    except Exception as exc:  # the library raises ValueError and friends for every kind of mismatch
        raise SignatureError(_explain(str(exc)) or exc.__class__.__name__) from None


def _explain(message: str) -> str:
    """The library's mismatch message (digests as Python bytes reprs) as file names only."""
    import re

    changed = re.findall(r"Hash mismatch for '([^']+)'", message)
    missing = re.findall(r"Missing files in model '[^']*': ([^\]\"]+)", message)
    extra = re.findall(r"Extra files found in model '[^']*': ([^\]\"]+)", message)
    parts = [f"changed since signing: {', '.join(changed)}"] if changed else []
    parts += [f"missing since signing: {m.strip()}" for m in missing]
    parts += [f"added since signing: {m.strip()}" for m in extra]
    return "; ".join(parts) if parts else " ".join(message.split())


def sign_payload(payload: bytes, payload_type: str, key: str | os.PathLike[str]) -> dict[str, Any]:
    """A DSSE envelope (JSON) over ``payload``, signed with a P-256 PEM private key."""
    import base64

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    private = _load_private_key(key)
    signature = private.sign(_pae(payload_type, payload), ec.ECDSA(hashes.SHA256()))
    return {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [
            {"keyid": _fingerprint(private.public_key()), "sig": base64.b64encode(signature).decode("ascii")}
        ],
    }


def verify_payload(envelope: dict[str, Any], public_key: str | os.PathLike[str]) -> bytes:
    """The payload of a DSSE envelope made by :func:`sign_payload`; :class:`SignatureError` if forged."""
    import base64

    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    public = _load_public_key(public_key)
    try:
        payload = base64.b64decode(envelope["payload"], validate=True)
        sigs = [base64.b64decode(s["sig"], validate=True) for s in envelope["signatures"]]
        payload_type = str(envelope["payloadType"])
    except (KeyError, TypeError, ValueError) as exc:
        raise SignatureError(f"not a DSSE envelope: {exc}") from None
    for sig in sigs:
        try:
            public.verify(sig, _pae(payload_type, payload), ec.ECDSA(hashes.SHA256()))
            return payload
        except InvalidSignature:
            continue
    raise SignatureError("no signature in the envelope verifies with this key")


def _pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE pre-authentication encoding (https://github.com/secure-systems-lab/dsse)."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(t), t, len(payload), payload)


def _who() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"
