"""Hugging Face text classifiers (``architecture: hf``): the module, its folder, reloading, inference.

The model is the spec's local encoder folder (a ``BertModel`` such as all-MiniLM-L6-v2) plus a
linear classification head on the **mean-pooled** token embeddings (attention-mask-weighted
mean, as the all-MiniLM-L6-v2 model card prescribes). Only the top ``train_layers`` encoder
layers and the head are trained; embeddings and lower layers are frozen, which is what makes
DP fine-tuning affordable (fewer noised parameters, backward pass through the top only).

Training (DP fine-tuning) lives in :mod:`governance.train.text`; this module builds the model,
reads its folder back and wraps it in a :class:`TextHandle` for the audits.

Model folder (``governance train`` writes it, :func:`load_text_module` reads it)::

    model.safetensors    the trained tensors only (top layers + head), not the frozen 90 MB
    config.json          kind "text", classes, the base folder (as written in the spec, plus
                         its resolved path and the SHA-256 of its weights), train_layers …
    tokenizer/           a copy of the base folder's tokenizer files (small)
    training.json        the ledger

Reloading rebuilds the base from its folder (checked against the recorded SHA-256, so a
different base is bad input, not a silently different model) and loads the trained tensors.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from governance.errors import InputError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import torch
    from torch import nn

__all__ = [
    "DEFAULT_MAX_LENGTH",
    "DEFAULT_TRAIN_LAYERS",
    "TextHandle",
    "build_hf_classifier",
    "load_text_handle",
    "load_text_module",
]

DEFAULT_MAX_LENGTH = 64
DEFAULT_TRAIN_LAYERS = 2
TOKENIZER_DIR = "tokenizer"
#: Files that make a tokenizer folder; one of the first two must exist.
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")
#: Weights a base folder must hold: safetensors only (pickle can run code on load).
WEIGHT_FILES = ("model.safetensors",)

ERR_NO_TOKENIZER = (
    "no tokenizer (tokenizer.json or vocab.txt); expected a Hugging Face model folder with its tokenizer"
)
ERR_NO_WEIGHTS = "no model.safetensors; expected a Hugging Face model folder with its weights"
ERR_PICKLE_ONLY = (
    "holds only pickle weights ({names}); governance loads safetensors only (pickle can run code): "
    "convert them to model.safetensors"
)
ERR_BASE_CHANGED = "base model weights changed since training (sha256 {found}, trained on {want})"
ERR_TRAIN_LAYERS = "train_layers must be between 0 and {n} (the encoder's layers), got {value!r}"

#: Loader output of transformers we do not want on a user's terminal (a load report per model).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")


# -- the module -----------------------------------------------------------------------------------


def _classifier_class() -> type:
    """The module class, defined on first use so that importing this file needs no torch."""
    global _CLASSIFIER
    if _CLASSIFIER is not None:
        return _CLASSIFIER
    from torch import nn

    class MeanPoolClassifier(nn.Module):
        """``encoder`` → attention-mask-weighted mean of token embeddings → dropout → ``head``.

        ``forward(ids)`` takes int64 token ids ``(n, length)``; padding (``pad_id``) is masked.
        """

        def __init__(self, encoder: Any, n_classes: int, pad_id: int, dropout: float) -> None:
            super().__init__()
            self.encoder = encoder
            self.pad_id = int(pad_id)
            self.dropout = nn.Dropout(dropout)
            self.head = nn.Linear(int(encoder.config.hidden_size), int(n_classes))

        def embed(self, ids: torch.Tensor) -> torch.Tensor:
            """The embedding layer's output (what LayerIntegratedGradients attributes to)."""
            return self.encoder.embeddings(input_ids=ids)

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            mask = ids != self.pad_id
            hidden = self.encoder(input_ids=ids, attention_mask=mask.long()).last_hidden_state
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1e-9)
            return self.head(self.dropout(pooled))

    _CLASSIFIER = MeanPoolClassifier
    return _CLASSIFIER


_CLASSIFIER: type | None = None


def _quiet_transformers() -> None:
    import logging

    # transformers imports torchao when it is installed (the compression audit's int8 path), and
    # torchao logs one warning per CUDA kernel library it cannot load on a CPU-only machine.
    for name in ("torchao", "torch.utils._pytree"):  # and torchao's import trips torch's pytree deprecations
        logging.getLogger(name).setLevel(logging.ERROR)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def check_model_folder(folder: Path, source: Any = None) -> None:
    """A base folder must hold weights and a tokenizer; else :class:`InputError` (exit 2)."""
    if not (folder / "config.json").is_file():
        raise InputError(folder, None, "no config.json; expected a Hugging Face model folder")
    if not (folder / "model.safetensors").is_file():
        pickles = sorted(p.name for p in folder.glob("*.bin")) + sorted(p.name for p in folder.glob("*.pt*"))
        if pickles:
            raise InputError(folder, None, ERR_PICKLE_ONLY.format(names=", ".join(pickles)))
        raise InputError(folder, None, ERR_NO_WEIGHTS)
    if not any((folder / name).is_file() for name in TOKENIZER_FILES[:2]):
        raise InputError(folder, None, ERR_NO_TOKENIZER)


def load_tokenizer(folder: Path) -> Any:
    """The fast tokenizer of a local folder (offline), or :class:`InputError`."""
    if not any((folder / name).is_file() for name in TOKENIZER_FILES[:2]):
        raise InputError(folder, None, ERR_NO_TOKENIZER)
    _quiet_transformers()
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(
            str(folder), local_files_only=True, use_fast=True, trust_remote_code=False
        )
    except (OSError, ValueError) as exc:
        raise InputError(folder, None, f"cannot load the tokenizer ({exc.__class__.__name__})") from None


def _encoder(folder: Path) -> nn.Module:
    _quiet_transformers()
    from transformers import AutoModel

    # safetensors only and no remote code: nothing in the folder can run on load.
    safe = {"local_files_only": True, "use_safetensors": True, "trust_remote_code": False}
    try:
        return AutoModel.from_pretrained(str(folder), add_pooling_layer=False, **safe)
    except TypeError:  # encoders without a pooling layer option
        return AutoModel.from_pretrained(str(folder), **safe)
    except (OSError, ValueError) as exc:
        raise InputError(folder, None, f"cannot load the model ({exc.__class__.__name__}: {exc})") from None


def _layers(encoder: nn.Module) -> list[nn.Module]:
    layers = getattr(getattr(encoder, "encoder", None), "layer", None)
    if layers is None:
        raise InputError(None, "model.path", "expected a BERT-style encoder (encoder.layer)")
    return list(layers)


def freeze_lower(model: Any, train_layers: int) -> tuple[str, ...]:
    """Freeze everything but the top ``train_layers`` encoder layers and the head.

    Returns the names of the trainable parameters (what the model folder stores).
    """
    layers = _layers(model.encoder)
    if not 0 <= train_layers <= len(layers):
        raise InputError(
            None, "model.options.train_layers", ERR_TRAIN_LAYERS.format(n=len(layers), value=train_layers)
        )
    for p in model.parameters():
        p.requires_grad_(False)
    keep = [*layers[len(layers) - train_layers :], model.head]
    for module in keep:
        for p in module.parameters():
            p.requires_grad_(True)
    return tuple(n for n, p in model.named_parameters() if p.requires_grad)


def build_hf_classifier(
    *,
    n_classes: int,
    path: str | Path | None = None,
    train_layers: int = DEFAULT_TRAIN_LAYERS,
    dropout: float = 0.1,
    pad_id: int | None = None,
    **_: Any,
) -> nn.Module:
    """A local encoder folder plus a fresh mean-pooling classification head.

    Parameters
    ----------
    n_classes
        Outputs of the head.
    path
        The encoder folder (or ``package:NAME``; see :func:`governance.spec.resolve_model_path`).
    train_layers
        Top encoder layers left trainable (the rest and the embeddings are frozen).
    dropout
        Dropout before the head.
    pad_id
        The tokenizer's padding id (default: the encoder config's ``pad_token_id`` or 0).
    """
    from governance.spec import resolve_model_path

    if path is None:
        raise InputError(None, "model.path", "architecture hf needs a local Hugging Face model folder")
    folder = resolve_model_path(path)
    check_model_folder(folder)
    encoder = _encoder(folder)
    if pad_id is None:
        pad_id = int(getattr(encoder.config, "pad_token_id", 0) or 0)
    model = _classifier_class()(encoder, n_classes, pad_id, float(dropout))
    freeze_lower(model, int(train_layers))
    return model


# -- reloading ------------------------------------------------------------------------------------


def _base_folder(config: Mapping[str, Any], where: Path) -> Path:
    """The base folder a text model folder refers to, checked against its recorded SHA-256."""
    from governance._io import sha256_file
    from governance.spec import PACKAGE_PREFIX, resolve_model_path

    base = config.get("base") or {}
    ref = str(base.get("path") or "")
    if not ref:
        raise InputError(where, "base.path", "a text model folder must name its base model")
    if ref.startswith(PACKAGE_PREFIX) and not ref[len(PACKAGE_PREFIX) :].split("/")[0].isidentifier():
        # find_spec of a dotted name imports its parent package: a folder must not make us import.
        raise InputError(where, "base.path", f"{ref!r}: expected package:NAME with a top-level package name")
    # The written reference first (a package reference is portable), then the path it had.
    try:
        folder = resolve_model_path(ref, source=where)
    except InputError:
        if ref.startswith(PACKAGE_PREFIX) or not base.get("resolved"):
            raise
        folder = resolve_model_path(str(base["resolved"]), source=where)
    check_model_folder(folder)
    want = base.get("weights_sha256")
    weights = folder / "model.safetensors"
    if want and weights.is_file():
        found = sha256_file(weights)
        if found != want:
            raise InputError(
                where, "base.weights_sha256", ERR_BASE_CHANGED.format(found=found[:12], want=want[:12])
            )
    return folder


def load_text_module(model_dir: str | Path, config: Mapping[str, Any] | None = None) -> nn.Module:
    """Rebuild the classifier a text model folder describes (base + trained tensors), in eval mode."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from governance.models.files import CONFIG_FILE, WEIGHTS_FILE, read_config

    model_dir = Path(model_dir)
    config = config if config is not None else read_config(model_dir)
    where = model_dir / CONFIG_FILE
    try:
        options = dict(config["options"])
        n_classes = int(config["n_classes"])
        pad_id = int(config["pad_id"])
        names = set(config["trained_parameters"])
    except KeyError as exc:
        raise InputError(where, str(exc.args[0]), "not a text model config (field missing)") from None
    except (TypeError, ValueError) as exc:
        raise InputError(where, None, f"not a text model config ({exc})") from None
    base = _base_folder(config, where)
    model = build_hf_classifier(
        n_classes=n_classes,
        path=base,
        train_layers=int(options.get("train_layers", DEFAULT_TRAIN_LAYERS)),
        dropout=float(options.get("dropout", 0.1)),
        pad_id=pad_id,
    )
    path = model_dir / WEIGHTS_FILE
    try:
        state = load_file(str(path))
    except FileNotFoundError:
        raise InputError(path, None, "weights file not found") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(path, None, f"not a readable safetensors file ({exc})") from None
    own = model.state_dict()
    if set(state) != names or any(
        k not in own or tuple(v.shape) != tuple(own[k].shape) for k, v in state.items()
    ):
        raise InputError(
            path, None, "weights do not fit the model config (trained parameters or shapes differ)"
        )
    model.load_state_dict(state, strict=False)
    model.eval()
    return model


#: Rows per forward pass in predict_proba.
_CHUNK = 256


@dataclass(frozen=True, eq=False)
class TextHandle:
    """A text classifier with its tokenizer; implements :class:`governance.models.base.ModelHandle`.

    ``encode(frame)`` tokenises the text column into int64 ids ``(n, length)``; the module takes
    them directly (padding is masked inside). ``embedding_layer`` is the layer
    LayerIntegratedGradients attributes to.
    """

    classes: tuple[str, ...]
    device: str
    text_column: str
    tokenizer: Any
    max_length: int
    _module: Any
    positive: str | None = None
    config: Mapping[str, Any] | None = None
    kind: str = "text"

    @property
    def module(self) -> nn.Module:
        return self._module

    @property
    def pad_id(self) -> int:
        return int(self._module.pad_id)

    @property
    def embedding_layer(self) -> nn.Module:
        return self._module.encoder.embeddings

    def texts(self, frame: pd.DataFrame) -> list[str]:
        from governance.text.tokens import check_texts

        check_texts(frame, self.text_column, "data")
        return [str(t) for t in frame[self.text_column].tolist()]

    def encode(self, frame: pd.DataFrame) -> torch.Tensor:
        """Token ids of the frame's text column, on ``device``."""
        return self.encode_texts(self.texts(frame)).to(self.device)

    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        from governance.text.tokens import encode_texts

        return encode_texts(self.tokenizer, texts, self.max_length).ids

    def tokens(self, ids: torch.Tensor) -> list[list[str]]:
        """Token strings per row, padding dropped."""
        return [
            self.tokenizer.convert_ids_to_tokens([int(i) for i in row if int(i) != self.pad_id])
            for row in ids.cpu()
        ]

    def predict_proba_tensor(self, ids: torch.Tensor) -> torch.Tensor:
        import torch

        return torch.softmax(self.module(ids), dim=1)

    def predict_proba_texts(self, texts: list[str]) -> np.ndarray:
        """Class probabilities for raw texts, shape (n, len(classes)), float64."""
        import numpy as np
        import torch

        self.module.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(texts), _CHUNK):
                ids = self.encode_texts(texts[start : start + _CHUNK]).to(self.device)
                out.append(torch.softmax(self.module(ids), dim=1).cpu().numpy())
        if not out:
            return np.zeros((0, len(self.classes)))
        return np.concatenate(out).astype("float64")

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Class probabilities from the frame's text column, shape (n, len(classes)), float64."""
        return self.predict_proba_texts(self.texts(frame))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        import numpy as np

        return np.asarray(self.classes, dtype=object)[self.predict_proba(frame).argmax(axis=1)]


def load_text_handle(model_dir: str | Path, config: Mapping[str, Any], device: str = "cpu") -> TextHandle:
    """A :class:`TextHandle` for a text model folder written by ``governance train``."""
    model_dir = Path(model_dir)
    module = load_text_module(model_dir, config)  # checks the base reference before anything loads
    tokenizer = load_tokenizer(model_dir / TOKENIZER_DIR)
    module.to(device).eval()
    return TextHandle(
        classes=tuple(str(c) for c in config["classes"]),
        device=device,
        text_column=str(config["text"]),
        tokenizer=tokenizer,
        max_length=int(dict(config["options"]).get("max_length", DEFAULT_MAX_LENGTH)),
        _module=module,
        positive=config.get("positive"),
        config=config,
    )
