"""The trainer: one training loop for plain and differentially private training.

Researchers use it directly::

    from governance import Trainer, PrivacySettings
    trainer = Trainer(model=net, train_data=(X, y), eval_data=(X_eval, y_eval),
                      privacy=PrivacySettings(target_epsilon=3, delta=1e-5, max_grad_norm=1.0),
                      epochs=10, batch_size=256, lr=0.5, seed=0)
    result = trainer.fit()
    result.epsilon, trainer.epsilon          # the spent ε (Opacus PRV upper bound)

``governance train`` builds the same trainer from a spec (:mod:`governance.train.api`).
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from governance.errors import InputError
from governance.models.device import resolve_device
from governance.train.clipping.proof import FAST, FUSED_MLP, FUSED_SEQUENTIAL, EngineProof
from governance.train.dp import (
    PrivacySettings,
    calibrate_noise,
    epsilon_for,
    fix_module,
    max_steps_within,
    planned_epsilons,
)
from governance.train.noise import noise_generator, noise_source
from governance.train.scope import privacy_scope

if TYPE_CHECKING:
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, Dataset

    from governance.canary_options import CanaryOptions

__all__ = ["EpochRecord", "PrivacySettings", "Trainer", "TrainingResult"]

LEDGER_VERSION = 1
#: Below this many parameters a model's per-step work is too small to gain from CPU threads.
SMALL_MODEL_PARAMS = 1_000_000

#: Opacus warnings that are expected here (we chose these settings) and would only confuse.
#: "Secure RNG turned off" is about Opacus' secure_mode (torchcsprng): our noise generator is
#: seeded from OS entropy instead (governance.train.noise), and a seeded run warns on its own.
OPACUS_NOISE = (
    "Secure RNG turned off",
    "Full backward hook is firing",
    "Optimal order is the largest alpha",
    "PrivacyEngine detected new dataset",
    "Using a non-full backward hook",
)
WARN_SEEDED_NOISE = (
    "reproducible_noise: the DP noise is drawn from the seed; the guarantee does not hold "
    "against anyone who holds it (research reruns only)"
)
ERR_RESUME_MISMATCH = "checkpoint was written by a different configuration ({key}: {old!r} != {new!r})"

DataLike = Any  # (X, y) tensors/arrays or a torch Dataset


@dataclass(frozen=True)
class EpochRecord:
    """One epoch of the ledger."""

    epoch: int
    steps: int
    #: Mean loss over the epoch's training batches; None for DP training, whose batches are the
    #: private rows (a loss measured on them is not covered by the guarantee): read eval_loss.
    train_loss: float | None
    eval_accuracy: float | None
    epsilon: float | None
    #: Mean cross-entropy on the eval split after the epoch (None without eval data).
    eval_loss: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "steps": self.steps,
            "train_loss": self.train_loss,
            "eval_loss": self.eval_loss,
            "eval_accuracy": self.eval_accuracy,
            "epsilon": self.epsilon,
        }


@dataclass(frozen=True)
class TrainingResult:
    """What :meth:`Trainer.fit` returns: the ledger (``training.json`` content) and the model."""

    ledger: Mapping[str, Any]
    model: Any = field(repr=False)  # the trained torch.nn.Module (unwrapped)

    @property
    def epsilon(self) -> float | None:
        """The spent ε, or None for non-private training."""
        privacy = self.ledger.get("privacy")
        if privacy is None or privacy["epsilon"] is None:
            return None
        return float(privacy["epsilon"])

    @property
    def history(self) -> list[dict[str, Any]]:
        return list(self.ledger["history"])


@dataclass(frozen=True)
class _ResumeState:
    """Where a run starts: the defaults start from scratch; :meth:`read` continues a checkpoint."""

    resumed: bool = False
    start_epoch: int = 0
    history: tuple[dict[str, Any], ...] = ()
    seconds: float = 0.0
    step_seconds: float = 0.0
    #: The accountant's (σ, q, steps) entries so far: the resumed run spends on top of them.
    accountant_history: tuple[tuple[float, float, int], ...] = ()
    #: The σ the interrupted run calibrated; reused so that the plan never changes.
    noise_multiplier: float | None = None
    attempts: int = 1
    #: The budget stopped the interrupted run: a resumed one takes no further step.
    stopped_early: bool = False

    @classmethod
    def read(cls, state: Mapping[str, Any]) -> _ResumeState:
        """The checkpoint's ``state.json`` (written by :meth:`Trainer._checkpoint_state`)."""
        return cls(
            resumed=True,
            start_epoch=int(state["epoch"]),
            history=tuple(state["history"]),
            seconds=float(state["seconds"]),
            step_seconds=float(state.get("step_seconds", 0.0)),
            accountant_history=tuple(tuple(h) for h in state.get("accountant_history", [])),
            noise_multiplier=state.get("noise_multiplier"),
            attempts=int(state.get("attempts", 1)) + 1,
            stopped_early=bool(state.get("stopped_early", False)),
        )


@dataclass(frozen=True)
class _Plain:
    """The run's own objects before privacy wraps them, and the generator its noise comes from."""

    model: nn.Module
    optimizer: Any
    loader: Any
    criterion: Any
    noise_gen: torch.Generator


@dataclass(frozen=True)
class _Run:
    """What the epochs train with: under DP the engine's wrappers, otherwise the plain objects."""

    #: What a step calls: the engine's wrapped module or fused step under DP, else the model.
    model: Any
    optimizer: Any
    criterion: Any
    loader: Any
    sample_rate: float
    noise_multiplier: float | None = None
    engine: Any = None  # holds the accountant; None without privacy
    proof: EngineProof | None = None

    @property
    def sigma(self) -> float:
        """σ as a number; 0 (clipping only, an ablation) spends no budget we could state."""
        return float(self.noise_multiplier or 0.0)


@dataclass(frozen=True)
class _Trained:
    """The run's totals after its epochs (resumed ones included), for the checkpoint and ledger."""

    history: list[dict[str, Any]]
    seconds: float
    step_seconds: float
    stopped_early: bool


def _as_dataset(data: DataLike) -> Dataset:
    import numpy as np
    import torch
    from torch.utils.data import Dataset

    if isinstance(data, Dataset):
        return data
    x, y = data
    x_t = x.float() if isinstance(x, torch.Tensor) else torch.tensor(np.asarray(x), dtype=torch.float32)
    y_t = y.long() if isinstance(y, torch.Tensor) else torch.tensor(np.asarray(y), dtype=torch.long)
    return _batched_tensor_dataset(x_t, y_t)


def _batched_tensor_dataset(x: torch.Tensor, y: torch.Tensor) -> Dataset:
    """A dataset that fetches a whole batch with one index operation.

    Why: the DataLoader otherwise indexes row by row and stacks 256 tiny tensors per batch,
    which costs more than a small model's forward and backward pass; the trainer goes further
    and skips the DataLoader for it (:func:`governance.train.sampling.iterate_batches`).
    """
    from governance.train.sampling import TensorRows

    return TensorRows(x, y)


def _collate(batch: Any) -> Any:
    """Batches from ``__getitems__`` are already tensors; anything else is stacked as usual."""
    from torch.utils.data import default_collate

    if isinstance(batch, tuple) and batch and all(hasattr(t, "shape") for t in batch):
        return batch
    return default_collate(batch)


class Trainer:
    """Train a classifier, privately (Opacus) when ``privacy`` is given.

    Parameters
    ----------
    model
        The ``nn.Module`` mapping a float batch to class logits. Opacus-incompatible layers
        (BatchNorm) are replaced by :func:`opacus.validators.ModuleValidator.fix`; the
        replacements are listed in the ledger (``privacy.module_fixes``).
    train_data, eval_data
        ``(X, y)`` arrays/tensors (``y`` integer class indices) or a ``torch`` Dataset.
    privacy
        :class:`PrivacySettings`, or None for non-private training.
    epochs, batch_size, lr
        Planned epochs, (expected logical) batch size, learning rate.
    optimizer
        ``sgd`` or ``adam``; ``momentum`` applies to SGD.
    max_physical_batch_size
        DP only: split logical batches into physical ones of at most this size (Opacus
        ``BatchMemoryManager``), so a large logical batch fits in memory.
    seed
        Seeds the model-independent randomness (batch sampling); the same seed and data give the
        same batches. The DP noise comes from OS entropy, so two DP runs differ, unless
        ``privacy.reproducible_noise`` draws it from this seed too (then the same seed and data
        give the same weights and ledger, and the guarantee does not hold against the seed's
        holders).
    device
        ``cpu``, ``cuda`` or ``auto``.
    checkpoint_dir
        Where to write a checkpoint after every epoch; with ``resume=True`` training continues
        from it, keeping the accountant's history.
    progress
        Show a rich progress bar on stderr (only when stderr is a terminal).
    callbacks
        Called with each :class:`EpochRecord` after that epoch's checkpoint is written.
    num_threads
        CPU threads for torch during :meth:`fit` (restored afterwards); None leaves torch's
        setting; ``auto`` (default) uses one thread for models under a million parameters on
        CPU: their per-step work is too small to split, and on a busy machine extra threads
        only contend (we measured 20-30x slower steps with two threads on a loaded 2-core box).
    sample_weights
        One weight per training row (in-memory data only): a weighted loss without privacy; under
        DP divided by their maximum and applied after per-sample clipping, ``w_i·clip(g_i)``, on
        every engine (:mod:`governance.train.sample_weights`); the ε is the unweighted run's.
    world
        A :class:`governance.train.distributed.World` (an initialised process group) to train
        across processes: each rank takes its share of the one-process Poisson batch and clips
        it, the clipped sums are all-reduced and rank 0 alone adds the noise (the fused steps,
        or Opacus' DistributedDPOptimizer), so ε, σ, q and the steps are those of one process;
        only rank 0 writes checkpoints.
    """

    def __init__(
        self,
        *,
        model: nn.Module,
        train_data: DataLike,
        eval_data: DataLike | None = None,
        privacy: PrivacySettings | None = None,
        epochs: int = 10,
        batch_size: int = 64,
        lr: float = 0.05,
        optimizer: str = "sgd",
        momentum: float = 0.0,
        max_physical_batch_size: int | None = None,
        seed: int = 0,
        device: str = "cpu",
        checkpoint_dir: str | Path | None = None,
        resume: bool = False,
        progress: bool = False,
        callbacks: Sequence[Callable[[EpochRecord], None]] = (),
        num_threads: int | Literal["auto"] | None = "auto",
        data_digest: str | None = None,
        sample_weights: Any = None,
        canaries: CanaryOptions | None = None,
        world: Any = None,
    ) -> None:
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if world is not None and privacy is None:
            raise ValueError("training across processes (world) needs privacy settings: it runs DP-SGD")
        if optimizer not in ("sgd", "adam"):
            raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
        self.model = model
        self.train_set = _as_dataset(train_data)
        self.eval_set = None if eval_data is None else _as_dataset(eval_data)
        self.privacy = privacy
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.optimizer_name = optimizer
        self.momentum = float(momentum)
        self.max_physical_batch_size = max_physical_batch_size
        self.seed = int(seed)
        self.device = resolve_device(device)
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.resume = resume
        self.progress = progress
        self.callbacks = tuple(callbacks)
        self.num_threads = num_threads
        #: SHA-256 of the training rows (part of the --resume fingerprint and the ledger).
        self.data_digest = data_digest
        #: A governance.train.distributed.World when training runs across processes (issue 17).
        self.world = world
        self._result: TrainingResult | None = None
        self._frozen_for_run: list[Any] = []  # parameters of never-called modules, during fit
        #: Issue 18: a CanaryOptions makes this DP run carry gradient canaries (train/canaries.py).
        self.canary_options = canaries
        if canaries is not None and privacy is None:
            raise ValueError("gradient canaries audit a DP run: set privacy")
        self._canaries: Any = None
        self.sample_weights: Any = None
        if sample_weights is not None:
            if canaries is not None:
                # A canary row has no weight and the weights' max-normalisation would not see it.
                raise ValueError("gradient canaries and sample_weights cannot be combined in one run")
            self._set_sample_weights(sample_weights)

    def _set_sample_weights(self, weights: Any) -> None:
        """The weights become a third tensor of the training rows, so every batch carries its own."""
        from governance.train.sample_weights import prepare_weights
        from governance.train.sampling import TensorRows

        if not isinstance(self.train_set, TensorRows):
            raise ValueError("sample_weights need in-memory (X, y) training data")
        rows = len(self.train_set)
        self.sample_weights = prepare_weights(weights, rows, private=self.privacy is not None)
        self.train_set = TensorRows(*self.train_set.tensors[:2], self.sample_weights)

    # -- public -----------------------------------------------------------------------------

    @property
    def epsilon(self) -> float | None:
        """The spent ε after :meth:`fit` (None before, or for non-private training)."""
        return None if self._result is None else self._result.epsilon

    @property
    def result(self) -> TrainingResult | None:
        return self._result

    def fit(self) -> TrainingResult:
        """Train and return the ledger; see :class:`TrainingResult`."""
        import torch

        previous = torch.get_num_threads()
        threads = self.num_threads
        if threads == "auto":
            small = sum(p.numel() for p in self.model.parameters()) < SMALL_MODEL_PARAMS
            threads = 1 if small and self.device == "cpu" else None
        if threads is not None:
            torch.set_num_threads(threads)
        try:
            return self._fit()
        finally:
            torch.set_num_threads(previous)

    def _fit(self) -> TrainingResult:
        import warnings

        with warnings.catch_warnings():
            for message in OPACUS_NOISE:
                warnings.filterwarnings("ignore", message=message)
            return self._fit_quietly()

    def _fit_quietly(self) -> TrainingResult:
        import warnings

        import torch

        rows = len(self.train_set)  # type: ignore[arg-type]
        if self.privacy is not None and self.privacy.delta >= 1.0 / rows:
            raise ValueError(f"delta {self.privacy.delta} must be below 1/rows = {1.0 / rows:.3g}")
        torch.manual_seed(self.seed)
        sampler_gen = torch.Generator().manual_seed(self.seed)
        reproducible = self.privacy is not None and self.privacy.reproducible_noise
        # The noise never comes from the printed seed unless asked (governance.train.noise).
        noise_gen = noise_generator(self.device, seed=self.seed, reproducible=reproducible)
        if reproducible:
            # stacklevel 4: the warning points at the caller of fit(), through fit and _fit.
            warnings.warn(WARN_SEEDED_NOISE, UserWarning, stacklevel=4)

        model, fixes = self._prepare_model()
        optimizer = self._make_optimizer(model)
        loader = self._make_loader(sampler_gen)
        criterion: Any = torch.nn.CrossEntropyLoss()
        start = self._resume(model, optimizer, sampler_gen, noise_gen)
        plain = _Plain(
            model=model, optimizer=optimizer, loader=loader, criterion=criterion, noise_gen=noise_gen
        )
        run = self._prepare_run(plain, start, rows)
        trained = self._train_epochs(model, run, sampler_gen, noise_gen, start)
        ledger = self._ledger(run, start, trained, rows, fixes)
        self._result = TrainingResult(ledger=ledger, model=model)
        return self._result

    def _prepare_model(self) -> tuple[nn.Module, tuple[str, ...]]:
        """The model on the device and, under DP, the Opacus-incompatible layers replaced in it
        (their list goes to the ledger); the trainer keeps the replaced model."""
        model = self.model
        fixes: tuple[str, ...] = ()
        if self.privacy is not None:
            model, report = fix_module(model)
            fixes = report.problems
            self.model = model
        model.to(self.device)
        return model, fixes

    def _resume(
        self, model: nn.Module, optimizer: Any, sampler_gen: torch.Generator, noise_gen: torch.Generator
    ) -> _ResumeState:
        """Where this run starts: with a checkpoint, its weights, optimiser state and random
        states restored in place and its totals carried on; without, from scratch."""
        import torch

        checkpoint = self._load_checkpoint()
        if checkpoint is None:
            return _ResumeState()
        model.load_state_dict(checkpoint.model)
        optimizer.load_state_dict(checkpoint.optimizer)
        torch.set_rng_state(checkpoint.rng["torch"])
        sampler_gen.set_state(checkpoint.rng["sampler"])
        reproducible = self.privacy is not None and self.privacy.reproducible_noise
        if reproducible and "noise" in checkpoint.rng:
            noise_gen.set_state(checkpoint.rng["noise"].to(noise_gen.get_state().device))
        return _ResumeState.read(checkpoint.state)

    def _prepare_run(self, plain: _Plain, start: _ResumeState, rows: int) -> _Run:
        """What the epochs train with: the DP engine's wrappers under privacy, the plain objects
        otherwise, and a criterion that takes each row's weight when the rows carry weights."""
        if self.privacy is None:
            run = _Run(
                model=plain.model,
                optimizer=plain.optimizer,
                criterion=plain.criterion,
                loader=plain.loader,
                sample_rate=1.0 / max(1, len(plain.loader)),
                noise_multiplier=start.noise_multiplier,
            )
        else:
            run = self._private_run(plain, start, rows)
        if self.sample_weights is not None:
            from governance.train.sample_weights import weighted_criterion

            engine = run.proof.engine if run.proof is not None else None
            with self._engine_removed_on_error(run.engine, run.model, run.criterion):
                weighted = weighted_criterion(run.criterion, engine=engine, optimizer=run.optimizer)
            run = replace(run, criterion=weighted)
        return run

    def _private_run(self, plain: _Plain, start: _ResumeState, rows: int) -> _Run:
        """The run made private: σ, the proven engine's wrappers, the accountant carrying on the
        checkpoint's history, and the canaries (if any) bound to that engine."""
        assert self.privacy is not None
        privacy = self.privacy
        run = self._make_private(plain, start.noise_multiplier)
        run.engine.accountant.history = list(start.accountant_history)
        # The engine is on the user's model from here: a refusal below (canaries, the budget)
        # must take it off again, as a failed step does (_engine_removed_after).
        with self._engine_removed_on_error(run.engine, run.model, run.criterion):
            assert run.proof is not None
            self._canaries = self._bind_canaries(
                plain.model, run.model, run.criterion, run.proof, run.sample_rate, rows, run.sigma
            )
            if run.sigma:
                # Fills epsilon_for's memo before the first step, so that the accountant's work
                # arrays are freed before training allocates its own (a lower peak memory).
                planned_epsilons(
                    run.engine.accountant.history,
                    run.sigma,
                    run.sample_rate,
                    len(run.loader),
                    self.epochs - start.start_epoch,
                    target_epsilon=privacy.target_epsilon,
                    delta=privacy.delta,
                    accountant=privacy.accountant,
                )
        return run

    def _train_epochs(
        self,
        model: nn.Module,
        run: _Run,
        sampler_gen: torch.Generator,
        noise_gen: torch.Generator,
        start: _ResumeState,
    ) -> _Trained:
        """The epochs after the checkpoint's, each one checkpointed, then reported; under DP the
        run stops where the next step would spend more than the budget."""
        records = list(start.history)
        seconds, step_seconds, stopped_early = start.seconds, start.step_seconds, start.stopped_early
        with (
            self._progress_bar(start.start_epoch) as advance,
            self._engine_removed_after(run.engine, run.model, run.criterion),
        ):
            for epoch in range(start.start_epoch + 1, self.epochs + 1):
                if stopped_early:
                    break
                t0 = time.perf_counter()
                limit, projected = self._epoch_limit(run)
                if limit is not None and limit < len(run.loader):
                    stopped_early = True
                if limit == 0:
                    break
                loss, steps, took = self._run_epoch(
                    run.model, run.optimizer, run.loader, run.criterion, limit, run.engine
                )
                step_seconds += took
                accuracy, eval_loss = self._evaluate(model)
                epsilon = self._epoch_epsilon(run, limit, projected, steps)
                seconds += time.perf_counter() - t0
                record = EpochRecord(epoch, steps, loss, accuracy, epsilon, eval_loss)
                records.append(record.to_dict())
                so_far = _Trained(records, seconds, step_seconds, stopped_early)
                state = self._checkpoint_state(epoch, so_far, run, start.attempts)
                self._save_checkpoint(model, run.optimizer, sampler_gen, noise_gen, state)
                advance(record)
                for callback in self.callbacks:
                    callback(record)
        return _Trained(records, seconds, step_seconds, stopped_early)

    def _epoch_limit(self, run: _Run) -> tuple[int | None, float | None]:
        """The next epoch's step limit and the ε projected after all of its planned steps
        (:meth:`_plan_epoch`); (None, None) when no budget is spent."""
        if self.privacy is None or run.sigma <= 0:
            return None, None
        history = run.engine.accountant.history
        return self._plan_epoch(self.privacy, history, run.sigma, run.sample_rate, len(run.loader))

    def _epoch_epsilon(
        self, run: _Run, limit: int | None, projected: float | None, steps: int
    ) -> float | None:
        """The ε spent after an epoch (None when no budget is spent)."""
        if self.privacy is None or run.sigma <= 0:
            return None
        if projected is not None and steps == limit:
            return projected  # the history now is exactly what was projected
        return epsilon_for(run.engine.accountant.history, self.privacy.delta, self.privacy.accountant)

    def _checkpoint_state(self, epoch: int, trained: _Trained, run: _Run, attempts: int) -> dict[str, Any]:
        """What a resumed run reads back (:meth:`_ResumeState.read`), and the fingerprint that
        refuses a different configuration."""
        return {
            "epoch": epoch,
            "history": trained.history,
            "seconds": trained.seconds,
            "step_seconds": trained.step_seconds,
            "accountant_history": [list(h) for h in (run.engine.accountant.history if run.engine else [])],
            "noise_multiplier": run.noise_multiplier,
            "attempts": attempts,
            "stopped_early": trained.stopped_early,
            "fingerprint": self._fingerprint(),
        }

    def _ledger(
        self, run: _Run, start: _ResumeState, trained: _Trained, rows: int, fixes: tuple[str, ...]
    ) -> dict[str, Any]:
        """The ledger (``training.json``): the run's settings, totals and history; the privacy
        block under DP; the weights' summary when the rows carry weights."""
        records = trained.history
        last = records[-1] if records else None
        ledger: dict[str, Any] = {
            "ledger_version": LEDGER_VERSION,
            "seconds": trained.seconds,
            "step_seconds": trained.step_seconds,
            "epochs": len(records),
            "planned_epochs": self.epochs,
            "steps": sum(int(r["steps"]) for r in records),
            "batch_size": self.batch_size,
            "max_physical_batch_size": self.max_physical_batch_size,
            "rows": rows,
            "optimizer": self.optimizer_name,
            "lr": self.lr,
            "momentum": self.momentum,
            "data_digest": self.data_digest,
            "seed": self.seed,
            "device": self.device,
            "history": records,
            "train_loss": last["train_loss"] if last is not None else None,
            "eval_loss": last.get("eval_loss") if last is not None else None,
            "eval_accuracy": last["eval_accuracy"] if last is not None else None,
            "resumed": start.resumed,
            "attempts": start.attempts,
            "world_size": 1 if self.world is None else self.world.size,
        }
        if self.privacy is not None:
            ledger["privacy"] = self._privacy_ledger(run, trained.stopped_early, fixes)
        if self.sample_weights is not None:
            from governance.train.sample_weights import SCOPE_NOTE, weights_ledger

            ledger["sample_weights"] = weights_ledger(self.sample_weights, private=self.privacy is not None)
            if self.privacy is not None:
                ledger["privacy"]["scope"] = {**ledger["privacy"]["scope"], "sample_weights": SCOPE_NOTE}
        return ledger

    def _privacy_ledger(self, run: _Run, stopped_early: bool, fixes: tuple[str, ...]) -> dict[str, Any]:
        """The ledger's ``privacy`` block: the guarantee (ε, δ, σ, q, steps), how it was kept
        (engine and its proof, accountant history) and what it covers."""
        assert self.privacy is not None and run.proof is not None
        privacy, proof = self.privacy, run.proof
        spent = [tuple(h) for h in run.engine.accountant.history]
        source = noise_source(privacy.reproducible_noise)
        block: dict[str, Any] = {
            "accountant": privacy.accountant,
            "noise_multiplier": run.noise_multiplier,
            "sample_rate": run.sample_rate,
            "steps": sum(int(h[2]) for h in spent),
            "max_grad_norm": privacy.max_grad_norm,
            "delta": privacy.delta,
            # σ = 0 (clipping only, an ablation) gives no privacy: ε is infinite, written null.
            "epsilon": epsilon_for(spent, privacy.delta, privacy.accountant)
            if run.noise_multiplier
            else None,
            "target_epsilon": privacy.target_epsilon,
            "grad_sample_mode": proof.grad_sample_mode,
            "engine": proof.engine,
            "engine_proof": proof.to_dict(),
            "poisson_sampling": privacy.poisson_sampling,
            "noise_source": source,
            # What the guarantee covers; train.api adds what the run publishes outside it.
            "scope": privacy_scope(noise_source=source),
            "stopped_early": stopped_early,
            "module_fixes": list(fixes),
            "accountant_history": [list(h) for h in spent],
        }
        if self._canaries is not None:
            block["canaries"] = self._canaries.ledger(noise_multiplier=run.sigma, steps=block["steps"])
        return block

    # -- pieces -----------------------------------------------------------------------------

    @staticmethod
    def _plan_epoch(
        privacy: PrivacySettings,
        history: Sequence[tuple[float, float, int]],
        sigma: float,
        sample_rate: float,
        planned: int,
    ) -> tuple[int, float | None]:
        """Steps this epoch may take without overspending, and the ε after all of them.

        Stop when the budget is reached: a step that would take the spent ε past the target is
        never started. Returns (planned, projected ε) normally, (fewer, None) at the budget.
        """
        history = list(history)
        projected = epsilon_for([*history, (sigma, sample_rate, planned)], privacy.delta, privacy.accountant)
        if projected <= privacy.target_epsilon:
            return planned, projected
        limit = max_steps_within(
            history,
            sigma,
            sample_rate,
            planned,
            target_epsilon=privacy.target_epsilon,
            delta=privacy.delta,
            accountant=privacy.accountant,
        )
        return limit, None

    def _fingerprint(self) -> dict[str, Any]:
        privacy = None
        if self.privacy is not None:
            privacy = {
                "target_epsilon": self.privacy.target_epsilon,
                "delta": self.privacy.delta,
                "max_grad_norm": self.privacy.max_grad_norm,
                "accountant": self.privacy.accountant,
            }
        return {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "seed": self.seed,
            "rows": len(self.train_set),  # type: ignore[arg-type]
            "privacy": privacy,
            # Every optimiser setting and the data itself: a different file with the same row
            # count, or another momentum, must not continue this run.
            "optimizer": self.optimizer_name,
            "momentum": self.momentum,
            "max_physical_batch_size": self.max_physical_batch_size,
            "data_digest": self.data_digest,
        } | ({} if self.sample_weights is None else {"sample_weights": _digest(self.sample_weights)})

    def _make_optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        import torch

        if self.optimizer_name == "adam":
            return torch.optim.Adam(model.parameters(), lr=self.lr)
        return torch.optim.SGD(model.parameters(), lr=self.lr, momentum=self.momentum)

    def _make_loader(self, generator: torch.Generator) -> DataLoader:
        """Shuffled batches of ``batch_size``; the DataLoader a plain training epoch walks."""
        from torch.utils.data import DataLoader

        from governance.train.sampling import ShuffleBatchSampler, TensorRows

        sampler = ShuffleBatchSampler(
            len(self.train_set),  # type: ignore[arg-type]
            self.batch_size,
            generator,
            as_list=not isinstance(self.train_set, TensorRows),
        )
        return DataLoader(self.train_set, batch_sampler=sampler, collate_fn=_collate)

    def _make_poisson_loader(self, loader: DataLoader) -> DataLoader:
        """Poisson batches for DP: the same expected batch size and steps per epoch as ``loader``.

        Replaces Opacus' ``DPDataLoader`` (same ``q = 1/len(loader)``, same steps, same generator)
        with :class:`governance.train.sampling.PoissonBatchSampler`, which draws the identical
        distribution in O(batch) instead of O(rows) per step.
        """
        from opacus.data_loader import wrap_collate_with_empty
        from torch.utils.data import DataLoader, default_collate

        from governance.train.sampling import PoissonBatchSampler, TensorRows

        dataset = loader.dataset
        tensor_rows = isinstance(dataset, TensorRows)
        steps = len(loader)
        sampler = PoissonBatchSampler(
            num_samples=len(dataset),  # type: ignore[arg-type]
            sample_rate=1.0 / steps,
            steps=steps,
            generator=loader.batch_sampler.generator,  # type: ignore[union-attr]
            as_list=not tensor_rows,
        )
        if self.world is not None:
            from governance.train.distributed import RankShare

            sampler = RankShare(sampler, self.world)  # type: ignore[assignment]
        collate: Any = _collate
        if not tensor_rows:
            # A Poisson batch can be empty: learn the batch structure as Opacus' DPDataLoader does.
            first = dataset[0]
            collate = wrap_collate_with_empty(
                collate_fn=default_collate,
                sample_empty_shapes=[(0, *tuple(getattr(t, "shape", ()))) for t in first],
                dtypes=[getattr(t, "dtype", type(t)) for t in first],
            )
        return DataLoader(dataset, batch_sampler=sampler, collate_fn=collate)

    def _make_private(self, plain: _Plain, noise_multiplier: float | None) -> _Run:
        """Calibrate σ, prove which clipping engine may train ``model`` (:mod:`governance.train.
        clipping.proof`), and wrap model, optimizer, loader and criterion with it."""
        assert self.privacy is not None
        sigma = self._noise_multiplier(noise_multiplier, len(plain.loader))
        # Opacus' hooks touch torch.distributed.tensor on the first backward pass, a lazy import of
        # about a second: do it here so that the ledger's step time measures steps, not imports.
        import torch.distributed.tensor  # noqa: F401

        if self.privacy.poisson_sampling:
            plain = replace(plain, loader=self._make_poisson_loader(plain.loader))
        proof = self._prove_engine(plain.model, plain.criterion)
        if proof.engine in (FUSED_MLP, FUSED_SEQUENTIAL, FAST):
            return self._make_fast_private(plain, sigma, proof)
        self._freeze_unused(plain.model, proof)
        try:
            return self._make_opacus_private(plain, sigma, proof)
        except BaseException:  # Opacus refused: the user's model keeps its trainable parameters
            self._thaw_frozen()
            raise

    def _noise_multiplier(self, stored: float | None, steps_per_epoch: int) -> float:
        """σ: a resumed run's stored one, else the configured one, else calibrated once on the exact
        number of steps the run plans; a resumed run reuses it, so the plan never changes."""
        assert self.privacy is not None
        privacy = self.privacy
        if stored is not None:
            return stored
        if privacy.noise_multiplier is not None:
            return privacy.noise_multiplier
        return calibrate_noise(
            target_epsilon=privacy.target_epsilon,
            delta=privacy.delta,
            sample_rate=1.0 / steps_per_epoch,
            steps=steps_per_epoch * self.epochs,
            accountant=privacy.accountant,
        )

    def _freeze_unused(self, model: nn.Module, proof: EngineProof) -> None:
        """Freeze, for the run, the modules the forward pass never calls (:attr:`EngineProof.
        unused`): Opacus has no per-sample gradient for them and refuses to step."""
        modules = dict(model.named_modules())
        self._frozen_for_run = [
            p for name in proof.unused for p in modules[name].parameters(recurse=False) if p.requires_grad
        ]
        for p in self._frozen_for_run:
            p.requires_grad_(False)

    def _make_opacus_private(self, plain: _Plain, noise_multiplier: float, proof: EngineProof) -> _Run:
        """Opacus' engine in the proven mode; under ``auto``, hooks when Opacus refuses the
        proven ghost clipping for this model (the proof then names the engine that trains)."""
        import warnings

        from opacus import PrivacyEngine

        assert self.privacy is not None
        privacy = self.privacy
        mode = proof.grad_sample_mode
        attempts = [mode, "hooks"] if privacy.grad_sample_mode == "auto" and mode == "ghost" else [mode]
        last_error: Exception | None = None
        for candidate in attempts:
            engine = PrivacyEngine(accountant=privacy.accountant)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    wrapped = engine.make_private(
                        module=plain.model if self.world is None else _distributed(plain.model),
                        optimizer=plain.optimizer,
                        data_loader=plain.loader,
                        criterion=plain.criterion,
                        noise_multiplier=noise_multiplier,
                        max_grad_norm=privacy.max_grad_norm,
                        # The loader already samples Poisson batches (_make_poisson_loader).
                        poisson_sampling=False,
                        noise_generator=plain.noise_gen,
                        grad_sample_mode=candidate,
                        batch_first=proof.batch_first,
                    )
            except (NotImplementedError, ValueError) as exc:
                last_error = exc
                continue
            dp_model, dp_opt, dp_criterion, dp_loader = self._finish_opacus(wrapped, plain.criterion)
            if candidate != mode:
                proof = replace(proof, engine=f"opacus-{candidate}")
            return _Run(
                model=dp_model,
                optimizer=dp_opt,
                criterion=dp_criterion,
                loader=dp_loader,
                sample_rate=1.0 / len(dp_loader),
                noise_multiplier=noise_multiplier,
                engine=engine,
                proof=proof,
            )
        raise ValueError(f"Opacus cannot make this model private: {last_error}")

    def _finish_opacus(self, wrapped: tuple[Any, ...], criterion: Any) -> tuple[Any, Any, Any, Any]:
        """(model, optimizer, criterion, loader) from ``make_private``, which hands back a
        criterion only for ghost clipping; made ready for Poisson batches and processes."""
        if len(wrapped) == 4:
            dp_model, dp_opt, dp_criterion, dp_loader = wrapped
        else:
            dp_model, dp_opt, dp_loader = wrapped
            dp_criterion = criterion
        if self.world is not None:
            from governance.train.distributed import coalesce_reduction

            coalesce_reduction(dp_opt)
        if self.privacy is not None and self.privacy.poisson_sampling:
            # What make_private(poisson_sampling=True) would do: with Poisson batches a step
            # must never accumulate gradients of two batches.
            dp_model.forbid_grad_accumulation()
        return dp_model, dp_opt, dp_criterion, dp_loader

    def _bind_canaries(
        self,
        model: nn.Module,
        dp_model: Any,
        criterion: Any,
        proof: EngineProof,
        sample_rate: float,
        rows: int,
        noise_multiplier: float,
    ) -> Any:
        """Issue 18: the run's gradient canaries, bound to the engine that trains it (None without)."""
        if self.canary_options is None:
            return None
        from governance.train.canaries import CanaryError, GradientCanaries

        if self.max_physical_batch_size:
            raise CanaryError("gradient canaries need whole logical batches: unset max_physical_batch_size")
        if self.resume:
            raise CanaryError(
                "a canary run cannot resume: its canaries' secret does not survive a checkpoint"
            )
        if self.world is not None:
            # The canary rows would join every rank's clipped sum, not only rank 0's.
            raise CanaryError("gradient canaries run in one process: drop --processes")

        assert self.privacy is not None
        canaries = GradientCanaries(self.canary_options, max_grad_norm=self.privacy.max_grad_norm)
        canaries.bind(
            model,
            engine=proof.engine,
            sample_rate=sample_rate,
            expected_batch_size=int(rows * sample_rate),
            noise_multiplier=float(noise_multiplier),
        )
        if proof.engine == "opacus-ghost":
            canaries.wrap_ghost(dp_model)
        elif proof.engine in (FUSED_MLP, FAST):
            # The fast paths' clipping object: fused, the step (which is the model); fast, the criterion.
            (dp_model if proof.engine == FUSED_MLP else criterion).canaries = canaries
        return canaries

    def _prove_engine(self, model: nn.Module, criterion: Any) -> EngineProof:
        """The proof of :func:`governance.train.clipping.proof.prove` on two small batches of the
        training rows, with the fast path's gradient check on the first."""
        from governance.train.clipping.proof import fast_gradient_check, prove, sample_batches

        assert self.privacy is not None
        batches = sample_batches(self.train_set, self.batch_size)
        first = batches[0].to(self.device)
        second = batches[1].to(self.device)
        targets = _first_targets(self.train_set, int(first.shape[0])).to(self.device)
        check = fast_gradient_check(model, criterion, first, targets)
        proof = prove(
            model,
            criterion,
            (first, second),
            requested=self.privacy.grad_sample_mode,
            fast_allowed=not self.max_physical_batch_size,
            gradient_check=check,
            unavailable=self._engines_unavailable(),
        )
        if self.world is not None:
            from governance.train.distributed import engine_across_processes

            proof = engine_across_processes(
                proof,
                self.privacy.grad_sample_mode,
                lambda: prove(
                    model,
                    criterion,
                    (first, second),
                    requested="auto",
                    fast_allowed=False,
                    gradient_check=check,
                    unavailable=self._engines_unavailable(),
                ),
            )
        return proof

    def _engines_unavailable(self) -> dict[str, str]:
        """Engines this run cannot use although the proof may admit them."""
        if self.canary_options is None:
            return {}
        from governance.train.canaries import CANARY_ENGINES

        why = "gradient canaries do not run through this engine"
        return {engine: why for engine in (FUSED_MLP, FUSED_SEQUENTIAL) if engine not in CANARY_ENGINES}

    @contextlib.contextmanager
    def _engine_removed_after(self, engine: Any, dp_model: Any, criterion: Any) -> Iterator[None]:
        """Remove the DP engine when training ends, also when it raises: the user's model is a
        plain ``nn.Module`` again either way."""
        try:
            yield
        finally:
            if engine is not None:
                self._release_engine(dp_model, criterion)

    @contextlib.contextmanager
    def _engine_removed_on_error(self, engine: Any, dp_model: Any, criterion: Any) -> Iterator[None]:
        """Remove the DP engine if the set-up after attaching it raises."""
        try:
            yield
        except BaseException:
            if engine is not None:
                self._release_engine(dp_model, criterion)
            raise

    def _release_engine(self, dp_model: Any, criterion: Any) -> None:
        """Opacus' hooks on ``dp_model``, ours on the criterion; parameters frozen for the run
        (:attr:`EngineProof.unused`) trainable again."""
        try:
            close = getattr(dp_model, "_close", None)  # Opacus' GradSampleModule
            if close is not None:
                close()
            if hasattr(criterion, "close"):
                criterion.close()
        finally:
            self._thaw_frozen()

    def _thaw_frozen(self) -> None:
        """The parameters :meth:`_freeze_unused` froze for the run, trainable again."""
        for p in self._frozen_for_run:
            p.requires_grad_(True)
        self._frozen_for_run = []

    def _make_fast_private(self, plain: _Plain, noise_multiplier: float, proof: EngineProof) -> _Run:
        """The fast path (see governance.train.clipping): Opacus' Poisson
        loader and accountant, our single-pass clipping; ``fused``: the hand-written step for
        Sequential Linear/ReLU MLPs with cross-entropy (FusedMLPStep), model and criterion in one."""
        from types import SimpleNamespace

        from opacus.accountants import create_accountant

        from governance.train.clipping.linear import FastLinearClipping, FastOptimizer, FusedMLPStep
        from governance.train.clipping.sequential import FusedSequentialStep

        assert self.privacy is not None
        # The loader arrives Poisson already when poisson_sampling is on (_make_private).
        model, loader = plain.model, plain.loader
        sample_rate = 1.0 / len(loader)
        expected_batch_size = int(len(loader.dataset) * sample_rate)
        accountant = create_accountant(mechanism=self.privacy.accountant)
        fast_optimizer = FastOptimizer(
            plain.optimizer, accountant, noise_multiplier=noise_multiplier, sample_rate=sample_rate
        )
        engine = SimpleNamespace(accountant=accountant)
        # Across processes: rank 0 alone draws the noise; the step all-reduces the gradients.
        step_sigma = noise_multiplier if self.world is None or self.world.is_main else 0.0
        if self.world is not None:
            from governance.train.distributed import SummedAcrossRanks, broadcast_from_main

            broadcast_from_main(model)
            fast_optimizer = SummedAcrossRanks(fast_optimizer)  # type: ignore[assignment]
        settings: dict[str, Any] = {
            "noise_multiplier": step_sigma,
            "max_grad_norm": self.privacy.max_grad_norm,
            "expected_batch_size": expected_batch_size,
            "generator": plain.noise_gen,
        }
        trains: Any = model
        criterion: Any
        if proof.engine in (FUSED_MLP, FUSED_SEQUENTIAL):
            fused_step = FusedMLPStep if proof.engine == FUSED_MLP else FusedSequentialStep
            trains = fused_step(model, plain.optimizer, **settings)
            criterion = trains.criterion
        else:
            criterion = FastLinearClipping(model, plain.optimizer, plain.criterion, **settings)
        return _Run(
            model=trains,
            optimizer=fast_optimizer,
            criterion=criterion,
            loader=loader,
            sample_rate=sample_rate,
            noise_multiplier=noise_multiplier,
            engine=engine,
            proof=proof,
        )

    def _batches(self, loader: Any, optimizer: Any) -> contextlib.AbstractContextManager[Any]:
        if self.privacy is not None and self.max_physical_batch_size:
            from opacus.utils.batch_memory_manager import BatchMemoryManager

            return BatchMemoryManager(
                data_loader=loader, max_physical_batch_size=self.max_physical_batch_size, optimizer=optimizer
            )
        return contextlib.nullcontext(loader)

    def _run_epoch(
        self, model: Any, optimizer: Any, loader: Any, criterion: Any, limit: int | None, engine: Any
    ) -> tuple[float | None, int, float]:
        """One epoch; returns (mean train loss, logical steps taken, seconds in steps)."""
        import torch

        model.train()
        total, count, steps = 0.0, 0, 0
        start_steps = _accounted_steps(engine)
        t0 = time.perf_counter()
        from governance.train.sampling import iterate_batches

        with self._batches(loader, optimizer) as batches:
            for x, y, *weights in iterate_batches(batches):  # weights: [w] with sample_weights
                x = x.to(self.device, non_blocking=True)
                y = y.to(self.device, non_blocking=True)
                optimizer.zero_grad(set_to_none=True)
                canaries = self._canaries
                if canaries is not None:
                    canaries.begin_step()
                out = model(x)
                loss = criterion(out, y, *(w.to(self.device) for w in weights))
                loss.backward()
                if canaries is not None:
                    canaries.before_step(optimizer, model)
                optimizer.step()
                if canaries is not None:
                    canaries.end_step()
                n = int(y.shape[0])
                if n and self.privacy is None:
                    total += float(loss.item()) * n
                    count += n
                if engine is None:
                    steps += 1
                else:
                    steps = _accounted_steps(engine) - start_steps
                if limit is not None and steps >= limit:
                    break
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        took = time.perf_counter() - t0
        if self.privacy is not None:
            return None, steps, took  # the private batches' loss is never published
        return (total / count if count else math.nan), steps, took

    def _evaluate(self, model: nn.Module) -> tuple[float | None, float | None]:
        """(accuracy, mean cross-entropy) on the eval split; rows with an unknown label (-1)
        count as wrong for accuracy and are left out of the loss."""
        import torch

        if self.eval_set is None:
            return None, None
        from torch.utils.data import DataLoader

        model.eval()
        correct = seen = labelled = 0
        loss_sum = 0.0
        with torch.no_grad():
            for x, y in DataLoader(self.eval_set, batch_size=4096, collate_fn=_collate):
                logits = model(x.to(self.device)).float().cpu()
                pred = logits.argmax(dim=1)
                correct += int((pred == y).sum())
                seen += int(y.shape[0])
                known = y >= 0
                if bool(known.any()):
                    loss_sum += float(
                        torch.nn.functional.cross_entropy(logits[known], y[known], reduction="sum")
                    )
                    labelled += int(known.sum())
        return (correct / seen if seen else None), (loss_sum / labelled if labelled else None)

    def _load_checkpoint(self) -> Any:
        if not self.resume or self.checkpoint_dir is None:
            return None
        from governance.train.checkpoint import load_checkpoint

        if self.world is not None:
            from governance.train.distributed import checkpoint_on_main

            directory = self.checkpoint_dir
            checkpoint = checkpoint_on_main(self.world, lambda: load_checkpoint(directory))
        else:
            checkpoint = load_checkpoint(self.checkpoint_dir)
        if checkpoint is None:
            return None
        old = checkpoint.state.get("fingerprint", {})
        new = self._fingerprint()
        for key in new:
            if old.get(key) != new[key]:
                raise InputError(
                    self.checkpoint_dir,
                    key,
                    ERR_RESUME_MISMATCH.format(key=key, old=old.get(key), new=new[key]),
                )
        return checkpoint

    def _save_checkpoint(
        self,
        model: nn.Module,
        optimizer: Any,
        sampler_gen: torch.Generator,
        noise_gen: torch.Generator,
        state: dict[str, Any],
    ) -> None:
        if self.checkpoint_dir is None or (self.world is not None and not self.world.is_main):
            return
        import torch

        from governance.train.checkpoint import save_checkpoint

        base_optimizer = getattr(optimizer, "original_optimizer", optimizer)
        rng = {"torch": torch.get_rng_state(), "sampler": sampler_gen.get_state()}
        if self.privacy is not None and self.privacy.reproducible_noise:
            # An OS-entropy noise state is never written: a resumed run draws fresh noise.
            rng["noise"] = noise_gen.get_state().cpu()
        save_checkpoint(
            self.checkpoint_dir,
            state=state,
            model_state=model.state_dict(),
            optimizer_state=base_optimizer.state_dict(),
            rng=rng,
        )

    @contextlib.contextmanager
    def _progress_bar(self, start_epoch: int) -> Iterator[Callable[[EpochRecord], None]]:
        if not (self.progress and sys.stderr.isatty()):
            yield lambda record: None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        columns = [
            TextColumn("epoch"),
            MofNCompleteColumn(),
            BarColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("ε {task.fields[eps]}"),
            TimeElapsedColumn(),
        ]
        with Progress(*columns, transient=True, console=_stderr_console()) as bar:
            task = bar.add_task("train", total=self.epochs, completed=start_epoch, loss="-", eps="-")

            def advance(record: EpochRecord) -> None:
                eps = "-" if record.epsilon is None else f"{record.epsilon:.2f}"
                shown = record.train_loss if record.train_loss is not None else record.eval_loss
                loss = "-" if shown is None else f"{shown:.4f}"
                bar.update(task, advance=1, loss=loss, eps=eps)

            yield advance


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def _first_targets(dataset: Any, rows: int) -> torch.Tensor:
    """The labels of the first ``rows`` rows (those :func:`sample_batches` traced)."""
    from torch.utils.data import default_collate

    if hasattr(dataset, "gather"):
        return dataset.gather(list(range(rows)))[1]
    return default_collate([dataset[i] for i in range(rows)])[1]


def _digest(tensor: torch.Tensor) -> str:
    """SHA-256 of a tensor's values (the weights of a resumed run must be the same)."""
    import hashlib

    return hashlib.sha256(tensor.detach().cpu().double().numpy().tobytes()).hexdigest()


def _distributed(model: nn.Module) -> nn.Module:
    from governance.train.distributed import wrap_module

    return wrap_module(model)


def _accounted_steps(engine: Any) -> int:
    if engine is None:
        return 0
    return sum(int(h[2]) for h in engine.accountant.history)
