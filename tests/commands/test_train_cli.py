"""``governance train`` through the CLI: success, and every bad input exits 2 with one line."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from governance.cli import main
from tests.data.helpers import spec_dict, tabular_frame, write_spec, write_split


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _leftovers(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(".out") or p.name == "out")


def test_train_writes_the_model_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_split(tmp_path)
    spec = spec_dict(train__privacy={"target_epsilon": 5.0, "delta": 1e-3})
    out = tmp_path / "out"
    assert main(["train", str(write_spec(tmp_path, spec)), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json",
        "model.safetensors",
        "preprocessing.json",
        "training.json",
    ]
    ledger = json.loads((out / "training.json").read_text())
    for key in ("seconds", "epochs", "steps", "batch_size", "rows", "history"):
        assert key in ledger
    assert ledger["rows"] == 140 and ledger["forced"] is False
    privacy = ledger["privacy"]
    for key in (
        "accountant",
        "noise_multiplier",
        "sample_rate",
        "steps",
        "max_grad_norm",
        "delta",
        "epsilon",
    ):
        assert privacy[key] is not None
    assert (
        privacy["epsilon"] <= 5.0
        and privacy["target_epsilon"] == 5.0
        and privacy["grad_sample_mode"] == "fused"  # auto on the built-in Linear/ReLU MLP
    )
    assert ledger["history"][0]["eval_accuracy"] is not None
    assert "ε =" in capsys.readouterr().err
    assert _leftovers(tmp_path) == ["out"]  # no staging or checkpoint folders left beside it

    import governance
    from governance.models.handle import load_handle

    model = governance.load_model(out)
    handle = load_handle(out)
    frame = tabular_frame(10, seed=5)
    proba = handle.predict_proba(frame)
    assert proba.shape == (10, 2) and proba.sum(axis=1) == pytest.approx(1.0)
    import torch

    with torch.no_grad():
        direct = torch.softmax(model(handle.encode(frame)), dim=1).numpy()
    assert direct == pytest.approx(proba, abs=1e-6)
    assert handle.classes == ("no", "yes")


def _csv(text: str) -> Callable[[Path], None]:
    def write(directory: Path) -> None:
        (directory / "train.csv").write_text(text)

    return write


def _factory_module(directory: Path, body: str, name: str) -> None:
    # a module name per case: Python caches imported modules for the whole test session
    (directory / f"{name}.py").write_text(body)


BAD: dict[str, tuple[Callable[[Path], None] | None, dict[str, Any], str]] = {
    # name: (how to break the data, spec overrides, text the one line must contain)
    "missing label column": (None, {"data__label": "nope"}, "nope"),
    "unknown feature column": (None, {"data__features": ["x1", "ghost"]}, "ghost"),
    "label with one class": (
        lambda d: (lambda f: f.assign(target="yes").to_csv(d / "train.csv", index=False))(tabular_frame(140)),
        {},
        "single class",
    ),
    "label with NaN": (
        lambda d: (
            lambda f: f.assign(target=f["target"].where(f.index != 3)).to_csv(d / "train.csv", index=False)
        )(tabular_frame(140)),
        {},
        "missing value",
    ),
    "sensitive is the label": (None, {"data__sensitive": ["target"]}, "data"),
    "empty file": (_csv(""), {}, "no data rows"),
    "header only": (_csv("x1,x2,colour,sex,age_group,target\n"), {}, "no data rows"),
    "ragged csv": (_csv("x1,x2,colour,sex,age_group,target\n1,2,red,male,old,yes\n1,2,red\n"), {}, "line 3"),
    "non-numeric declared numeric": (
        lambda d: (
            lambda f: f.assign(x1=f["x1"].astype(object).where(f.index != 5, "twelve")).to_csv(
                d / "train.csv", index=False
            )
        )(tabular_frame(140)),
        {"data__numeric": ["x1", "x2"]},
        "x1",
    ),
    "epsilon zero": (None, {"train__privacy": {"target_epsilon": 0}}, "target_epsilon"),
    "delta too large": (None, {"train__privacy": {"target_epsilon": 1.0, "delta": 0.01}}, "delta"),
    "factory not a module": (
        lambda d: _factory_module(
            d, "def build(n_inputs, n_classes):\n    return 'not a module'\n", "factory_str"
        ),
        {"model": {"factory": "factory_str:build"}},
        "expected a torch.nn.Module",
    ),
    "weights do not fit": (
        lambda d: (
            _factory_module(
                d,
                "import torch\nfrom safetensors.torch import save_file\n"
                "def build(n_inputs, n_classes):\n    return torch.nn.Linear(n_inputs, n_classes)\n",
                "factory_linear",
            )
            or __import__("safetensors.torch").torch.save_file(
                {"weight": __import__("torch").zeros(3, 3), "bias": __import__("torch").zeros(3)},
                str(d / "w.safetensors"),
            )
        ),
        {"model": {"factory": "factory_linear:build", "weights": "w.safetensors"}},
        "do not fit",
    ),
    "unknown audit": (None, {"audits": {"nonsense": {}}}, "audits.nonsense"),
    "missing train section": (None, {"train": None}, "train"),
    "blocking data-quality finding": (
        lambda d: (
            lambda f: (
                f.iloc[:100].to_csv(d / "train.csv", index=False),
                f.iloc[:60].to_csv(d / "eval.csv", index=False),
            )
        )(tabular_frame(140)),
        {},
        "--force",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_exits_2_with_one_line(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    breaker, overrides, expected = BAD[case]
    monkeypatch.syspath_prepend(str(tmp_path))
    write_split(tmp_path)
    if breaker is not None:
        breaker(tmp_path)
    spec = spec_dict(**{k: v for k, v in overrides.items() if k != "train"})
    if "train" in overrides:
        del spec["train"]
    spec_path = write_spec(tmp_path, spec)
    out = tmp_path / "out"
    # --trust-code: the factory cases test what happens once the user has allowed the code to run
    assert main(["train", str(spec_path), "--out", str(out), "--trust-code"]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("governance train: error: ")
    assert expected in lines[0]
    assert "Traceback" not in err and "unexpected" not in lines[0]
    named = ("spec.yaml", "train.csv", "eval.csv", "w.safetensors")
    assert any(name in lines[0] for name in named), lines[0]
    assert not out.exists() and _leftovers(tmp_path) == []


def test_force_trains_despite_blocking_finding_and_is_recorded(tmp_path: Path) -> None:
    frame = tabular_frame(140)
    frame.iloc[:100].to_csv(tmp_path / "train.csv", index=False)
    frame.iloc[:60].to_csv(tmp_path / "eval.csv", index=False)  # every eval row leaks from train
    out = tmp_path / "out"
    assert main(["train", str(write_spec(tmp_path, spec_dict())), "--out", str(out), "--force"]) == 0
    ledger = json.loads((out / "training.json").read_text())
    assert ledger["forced"] is True
    assert any(f["severity"] == "blocking" for f in ledger["data_quality_findings"])


def test_resume_flag_continues_a_checkpoint(tmp_path: Path) -> None:
    write_split(tmp_path)
    privacy = {"target_epsilon": 5.0, "delta": 1e-3, "reproducible_noise": True}  # the same ledger twice
    spec_path = write_spec(tmp_path, spec_dict(train__privacy=privacy))
    out = tmp_path / "out"
    assert main(["train", str(spec_path), "--out", str(out)]) == 0
    first = json.loads((out / "training.json").read_text())
    # no checkpoint left after success: --resume simply trains again, to the same ledger
    assert main(["train", str(spec_path), "--out", str(out), "--resume"]) == 0
    second = json.loads((out / "training.json").read_text())
    assert second["privacy"]["epsilon"] == first["privacy"]["epsilon"]
    assert second["history"] == first["history"]
