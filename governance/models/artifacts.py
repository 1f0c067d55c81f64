"""The model folder ``train`` writes, and reading it back.

Layout of a model folder::

    model.safetensors    weights (safetensors: no pickle, nothing executes on load)
    config.json          how to rebuild the module: architecture or factory + options, classes
    preprocessing.json   the fitted encoder (governance.models.preprocessing)
    training.json        the ledger (CONTRACT §5)

The folder appears all at once: :func:`write_model_dir` fills a staging folder beside the
target and moves it into place, so a failure leaves nothing half-written.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from governance.errors import InputError
from governance.models.files import (
    CONFIG_FILE,
    LEDGER_FILE,
    PREPROCESSING_FILE,
    WEIGHTS_FILE,
    read_config,
    read_ledger,
)

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "CONFIG_FILE",
    "LEDGER_FILE",
    "PREPROCESSING_FILE",
    "WEIGHTS_FILE",
    "build_module",
    "load_model",
    "load_weights",
    "read_config",
    "read_ledger",
    "staged_dir",
]


def build_module(config: Mapping[str, Any], *, source: str | None = None) -> nn.Module:
    """Build the (untrained) module a config describes, applying the same Opacus fixes."""
    from governance.models.architectures import build_architecture, build_factory

    options = dict(config.get("options") or {})
    if config.get("architecture"):
        try:
            module = build_architecture(
                config["architecture"], int(config["n_inputs"]), int(config["n_classes"]), options
            )
        except (TypeError, ValueError) as exc:
            raise InputError(source, "model.options", str(exc)) from None
    elif config.get("factory"):
        module = build_factory(
            config["factory"],
            options,
            source=source,
            n_inputs=config.get("n_inputs"),
            n_classes=config.get("n_classes"),
        )
    else:
        raise InputError(source, "architecture", "config names neither an architecture nor a factory")
    if config.get("module_fixes"):
        from opacus.validators import ModuleValidator

        module = ModuleValidator.fix(module)
    return module


def load_weights(module: nn.Module, path: str | PathLike[str]) -> nn.Module:
    """Load safetensors weights into ``module``, strictly.

    Raises
    ------
    InputError
        If the file is unreadable or its tensors do not fit the module (names or shapes).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except FileNotFoundError:
        raise InputError(path, None, "weights file not found") from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(path, None, f"not a readable safetensors file ({exc})") from None
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        what = f"missing {missing[:3]}" if missing else f"unexpected {unexpected[:3]}"
        raise InputError(path, None, f"weights do not fit the architecture: {what}")
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(own[key].shape):
            raise InputError(
                path,
                key,
                f"weights do not fit the architecture: shape {list(tensor.shape)}, expected {list(own[key].shape)}",
            )
    module.load_state_dict(state, strict=True)
    return module


def load_model(model_dir: str | PathLike[str]) -> nn.Module:
    """Load what ``governance train`` wrote as an ``nn.Module`` in eval mode.

    Parameters
    ----------
    model_dir
        The folder given to ``governance train --out``.

    Examples
    --------
    >>> import governance
    >>> model = governance.load_model("out/german-credit/model")  # doctest: +SKIP
    """
    model_dir = Path(model_dir)
    config = read_config(model_dir)
    if config.get("kind") == "text":
        from governance.models.hf import load_text_module

        return load_text_module(model_dir, config)
    module = build_module(config, source=str(model_dir / CONFIG_FILE))
    load_weights(module, model_dir / WEIGHTS_FILE)
    module.eval()
    return module


@contextlib.contextmanager
def staged_dir(target: str | PathLike[str]) -> Iterator[Path]:
    """Yield an empty staging folder; on success its files replace ``target``'s, atomically each.

    A new ``target`` appears in one rename; an existing one has each file replaced by
    ``os.replace``, so a reader sees old or new files, never partial ones. On failure the
    staging folder is removed and ``target`` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
    try:
        yield staging
        if not target.exists():
            os.replace(staging, target)
            return
        for item in staging.iterdir():
            destination = target / item.name
            if destination.is_dir() and not destination.is_symlink():
                shutil.rmtree(destination)
            os.replace(item, destination)
        staging.rmdir()
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, allow_nan=False) + "\n", encoding="utf-8")
