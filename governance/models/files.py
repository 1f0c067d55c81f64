"""The file names of a model folder and reading its JSON files (see :mod:`governance.models.artifacts`)."""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path
from typing import Any

from governance.errors import InputError

__all__ = [
    "CONFIG_FILE",
    "CONFIG_VERSION",
    "LEDGER_FILE",
    "PREPROCESSING_FILE",
    "WEIGHTS_FILE",
    "read_config",
    "read_ledger",
]

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
PREPROCESSING_FILE = "preprocessing.json"
LEDGER_FILE = "training.json"
CONFIG_VERSION = 1


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(
            path, None, f"file not found; expected the {what} written by `governance train`"
        ) from None
    except (NotADirectoryError, IsADirectoryError, PermissionError) as exc:
        raise InputError(
            path.parent,
            None,
            f"cannot read the model folder ({exc.__class__.__name__}); expected a folder written by `governance train`",
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, None, f"not valid JSON ({exc.__class__.__name__})") from None
    if not isinstance(raw, dict):
        raise InputError(path, None, "expected a JSON object")
    return raw


def read_config(model_dir: str | PathLike[str]) -> dict[str, Any]:
    """Read ``config.json`` of a model folder."""
    return _read_json(Path(model_dir) / CONFIG_FILE, "model config")


def read_ledger(model_dir: str | PathLike[str]) -> dict[str, Any]:
    """Read ``training.json`` (the privacy ledger) of a model folder.

    Examples
    --------
    >>> read_ledger("out/model")["privacy"]["epsilon"]  # doctest: +SKIP
    2.97
    """
    return _read_json(Path(model_dir) / LEDGER_FILE, "training ledger")
