"""manifest.json and `governance verify`: every change to any file of an audit folder is found."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.cli import main
from governance.evidence.manifest import (
    MANIFEST_NAME,
    SIGNATURE_NAME,
    folder_files,
    load_manifest,
)
from governance.evidence.signing import sign_folder
from governance.evidence.verify import verify_folder
from tests.evidence.conftest import DEMO_FILES, make_demo_folder

ALL_FILES = sorted([*DEMO_FILES, MANIFEST_NAME, SIGNATURE_NAME])


def test_manifest_lists_every_file_relative_to_the_folder(demo_folder: Path) -> None:
    manifest = load_manifest(demo_folder / MANIFEST_NAME)
    assert sorted(manifest.files) == sorted(DEMO_FILES)
    for rel, digest in manifest.files.items():
        import hashlib

        assert digest == hashlib.sha256((demo_folder / rel).read_bytes()).hexdigest()
    # Inputs outside the folder are stored relative to it; the model files inside are too.
    assert manifest.inputs["spec"]["path"] == "../spec.yaml"
    assert manifest.inputs["model/model.safetensors"]["path"] == "model/model.safetensors"
    raw = (demo_folder / MANIFEST_NAME).read_text()
    assert str(demo_folder) not in raw


def test_a_copied_folder_verifies_wherever_it_is(demo_folder: Path, tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere" / "deep" / "copy"
    shutil.copytree(demo_folder, copy)
    report = verify_folder(copy)
    assert report.ok and report.checked == len(DEMO_FILES)
    assert main(["verify", str(copy)]) == 0


def test_verify_names_each_changed_missing_and_added_file(
    demo_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (demo_folder / "report.md").write_text("edited")
    (demo_folder / "model" / "training.json").unlink()
    (demo_folder / "model" / "extra.bin").write_bytes(b"\x00")
    assert main(["verify", str(demo_folder)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out == ["changed: report.md", "missing: model/training.json", "added: model/extra.bin"]


def test_a_deleted_or_garbled_manifest_is_exit_1(
    demo_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (demo_folder / MANIFEST_NAME).write_text("{not json")
    assert main(["verify", str(demo_folder)]) == 1
    assert capsys.readouterr().out.startswith("changed: manifest.json (unreadable")
    (demo_folder / MANIFEST_NAME).unlink()
    assert main(["verify", str(demo_folder)]) == 1
    assert capsys.readouterr().out.strip() == "missing: manifest.json"


def test_verify_of_no_folder_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(tmp_path / "nope")]) == 2
    assert "expected an audit folder" in capsys.readouterr().err


def test_manifest_v1_is_refused_with_a_clear_line(
    demo_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (demo_folder / MANIFEST_NAME).write_text(json.dumps({"inputs": {}, "outputs": {}}))
    assert main(["verify", str(demo_folder)]) == 1
    assert "manifest_version: expected 2" in capsys.readouterr().out


# -- the property: every single-byte flip, truncation, addition or deletion is detected ---------------


def _mutations() -> st.SearchStrategy[tuple[str, str, int, int]]:
    return st.tuples(
        st.sampled_from(ALL_FILES),
        st.sampled_from(["flip", "truncate", "delete", "add"]),
        st.integers(min_value=0, max_value=10**9),  # position (taken modulo the size)
        st.integers(min_value=1, max_value=255),  # xor mask of a flip; size of an added file
    )


def _mutate(folder: Path, rel: str, kind: str, pos: int, arg: int) -> None:
    path = folder / rel
    data = path.read_bytes()
    if kind == "flip":
        i = pos % len(data)
        path.write_bytes(data[:i] + bytes([data[i] ^ arg]) + data[i + 1 :])
    elif kind == "truncate":
        path.write_bytes(data[: pos % len(data)])
    elif kind == "delete":
        path.unlink()
    else:  # a new file beside this one, named after it
        (path.parent / f"added-{pos % 1000}.{Path(rel).suffix.lstrip('.') or 'bin'}").write_bytes(bytes(arg))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=_mutations())
def test_every_byte_flip_truncation_addition_or_deletion_is_detected(
    signed_template: Path, tmp_path: Path, keys: dict[str, Path], mutation: tuple[str, str, int, int]
) -> None:
    folder = tmp_path / "work"
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(signed_template, folder)
    assert verify_folder(folder, public_key=keys["pub"]).ok
    _mutate(folder, *mutation)
    report = verify_folder(folder, public_key=keys["pub"])
    assert not report.ok, mutation
    assert report.lines(), mutation


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=_mutations().filter(lambda m: m[0] not in (MANIFEST_NAME, SIGNATURE_NAME)))
def test_without_a_signature_the_manifest_alone_finds_every_change_to_the_other_files(
    demo_folder: Path, tmp_path: Path, mutation: tuple[str, str, int, int]
) -> None:
    folder = tmp_path / "plain"
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(demo_folder, folder)
    _mutate(folder, *mutation)
    report = verify_folder(folder)
    rel = mutation[0]
    assert not report.ok
    if mutation[1] == "delete":
        assert report.missing == (rel,)
    elif mutation[1] == "add":
        assert len(report.added) == 1 and not report.changed
    else:
        assert report.changed == (rel,)


def test_verify_imports_no_torch(demo_folder: Path, keys: dict[str, Path]) -> None:
    sign_folder(demo_folder, keys["key"])
    code = (
        "import sys; from governance.cli import main; "
        f"rc = main(['verify', {str(demo_folder)!r}, '--key', {str(keys['pub'])!r}]); "
        "heavy = [m for m in ('torch', 'opacus', 'captum', 'transformers') if m in sys.modules]; "
        "print(rc, heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "0 []"


def test_folder_files_skips_only_the_manifest_and_signature(tmp_path: Path) -> None:
    folder = make_demo_folder(tmp_path / "a")
    (folder / ".hidden").write_text("x")
    (folder / SIGNATURE_NAME).write_text("{}")
    assert ".hidden" in folder_files(folder)
    assert MANIFEST_NAME not in folder_files(folder) and SIGNATURE_NAME not in folder_files(folder)


def test_the_evidence_package_imports_no_torch_train_or_audit() -> None:
    code = (
        "import sys, importlib, pkgutil, governance.evidence as e; "
        "[importlib.import_module(f'governance.evidence.{m.name}') for m in pkgutil.iter_modules(e.__path__)]; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'opacus', 'captum', 'transformers') "
        "or m.startswith(('governance.train', 'governance.audit'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
