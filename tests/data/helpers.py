"""Tiny tabular data and spec files for the data and train tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml


def tabular_frame(n: int = 200, seed: int = 0) -> pd.DataFrame:
    """A learnable binary task with a numeric and a categorical feature and two sensitive attributes."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(size=n)
    x2 = rng.normal(size=n)
    colour = rng.choice(["red", "green", "blue"], size=n)
    sex = rng.choice(["female", "male"], size=n)
    age = rng.choice(["young", "old"], size=n, p=[0.3, 0.7])
    logit = 2.0 * x1 - 1.0 * x2 + (colour == "red") * 1.0
    label = np.where(logit + rng.normal(scale=0.5, size=n) > 0, "yes", "no")
    return pd.DataFrame({"x1": x1, "x2": x2, "colour": colour, "sex": sex, "age_group": age, "target": label})


def write_split(directory: Path, n: int = 200, seed: int = 0, suffix: str = ".csv") -> tuple[Path, Path]:
    frame = tabular_frame(n, seed)
    cut = int(0.7 * n)
    train, evaluation = frame.iloc[:cut], frame.iloc[cut:]
    paths = directory / f"train{suffix}", directory / f"eval{suffix}"
    for part, path in zip((train, evaluation), paths):
        if suffix == ".csv":
            part.to_csv(path, index=False)
        elif suffix == ".parquet":
            part.to_parquet(path, index=False)
        else:
            part.to_json(path, orient="records", lines=True)
    return paths


def spec_dict(train: str = "train.csv", eval_: str = "eval.csv", **overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "tiny",
        "task": "binary_classification",
        "seed": 0,
        "data": {"train": train, "eval": eval_, "label": "target", "sensitive": ["sex", "age_group"]},
        "model": {"architecture": "mlp", "options": {"hidden": [8]}},
        "train": {"epochs": 2, "batch_size": 32, "lr": 0.1},
        "audits": {"data_quality": {}},
    }
    for key, value in overrides.items():
        section, _, field = key.partition("__")
        if field:
            if value is None:
                spec[section].pop(field, None)
            else:
                spec[section][field] = value
        else:
            spec[section] = value
    return spec


def write_spec(directory: Path, spec: dict[str, Any], name: str = "spec.yaml") -> Path:
    path = directory / name
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path
