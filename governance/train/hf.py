"""Hugging Face classifiers (``architecture: hf``): placeholder until the text path lands."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from governance.errors import InputError

if TYPE_CHECKING:
    from torch import nn

    from governance.data.bundle import DataBundle
    from governance.spec import Spec


def build_hf_classifier(*, n_classes: int, path: str | None = None, **options: Any) -> nn.Module:
    """A local Hugging Face model folder with a fresh sequence-classification head."""
    from transformers import AutoModelForSequenceClassification

    if path is None:
        raise InputError(None, "model.path", "architecture hf needs a local Hugging Face model folder")
    return AutoModelForSequenceClassification.from_pretrained(
        str(path), num_labels=n_classes, local_files_only=True, **options
    )


def train_hf(
    spec: Spec,
    out_dir: Path,
    *,
    bundle: DataBundle | None,
    force: bool,
    resume: bool,
    device: str,
    progress: bool,
) -> Any:
    raise InputError(spec.source, "model.architecture", "hf training is not implemented yet")
