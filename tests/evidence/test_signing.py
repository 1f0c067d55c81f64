"""Signing with OpenSSF model-signing: our bundle, the library's own CLI, attestations, audit --sign."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.cli import main
from governance.evidence.manifest import MANIFEST_NAME, SIGNATURE_NAME, load_manifest
from governance.evidence.signing import (
    SignatureError,
    key_fingerprint,
    verify_payload,
    verify_signature,
    verify_with_model_signing,
)
from governance.evidence.verify import verify_folder
from tests.evidence.conftest import DEMO_FILES


def _model_signing_cli(folder: Path, pub: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "model_signing",
            "verify",
            "key",
            str(folder),
            "--signature",
            str(folder / SIGNATURE_NAME),
            "--public_key",
            str(pub),
        ],
        capture_output=True,
        text=True,
    )


def test_the_librarys_own_cli_accepts_our_bundle_and_rejects_tampering(
    signed_folder: Path, keys: dict[str, Path]
) -> None:
    ok = _model_signing_cli(signed_folder, keys["pub"])
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "Verification succeeded" in ok.stdout + ok.stderr
    assert _model_signing_cli(signed_folder, keys["other_pub"]).returncode != 0
    (signed_folder / "results.json").write_text("{}")
    assert _model_signing_cli(signed_folder, keys["pub"]).returncode != 0


def test_sign_covers_every_file_and_records_the_signoff_in_the_signed_manifest(
    signed_folder: Path, keys: dict[str, Path]
) -> None:
    bundle = json.loads((signed_folder / SIGNATURE_NAME).read_text())
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    signed = {r["name"] for r in statement["predicate"]["resources"]}
    assert signed == {*DEMO_FILES, MANIFEST_NAME}
    signoff = load_manifest(signed_folder / MANIFEST_NAME).signoff
    assert signoff is not None
    assert signoff["signer"] == "reviewer@example.org"
    assert signoff["key_fingerprint"] == key_fingerprint(keys["pub"]) == key_fingerprint(keys["key"])
    assert signoff["signed_at"].endswith("+00:00")
    # The fingerprint is the SHA-256 of the public key's DER encoding (what `openssl pkey -pubin
    # -outform DER | sha256sum` prints).
    from cryptography.hazmat.primitives import serialization

    der = serialization.load_pem_public_key(keys["pub"].read_bytes()).public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert signoff["key_fingerprint"] == "SHA256:" + hashlib.sha256(der).hexdigest()
    report = verify_folder(signed_folder, public_key=keys["pub"])
    assert report.ok and report.signature == "valid"


def test_verify_with_the_wrong_key_or_no_signature_is_exit_1(
    signed_folder: Path, demo_folder: Path, keys: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["verify", str(signed_folder), "--key", str(keys["pub"])]) == 0
    assert main(["verify", str(signed_folder), "--key", str(keys["other_pub"])]) == 1
    assert "signature: invalid: key mismatch" in capsys.readouterr().out
    assert main(["verify", str(demo_folder), "--key", str(keys["pub"])]) == 1
    assert "signature: absent" in capsys.readouterr().out
    # Without --key an unsigned folder verifies on its manifest alone.
    assert main(["verify", str(demo_folder)]) == 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    target=st.sampled_from(sorted([*DEMO_FILES, MANIFEST_NAME, SIGNATURE_NAME])),
    kind=st.sampled_from(["flip", "truncate", "delete", "add", "none"]),
    pos=st.integers(min_value=0, max_value=10**6),
)
def test_our_bundle_check_agrees_with_model_signing(
    signed_template: Path, tmp_path: Path, keys: dict[str, Path], target: str, kind: str, pos: int
) -> None:
    folder = tmp_path / "oracle"
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(signed_template, folder)
    path = folder / target
    data = path.read_bytes()
    if kind == "flip":
        i = pos % len(data)
        path.write_bytes(data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :])
    elif kind == "truncate":
        path.write_bytes(data[: pos % len(data)])
    elif kind == "delete":
        path.unlink()
    elif kind == "add":
        (path.parent / "added.bin").write_bytes(b"x")
    verdicts = []
    for check in (verify_signature, verify_with_model_signing):
        try:
            check(folder, keys["pub"])
            verdicts.append(True)
        except (SignatureError, Exception):
            verdicts.append(False)
    assert verdicts[0] == verdicts[1], (target, kind, pos, verdicts)
    assert verdicts[0] is (kind == "none")


def test_sign_refuses_a_folder_changed_since_the_audit(
    demo_folder: Path, keys: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    (demo_folder / "report.md").write_text("edited after the audit")
    assert main(["sign", str(demo_folder), "--key", str(keys["key"])]) == 1
    assert "changed: report.md" in capsys.readouterr().out
    assert not (demo_folder / SIGNATURE_NAME).exists()


def test_sign_with_a_bad_key_is_exit_2_one_line(
    demo_folder: Path, keys: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    p384 = tmp_path / "p384.pem"
    p384.write_bytes(
        ec.generate_private_key(ec.SECP384R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    for key, expected in (
        (p384, "P-256"),
        (keys["pub"], "private key"),
        (tmp_path / "nope.pem", "cannot read"),
    ):
        assert main(["sign", str(demo_folder), "--key", str(key)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and expected in err, err
    assert not (demo_folder / SIGNATURE_NAME).exists()


def test_check_attestation_is_an_in_toto_statement_signed_with_the_key(
    signed_folder: Path, keys: dict[str, Path], tmp_path: Path
) -> None:
    results = signed_folder / "results.json"
    att = tmp_path / "verdict.intoto.json"
    rc = main(
        ["check", str(results), "--policy", "baseline", "--attestation", str(att), "--sign", str(keys["key"])]
    )
    assert rc in (0, 1)
    envelope = json.loads(att.read_text())
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    statement = json.loads(verify_payload(envelope, keys["pub"]))
    with pytest.raises(SignatureError):
        verify_payload(envelope, keys["other_pub"])
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["subject"] == [
        {"name": "results.json", "digest": {"sha256": hashlib.sha256(results.read_bytes()).hexdigest()}}
    ]
    from governance.policy.loader import load_policy

    policy = load_policy("baseline")
    predicate = statement["predicate"]
    assert predicate["policy"]["digest"]["sha256"] == policy.sha256
    rules = {o["rule"] for o in predicate["outcomes"]}
    assert {r.id for r in policy.rules} <= rules and "evidence.integrity" in rules
    accuracy = next(o for o in predicate["outcomes"] if o["metric"] == "performance.accuracy")
    assert accuracy["value"] == pytest.approx(0.74)
    assert set(accuracy) >= {"status", "value", "threshold", "op", "refs"}
    # Without a key: the bare Statement.
    main(["check", str(results), "--policy", "baseline", "--attestation", str(att)])
    assert json.loads(att.read_text())["_type"] == "https://in-toto.io/Statement/v1"


def test_an_edited_field_name_anywhere_in_the_bundle_is_refused_like_model_signing(
    signed_template: Path, tmp_path: Path, keys: dict[str, Path]
) -> None:
    # Found by the oracle test above: renaming `tlogEntries` or a signature's `keyid` left the
    # signed payload intact, and model-signing refused the bundle while our check accepted it.
    raw = (signed_template / SIGNATURE_NAME).read_bytes()
    names = sorted(set(re.findall(rb'"([A-Za-z]+)"\s*:', raw)))
    assert {b"tlogEntries", b"keyid", b"hint"} <= set(names)
    for name in names:
        folder = tmp_path / name.decode()
        shutil.copytree(signed_template, folder)
        at = raw.index(b'"' + name + b'"') + 1
        (folder / SIGNATURE_NAME).write_bytes(raw[:at] + bytes([raw[at] ^ 0x01]) + raw[at + 1 :])
        with pytest.raises(SignatureError):
            verify_signature(folder, keys["pub"])
        with pytest.raises(SignatureError):
            verify_with_model_signing(folder, keys["pub"])
