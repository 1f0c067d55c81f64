"""DP fine-tuning of Hugging Face text classifiers (``architecture: hf``) and writing their folder.

The model itself (encoder + mean-pooling head), its folder format and reloading live in
:mod:`governance.models.hf`; this module trains it.

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
"""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from governance.errors import InputError
from governance.models.hf import (
    DEFAULT_MAX_LENGTH,
    DEFAULT_TRAIN_LAYERS,
    ERR_TRAIN_LAYERS,
    TOKENIZER_DIR,
    TOKENIZER_FILES,
    build_hf_classifier,
    check_model_folder,
    load_tokenizer,
)

if TYPE_CHECKING:
    import numpy as np
    import torch
    from torch import nn

    from governance.data.bundle import DataBundle
    from governance.spec import Spec
    from governance.train.common import TrainOutcome

__all__ = ["check_text_bundle", "token_dataset", "train_hf"]

ERR_OPTIONS = "unknown hf option {name!r}; expected one of {known}"
ERR_TASK = "architecture hf is for task text_classification with data.text, got task {task!r}"
#: ``model.options`` an hf model accepts.
OPTIONS = ("train_layers", "max_length", "dropout")


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
    staging: Path,
) -> TrainOutcome:
    """``governance train`` for ``architecture: hf``: gate, tokenise once, (DP) fine-tune, save.

    The model folder's files go into ``staging``, which the caller swaps in for ``out_dir``.
    """
    import torch

    from governance._io import sha256_file
    from governance.data.loading import load_bundle
    from governance.models.device import resolve_device
    from governance.spec import resolve_model_path
    from governance.text.tokens import encode_texts
    from governance.train.common import (
        TrainOutcome,
        checkpoint_dir_for,
        gate,
        gate_findings_item,
        provenance,
        trainable_rows,
    )
    from governance.train.scope import with_items
    from governance.train.trainer import PrivacySettings, Trainer

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
    findings = gate(spec, bundle, force)

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
            reproducible_noise=privacy_spec.reproducible_noise,
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
            **provenance(spec, bundle, findings, force=force),
            "trainable_parameters": int(sum(p.numel() for p in model.parameters() if p.requires_grad)),
            "frozen_parameters": int(sum(p.numel() for p in model.parameters() if not p.requires_grad)),
        }
    )
    if ledger.get("privacy"):
        # The tokenizer and base model are public; only the gate's findings read the train rows.
        scope = with_items(ledger["privacy"]["scope"], "outside", gate_findings_item(findings))
        ledger["privacy"] = {**ledger["privacy"], "scope": scope}
    ledger = _write_text_model_dir(staging, result.model, config, base, ledger)
    return TrainOutcome(model_dir=out_dir, ledger=ledger)


def _write_text_model_dir(
    staging: Path, model: nn.Module, config: dict[str, Any], base: Path, ledger: dict[str, Any]
) -> dict[str, Any]:
    """Fill the staging folder; the ledger, written last, records every other file's SHA-256."""
    from safetensors.torch import save_file

    from governance.models.artifacts import CONFIG_FILE, LEDGER_FILE, WEIGHTS_FILE, model_files, write_json

    names = set(config["trained_parameters"])
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items() if k in names}
    save_file(state, staging / WEIGHTS_FILE)
    write_json(staging / CONFIG_FILE, config)
    tokenizer_dir = staging / TOKENIZER_DIR
    tokenizer_dir.mkdir()
    for name in TOKENIZER_FILES:
        if (base / name).is_file():
            shutil.copyfile(base / name, tokenizer_dir / name)
    files = model_files(staging)
    ledger = {**ledger, "weights_sha256": files[WEIGHTS_FILE], "files": files}
    write_json(staging / LEDGER_FILE, ledger)
    return ledger
