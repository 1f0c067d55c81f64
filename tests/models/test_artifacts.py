"""The model folder: load_model, load_handle, factories with weights, images, atomic writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from governance.data.loading import load_bundle
from governance.errors import InputError
from governance.models.artifacts import load_model, read_ledger, staged_dir
from governance.models.handle import handle_from_spec, load_handle
from governance.models.preprocessing import fit_preprocessor
from governance.spec import load_spec
from governance.train.api import train
from tests.data.helpers import spec_dict, tabular_frame, write_spec, write_split


def test_preprocessing_is_fitted_on_train_only() -> None:
    train = tabular_frame(100, seed=1)
    evaluation = tabular_frame(50, seed=2).assign(colour="purple")  # a category train never saw
    pre = fit_preprocessor(train, ["x1", "x2", "colour"], ["x1", "x2"])
    encoded = pre.transform(train)
    assert encoded[:, :2].mean(axis=0) == pytest.approx([0, 0], abs=1e-6)
    assert encoded[:, :2].std(axis=0) == pytest.approx([1, 1], abs=1e-5)
    assert pre.categories["colour"] == ("blue", "green", "red")
    assert pre.transform(evaluation)[:, 2:].sum() == 0  # unseen category: all zeros
    assert pre.feature_groups == {"x1": (0,), "x2": (1,), "colour": (2, 3, 4)}
    assert pre.onehot_columns == (2, 3, 4) and pre.numeric_columns == (0, 1)
    assert np.asarray(pre.encoded_mean) == pytest.approx(encoded.mean(axis=0), abs=1e-6)


def test_handle_and_load_model_agree(tmp_path: Path) -> None:
    write_split(tmp_path)
    spec = load_spec(write_spec(tmp_path, spec_dict()))
    outcome = train(spec, tmp_path / "model", progress=False)
    assert read_ledger(outcome.model_dir) == json.loads((outcome.model_dir / "training.json").read_text())
    handle = load_handle(outcome.model_dir)
    bundle = load_bundle(spec)
    proba = handle.predict_proba(bundle.eval)
    with torch.no_grad():
        direct = torch.softmax(load_model(outcome.model_dir)(handle.encode(bundle.eval)), dim=1).numpy()
    assert proba == pytest.approx(direct, abs=1e-6)
    assert handle.baseline(bundle.eval).shape == (len(bundle.eval), 5)
    assert set(handle.feature_groups) == {"x1", "x2", "colour"}
    # accuracy in the ledger is the handle's accuracy on eval
    accuracy = float((handle.predict(bundle.eval) == bundle.eval["target"].to_numpy()).mean())
    assert accuracy == pytest.approx(outcome.ledger["eval_accuracy"])


def test_factory_with_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from safetensors.torch import save_file

    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "factory_ok.py").write_text(
        "import torch\ndef build(n_inputs, n_classes, width=4):\n"
        "    return torch.nn.Sequential(torch.nn.Linear(n_inputs, width), torch.nn.ReLU(), torch.nn.Linear(width, n_classes))\n"
    )
    torch.manual_seed(0)
    reference = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    save_file(reference.state_dict(), str(tmp_path / "w.safetensors"))
    write_split(tmp_path)
    spec = spec_dict(
        model={"factory": "factory_ok:build", "weights": "w.safetensors", "options": {"width": 4}}
    )
    loaded = load_spec(write_spec(tmp_path, spec))
    bundle = load_bundle(loaded)
    handle = handle_from_spec(loaded, bundle, factory="factory_ok:build")  # trusted by the caller
    with torch.no_grad():
        expected = torch.softmax(reference(handle.encode(bundle.eval)), dim=1).numpy()
    assert handle.predict_proba(bundle.eval) == pytest.approx(expected, abs=1e-6)


@pytest.mark.slow
def test_cnn_on_digits_trains_privately(tmp_path: Path) -> None:
    spec = {
        "name": "digits",
        "task": "image_classification",
        "data": {"builtin": "sklearn:digits", "label": "label"},
        "model": {"architecture": "cnn"},
        "train": {
            "epochs": 2,
            "batch_size": 64,
            "lr": 0.5,
            "privacy": {"target_epsilon": 8.0, "delta": 1e-4},
        },
        "audits": {"data_quality": {"min_group_share": 0.0}},
    }
    outcome = train(load_spec(write_spec(tmp_path, spec)), tmp_path / "cnn", progress=False)
    privacy = outcome.ledger["privacy"]
    # auto: the fused step for Sequential conv nets (per-sample conv/GroupNorm gradients).
    assert privacy["grad_sample_mode"] == "fused" and privacy["epsilon"] <= 8.0
    assert outcome.ledger["eval_accuracy"] > 0.5  # ten classes: chance is 0.1
    handle = load_handle(outcome.model_dir)
    assert handle.kind == "image" and handle.classes == tuple(str(i) for i in range(10))


def test_staged_dir_leaves_nothing_on_failure(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), staged_dir(tmp_path / "out") as staging:
        (staging / "half.json").write_text("{")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_load_model_rejects_a_folder_without_config(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"config\.json"):
        load_model(tmp_path)
