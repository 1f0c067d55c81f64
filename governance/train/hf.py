"""Hugging Face text classifiers (``architecture: hf``): build, DP fine-tune, save, reload.

The model is the spec's local encoder folder (a ``BertModel`` such as all-MiniLM-L6-v2) plus a
linear classification head on the **mean-pooled** token embeddings (attention-mask-weighted
mean, as the all-MiniLM-L6-v2 model card prescribes). Only the top ``train_layers`` encoder
layers and the head are trained; embeddings and lower layers are frozen, which is what makes
DP fine-tuning affordable (fewer noised parameters, backward pass through the top only).

Training goes through the same :class:`~governance.train.trainer.Trainer` as tabular models:
texts are tokenised once up front into an ``int64`` id tensor, and the module takes that one
tensor (the attention mask is ``ids != pad_id``), so Opacus sees a plain batch-first input.
Per-example quirks: ``position_ids`` / ``token_type_ids`` are buffers of the frozen embeddings
(no per-sample gradients there), and the attention is computed per example, so no layer couples
rows of a batch. ``grad_sample_mode: auto`` tries, in order, the single-pass clipping of
:mod:`governance.train.clipping.linear` (trainable ``Linear``/``LayerNorm`` layers on sequences; Opacus'
loader, noise and accountant; Opacus' hooks are its oracle in the tests), Opacus' ghost clipping
(LayerNorm has no ghost norm sampler in Opacus 1.6, so ghost mode materialises its per-sample
gradients), then Opacus' hooks; the ledger records the mode used and any fallback.

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
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from governance.errors import InputError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import torch
    from torch import nn

    from governance.data.bundle import DataBundle
    from governance.spec import Spec
    from governance.train.api import TrainOutcome

__all__ = [
    "DEFAULT_MAX_LENGTH",
    "DEFAULT_TRAIN_LAYERS",
    "TextHandle",
    "build_hf_classifier",
    "load_text_handle",
    "load_text_module",
    "train_hf",
]

DEFAULT_MAX_LENGTH = 64
DEFAULT_TRAIN_LAYERS = 2
TOKENIZER_DIR = "tokenizer"
#: Files that make a tokenizer folder; one of the first two must exist.
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")

ERR_NO_TOKENIZER = (
    "no tokenizer (tokenizer.json or vocab.txt); expected a Hugging Face model folder with its tokenizer"
)
ERR_NO_WEIGHTS = "no model.safetensors; expected a Hugging Face model folder with its weights"
ERR_BASE_CHANGED = "base model weights changed since training (sha256 {found}, trained on {want})"
ERR_OPTIONS = "unknown hf option {name!r}; expected one of {known}"
ERR_TRAIN_LAYERS = "train_layers must be between 0 and {n} (the encoder's layers), got {value!r}"
ERR_TASK = "architecture hf is for task text_classification with data.text, got task {task!r}"
#: ``model.options`` an hf model accepts.
OPTIONS = ("train_layers", "max_length", "dropout")

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
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def check_model_folder(folder: Path, source: Any = None) -> None:
    """A base folder must hold weights and a tokenizer; else :class:`InputError` (exit 2)."""
    if not (folder / "config.json").is_file():
        raise InputError(folder, None, "no config.json; expected a Hugging Face model folder")
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
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
        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True, use_fast=True)
    except (OSError, ValueError) as exc:
        raise InputError(folder, None, f"cannot load the tokenizer ({exc.__class__.__name__})") from None


def _encoder(folder: Path) -> nn.Module:
    _quiet_transformers()
    from transformers import AutoModel

    try:
        return AutoModel.from_pretrained(str(folder), local_files_only=True, add_pooling_layer=False)
    except TypeError:  # encoders without a pooling layer option
        return AutoModel.from_pretrained(str(folder), local_files_only=True)
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


# -- training ------------------------------------------------------------------------------------


def _options(spec: Spec) -> dict[str, Any]:
    options = dict(spec.model.options)
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise InputError(
            spec.source,
            f"model.options.{unknown[0]}",
            ERR_OPTIONS.format(name=unknown[0], known=list(OPTIONS)),
        )
    max_length = options.get("max_length", DEFAULT_MAX_LENGTH)
    if isinstance(max_length, bool) or not isinstance(max_length, int) or not 4 <= max_length <= 512:
        raise InputError(
            spec.source, "model.options.max_length", f"expected an integer in [4, 512], got {max_length!r}"
        )
    layers = options.get("train_layers", DEFAULT_TRAIN_LAYERS)
    if isinstance(layers, bool) or not isinstance(layers, int) or layers < 0:
        raise InputError(
            spec.source, "model.options.train_layers", f"expected an integer >= 0, got {layers!r}"
        )
    dropout = options.get("dropout", 0.1)
    if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0 <= dropout < 1:
        raise InputError(
            spec.source, "model.options.dropout", f"expected a number in [0, 1), got {dropout!r}"
        )
    return {"max_length": int(max_length), "train_layers": int(layers), "dropout": float(dropout)}


def _base_layers(folder: Path) -> int | None:
    """``num_hidden_layers`` from the base folder's config.json, if it says."""
    import json

    try:
        value = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("num_hidden_layers")
    except (OSError, ValueError):
        return None
    return int(value) if isinstance(value, int) else None


def check_text_bundle(spec: Spec, bundle: DataBundle) -> str:
    """The text column of a text task, every value checked (exit 2 on empty or non-string)."""
    from governance.text.tokens import check_texts

    if spec.task != "text_classification" or not bundle.text:
        raise InputError(spec.source, "task", ERR_TASK.format(task=str(spec.task)))
    for split, frame in (("train", bundle.train), ("eval", bundle.eval)):
        if frame is not None:
            check_texts(frame, bundle.text, bundle.paths.get(split, spec.source))
    return bundle.text


def _fallbacks(requested: str, model: nn.Module, physical: int | None) -> tuple[str, ...]:
    """Per-sample gradient modes to try in order; the first that trains is used.

    ``auto`` for text: the single-pass clipping of :mod:`governance.train.clipping.linear` (Linear and
    LayerNorm layers; measured about 1.1x the non-private step on MiniLM's top two layers, CPU),
    then Opacus' ghost clipping (1.57x), then Opacus' hooks (3.3x). A mode the spec names is
    used alone.
    """
    from governance.train.clipping.linear import supports_fast_clipping

    if requested != "auto":
        return (requested,)
    first = ("fast",) if supports_fast_clipping(model) and not physical else ()
    return (*first, "ghost", "hooks")


def _threads(device: str) -> int | Literal["auto"]:
    """CPU threads for fine-tuning: one on a machine with two cores or fewer, else the Trainer's.

    Measured on a 2-core box shared with other work: a MiniLM forward+backward step took 2.3x
    longer with two threads than with one (the threads contend with everything else).
    """
    return 1 if device == "cpu" and (os.cpu_count() or 1) <= 2 else "auto"


def token_dataset(ids: torch.Tensor, labels: np.ndarray) -> Any:
    """A dataset of (token ids, label) that hands the DataLoader whole batches (no float cast)."""
    import numpy as np
    import torch

    from governance.train.trainer import _batched_tensor_dataset

    return _batched_tensor_dataset(ids.long(), torch.as_tensor(np.array(labels), dtype=torch.long))


def train_hf(
    spec: Spec,
    out_dir: Path,
    *,
    bundle: DataBundle | None,
    force: bool,
    resume: bool,
    device: str,
    progress: bool,
) -> TrainOutcome:
    """``governance train`` for ``architecture: hf``: gate, tokenise once, (DP) fine-tune, save."""
    import torch

    from governance._io import sha256_file
    from governance.data.loading import load_bundle
    from governance.spec import resolve_model_path
    from governance.text.tokens import encode_texts
    from governance.train.api import TrainOutcome, _gate, checkpoint_dir_for, trainable_rows
    from governance.train.trainer import PrivacySettings, Trainer, resolve_device

    assert spec.train is not None and spec.model.path is not None
    source = str(spec.source) if spec.source is not None else None
    options = _options(spec)
    base = resolve_model_path(spec.model.path, source=source)
    check_model_folder(base)
    layers = _base_layers(base)
    if layers is not None and options["train_layers"] > layers:
        raise InputError(
            source,
            "model.options.train_layers",
            ERR_TRAIN_LAYERS.format(n=layers, value=options["train_layers"]),
        )
    bundle = bundle if bundle is not None else load_bundle(spec)
    text = check_text_bundle(spec, bundle)
    train_frame = trainable_rows(spec, bundle)
    privacy_spec = spec.train.privacy
    device = resolve_device(device)
    findings = _gate(spec, bundle, force)

    tokenizer = load_tokenizer(base)
    torch.manual_seed(spec.seed)
    model = build_hf_classifier(
        n_classes=len(bundle.classes),
        path=base,
        train_layers=options["train_layers"],
        dropout=options["dropout"],
        pad_id=int(tokenizer.pad_token_id or 0),
    )
    trainable = tuple(n for n, p in model.named_parameters() if p.requires_grad)
    index = {c: i for i, c in enumerate(bundle.classes)}
    # Tokenise once, up front: training steps only index this tensor.
    train_ids = encode_texts(tokenizer, train_frame[text].tolist(), options["max_length"]).ids
    eval_ids = encode_texts(tokenizer, bundle.eval[text].tolist(), options["max_length"]).ids
    y_train = train_frame[bundle.label].map(index).to_numpy()
    y_eval = bundle.eval[bundle.label].map(index).fillna(-1).astype(int).to_numpy()

    privacy = None
    fallbacks: tuple[str, ...] = ()
    if privacy_spec is not None:
        privacy = PrivacySettings(
            target_epsilon=privacy_spec.target_epsilon,
            delta=privacy_spec.delta,
            max_grad_norm=privacy_spec.max_grad_norm,
            accountant=privacy_spec.accountant,
            grad_sample_mode=privacy_spec.grad_sample_mode,
        )
        fallbacks = _fallbacks(privacy_spec.grad_sample_mode, model, spec.train.max_physical_batch_size)
        if fallbacks:
            privacy = replace(privacy, grad_sample_mode=fallbacks[0])
    checkpoints = checkpoint_dir_for(out_dir)
    if not resume and checkpoints.exists():
        shutil.rmtree(checkpoints)

    def fit(settings: PrivacySettings | None) -> Any:
        return Trainer(
            model=model,
            train_data=token_dataset(train_ids, y_train),
            eval_data=token_dataset(eval_ids, y_eval),
            privacy=settings,
            epochs=spec.train.epochs,  # type: ignore[union-attr]
            batch_size=spec.train.batch_size,  # type: ignore[union-attr]
            lr=spec.train.lr,  # type: ignore[union-attr]
            optimizer=spec.train.optimizer,  # type: ignore[union-attr]
            momentum=spec.train.momentum,  # type: ignore[union-attr]
            max_physical_batch_size=spec.train.max_physical_batch_size,  # type: ignore[union-attr]
            seed=spec.seed,
            device=device,
            checkpoint_dir=checkpoints,
            resume=resume,
            progress=progress,
            num_threads=_threads(device),
        ).fit()

    failures: list[str] = []
    result = None
    for attempt, mode in enumerate(fallbacks or (None,)):
        settings = privacy if mode is None or privacy is None else replace(privacy, grad_sample_mode=mode)
        try:
            result = fit(settings)
            break
        except (ValueError, RuntimeError) as exc:
            # auto: the next mode, recorded in the ledger; a mode the spec named: bad input.
            if attempt + 1 >= len(fallbacks):
                raise InputError(source, "train", str(exc).splitlines()[0]) from None
            failures.append(f"{mode}: {str(exc).splitlines()[0]}")
            torch.manual_seed(spec.seed)
            model = build_hf_classifier(
                n_classes=len(bundle.classes),
                path=base,
                train_layers=options["train_layers"],
                dropout=options["dropout"],
                pad_id=int(tokenizer.pad_token_id or 0),
            )
    assert result is not None
    ledger = dict(result.ledger)
    if failures and ledger.get("privacy"):
        ledger["privacy"] = {**ledger["privacy"], "grad_sample_fallbacks": failures}
    weights = base / "model.safetensors"
    config = {
        "format_version": 1,
        "task": str(spec.task),
        "kind": "text",
        "label": bundle.label,
        "text": text,
        "classes": list(bundle.classes),
        "positive": bundle.positive,
        "n_classes": len(bundle.classes),
        "architecture": "hf",
        "base": {
            "path": str(spec.model.path),
            "resolved": str(base),
            "weights_sha256": sha256_file(weights) if weights.is_file() else None,
        },
        "options": options,
        "pad_id": int(tokenizer.pad_token_id or 0),
        "trained_parameters": list(trainable),
        "pooling": "mean (attention-mask weighted)",
        "module_fixes": [],
    }
    ledger.update(
        {
            "spec": spec.name,
            "task": str(spec.task),
            "forced": force,
            "data_quality_findings": findings,
            "data": {k: {"path": str(p), "sha256": sha256_file(p)} for k, p in bundle.paths.items()},
            "source": bundle.source,
            "license": bundle.license,
            "trainable_parameters": int(sum(p.numel() for p in model.parameters() if p.requires_grad)),
            "frozen_parameters": int(sum(p.numel() for p in model.parameters() if not p.requires_grad)),
        }
    )
    _write_text_model_dir(out_dir, result.model, config, base, ledger)
    shutil.rmtree(checkpoints, ignore_errors=True)
    return TrainOutcome(model_dir=out_dir, ledger=ledger)


def _write_text_model_dir(
    out_dir: Path, model: nn.Module, config: dict[str, Any], base: Path, ledger: dict[str, Any]
) -> None:
    from safetensors.torch import save_file

    from governance._io import sha256_file
    from governance.train.artifacts import CONFIG_FILE, LEDGER_FILE, WEIGHTS_FILE, staged_dir, write_json

    names = set(config["trained_parameters"])
    with staged_dir(out_dir) as staging:
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if k in names}
        save_file(state, staging / WEIGHTS_FILE)
        ledger = {**ledger, "weights_sha256": sha256_file(staging / WEIGHTS_FILE)}
        write_json(staging / CONFIG_FILE, config)
        write_json(staging / LEDGER_FILE, ledger)
        tokenizer_dir = staging / TOKENIZER_DIR
        tokenizer_dir.mkdir()
        for name in TOKENIZER_FILES:
            if (base / name).is_file():
                shutil.copyfile(base / name, tokenizer_dir / name)
        for path in staging.rglob("*"):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)


# -- reloading ------------------------------------------------------------------------------------


def _base_folder(config: Mapping[str, Any], where: Path) -> Path:
    """The base folder a text model folder refers to, checked against its recorded SHA-256."""
    from governance._io import sha256_file
    from governance.spec import PACKAGE_PREFIX, resolve_model_path

    base = config.get("base") or {}
    ref = str(base.get("path") or "")
    if not ref:
        raise InputError(where, "base.path", "a text model folder must name its base model")
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

    from governance.train.artifacts import CONFIG_FILE, WEIGHTS_FILE, read_config

    model_dir = Path(model_dir)
    config = config if config is not None else read_config(model_dir)
    where = model_dir / CONFIG_FILE
    try:
        options = dict(config["options"])
        n_classes = int(config["n_classes"])
        pad_id = int(config["pad_id"])
        names = set(config["trained_parameters"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(where, None, f"not a text model config (missing {exc})") from None
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
    """A text classifier with its tokenizer; implements :class:`governance.audit.base.ModelHandle`.

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
    tokenizer = load_tokenizer(model_dir / TOKENIZER_DIR)
    module = load_text_module(model_dir, config)
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
