"""What each spawned rank of ``tests/train/test_distributed.py`` runs (a light module: spawned
children import it, not the test module and its test-only dependencies)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from governance.train.distributed import World, joined
from governance.train.dp import PrivacySettings
from governance.train.trainer import EpochRecord, Trainer

__all__ = ["ddp_trainer", "rank_main"]


class _Crash(Exception):
    pass


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(240, 6)).astype("float32")
    return x, (x @ rng.normal(size=6) > 0).astype("int64")


def ddp_trainer(world: World | None, mode: str = "hooks", init_seed: int = 0, **kw: Any) -> Trainer:
    torch.manual_seed(init_seed)
    x, y = _data()
    return Trainer(
        model=nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2)),
        train_data=(x[:200], y[:200]),
        eval_data=(x[200:], y[200:]),
        privacy=PrivacySettings(
            target_epsilon=8.0,
            delta=1e-3,
            accountant="rdp",
            noise_multiplier=1.0,
            grad_sample_mode=mode,
            reproducible_noise=True,
        ),
        epochs=3,
        batch_size=20,
        lr=0.5,
        seed=3,
        world=world,
        **kw,
    )


def rank_main(rank: int, size: int, port: int, out: str, resume: bool, mode: str) -> None:
    """One rank: join the group from torchrun's variables, train, crash after epoch 1 unless
    resuming; every rank saves the weights it ends with (``w<rank>.st``), rank 0 the ledger.
    The ranks initialise their models differently: rank 0's weights must reach every rank."""
    import warnings

    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(size),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")

    def crash(record: EpochRecord) -> None:
        if record.epoch == 1:
            raise _Crash

    with joined("cpu") as world:
        assert world is not None and world.rank == rank
        trainer = ddp_trainer(
            world,
            mode,
            init_seed=rank,
            checkpoint_dir=Path(out) / "ckpt",
            resume=resume,
            callbacks=() if resume else (crash,),
        )
        try:
            result = trainer.fit()
        except _Crash:
            return
        from safetensors.torch import save_file

        state = {k: v.contiguous() for k, v in result.model.state_dict().items()}
        save_file(state, Path(out) / f"w{rank}.st")
        if world.is_main:
            (Path(out) / "ledger.json").write_text(json.dumps(result.ledger))
