"""Built-in architectures behind a registry, and user factories.

An architecture is a builder ``build(n_inputs, n_classes, **options) -> nn.Module`` registered
under a name. Everything needed to rebuild the module lives in ``config.json`` (name + the
JSON-able keyword arguments), so weights are always loaded into a freshly built module from
safetensors: never a pickle.

Built-ins
---------
mlp
    Tabular: ``Linear → ReLU`` per hidden width, then a ``Linear`` head (``hidden`` default
    ``[64, 32]``).
cnn
    Images (8×8 digits by default): two ``Conv2d(3×3) → GroupNorm → ReLU`` blocks (GroupNorm,
    not BatchNorm, because per-sample gradients need per-sample normalisation), average pooling
    and a ``Linear`` head. ``input_shape`` is (channels, height, width).
hf
    A local Hugging Face folder (``model.path``) loaded with
    ``AutoModelForSequenceClassification`` with a fresh classification head for the task's
    classes; see :mod:`governance.models.hf`.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from governance.errors import InputError

if TYPE_CHECKING:
    from torch import nn

__all__ = ["architecture_names", "build_architecture", "build_factory", "register_architecture"]

ERR_DUPLICATE = "architecture {name!r} is already registered"
ERR_UNKNOWN = "unknown architecture {name!r}; expected one of {known}"
ERR_FACTORY_TYPE = "factory {factory!r} returned {type}, expected a torch.nn.Module"

Builder = Callable[..., "nn.Module"]


def _mlp(n_inputs: int, n_classes: int, *, hidden: list[int] | tuple[int, ...] = (64, 32)) -> nn.Module:
    from torch import nn

    layers: list[nn.Module] = []
    width = n_inputs
    for h in hidden:
        layers += [nn.Linear(width, int(h)), nn.ReLU()]
        width = int(h)
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)


def _cnn(
    n_inputs: int,
    n_classes: int,
    *,
    input_shape: list[int] | tuple[int, ...] = (1, 8, 8),
    channels: list[int] | tuple[int, ...] = (16, 32),
) -> nn.Module:
    from torch import nn

    shape = tuple(int(v) for v in input_shape)
    if len(shape) != 3 or shape[0] * shape[1] * shape[2] != n_inputs:
        raise ValueError(f"input_shape {list(shape)} does not hold {n_inputs} inputs")
    c1, c2 = (int(c) for c in channels)
    return nn.Sequential(
        nn.Unflatten(1, shape),
        nn.Conv2d(shape[0], c1, kernel_size=3, padding=1),
        nn.GroupNorm(min(4, c1), c1),
        nn.ReLU(),
        nn.Conv2d(c1, c2, kernel_size=3, padding=1),
        nn.GroupNorm(min(4, c2), c2),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(c2 * 4, n_classes),
    )


def _hf(n_inputs: int, n_classes: int, **options: Any) -> nn.Module:
    from governance.models.hf import build_hf_classifier

    return build_hf_classifier(n_classes=n_classes, **options)


_REGISTRY: dict[str, Builder] = {"mlp": _mlp, "cnn": _cnn, "hf": _hf}


def register_architecture(name: str, builder: Builder) -> None:
    """Register ``builder(n_inputs, n_classes, **options) -> nn.Module`` under ``name``."""
    if name in _REGISTRY:
        raise ValueError(ERR_DUPLICATE.format(name=name))
    _REGISTRY[name] = builder


def architecture_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def build_architecture(name: str, n_inputs: int, n_classes: int, options: Mapping[str, Any]) -> nn.Module:
    """Build a registered architecture; raises ValueError on an unknown name or bad options."""
    try:
        builder = _REGISTRY[name]
    except KeyError:
        raise ValueError(ERR_UNKNOWN.format(name=name, known=sorted(_REGISTRY))) from None
    return builder(n_inputs, n_classes, **dict(options))


def build_factory(
    factory: str,
    options: Mapping[str, Any],
    *,
    source: str | None = None,
    n_inputs: int | None = None,
    n_classes: int | None = None,
) -> nn.Module:
    """Call a user factory ``package.module:function`` with ``options`` as keyword arguments.

    ``n_inputs`` and ``n_classes`` are passed too when the function has parameters of those names.

    Raises
    ------
    InputError
        If it cannot be imported or does not return an ``nn.Module``.
    """
    from torch import nn

    module_name, _, attr = factory.partition(":")
    try:
        fn = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise InputError(source, "model.factory", f"cannot import {factory!r} ({exc})") from None
    kwargs = dict(options)
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]
    for name, value in (("n_inputs", n_inputs), ("n_classes", n_classes)):
        if name in params and name not in kwargs and value is not None:
            kwargs[name] = value
    try:
        model = fn(**kwargs)
    except TypeError as exc:
        raise InputError(
            source, "model.options", f"factory {factory!r} rejected its options ({exc})"
        ) from None
    if not isinstance(model, nn.Module):
        raise InputError(
            source, "model.factory", ERR_FACTORY_TYPE.format(factory=factory, type=type(model).__name__)
        )
    return model
