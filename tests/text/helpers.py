"""Small text specs over the shipped sentiment data and a tiny BERT folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml

DATA = Path(__file__).resolve().parents[2] / "audits" / "data" / "sentiment"


def write_text_data(folder: Path, *, train_rows: int = 64, eval_templates: int = 4) -> tuple[Path, Path]:
    """A slice of the shipped data: ``train_rows`` general sentences, a few identity templates."""
    folder.mkdir(parents=True, exist_ok=True)
    train = pd.read_csv(DATA / "train.csv").head(train_rows)
    evaluation = pd.read_csv(DATA / "eval.csv")
    keep = sorted(evaluation["pair_id"].unique())
    # Templates 0..n/2 are positive, 8.. negative: take both kinds.
    chosen = keep[: eval_templates // 2] + keep[8 : 8 + eval_templates - eval_templates // 2]
    evaluation = evaluation[evaluation["pair_id"].isin(chosen)]
    train_path, eval_path = folder / "train.csv", folder / "eval.csv"
    train.to_csv(train_path, index=False)
    evaluation.to_csv(eval_path, index=False)
    return train_path, eval_path


def text_spec(
    model_path: Path | str, train_file: Path | None, evaluation: Path, **overrides: Any
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "tiny-text",
        "task": "text_classification",
        "seed": 0,
        "data": {
            "train": None if train_file is None else str(train_file),
            "eval": str(evaluation),
            "label": "label",
            "text": "text",
            "sensitive": ["identity_category"],
        },
        "model": {
            "architecture": "hf",
            "path": str(model_path),
            "options": {"train_layers": 1, "max_length": 32},
        },
        "train": {
            "epochs": 2,
            "batch_size": 16,
            "lr": 0.01,
            "optimizer": "adam",
            "privacy": {"target_epsilon": 8.0, "delta": 1e-3, "max_grad_norm": 1.0},
        },
        "audits": {"performance": {}},
    }
    if train_file is None:
        del spec["data"]["train"]
    for key, value in overrides.items():
        spec[key] = value
    return spec


def write_spec(folder: Path, spec: dict[str, Any], name: str = "spec.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


def tiny_handle(folder: Path, *, seed: int = 0) -> Any:
    """A TextHandle over a randomly initialised classifier on the tiny BERT in ``folder``."""
    import torch

    from governance.models.hf import TextHandle, build_hf_classifier, load_tokenizer

    torch.manual_seed(seed)
    module = build_hf_classifier(n_classes=2, path=folder, train_layers=1).eval()
    return TextHandle(
        classes=("negative", "positive"),
        device="cpu",
        text_column="text",
        tokenizer=load_tokenizer(folder),
        max_length=32,
        _module=module,
        positive="positive",
    )


def text_context(folder: Path, tmp: Path, audit: str, options: dict[str, Any], **spec_overrides: Any) -> Any:
    """An AuditContext for ``audit`` over the tiny handle and a slice of the shipped data."""
    from governance.audit.base import AuditContext
    from governance.data.loading import load_bundle
    from governance.models.predict import predict
    from governance.spec import load_spec

    train, evaluation = write_text_data(tmp)
    spec = load_spec(
        write_spec(tmp, text_spec(folder, train, evaluation, audits={audit: options}, **spec_overrides))
    )
    bundle = load_bundle(spec)
    handle = tiny_handle(folder)
    return AuditContext(
        spec=spec,
        data=bundle,
        model=handle,
        eval_predictions=predict(handle, bundle.eval, bundle.label),
        train_predictions=None if bundle.train is None else predict(handle, bundle.train, bundle.label),
        options=options,
        seed=0,
    )
