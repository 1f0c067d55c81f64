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
    "check_config",
    "load_model",
    "load_weights",
    "model_files",
    "read_config",
    "read_ledger",
    "staged_dir",
    "verify_model_dir",
]


ERR_FACTORY_UNTRUSTED = (
    "names code to run ({factory!r}); a model folder may only name a built-in architecture "
    "({known}); a custom factory runs only when the spec names it and the command line says --trust-code"
)
ERR_FACTORY_OTHER = "names factory {found!r}, but the spec trusted with --trust-code names {trusted!r}"
ERR_FILES_MISMATCH = (
    "{name} has SHA-256 {found}, the ledger records {want}: the folder's files do not belong together "
    "(an interrupted or mixed write); retrain or restore the folder"
)


def check_config(config: Mapping[str, Any], *, source: str | None = None, factory: str | None = None) -> None:
    """Refuse a config that names code other than a built-in architecture or the trusted factory.

    Runs before anything is imported or built: a model folder is data, and data never chooses
    which code runs. ``factory`` is the one the caller trusts (from a spec, with ``--trust-code``).

    Raises
    ------
    InputError
        Naming ``source`` and the field (``factory`` or ``architecture``).
    """
    from governance.models.architectures import architecture_names

    known = architecture_names()
    named_factory = config.get("factory")
    architecture = config.get("architecture")
    if named_factory is not None:
        if factory is None:
            raise InputError(
                source, "factory", ERR_FACTORY_UNTRUSTED.format(factory=named_factory, known=", ".join(known))
            )
        if named_factory != factory:
            raise InputError(
                source, "factory", ERR_FACTORY_OTHER.format(found=named_factory, trusted=factory)
            )
        if architecture is not None:
            raise InputError(source, "architecture", "names both an architecture and a factory; expected one")
        return
    if architecture is None:
        raise InputError(source, "architecture", "config names neither an architecture nor a factory")
    if not isinstance(architecture, str) or architecture not in known:
        raise InputError(
            source, "architecture", f"unknown architecture {architecture!r}; expected one of {sorted(known)}"
        )


def build_module(
    config: Mapping[str, Any],
    *,
    source: str | None = None,
    factory: str | None = None,
    field_prefix: str = "",
) -> nn.Module:
    """Build the (untrained) module a config describes, applying the same Opacus fixes.

    Parameters
    ----------
    config
        ``config.json`` (or the one ``train`` is about to write).
    source
        The file named in errors.
    factory
        The user factory the caller trusts (``--trust-code``); a config naming any other is refused
        before anything is imported (:func:`check_config`).
    field_prefix
        Prefix of the fields named in errors (``"model."`` when ``source`` is the spec).
    """
    from governance.models.architectures import ArchitectureError, build_architecture, build_factory

    check_config(config, source=source, factory=factory)
    options = config.get("options") or {}
    if not isinstance(options, Mapping):
        raise InputError(source, f"{field_prefix}options", "expected a mapping of options")
    options = dict(options)
    if config.get("architecture"):
        try:
            module = build_architecture(
                config["architecture"],
                _count(config, "n_inputs", source),
                _count(config, "n_classes", source),
                options,
            )
        except ArchitectureError as exc:
            where = (
                exc.field if exc.field in ("n_inputs", "n_classes") else f"{field_prefix}options.{exc.field}"
            )
            raise InputError(source, where.rstrip("."), str(exc)) from None
        except (TypeError, ValueError) as exc:
            raise InputError(source, f"{field_prefix}options", str(exc)) from None
    else:
        module = build_factory(
            str(factory),
            options,
            source=source,
            n_inputs=config.get("n_inputs"),
            n_classes=config.get("n_classes"),
        )
    if config.get("module_fixes"):
        from opacus.validators import ModuleValidator

        module = ModuleValidator.fix(module)
    return module


def _count(config: Mapping[str, Any], key: str, source: str | None) -> int:
    value = config.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(source, key, f"expected a positive integer, got {value!r}")
    return value


def model_files(folder: Path) -> dict[str, str]:
    """SHA-256 of every file of a model folder but the ledger (what the ledger records)."""
    from governance._io import sha256_file

    return {
        p.relative_to(folder).as_posix(): sha256_file(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != LEDGER_FILE and not p.name.startswith(".")
    }


def verify_model_dir(model_dir: str | PathLike[str]) -> dict[str, Any]:
    """Check that a model folder's files belong together; return its ledger.

    ``training.json`` records the SHA-256 of the weights (and, from this version on, of every
    other file); a folder whose files were written by different runs is refused.

    Raises
    ------
    InputError
        A missing ledger, or a file whose hash differs from the one recorded.
    """
    from governance._io import sha256_file

    model_dir = Path(model_dir)
    ledger = read_ledger(model_dir)
    recorded = ledger.get("files")
    want: dict[str, Any] = dict(recorded) if isinstance(recorded, Mapping) else {}
    if "weights_sha256" in ledger:
        want.setdefault(WEIGHTS_FILE, ledger["weights_sha256"])
    for name, sha in want.items():
        path = model_dir / str(name)
        if Path(str(name)).is_absolute() or ".." in Path(str(name)).parts or not path.is_file():
            raise InputError(
                model_dir / LEDGER_FILE, f"files.{name}", "the recorded file is missing from the folder"
            )
        found = sha256_file(path)
        if found != sha:
            raise InputError(
                model_dir / LEDGER_FILE,
                f"files.{name}",
                ERR_FILES_MISMATCH.format(name=name, found=found[:12], want=str(sha)[:12]),
            )
    return ledger


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


def load_model(model_dir: str | PathLike[str], *, factory: str | None = None) -> nn.Module:
    """Load what ``governance train`` wrote as an ``nn.Module`` in eval mode.

    No code the folder names is run: a built-in architecture is rebuilt from the registry; a
    folder trained from a user factory loads only when the caller names that factory.

    Parameters
    ----------
    model_dir
        The folder given to ``governance train --out``.
    factory
        The user factory (``package.module:function``) the caller trusts, for a folder trained
        from one.

    Examples
    --------
    >>> import governance
    >>> model = governance.load_model("out/german-credit/model")  # doctest: +SKIP
    """
    model_dir = Path(model_dir)
    config = read_config(model_dir)
    check_config(config, source=str(model_dir / CONFIG_FILE), factory=factory)
    verify_model_dir(model_dir)
    if config.get("kind") == "text":
        from governance.models.hf import load_text_module

        return load_text_module(model_dir, config)
    module = build_module(config, source=str(model_dir / CONFIG_FILE), factory=factory)
    load_weights(module, model_dir / WEIGHTS_FILE)
    module.eval()
    return module


#: A folder holding one of these was written by ``governance train`` (and may be replaced).
MODEL_MARKS = (CONFIG_FILE, LEDGER_FILE)
#: What ``train`` writes into a model folder; anything else already there is carried over.
MODEL_OUTPUTS = (WEIGHTS_FILE, CONFIG_FILE, PREPROCESSING_FILE, LEDGER_FILE, "tokenizer")


@contextlib.contextmanager
def staged_dir(target: str | PathLike[str], *, lock: bool = True) -> Iterator[Path]:
    """Yield an empty staging folder that replaces the model folder ``target`` whole on success.

    See :func:`governance._output_folder.output_folder`: one rename of the whole folder, an
    exclusive lock on ``target`` while the run writes, nothing left on failure.
    """
    from governance._output_folder import output_folder

    with output_folder(target, marks=MODEL_MARKS, ours=MODEL_OUTPUTS, lock=lock) as staging:
        yield staging


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, allow_nan=False) + "\n", encoding="utf-8")
