"""`check` fails closed: results that no longer match the manifest beside them are ERROR, exit 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from governance.cli import main
from governance.evidence.manifest import MANIFEST_NAME


def _edit_metric(results: Path, metric: str, value: float) -> None:
    doc = json.loads(results.read_text())
    doc["metrics"][metric] = value
    results.write_text(json.dumps(doc, indent=2))


def test_editing_one_metric_makes_check_exit_1_with_evidence_integrity(
    demo_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = demo_folder / "results.json"
    assert main(["check", str(results), "--policy", "baseline", "--format", "json"]) == 0
    before = json.loads(capsys.readouterr().out)
    assert before["outcomes"][0]["rule"] == "evidence.integrity" and before["outcomes"][0]["status"] == "PASS"
    # A better-looking ε, typed in by hand: every policy rule would pass, the gate does not.
    _edit_metric(results, "privacy.epsilon", 0.5)
    assert main(["check", str(results), "--policy", "baseline", "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    integrity = [o for o in report["outcomes"] if o["rule"] == "evidence.integrity"]
    assert len(integrity) == 1 and integrity[0]["status"] == "ERROR"
    assert "results.json changed" in integrity[0]["message"]
    assert not report["passed"]


def test_a_changed_report_or_model_file_beside_the_results_is_an_error_too(demo_folder: Path) -> None:
    (demo_folder / "model" / "model.safetensors").write_bytes(b"other weights")
    assert main(["check", str(demo_folder / "results.json"), "--policy", "baseline"]) == 1


def test_an_unreadable_manifest_or_unlisted_results_fail_closed(
    demo_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = demo_folder / "results.json"
    manifest = demo_folder / MANIFEST_NAME
    doc = json.loads(manifest.read_text())
    del doc["files"]["results.json"]
    manifest.write_text(json.dumps(doc))
    assert main(["check", str(results), "--policy", "baseline"]) == 1
    assert "results.json is not listed in manifest.json" in capsys.readouterr().out
    manifest.write_text("garbage")
    assert main(["check", str(results), "--policy", "baseline"]) == 1
    assert "the manifest cannot be checked" in capsys.readouterr().out


def test_without_a_manifest_check_gates_as_before(write_results) -> None:  # type: ignore[no-untyped-def]
    assert main(["check", str(write_results()), "--policy", "baseline"]) == 0


def test_a_report_written_into_the_folder_later_is_no_tampering(demo_folder: Path, tmp_path: Path) -> None:
    out = demo_folder / "check.txt"
    assert (
        main(["check", str(demo_folder / "results.json"), "--policy", "baseline", "--output", str(out)]) == 0
    )
    assert (
        main(["check", str(demo_folder / "results.json"), "--policy", "baseline", "--output", str(out)]) == 0
    )


def test_require_signature(
    demo_folder: Path,
    signed_folder: Path,
    keys: dict[str, Path],
    write_results,  # type: ignore[no-untyped-def]
    capsys: pytest.CaptureFixture[str],
) -> None:
    gate = ["--policy", "baseline", "--require-signature", str(keys["pub"])]
    assert main(["check", str(signed_folder / "results.json"), *gate]) == 0
    capsys.readouterr()
    for results, why in (
        (demo_folder / "results.json", "signature absent"),
        (write_results(), "no manifest.json"),
    ):
        assert main(["check", str(results), *gate]) == 1
        assert why in capsys.readouterr().out
    other = ["--policy", "baseline", "--require-signature", str(keys["other_pub"])]
    assert main(["check", str(signed_folder / "results.json"), *other]) == 1
    assert "key mismatch" in capsys.readouterr().out


def test_check_with_a_manifest_imports_no_torch(demo_folder: Path) -> None:
    code = (
        "import sys; from governance.cli import main; "
        f"rc = main(['check', {str(demo_folder / 'results.json')!r}, '--policy', 'baseline', '--output', '/dev/null']); "
        "print(rc, [m for m in ('torch', 'opacus', 'captum', 'transformers', 'model_signing', 'sigstore') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "0 []"


def test_a_first_format_manifest_still_gates_the_results(
    demo_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import hashlib

    results = demo_folder / "results.json"
    v1 = {
        "inputs": {},
        "outputs": {
            "results": {"path": str(results), "sha256": hashlib.sha256(results.read_bytes()).hexdigest()}
        },
    }
    (demo_folder / MANIFEST_NAME).write_text(json.dumps(v1))
    assert main(["check", str(results), "--policy", "baseline", "--format", "json"]) == 0
    assert "format 1: results only" in capsys.readouterr().out
    _edit_metric(results, "privacy.epsilon", 0.5)
    assert main(["check", str(results), "--policy", "baseline"]) == 1
    assert "(format 1): results.json changed" in capsys.readouterr().out


def test_sign_without_attestation_is_exit_2(
    demo_folder: Path, keys: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(["check", str(demo_folder / "results.json"), "--policy", "baseline", "--sign", str(keys["key"])])
        == 2
    )
    assert "--sign: signs the --attestation" in capsys.readouterr().err
