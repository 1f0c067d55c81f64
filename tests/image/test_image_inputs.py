"""Image inputs: pixel units, and images of a shape the model does not take are bad input (exit 2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from governance.cli import main
from governance.data.loading import load_bundle
from governance.models.preprocessing import preprocessor_for
from governance.spec import load_spec
from tests.image.helpers import DIGITS_SPEC, file_spec, write_digit_csvs, write_spec


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("governance audit: error: ") and "Traceback" not in err
    return err


def test_pixels_are_scaled_to_pixel_units(tmp_path: Path) -> None:
    bundle = load_bundle(load_spec(write_spec(tmp_path, DIGITS_SPEC)))
    pre = preprocessor_for(bundle)
    assert bundle.train is not None
    x = pre.transform(bundle.train)
    raw = bundle.train[list(bundle.features)].to_numpy()
    # One scale for every pixel (16, the brightest digits value), no centring: ε is in [0, 1] units.
    np.testing.assert_allclose(x, raw / 16.0, rtol=1e-6)
    assert x.min() == 0.0 and x.max() == 1.0
    assert pre.image_shape == (1, 8, 8)


def test_63_pixel_columns_for_an_8x8_model_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_digit_csvs(tmp_path, n_pixels=63)
    spec = write_spec(tmp_path, file_spec(tmp_path, [1, 8, 8]))
    assert main(["audit", str(spec), "--out", str(tmp_path / "out")]) == 2
    err = _one_line_error(capsys)
    assert "spec.yaml: model.options.input_shape:" in err
    assert "eval.csv has 63 feature columns" in err and "64 pixels" in err
    assert not (tmp_path / "out").exists()


def test_input_shape_inconsistent_with_the_builtin_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = dict(DIGITS_SPEC, model={"architecture": "cnn", "options": {"input_shape": [1, 4, 4]}})
    path = write_spec(tmp_path, spec)
    assert main(["audit", str(path), "--out", str(tmp_path / "out")]) == 2
    err = _one_line_error(capsys)
    assert "model.options.input_shape" in err and "16 pixels" in err and "64 feature columns" in err


@pytest.mark.parametrize("shape", [[8, 8], [1, 8, "8"], [0, 8, 8], "1x8x8"])
def test_malformed_input_shape_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], shape: object
) -> None:
    write_digit_csvs(tmp_path)
    spec = file_spec(tmp_path, None)
    spec["model"]["options"]["input_shape"] = shape
    assert main(["audit", str(write_spec(tmp_path, spec)), "--out", str(tmp_path / "out")]) == 2
    err = _one_line_error(capsys)
    assert "model.options.input_shape: expected [channels, height, width]" in err


def test_image_task_from_files_needs_an_input_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_digit_csvs(tmp_path)
    spec = write_spec(tmp_path, file_spec(tmp_path, None))
    assert main(["audit", str(spec), "--out", str(tmp_path / "out")]) == 2
    assert "model.options.input_shape: required for image_classification" in _one_line_error(capsys)


def test_non_numeric_pixel_is_exit_2_naming_file_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_digit_csvs(tmp_path, bad_value="dark")
    spec = write_spec(tmp_path, file_spec(tmp_path, [1, 8, 8]))
    assert main(["audit", str(spec), "--out", str(tmp_path / "out")]) == 2
    err = _one_line_error(capsys)
    assert "train.csv: px5:" in err and "'dark'" in err


def test_image_files_of_the_right_shape_load(tmp_path: Path) -> None:
    write_digit_csvs(tmp_path)
    bundle = load_bundle(load_spec(write_spec(tmp_path, file_spec(tmp_path, [1, 8, 8]))))
    assert bundle.image_shape == (1, 8, 8) and len(bundle.features) == 64


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message for machines without CUDA")
def test_device_cuda_without_cuda_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = write_spec(tmp_path, DIGITS_SPEC)
    assert main(["audit", str(spec), "--out", str(tmp_path / "out"), "--device", "cuda"]) == 2
    err = _one_line_error(capsys)
    assert "--device" in err and "CUDA is not available" in err
    assert not (tmp_path / "out").exists()


def test_batchnorm_factory_is_fixed_for_dp_and_the_fix_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from torch import nn

    from governance.models.artifacts import load_model, read_config, read_ledger

    spec = dict(DIGITS_SPEC, model={"factory": "tests.image.helpers:batchnorm_cnn"})
    spec["train"] = dict(DIGITS_SPEC["train"], epochs=1)
    path = write_spec(tmp_path, spec)
    assert main(["train", str(path), "--out", str(tmp_path / "model"), "--trust-code"]) == 0
    assert "Opacus fixed the model" in capsys.readouterr().err  # the console says so
    fixes = read_ledger(tmp_path / "model")["privacy"]["module_fixes"]
    assert any("BatchNorm" in f for f in fixes)
    assert read_config(tmp_path / "model")["module_fixes"] == fixes
    # rebuilt with the same fix, so the weights fit; the caller names the factory it trusts
    module = load_model(tmp_path / "model", factory="tests.image.helpers:batchnorm_cnn")
    assert any(isinstance(m, nn.GroupNorm) for m in module.modules())
    assert not any(isinstance(m, nn.BatchNorm2d) for m in module.modules())
