"""``train(spec, out_dir)``: the data-quality gate, then (DP) training, then the model folder.

This is what ``governance train`` and ``governance audit`` (when the spec trains) call.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
from collections.abc import Iterator
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from governance.errors import InputError
from governance.models.config import model_config
from governance.models.preprocessing import Preprocessor, preprocessor_for, private_statistics
from governance.train.common import (
    TrainOutcome,
    checkpoint_dir_for,
    gate,
    gate_findings_item,
    provenance,
    trainable_rows,
)
from governance.train.scope import with_items

if TYPE_CHECKING:
    from torch import nn

    from governance.data.bundle import DataBundle
    from governance.spec import Spec
    from governance.train.sample_weights import SampleWeights

__all__ = ["TrainOutcome", "checkpoint_dir_for", "data_digest", "require_trust", "train"]

ERR_NO_TRAIN_SECTION = "required to train: epochs, batch_size, lr (and privacy for DP)"
ERR_PREDICTIONS = "a predictions-only spec has no model to train"
ERR_HF_WEIGHTS = "per-sample weights (reweighing) are not supported for Hugging Face text models"
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


def _build_model(spec: Spec, config: dict[str, Any], factory: str | None) -> nn.Module:
    import torch

    from governance.models.artifacts import build_module, load_weights

    torch.manual_seed(spec.seed)
    module = build_module(config, source=str(spec.source), factory=factory, field_prefix="model.")
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
    store: str | PathLike[str] | None = None,
    trust_code: bool = False,
    lock: bool = True,
    sample_weights: SampleWeights | None = None,
    world: Any = None,
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
    store
        The history store that keeps the training data's privacy budget (default
        ``$GOVERNANCE_STORE`` or ``.governance/history.sqlite``).
    trust_code
        Allow the spec's user factory (``model.factory``) to run; without it such a spec is
        refused before anything is imported.
    lock
        Hold the exclusive lock on ``out_dir`` while training (off when ``out_dir`` lies inside
        another run's staging folder, which that run's lock covers).
    sample_weights
        One weight per train row (reweighing): see :class:`governance.train.trainer.Trainer`; its
        origin goes to the ledger and its ``outside`` items to ``privacy.scope.outside``.
    world
        A :class:`governance.train.distributed.World` when this process is one rank of a
        multi-process training (``--processes N`` or ``torchrun``): every rank trains, rank 0
        alone writes the model folder, checkpoints and budget row.

    Raises
    ------
    InputError
        Bad spec or data, an unusable ``out_dir`` or one another run holds (checked before any data
        is read), a blocking data-quality finding without ``force``, a factory that does not
        return a module, weights that do not fit.
    """
    out_dir = Path(out_dir)
    source = str(spec.source) if spec.source is not None else None
    if spec.model.predictions is not None:
        raise InputError(source, "model.predictions", ERR_PREDICTIONS)
    if spec.train is None:
        raise InputError(source, "train", ERR_NO_TRAIN_SECTION)
    factory = require_trust(spec, trust_code)
    if world is not None:
        from governance.train.distributed import check_trainable_across_processes

        check_trainable_across_processes(spec)
    # The folder is checked and locked before any data is read; the model is written into a
    # staging folder that replaces out_dir whole at the end (nothing is left on failure).
    if sample_weights is not None and spec.model.architecture == "hf":
        raise InputError(source, "model.architecture", ERR_HF_WEIGHTS)
    with _staged(out_dir, lock, world) as staging:
        if spec.model.architecture == "hf":
            outcome = _train_text(
                spec,
                out_dir,
                staging,
                bundle=bundle,
                force=force,
                resume=resume,
                device=device,
                progress=progress,
                store=store,
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
                store=store,
                sample_weights=sample_weights,
                world=world,
            )
    if world is None or world.is_main:
        shutil.rmtree(checkpoint_dir_for(out_dir), ignore_errors=True)
    return outcome


def _staged(out_dir: Path, lock: bool, world: Any) -> contextlib.AbstractContextManager[Any]:
    """The staging folder (:func:`staged_dir`); across processes only rank 0's (None elsewhere)."""
    from governance.models.artifacts import staged_dir

    if world is None:
        return staged_dir(out_dir, lock=lock)
    from governance.train.distributed import staged_on_main

    return staged_on_main(world, lambda: staged_dir(out_dir, lock=lock))


def _train_text(
    spec: Spec,
    out_dir: Path,
    staging: Path,
    *,
    bundle: DataBundle | None,
    force: bool,
    resume: bool,
    device: str,
    progress: bool,
    store: str | PathLike[str] | None,
) -> TrainOutcome:
    from governance.data.loading import load_bundle
    from governance.train.text import train_hf

    # -- evidence (issue 14): the data's privacy budget; HF attempts are recorded as they end.
    bundle = bundle if bundle is not None else load_bundle(spec)
    recorder = _begin_budget(spec, bundle, out_dir, resume=resume, store=store)
    with _budget_guard(recorder, out_dir):
        hf = train_hf(
            spec,
            out_dir,
            bundle=bundle,
            force=force,
            resume=resume,
            device=device,
            progress=progress,
            staging=staging,
        )
    _finish_budget(recorder, spec, hf.ledger, _budget_marker(out_dir), store=store)
    return hf


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
    store: str | PathLike[str] | None,
    sample_weights: SampleWeights | None = None,
    world: Any = None,
) -> TrainOutcome:
    from governance.canary_options import canary_options
    from governance.data.loading import load_bundle
    from governance.models.device import resolve_device
    from governance.train.trainer import PrivacySettings, Trainer

    assert spec.train is not None
    source = str(spec.source) if spec.source is not None else None
    bundle = bundle if bundle is not None else load_bundle(spec)
    train_frame = trainable_rows(spec, bundle)
    privacy_spec = spec.train.privacy
    device = resolve_device(device)
    if world is not None:
        from governance.train.distributed import device_for

        device = device_for(device, world)
    findings = gate(spec, bundle, force)

    schema = spec.data.public_schema
    preprocessor = preprocessor_for(bundle, schema=schema, private=privacy_spec is not None, source=source)
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
            reproducible_noise=privacy_spec.reproducible_noise,
        )
    digest = data_digest(bundle)
    if world is not None:
        from governance.train.distributed import check_same_data

        check_same_data(world, digest, source)
    checkpoints = checkpoint_dir_for(out_dir)
    main = world is None or world.is_main
    if not resume and checkpoints.exists() and main:
        shutil.rmtree(checkpoints)
    # -- evidence (issue 14): refuse a run past the data's total budget; record it as it goes.
    if world is None:
        recorder = _begin_budget(spec, bundle, out_dir, resume=resume, store=store)
    else:  # rank 0 records; its refusal ends every rank
        from governance.train.distributed import on_main

        recorder = on_main(world, lambda: _begin_budget(spec, bundle, out_dir, resume=resume, store=store))
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
        # Issue 18: a spec with audits.privacy.canaries trains its DP run with gradient canaries.
        canaries=canary_options(spec.audits) if privacy is not None else None,
        progress=progress,
        callbacks=(recorder.epoch,) if recorder is not None else (),
        data_digest=digest,
        sample_weights=None if sample_weights is None else sample_weights.values,
        world=world,
    )
    try:
        with _budget_guard(recorder, out_dir):
            result = trainer.fit()
    except ValueError as exc:
        from governance.train.canaries import CanaryError

        field = "audits.privacy.canaries" if isinstance(exc, CanaryError) else "train"
        raise InputError(source, field, str(exc)) from None
    _finish_budget(recorder, spec, result.ledger, _budget_marker(out_dir), store=store)
    ledger = dict(result.ledger)
    if ledger.get("privacy") and ledger["privacy"]["module_fixes"]:
        config["module_fixes"] = ledger["privacy"]["module_fixes"]
    ledger.update(
        {
            **provenance(spec, bundle, findings, force=force),
            "trusted_code": factory,
        }
    )
    if sample_weights is not None:
        ledger["sample_weights"] = {
            **ledger["sample_weights"],
            "origin": sample_weights.origin,
            **dict(sample_weights.details),
        }
    if ledger.get("privacy"):
        outside = private_statistics(bundle, schema) + gate_findings_item(findings)
        outside += [dict(item) for item in (sample_weights.outside if sample_weights is not None else ())]
        ledger["privacy"] = {
            **ledger["privacy"],
            "scope": with_items(ledger["privacy"]["scope"], "outside", outside),
        }
    if staging is None:  # a rank other than 0 of a multi-process run writes nothing
        return TrainOutcome(model_dir=out_dir, ledger=ledger)
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

    from governance.models.artifacts import (
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


def _budget_marker(out_dir: Path) -> Path:
    """Beside the checkpoints: the budget row of the run they belong to (``--resume`` keeps it)."""
    return out_dir.parent / f".{out_dir.name}.budget-run"


def _begin_budget(
    spec: Spec, bundle: DataBundle, out_dir: Path, *, resume: bool, store: str | PathLike[str] | None
) -> Any:
    """Check the data's privacy budget and record the run's start; None for non-private runs."""
    privacy = spec.train.privacy if spec.train is not None else None
    train_file = bundle.paths.get("train")
    if privacy is None or train_file is None or not Path(train_file).is_file():
        return None
    from governance._io import sha256_file
    from governance.evidence.budget import begin_dp_run
    from governance.train.dp import epsilon_for

    return begin_dp_run(
        source=str(spec.source) if spec.source is not None else None,
        data_digest=sha256_file(train_file),
        spec_name=spec.name,
        target_epsilon=privacy.target_epsilon,
        delta=privacy.delta,
        accountant=privacy.accountant,
        total_budget=privacy.total_budget,
        marker=_budget_marker(out_dir),
        resume=resume,
        store=store,
        compose=epsilon_for,
    )


@contextlib.contextmanager
def _budget_guard(recorder: Any, out_dir: Path) -> Iterator[None]:
    """A run that ends without a model stays in the budget, marked interrupted or failed.

    Its id stays beside the checkpoints for ``--resume``; with no checkpoint there is nothing to
    resume, and the marker goes.
    """
    try:
        yield
    except BaseException as exc:
        if recorder is not None:
            recorder.stop("interrupted" if isinstance(exc, KeyboardInterrupt) else "failed")
            if not checkpoint_dir_for(out_dir).exists():
                _budget_marker(out_dir).unlink(missing_ok=True)
        raise


def _finish_budget(
    recorder: Any, spec: Spec, ledger: Any, marker: Path, *, store: str | PathLike[str] | None
) -> None:
    """Close the run's budget row; HF clipping modes that failed first count as discarded attempts."""
    if recorder is None or not ledger.get("privacy"):
        return
    from governance.evidence.budget import record_discarded
    from governance.train.dp import epsilon_for

    privacy = dict(ledger["privacy"])
    target = spec.train.privacy  # type: ignore[union-attr]
    for failure in privacy.get("grad_sample_fallbacks") or ():
        record_discarded(
            recorder.data_digest,
            spec_name=spec.name,
            target_epsilon=target.target_epsilon,  # type: ignore[union-attr]
            delta=target.delta,  # type: ignore[union-attr]
            accountant=target.accountant,  # type: ignore[union-attr]
            why=str(failure),
            store=store,
        )
    total = recorder.finish(privacy, compose=epsilon_for)
    ledger["privacy"]["dataset_budget"] = total.to_dict()
    marker.unlink(missing_ok=True)


def _print(message: str) -> None:
    print(message, file=sys.stderr)
