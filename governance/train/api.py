"""``train(spec, out_dir)``: the data-quality gate, then (DP) training, then the model folder.

This is what ``governance train`` and ``governance audit`` (when the spec trains) call.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from governance.errors import InputError
from governance.train.preprocessing import Preprocessor, fit_preprocessor

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

    from governance.data.bundle import DataBundle
    from governance.spec import Spec

__all__ = [
    "TrainOutcome",
    "checkpoint_dir_for",
    "data_digest",
    "model_config",
    "preprocessor_for",
    "require_trust",
    "train",
]

ERR_NO_TRAIN_SECTION = "required to train: epochs, batch_size, lr (and privacy for DP)"
ERR_NO_TRAIN_DATA = "required to train: a training file"
ERR_DELTA = "delta {delta} must be below 1/rows = {limit:.3g} (the training file has {rows} rows)"
ERR_BLOCKED = "data-quality gate: {message} [{id}]; fix the data or rerun with --force"
ERR_PREDICTIONS = "a predictions-only spec has no model to train"
ERR_UNTRUSTED = (
    "runs the code {factory!r} names; pass --trust-code (or trust_code=True) to allow it, "
    "or use a built-in architecture"
)


def require_trust(spec: Spec, trust_code: bool) -> str | None:
    """The spec's user factory when the caller trusts it; InputError when it names one untrusted.

    Returns None for a built-in architecture (nothing to trust).
    """
    factory = spec.model.factory
    if factory is None:
        return None
    if not trust_code:
        raise InputError(spec.source, "model.factory", ERR_UNTRUSTED.format(factory=factory))
    return factory


def data_digest(bundle: DataBundle) -> str:
    """SHA-256 of the rows training reads (train and eval, content not file format).

    Part of the ``--resume`` fingerprint: another file with the same row count must not resume.
    """
    import hashlib

    import pandas as pd

    digest = hashlib.sha256()
    for name, frame in (("train", bundle.train), ("eval", bundle.eval)):
        digest.update(name.encode())
        if frame is not None:
            digest.update(",".join(map(str, frame.columns)).encode())
            digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class TrainOutcome:
    """Where the model folder is and the ledger written into it."""

    model_dir: Path
    ledger: dict[str, Any]


def checkpoint_dir_for(out_dir: Path) -> Path:
    """Checkpoints live beside ``--out`` (never inside it), so a failed run leaves ``--out`` clean."""
    return out_dir.parent / f".{out_dir.name}.checkpoint"


def preprocessor_for(bundle: DataBundle) -> Preprocessor:
    """Fit the encoder on the train split (eval when a spec brings weights and no train file)."""
    frame = bundle.train if bundle.train is not None else bundle.eval
    return fit_preprocessor(frame, bundle.features, bundle.numeric, image_shape=bundle.image_shape)


def model_config(spec: Spec, bundle: DataBundle, preprocessor: Preprocessor) -> dict[str, Any]:
    """The JSON config that rebuilds the module (``config.json``)."""
    options = dict(spec.model.options)
    options.pop("input_shape", None) if spec.model.architecture != "cnn" else None
    if spec.model.architecture == "cnn" and bundle.image_shape is not None:
        options.setdefault("input_shape", list(bundle.image_shape))
    kind = "image" if spec.task == "image_classification" or spec.model.architecture == "cnn" else "tabular"
    return {
        "format_version": 1,
        "task": str(spec.task),
        "kind": kind,
        "label": bundle.label,
        "classes": list(bundle.classes),
        "positive": bundle.positive,
        "features": list(bundle.features),
        "n_inputs": preprocessor.n_encoded,
        "n_classes": len(bundle.classes),
        "architecture": spec.model.architecture,
        "factory": spec.model.factory,
        "options": options,
        "module_fixes": [],
    }


def _build_model(spec: Spec, config: dict[str, Any], factory: str | None) -> nn.Module:
    import torch

    from governance.train.artifacts import build_module, load_weights

    torch.manual_seed(spec.seed)
    module = build_module(config, source=str(spec.source), factory=factory, field_prefix="model.")
    if spec.model.weights is not None:
        load_weights(module, spec.model.weights)
    return module


def trainable_rows(spec: Spec, bundle: DataBundle) -> pd.DataFrame:
    """The training frame, after checking it exists and that δ < 1/rows.

    Shared by every architecture's training path: a δ at or above 1/rows would admit a mechanism
    that publishes one whole record, so it is bad input whatever the model.
    """
    if bundle.train is None:
        raise InputError(spec.source, "data.train", ERR_NO_TRAIN_DATA)
    rows = len(bundle.train)
    privacy_spec = spec.train.privacy if spec.train is not None else None
    if privacy_spec is not None and privacy_spec.delta >= 1.0 / rows:
        raise InputError(
            spec.source,
            "train.privacy.delta",
            ERR_DELTA.format(delta=privacy_spec.delta, limit=1.0 / rows, rows=rows),
        )
    return bundle.train


def _gate(spec: Spec, bundle: DataBundle, force: bool) -> list[dict[str, Any]]:
    from governance.data.quality import QualityOptions, assess, blocking_findings

    source = str(spec.source) if spec.source is not None else None
    options = QualityOptions.from_options(spec.audits.get("data_quality"), source=source)
    section = assess(bundle, options)
    blocking = blocking_findings(section)
    if blocking and not force:
        first = blocking[0]
        raise InputError(source, "data", ERR_BLOCKED.format(message=first.message, id=first.id))
    return [f.to_dict() for f in section.findings]


def train(
    spec: Spec,
    out_dir: str | PathLike[str],
    *,
    bundle: DataBundle | None = None,
    force: bool = False,
    resume: bool = False,
    device: str = "auto",
    progress: bool = True,
    trust_code: bool = False,
    lock: bool = True,
) -> TrainOutcome:
    """Gate the data, train the spec's model (privately if it asks) and write the model folder.

    Parameters
    ----------
    spec
        A loaded spec with a ``train`` section.
    out_dir
        The model folder to write: ``model.safetensors``, ``config.json``,
        ``preprocessing.json``, ``training.json``. It appears complete or not at all.
    bundle
        The loaded data, if the caller has it already.
    force
        Train despite blocking data-quality findings (recorded in the ledger).
    resume
        Continue from the checkpoint of an interrupted run with the same spec and ``out_dir``.
    device
        ``auto`` (CUDA when present), ``cpu`` or ``cuda``.
    progress
        Show a progress bar on a terminal.
    trust_code
        Allow the spec's user factory (``model.factory``) to run; without it such a spec is
        refused before anything is imported.
    lock
        Hold the exclusive lock on ``out_dir`` while training (off when ``out_dir`` lies inside
        another run's staging folder, which that run's lock covers).

    Raises
    ------
    InputError
        Bad spec or data, an unusable ``out_dir`` or one another run holds (checked before any data
        is read), a blocking data-quality finding without ``force``, a factory that does not
        return a module, weights that do not fit.
    """
    from governance.train.artifacts import staged_dir

    out_dir = Path(out_dir)
    source = str(spec.source) if spec.source is not None else None
    if spec.model.predictions is not None:
        raise InputError(source, "model.predictions", ERR_PREDICTIONS)
    if spec.train is None:
        raise InputError(source, "train", ERR_NO_TRAIN_SECTION)
    factory = require_trust(spec, trust_code)
    # The folder is checked and locked before any data is read; the model is written into a
    # staging folder that replaces out_dir whole at the end (nothing is left on failure).
    with staged_dir(out_dir, lock=lock) as staging:
        if spec.model.architecture == "hf":
            from governance.train.hf import train_hf

            outcome = train_hf(
                spec,
                out_dir,
                bundle=bundle,
                force=force,
                resume=resume,
                device=device,
                progress=progress,
                staging=staging,
            )
        else:
            outcome = _train_tabular(
                spec,
                out_dir,
                staging,
                bundle=bundle,
                force=force,
                resume=resume,
                device=device,
                progress=progress,
                factory=factory,
            )
    shutil.rmtree(checkpoint_dir_for(out_dir), ignore_errors=True)
    return outcome


def _train_tabular(
    spec: Spec,
    out_dir: Path,
    staging: Path,
    *,
    bundle: DataBundle | None,
    force: bool,
    resume: bool,
    device: str,
    progress: bool,
    factory: str | None,
) -> TrainOutcome:
    from governance._io import sha256_file
    from governance.data.loading import load_bundle
    from governance.train.trainer import PrivacySettings, Trainer, resolve_device

    assert spec.train is not None
    source = str(spec.source) if spec.source is not None else None
    bundle = bundle if bundle is not None else load_bundle(spec)
    train_frame = trainable_rows(spec, bundle)
    privacy_spec = spec.train.privacy
    device = resolve_device(device)
    findings = _gate(spec, bundle, force)

    preprocessor = preprocessor_for(bundle)
    config = model_config(spec, bundle, preprocessor)
    model = _build_model(spec, config, factory)
    index = {c: i for i, c in enumerate(bundle.classes)}
    x_train = preprocessor.transform(train_frame)
    y_train = train_frame[bundle.label].map(index).to_numpy()
    x_eval = preprocessor.transform(bundle.eval)
    y_eval = bundle.eval[bundle.label].map(index).fillna(-1).astype(int).to_numpy()

    privacy = None
    if privacy_spec is not None:
        privacy = PrivacySettings(
            target_epsilon=privacy_spec.target_epsilon,
            delta=privacy_spec.delta,
            max_grad_norm=privacy_spec.max_grad_norm,
            accountant=privacy_spec.accountant,
            grad_sample_mode=privacy_spec.grad_sample_mode,
        )
    checkpoints = checkpoint_dir_for(out_dir)
    if not resume and checkpoints.exists():
        shutil.rmtree(checkpoints)
    trainer = Trainer(
        model=model,
        train_data=(x_train, y_train),
        eval_data=(x_eval, y_eval),
        privacy=privacy,
        epochs=spec.train.epochs,
        batch_size=spec.train.batch_size,
        lr=spec.train.lr,
        optimizer=spec.train.optimizer,
        momentum=spec.train.momentum,
        max_physical_batch_size=spec.train.max_physical_batch_size,
        seed=spec.seed,
        device=device,
        checkpoint_dir=checkpoints,
        resume=resume,
        progress=progress,
        data_digest=data_digest(bundle),
    )
    try:
        result = trainer.fit()
    except ValueError as exc:
        raise InputError(source, "train", str(exc)) from None
    ledger = dict(result.ledger)
    if ledger.get("privacy") and ledger["privacy"]["module_fixes"]:
        config["module_fixes"] = ledger["privacy"]["module_fixes"]
    ledger.update(
        {
            "spec": spec.name,
            "task": str(spec.task),
            "forced": force,
            "data_quality_findings": findings,
            "data": {k: {"path": str(p), "sha256": sha256_file(p)} for k, p in bundle.paths.items()},
            "source": bundle.source,
            "license": bundle.license,
            "trusted_code": factory,
        }
    )
    ledger = _write_model_dir(staging, result.model, config, preprocessor, ledger)
    return TrainOutcome(model_dir=out_dir, ledger=ledger)


def _write_model_dir(
    staging: Path,
    model: nn.Module,
    config: dict[str, Any],
    preprocessor: Preprocessor,
    ledger: dict[str, Any],
) -> dict[str, Any]:
    """Fill the staging folder; the ledger, written last, records every other file's SHA-256."""
    from safetensors.torch import save_file

    from governance.train.artifacts import (
        CONFIG_FILE,
        LEDGER_FILE,
        PREPROCESSING_FILE,
        WEIGHTS_FILE,
        model_files,
        write_json,
    )

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(state, staging / WEIGHTS_FILE)
    write_json(staging / CONFIG_FILE, config)
    (staging / PREPROCESSING_FILE).write_text(preprocessor.to_json(), encoding="utf-8")
    files = model_files(staging)
    ledger = {**ledger, "weights_sha256": files[WEIGHTS_FILE], "files": files}
    write_json(staging / LEDGER_FILE, ledger)
    return ledger


def _print(message: str) -> None:
    print(message, file=sys.stderr)
