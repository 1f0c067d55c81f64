"""Bad model folders, train outputs, resumes and locks: exit code, one line naming the file and
field, and nothing already written changed (issue 12, part A).

Every case runs the real command line in-process. The outputs that exist before a case (a model
folder, an audit folder) are hashed before and after it; a case passes only if they are
byte-identical and no staging, checkpoint or lock file is left beside them.
"""

from __future__ import annotations

import errno
import hashlib
import json
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from governance.cli import main
from tests.data.helpers import spec_dict, tabular_frame, write_spec, write_split


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def tree_digest(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` (and of the names beside it), to prove nothing changed."""
    out: dict[str, str] = {}
    if not root.exists():
        return out
    for path in sorted(root.rglob("*")):
        if path.is_file():
            out[path.relative_to(root).as_posix()] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def beside(root: Path) -> list[str]:
    """Hidden entries next to ``root``: staging, checkpoint, replaced or lock leftovers."""
    return sorted(p.name for p in root.parent.iterdir() if p.name.startswith(f".{root.name}."))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with data, spec.yaml, a model folder ``model`` and an audit folder ``audit``."""
    import torch

    torch.set_num_threads(1)
    work = tmp_path_factory.mktemp("work")
    write_split(work)
    spec = write_spec(work, spec_dict())
    assert main(["train", str(spec), "--out", str(work / "model"), "--no-progress"]) == 0
    code = main(
        ["audit", str(spec), "--model", str(work / "model"), "--out", str(work / "audit"), "--no-progress"]
    )
    assert code == 0
    return work


@pytest.fixture
def work(trained: Path, tmp_path: Path) -> Path:
    """A private copy of the workspace (cases may tamper with it)."""
    shutil.copytree(trained, tmp_path / "w")
    return tmp_path / "w"


def one_line(capsys: pytest.CaptureFixture[str], *must: str) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "unexpected" not in lines[0], lines[0]
    for text in must:
        assert text in lines[0], (text, lines[0])
    return lines[0]


def rewrite_config(model: Path, **changes: Any) -> None:
    """Change config.json as an attacker would, ledger hashes included (so only our checks stop it)."""
    config_path = model / "config.json"
    config = json.loads(config_path.read_text())
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    config_path.write_text(json.dumps(config))
    reseal(model)


def reseal(model: Path) -> None:
    ledger_path = model / "training.json"
    ledger = json.loads(ledger_path.read_text())
    files = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in model.iterdir()
        if p.name != "training.json"
    }
    ledger["files"] = files
    ledger["weights_sha256"] = files.get("model.safetensors")
    ledger_path.write_text(json.dumps(ledger))


def marker_module(directory: Path, name: str) -> Path:
    """A module whose import (let alone a call) writes a marker file."""
    marker = directory / f"{name}.ran"
    (directory / f"{name}.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('imported')\n"
        "def build(**kw):\n    import torch\n    return torch.nn.Linear(1, 2)\n"
    )
    return marker


def audit_model(work: Path, model: Path, capsys: pytest.CaptureFixture[str], *must: str) -> str:
    """``audit --model`` into the existing audit folder: exit 2, one line, nothing changed."""
    before = tree_digest(work / "audit"), tree_digest(model)
    code = main(
        [
            "audit",
            str(work / "spec.yaml"),
            "--model",
            str(model),
            "--out",
            str(work / "audit"),
            "--no-progress",
        ]
    )
    assert code == 2
    line = one_line(capsys, *must)
    assert (tree_digest(work / "audit"), tree_digest(model)) == before
    assert beside(work / "audit") == []
    return line


# -- 1. model folders never name code that runs ---------------------------------------------------

MODEL_FOLDER_CASES: dict[str, tuple[Callable[[Path], None], tuple[str, ...]]] = {
    # name: (how to break the model folder, texts the one line must contain)
    "factory os:system": (
        lambda m: rewrite_config(m, factory="os:system", architecture=None),
        ("config.json", "factory", "--trust-code"),
    ),
    "factory subprocess:run": (
        lambda m: rewrite_config(m, factory="subprocess:run"),
        ("config.json", "factory"),
    ),
    "unknown architecture": (
        lambda m: rewrite_config(m, architecture="evil_arch"),
        ("config.json", "architecture", "evil_arch"),
    ),
    "architecture not a string": (
        lambda m: rewrite_config(m, architecture=["mlp"]),
        ("config.json", "architecture"),
    ),
    "neither architecture nor factory": (
        lambda m: rewrite_config(m, architecture=None, factory=None),
        ("config.json", "architecture"),
    ),
    "10^6 x 10^6 layer": (
        lambda m: rewrite_config(m, options={"hidden": [1_000_000, 1_000_000]}),
        ("config.json", "options.hidden", "budget"),
    ),
    "hidden width not an integer": (
        lambda m: rewrite_config(m, options={"hidden": ["wide"]}),
        ("config.json", "options.hidden"),
    ),
    "negative n_inputs": (lambda m: rewrite_config(m, n_inputs=-3), ("config.json", "n_inputs")),
    "classes not a list": (lambda m: rewrite_config(m, classes="yes"), ("config.json", "classes")),
    "options not a mapping": (lambda m: rewrite_config(m, options=[1, 2]), ("config.json", "options")),
    "config not JSON": (lambda m: (m / "config.json").write_text("{nope"), ("config.json", "not valid JSON")),
    "ledger missing": (lambda m: (m / "training.json").unlink(), ("training.json", "file not found")),
    "weights from another run (mixed folder)": (
        lambda m: (m / "model.safetensors").write_bytes(
            (m / "model.safetensors").read_bytes()[:-4] + b"\0\0\0\0"
        ),
        ("training.json", "files.model.safetensors", "do not belong together"),
    ),
    "config edited after training": (
        lambda m: (m / "config.json").write_text(
            (m / "config.json").read_text().replace('"positive"', '"positive" ')
        ),
        ("training.json", "files.config.json"),
    ),
    "ledger names a file outside the folder": (
        lambda m: (m / "training.json").write_text(
            json.dumps({**json.loads((m / "training.json").read_text()), "files": {"../spec.yaml": "0" * 64}})
        ),
        ("training.json", "files.../spec.yaml", "missing"),
    ),
    "ledger names an absolute path": (
        lambda m: (m / "training.json").write_text(
            json.dumps(
                {**json.loads((m / "training.json").read_text()), "files": {"/etc/hostname": "0" * 64}}
            )
        ),
        ("training.json", "files./etc/hostname", "missing"),
    ),
    "pickle bytes as weights": (
        lambda m: ((m / "model.safetensors").write_bytes(b"\x80\x04\x95 pickle"), reseal(m)),
        ("model.safetensors", "not a readable safetensors file"),
    ),
}


@pytest.mark.parametrize("case", sorted(MODEL_FOLDER_CASES))
def test_bad_model_folder_exits_2_before_any_use(
    case: str, work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    breaker, must = MODEL_FOLDER_CASES[case]
    breaker(work / "model")
    audit_model(work, work / "model", capsys, *must)


def test_a_factory_named_by_a_model_folder_is_never_imported(
    work: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import governance
    from governance.errors import InputError

    monkeypatch.syspath_prepend(str(work))
    marker = marker_module(work, "gov_marker_folder")
    rewrite_config(work / "model", factory="gov_marker_folder:build", architecture=None)
    audit_model(work, work / "model", capsys, "config.json", "factory")
    with pytest.raises(InputError, match="factory"):
        governance.load_model(work / "model")
    from governance.models.handle import load_handle

    with pytest.raises(InputError, match="factory"):
        load_handle(work / "model")
    assert not marker.exists() and "gov_marker_folder" not in sys.modules
    # Even a caller who trusts *a* factory does not run a different one the folder names.
    with pytest.raises(InputError, match="spec trusted"):
        governance.load_model(work / "model", factory="other_module:build")
    assert not marker.exists()


def test_a_spec_factory_needs_trust_code(
    work: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(work))
    marker = marker_module(work, "gov_marker_spec")
    spec = write_spec(work, spec_dict(model={"factory": "gov_marker_spec:build"}), "factory.yaml")
    before = tree_digest(work)
    assert main(["train", str(spec), "--out", str(work / "model")]) == 2
    one_line(capsys, "factory.yaml", "model.factory", "--trust-code")
    assert main(["audit", str(spec), "--out", str(work / "audit")]) == 2
    one_line(capsys, "factory.yaml", "model.factory", "--trust-code")
    assert not marker.exists() and tree_digest(work) == before


def test_trust_code_runs_the_spec_factory_and_records_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "gov_linear_ok.py").write_text(
        "import torch\ndef build(n_inputs, n_classes):\n    return torch.nn.Linear(n_inputs, n_classes)\n"
    )
    write_split(tmp_path)
    spec = write_spec(tmp_path, spec_dict(model={"factory": "gov_linear_ok:build"}))
    assert main(["audit", str(spec), "--out", str(tmp_path / "audit"), "--trust-code", "--no-progress"]) == 0
    results = json.loads((tmp_path / "audit" / "results.json").read_text())
    manifest = json.loads((tmp_path / "audit" / "manifest.json").read_text())
    assert results["run"]["trusted_code"] == "gov_linear_ok:build"
    assert manifest["trusted_code"] == "gov_linear_ok:build"
    assert (
        json.loads((tmp_path / "audit" / "model" / "training.json").read_text())["trusted_code"]
        == "gov_linear_ok:build"
    )
    capsys.readouterr()
    # The folder it trained names the factory: loading it again needs the spec and --trust-code.
    code = main(
        ["audit", str(spec), "--model", str(tmp_path / "audit" / "model"), "--out", str(tmp_path / "a2")]
    )
    assert code == 2
    one_line(capsys, "model.factory", "--trust-code")


def test_text_folder_base_package_is_never_imported(
    work: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    pkg = work / "gov_marker_pkg"
    pkg.mkdir()
    marker = work / "pkg.ran"
    (pkg / "__init__.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\n")
    (pkg / "sub").mkdir()
    monkeypatch.syspath_prepend(str(work))
    rewrite_config(
        work / "model",
        kind="text",
        architecture="hf",
        text="colour",
        pad_id=0,
        trained_parameters=["head.weight"],
        base={"path": "package:gov_marker_pkg.sub"},
    )
    audit_model(work, work / "model", capsys, "config.json", "base.path")
    assert not marker.exists() and "gov_marker_pkg" not in sys.modules


def test_hf_base_with_only_pickle_weights_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text(json.dumps({"model_type": "bert"}))
    (base / "pytorch_model.bin").write_bytes(b"\x80\x04 not loaded")
    (base / "vocab.txt").write_text("[PAD]\n[UNK]\n")
    frame = tabular_frame(60).assign(text=lambda f: f["colour"] + " thing")
    frame.to_csv(tmp_path / "train.csv", index=False)
    frame.to_csv(tmp_path / "eval.csv", index=False)
    spec = spec_dict(task="text_classification", model={"architecture": "hf", "path": "base"})
    spec["data"]["text"] = "text"
    code = main(["train", str(write_spec(tmp_path, spec)), "--out", str(tmp_path / "out")])
    assert code == 2
    one_line(capsys, "base", "pickle", "pytorch_model.bin", "safetensors")
    assert not (tmp_path / "out").exists() and beside(tmp_path / "out") == []


# -- 2. train outputs: checked before any data is read --------------------------------------------


def _file(work: Path) -> Path:
    (work / "afile").write_text("keep me")
    return work / "afile"


def _under_file(work: Path) -> Path:
    return _file(work) / "model"


def _dangling(work: Path) -> Path:
    (work / "link").symlink_to(work / "nowhere")
    return work / "link"


def _foreign(work: Path) -> Path:
    (work / "mine").mkdir()
    (work / "mine" / "notes.txt").write_text("not governance output")
    return work / "mine"


OUT_CASES: dict[str, tuple[Callable[[Path], Path], tuple[str, ...]]] = {
    "out is a file": (_file, ("--out", "afile", "is a file")),
    "out under a file": (_under_file, ("--out", "afile/model", "a parent is a file")),
    "out a dangling symlink": (_dangling, ("--out", "link", "dangling")),
    "out someone else's folder": (_foreign, ("--out", "mine", "not a governance output folder")),
}


@pytest.mark.parametrize("case", sorted(OUT_CASES))
def test_bad_train_out_exits_2_before_loading_data(
    case: str, work: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    make, must = OUT_CASES[case]
    out = make(work)
    before = tree_digest(work)

    def no_data(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("data was loaded before --out was checked")

    monkeypatch.setattr("governance.data.loading.load_bundle", no_data)
    assert main(["train", str(work / "spec.yaml"), "--out", str(out)]) == 2
    one_line(capsys, *must)
    assert tree_digest(work) == before
    assert not any(".checkpoint" in p.name or ".staging-" in p.name for p in work.iterdir())


SPEC_CASES: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "lr .inf": ({"train__lr": float("inf")}, ("spec.yaml", "train.lr", "finite")),
    "lr .nan": ({"train__lr": float("nan")}, ("spec.yaml", "train.lr", "finite")),
    "momentum .nan": ({"train__momentum": float("nan")}, ("spec.yaml", "train.momentum")),
    "absurd epochs": ({"train__epochs": 10**9}, ("spec.yaml", "train.epochs")),
    "target_epsilon .inf": (
        {"train__privacy": {"target_epsilon": float("inf")}},
        ("spec.yaml", "train.privacy.target_epsilon"),
    ),
    "max_grad_norm .inf": (
        {"train__privacy": {"target_epsilon": 1.0, "max_grad_norm": float("inf")}},
        ("spec.yaml", "train.privacy.max_grad_norm"),
    ),
    "10^6 x 10^6 layer in the spec": (
        {"model": {"architecture": "mlp", "options": {"hidden": [1_000_000, 1_000_000]}}},
        ("spec.yaml", "model.options.hidden", "budget"),
    ),
    "cnn channels not two integers": (
        {"model": {"architecture": "cnn", "options": {"channels": [8]}}},
        ("spec.yaml", "model.options"),
    ),
}


@pytest.mark.parametrize("case", sorted(SPEC_CASES))
def test_absurd_spec_numbers_exit_2_naming_the_field(
    case: str, work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    overrides, must = SPEC_CASES[case]
    spec = write_spec(work, spec_dict(**overrides))
    before = tree_digest(work / "model")
    assert main(["train", str(spec), "--out", str(work / "model")]) == 2
    one_line(capsys, *must)
    assert tree_digest(work / "model") == before and beside(work / "model") == []


# -- 3. locks ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["train", "audit"])
def test_a_second_run_on_a_locked_out_exits_2_naming_the_holder(
    command: str, work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os
    import socket

    from governance._output_folder import OutputLock

    target = work / ("model" if command == "train" else "audit")
    before = tree_digest(target)
    with OutputLock(target):
        argv = [command, str(work / "spec.yaml"), "--out", str(target)]
        if command == "audit":
            argv += ["--model", str(work / "model")]
        assert main(argv) == 2
        one_line(capsys, "--out", str(target), f"pid {os.getpid()}", socket.gethostname(), "started")
    assert tree_digest(target) == before and beside(target) == []


# -- 4. resume --------------------------------------------------------------------------------------


def _interrupted_run(work: Path, monkeypatch: pytest.MonkeyPatch, spec: Path) -> None:
    """Train, then fail while writing the folder: the checkpoint stays, the folder does not change."""
    import governance.train.api as api

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(api, "_write_model_dir", crash)
        assert main(["train", str(spec), "--out", str(work / "model")]) == 130
    assert (work / ".model.checkpoint").is_dir()


def test_resume_refuses_another_file_with_the_same_rows(
    work: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = tree_digest(work / "model")
    _interrupted_run(work, monkeypatch, work / "spec.yaml")
    frame = tabular_frame(200, seed=7)  # same columns, same 140 train rows, other values
    frame.iloc[:140].to_csv(work / "train.csv", index=False)
    capsys.readouterr()
    assert main(["train", str(work / "spec.yaml"), "--out", str(work / "model"), "--resume"]) == 2
    one_line(capsys, ".model.checkpoint", "data_digest")
    assert tree_digest(work / "model") == before


def test_resume_refuses_another_momentum_and_the_ledger_records_it(
    work: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = tree_digest(work / "model")
    _interrupted_run(work, monkeypatch, work / "spec.yaml")
    other = write_spec(work, spec_dict(train__momentum=0.9), "momentum.yaml")
    capsys.readouterr()
    assert main(["train", str(other), "--out", str(work / "model"), "--resume"]) == 2
    one_line(capsys, ".model.checkpoint", "momentum", "0.9")
    assert tree_digest(work / "model") == before
    # The same spec resumes, and the ledger records every setting the fingerprint checks.
    assert main(["train", str(work / "spec.yaml"), "--out", str(work / "model"), "--resume"]) == 0
    ledger = json.loads((work / "model" / "training.json").read_text())
    assert ledger["resumed"] is True
    for key in (
        "lr",
        "momentum",
        "optimizer",
        "batch_size",
        "max_physical_batch_size",
        "seed",
        "data_digest",
    ):
        assert key in ledger, key
    assert len(ledger["data_digest"]) == 64


# -- 5. disk full -----------------------------------------------------------------------------------


def test_disk_full_while_training_exits_1_and_leaves_the_old_folder(
    work: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import safetensors.torch

    before = tree_digest(work / "model")

    def full(*args: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "model.safetensors")

    monkeypatch.setattr(safetensors.torch, "save_file", full)
    assert main(["train", str(work / "spec.yaml"), "--out", str(work / "model")]) == 1
    one_line(capsys, "no space left", "model.safetensors")
    assert tree_digest(work / "model") == before
    assert [p for p in beside(work / "model") if ".staging-" in p] == []


def test_disk_full_while_auditing_exits_1_and_leaves_the_old_folder(
    work: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import governance._io as io

    before = tree_digest(work / "audit")
    real = io.atomic_write_json

    def full(path: Any, obj: Any) -> None:
        if Path(path).name == "manifest.json":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, obj)

    monkeypatch.setattr(io, "atomic_write_json", full)
    argv = [
        "audit",
        str(work / "spec.yaml"),
        "--model",
        str(work / "model"),
        "--out",
        str(work / "audit"),
        "--no-progress",
    ]
    assert main(argv) == 1
    one_line(capsys, "no space left", "manifest.json")
    assert tree_digest(work / "audit") == before and beside(work / "audit") == []


# -- 6. whole-folder replacement and recovery -------------------------------------------------------


def test_a_run_killed_between_renames_is_repaired_by_the_next(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a kill leaves (an orphan staging folder; the old folder set aside) the next run cleans."""
    model = work / "model"
    before = tree_digest(model)
    (work / ".model.staging-dead").mkdir()
    (work / ".model.staging-dead" / "model.safetensors").write_bytes(b"half")
    model.rename(work / ".model.replaced")  # killed after setting the old folder aside
    # audit --model refuses the gap rather than reading anything half-there
    audit_model(work, model, capsys, "config.json", "file not found")
    # the next run on the folder puts the old one back first, then replaces it whole
    from governance._output_folder import OutputLock, recover

    with OutputLock(model):
        recover(model)
    assert tree_digest(model) == before and beside(model) == []


def test_replacing_a_folder_keeps_what_governance_did_not_write(work: Path) -> None:
    (work / "model" / "README.txt").write_text("vendor notes")
    old = json.loads((work / "model" / "training.json").read_text())
    assert (
        main(["train", str(write_spec(work, spec_dict(seed=3), "s3.yaml")), "--out", str(work / "model")])
        == 0
    )
    new = json.loads((work / "model" / "training.json").read_text())
    assert new["seed"] == 3 != old["seed"]
    assert (work / "model" / "README.txt").read_text() == "vendor notes"
    assert beside(work / "model") == []
    # the audit folder around a model folder it audits is replaced without losing that model
    inner = work / "audit" / "model"
    shutil.copytree(work / "model", inner)
    spec = work / "spec.yaml"
    assert (
        main(["audit", str(spec), "--model", str(inner), "--out", str(work / "audit"), "--no-progress"]) == 0
    )
    assert tree_digest(inner) == tree_digest(work / "model")
    manifest = json.loads((work / "audit" / "manifest.json").read_text())
    assert all(not Path(e["path"]).name.startswith(".audit.staging") for e in manifest["outputs"].values())
    assert ".staging-" not in json.dumps(manifest)


def test_model_path_that_is_a_file_is_one_line(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (work / "afile").write_text("not a folder")
    audit_model(work, work / "afile", capsys, "afile", "cannot read the model folder")


def test_resume_from_a_corrupt_checkpoint_is_one_line(
    work: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    before = tree_digest(work / "model")
    _interrupted_run(work, monkeypatch, work / "spec.yaml")
    (work / ".model.checkpoint" / "state.json").write_text("{half")
    capsys.readouterr()
    assert main(["train", str(work / "spec.yaml"), "--out", str(work / "model"), "--resume"]) == 2
    one_line(capsys, ".model.checkpoint", "unreadable checkpoint", "without --resume")
    assert tree_digest(work / "model") == before


def test_audit_out_that_is_a_file_is_checked_before_any_work(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (work / "afile").write_text("keep me")
    before = tree_digest(work)
    argv = ["audit", str(work / "spec.yaml"), "--model", str(work / "model"), "--out", str(work / "afile")]
    assert main(argv) == 2
    one_line(capsys, "--out", "afile")
    assert tree_digest(work) == before
