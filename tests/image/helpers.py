"""Digits specs and CSVs for the image tests, written into a tmp folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DIGITS_SPEC: dict[str, Any] = {
    "name": "digits-test",
    "task": "image_classification",
    "seed": 0,
    "data": {"builtin": "sklearn:digits", "label": "label", "sensitive": []},
    "model": {"architecture": "cnn", "options": {"input_shape": [1, 8, 8], "channels": [8, 16]}},
    "train": {
        "epochs": 2,
        "batch_size": 128,
        "lr": 0.5,
        "momentum": 0.9,
        # Seeded noise: the image tests hold numbers of one fixed model (the default is OS entropy).
        "privacy": {"target_epsilon": 8.0, "delta": 1e-5, "max_grad_norm": 1.0, "reproducible_noise": True},
    },
    "audits": {"performance": {}},
}


def write_spec(directory: Path, spec: dict[str, Any], name: str = "spec.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def write_digit_csvs(
    directory: Path, n_pixels: int = 64, *, bad_value: str | None = None
) -> tuple[Path, Path]:
    """The digits as train/eval CSVs of ``n_pixels`` pixel columns (the first ones) and a label."""
    import pandas as pd
    from sklearn.datasets import load_digits

    digits = load_digits()
    frame = pd.DataFrame(digits.data[:, :n_pixels], columns=[f"px{i}" for i in range(n_pixels)])
    frame["label"] = digits.target
    if bad_value is not None:
        frame["px5"] = frame["px5"].astype(object)
        frame.loc[7, "px5"] = bad_value
    train, evaluation = directory / "train.csv", directory / "eval.csv"
    frame.iloc[:1200].to_csv(train, index=False)
    frame.iloc[1200:].to_csv(evaluation, index=False)
    return train, evaluation


def file_spec(directory: Path, input_shape: list[int] | None) -> dict[str, Any]:
    """DIGITS_SPEC reading the CSVs of :func:`write_digit_csvs` instead of the built-in."""
    options: dict[str, Any] = {} if input_shape is None else {"input_shape": input_shape}
    return {
        **DIGITS_SPEC,
        "data": {"train": "train.csv", "eval": "eval.csv", "label": "label"},
        "model": {"architecture": "cnn", "options": options},
    }


def batchnorm_cnn(n_inputs: int, n_classes: int) -> Any:
    """A user factory's 8x8 CNN with BatchNorm, which DP training cannot use as it is."""
    from torch import nn

    return nn.Sequential(
        nn.Unflatten(1, (1, 8, 8)),
        nn.Conv2d(1, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(32, n_classes),
    )
