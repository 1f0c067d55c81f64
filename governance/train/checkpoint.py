"""Per-epoch checkpoints for ``--resume``: safetensors for tensors, JSON for the rest.

A checkpoint holds the model and optimizer state, the random generators' states and the
accountant's history, so a resumed run replays exactly what the interrupted one would have
done and its ledger counts every step already spent. Nothing is ever read with ``torch.load``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["Checkpoint", "load_checkpoint", "save_checkpoint"]

STATE_FILE = "state.json"
MODEL_FILE = "model.safetensors"
OPTIM_FILE = "optimizer.safetensors"
RNG_FILE = "rng.safetensors"


@dataclass(frozen=True)
class Checkpoint:
    """What :func:`load_checkpoint` returns."""

    state: dict[str, Any]
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    rng: dict[str, torch.Tensor]


def _optimizer_to_flat(state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    import torch

    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, entry in state_dict["state"].items():
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{idx}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[name] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def _optimizer_from_flat(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        idx, _, name = key.partition(".")
        state.setdefault(int(idx), {})[name] = value
    for idx, extra in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(extra)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(
    directory: Path,
    *,
    state: dict[str, Any],
    model_state: dict[str, torch.Tensor],
    optimizer_state: dict[str, Any],
    rng: dict[str, torch.Tensor],
) -> None:
    """Write a checkpoint atomically: a complete new directory replaces the old one."""
    from safetensors.torch import save_file

    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in model_state.items()}, staging / MODEL_FILE)
        tensors, meta = _optimizer_to_flat(optimizer_state)
        save_file(tensors, staging / OPTIM_FILE)
        save_file({k: v.contiguous() for k, v in rng.items()}, staging / RNG_FILE)
        (staging / STATE_FILE).write_text(
            json.dumps({**state, "optimizer": meta}, indent=1), encoding="utf-8"
        )
        old = directory.with_name(directory.name + ".old")
        if directory.exists():
            os.replace(directory, old)
        os.replace(staging, directory)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def load_checkpoint(directory: Path) -> Checkpoint | None:
    """Read a checkpoint, or None if there is none (a crash between renames leaves ``.old``)."""
    from safetensors.torch import load_file

    if not (directory / STATE_FILE).is_file():
        old = directory.with_name(directory.name + ".old")
        if (old / STATE_FILE).is_file():
            directory = old
        else:
            return None
    from safetensors import SafetensorError

    from governance.errors import InputError

    try:
        state = json.loads((directory / STATE_FILE).read_text(encoding="utf-8"))
        meta = state.pop("optimizer")
        return Checkpoint(
            state=state,
            model=load_file(directory / MODEL_FILE),
            optimizer=_optimizer_from_flat(load_file(directory / OPTIM_FILE), meta),
            rng=load_file(directory / RNG_FILE),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError, SafetensorError) as exc:
        raise InputError(
            directory, None, f"unreadable checkpoint ({exc.__class__.__name__}); rerun without --resume"
        ) from None
