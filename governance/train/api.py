"""``train(spec, out_dir)``: the data-quality gate, then (DP) training, then the model folder.

This is what ``governance train`` and ``governance audit`` (when the spec trains) call.
"""

from __future__ import annotations

import os
import shutil
import sys
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from governance.errors import InputError
from governance.models.config import model_config
from governance.models.preprocessing import Preprocessor, preprocessor_for
from governance.train.common import TrainOutcome, checkpoint_dir_for, gate, trainable_rows

if TYPE_CHECKING:
    from torch import nn

    from governance.data.bundle import DataBundle
    from governance.spec import Spec

__all__ = ["TrainOutcome", "checkpoint_dir_for", "train"]

ERR_NO_TRAIN_SECTION = "required to train: epochs, batch_size, lr (and privacy for DP)"
ERR_PREDICTIONS = "a predictions-only spec has no model to train"


def _build_model(spec: Spec, config: dict[str, Any]) -> nn.Module:
    import torch

    from governance.models.artifacts import build_module, load_weights

    torch.manual_seed(spec.seed)
    module = build_module(config, source=str(spec.source))
    if spec.model.weights is not None:
        load_weights(module, spec.model.weights)
    return module


def train(
    spec: Spec,
    out_dir: str | PathLike[str],
    *,
    bundle: DataBundle | None = None,
    force: bool = False,
    resume: bool = False,
    device: str = "auto",
    progress: bool = True,
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

    Raises
    ------
    InputError
        Bad spec or data, a blocking data-quality finding without ``force``, a factory that
        does not return a module, weights that do not fit.
    """
    from governance._io import sha256_file
    from governance.data.loading import load_bundle
    from governance.models.device import resolve_device
    from governance.train.trainer import PrivacySettings, Trainer

    out_dir = Path(out_dir)
    source = str(spec.source) if spec.source is not None else None
    if spec.model.predictions is not None:
        raise InputError(source, "model.predictions", ERR_PREDICTIONS)
    if spec.train is None:
        raise InputError(source, "train", ERR_NO_TRAIN_SECTION)
    if spec.model.architecture == "hf":
        from governance.train.text import train_hf

        return train_hf(
            spec, out_dir, bundle=bundle, force=force, resume=resume, device=device, progress=progress
        )
    bundle = bundle if bundle is not None else load_bundle(spec)
    train_frame = trainable_rows(spec, bundle)
    privacy_spec = spec.train.privacy
    device = resolve_device(device)
    findings = gate(spec, bundle, force)

    preprocessor = preprocessor_for(bundle)
    config = model_config(spec, bundle, preprocessor)
    model = _build_model(spec, config)
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
        }
    )
    _write_model_dir(out_dir, result.model, config, preprocessor, ledger)
    shutil.rmtree(checkpoints, ignore_errors=True)
    return TrainOutcome(model_dir=out_dir, ledger=ledger)


def _write_model_dir(
    out_dir: Path,
    model: nn.Module,
    config: dict[str, Any],
    preprocessor: Preprocessor,
    ledger: dict[str, Any],
) -> None:
    from safetensors.torch import save_file

    from governance._io import sha256_file
    from governance.models.artifacts import (
        CONFIG_FILE,
        LEDGER_FILE,
        PREPROCESSING_FILE,
        WEIGHTS_FILE,
        staged_dir,
        write_json,
    )

    with staged_dir(out_dir) as staging:
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, staging / WEIGHTS_FILE)
        ledger = {**ledger, "weights_sha256": sha256_file(staging / WEIGHTS_FILE)}
        write_json(staging / CONFIG_FILE, config)
        (staging / PREPROCESSING_FILE).write_text(preprocessor.to_json(), encoding="utf-8")
        write_json(staging / LEDGER_FILE, ledger)
        for path in staging.iterdir():
            os.chmod(path, 0o644)


def _print(message: str) -> None:
    print(message, file=sys.stderr)
