"""Tiny seeded models and data for the attribution, robustness and privacy audit tests.

The handles implement the ModelHandle surface the audits use (governance/audit/base.py plus the
tabular extras: feature_groups, numeric_columns, onehot_columns, baseline), so these tests do
not depend on the trainer. Built once per process (lru_cache); each takes well under a second.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
import torch

from governance.audit.base import AuditContext, Predictions
from governance.data.bundle import DataBundle
from governance.spec import Spec

NUMERIC = ("age", "amount", "duration")
CATEGORICAL = ("purpose", "housing", "title")
FEATURES = NUMERIC + CATEGORICAL


def credit_frames(n_train: int = 400, n_eval: int = 200, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """German-Credit-like data: ``title`` is a proxy of ``sex``, ``age`` of ``age_group``."""
    rng = np.random.default_rng(seed)
    n = n_train + n_eval
    sex = rng.choice(["female", "male"], size=n, p=[0.4, 0.6])
    title = np.where(
        sex == "female", rng.choice(["ms", "mrs"], size=n), rng.choice(["mr", "mr", "dr"], size=n)
    )
    age = rng.normal(38, 11, size=n).clip(19, 75).round()
    amount = rng.lognormal(8, 0.6, size=n).round()
    duration = rng.integers(6, 60, size=n).astype(float)
    purpose = rng.choice(["car", "furniture", "education", "business"], size=n)
    housing = rng.choice(["own", "rent", "free"], size=n, p=[0.6, 0.3, 0.1])
    logit = (
        -0.9 * (amount - amount.mean()) / amount.std()
        - 0.7 * (duration - duration.mean()) / duration.std()
        + 0.8 * (housing == "own")
        + 0.3 * (age > 35)
        + rng.normal(0, 0.7, size=n)
    )
    risk = np.where(logit > 0, "good", "bad")
    frame = pd.DataFrame(
        {
            "age": age,
            "amount": amount,
            "duration": duration,
            "purpose": purpose,
            "housing": housing,
            "title": title,
            "sex": sex,
            "age_group": np.where(age > 35, "over_35", "35_or_under"),
            "risk": risk,
        }
    )
    return frame.iloc[:n_train].reset_index(drop=True), frame.iloc[n_train:].reset_index(drop=True)


@dataclass
class TabularHandle:
    """Standardise numerics, one-hot categories (numeric columns first), then an MLP."""

    module: torch.nn.Module
    mean: np.ndarray
    std: np.ndarray
    categories: dict[str, tuple[str, ...]]
    classes: tuple[str, ...] = ("bad", "good")
    kind: str = "tabular"
    device: str = "cpu"
    encoded_mean: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def feature_groups(self) -> dict[str, tuple[int, ...]]:
        groups = {name: (i,) for i, name in enumerate(NUMERIC)}
        start = len(NUMERIC)
        for name, cats in self.categories.items():
            groups[name] = tuple(range(start, start + len(cats)))
            start += len(cats)
        return groups

    @property
    def numeric_columns(self) -> tuple[int, ...]:
        return tuple(range(len(NUMERIC)))

    @property
    def onehot_columns(self) -> tuple[int, ...]:
        width = len(NUMERIC) + sum(len(c) for c in self.categories.values())
        return tuple(range(len(NUMERIC), width))

    def encode_np(self, frame: pd.DataFrame) -> np.ndarray:
        blocks = [(frame[list(NUMERIC)].to_numpy(float) - self.mean) / self.std]
        for name, cats in self.categories.items():
            blocks.append(
                (frame[name].astype(str).to_numpy()[:, None] == np.array(cats)[None, :]).astype(float)
            )
        return np.concatenate(blocks, axis=1).astype(np.float32)

    def encode(self, frame: pd.DataFrame) -> torch.Tensor:
        return torch.from_numpy(self.encode_np(frame))

    def baseline(self, frame: pd.DataFrame) -> torch.Tensor:
        return torch.from_numpy(self.encoded_mean.astype(np.float32)).view(1, -1)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(self.module(self.encode(frame)), dim=1).numpy()


def _fit(module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float) -> None:
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    for _ in range(steps):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(module(x), y).backward()
        opt.step()
    module.eval()


@lru_cache(maxsize=4)
def tabular_handle(hidden: int = 32, steps: int = 300, seed: int = 0) -> tuple[TabularHandle, DataBundle]:
    """A trained MLP on :func:`credit_frames`. Large ``hidden``/``steps`` overfit (for privacy tests)."""
    train, eval_ = credit_frames(seed=seed)
    torch.manual_seed(seed)
    cats = {c: tuple(sorted(train[c].astype(str).unique())) for c in CATEGORICAL}
    numeric = train[list(NUMERIC)].to_numpy(float)
    width = len(NUMERIC) + sum(len(c) for c in cats.values())
    module = torch.nn.Sequential(torch.nn.Linear(width, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2))
    handle = TabularHandle(module, numeric.mean(0), numeric.std(0), cats)
    x = handle.encode(train)
    handle.encoded_mean = x.numpy().mean(0)
    y = torch.from_numpy((train["risk"] == "good").to_numpy().astype(np.int64))
    _fit(module, x, y, steps, 0.01)
    bundle = DataBundle(
        task="binary_classification",
        label="risk",
        classes=("bad", "good"),
        features=FEATURES,
        sensitive=("sex", "age_group"),
        train=train,
        eval=eval_,
        proxies={"sex": ("title",)},
    )
    return handle, bundle


@dataclass
class ImageHandle:
    """8x8 one-channel images in columns p0..p63, values in [0, 1], and a tiny CNN."""

    module: torch.nn.Module
    classes: tuple[str, ...] = ("bottom", "top")
    kind: str = "image"
    device: str = "cpu"

    def encode(self, frame: pd.DataFrame) -> torch.Tensor:
        cols = [f"p{i}" for i in range(64)]
        return torch.tensor(frame[cols].to_numpy(np.float32).reshape(-1, 1, 8, 8))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(self.module(self.encode(frame)), dim=1).numpy()


@lru_cache(maxsize=1)
def image_handle(seed: int = 0) -> tuple[ImageHandle, DataBundle]:
    """Class "top" has a bright upper half, "bottom" a bright lower half, plus noise."""
    rng = np.random.default_rng(seed)
    n = 300
    label = rng.integers(0, 2, size=n)
    img = rng.uniform(0, 0.4, size=(n, 8, 8))
    for i in range(n):
        rows = slice(0, 4) if label[i] == 1 else slice(4, 8)
        img[i, rows] += 0.5
    frame = pd.DataFrame(img.clip(0, 1).reshape(n, 64), columns=[f"p{i}" for i in range(64)])
    frame["label"] = np.where(label == 1, "top", "bottom")
    frame["site"] = rng.choice(["a", "b"], size=n)
    torch.manual_seed(seed)
    module = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(256, 2)
    )
    handle = ImageHandle(module)
    train, eval_ = frame.iloc[:200].reset_index(drop=True), frame.iloc[200:].reset_index(drop=True)
    _fit(module, handle.encode(train), torch.from_numpy(label[:200]), 150, 0.01)
    bundle = DataBundle(
        task="image_classification",
        label="label",
        classes=("bottom", "top"),
        features=tuple(f"p{i}" for i in range(64)),
        sensitive=("site",),
        train=train,
        eval=eval_,
    )
    return handle, bundle


def _predictions(handle: Any, frame: pd.DataFrame, label: str) -> Predictions:
    proba = handle.predict_proba(frame)
    classes = np.asarray(handle.classes)
    return Predictions(
        y_true=frame[label].astype(str).to_numpy(),
        y_pred=classes[proba.argmax(1)],
        y_score=proba[:, 1],
        proba=proba,
    )


def make_context(
    handle: Any,
    bundle: DataBundle,
    options: dict[str, Any] | None = None,
    *,
    ledger: dict[str, Any] | None = None,
    seed: int = 0,
) -> AuditContext:
    spec = Spec.model_validate(
        {
            "name": "tiny",
            "task": bundle.task,
            "data": {"builtin": "tiny", "label": bundle.label, "sensitive": list(bundle.sensitive)},
            "model": {"architecture": "cnn" if handle.kind == "image" else "mlp"},
        }
    )
    return AuditContext(
        spec=spec,
        data=bundle,
        model=handle,
        eval_predictions=_predictions(handle, bundle.eval, bundle.label),
        train_predictions=None if bundle.train is None else _predictions(handle, bundle.train, bundle.label),
        ledger=ledger,
        seed=seed,
        options=options or {},
    )


def german_credit_context(tmp_dir: Any, audit: str, *, epochs: int = 2) -> AuditContext:
    """The shipped German Credit spec, trained (DP) for a few epochs by the real trainer."""
    from pathlib import Path

    from governance.data.loading import load_bundle
    from governance.models.handle import load_handle
    from governance.spec import load_spec
    from governance.train.api import train

    root = Path(__file__).resolve().parents[2]
    spec = load_spec(root / "audits" / "german-credit.yaml")
    assert spec.train is not None
    spec = spec.model_copy(update={"train": spec.train.model_copy(update={"epochs": epochs})})
    bundle = load_bundle(spec)
    outcome = train(spec, Path(tmp_dir) / "model", bundle=bundle, progress=False)
    handle = load_handle(outcome.model_dir)
    return AuditContext(
        spec=spec,
        data=bundle,
        model=handle,
        eval_predictions=_predictions(handle, bundle.eval, bundle.label),
        ledger=outcome.ledger,
        seed=spec.seed,
        options=spec.audits.get(audit, {}),
    )
