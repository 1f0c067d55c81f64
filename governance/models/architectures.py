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

Only these names (and what Python code registers) are ever built from a model folder: a folder
naming anything else is refused before any import. A user factory (``package.module:function``)
runs only when the spec names it and the command line says ``--trust-code``.

Parameter budget
----------------
A built-in architecture whose options would make more than :data:`PARAMETER_BUDGET` parameters
(10⁹, 4 GB of float32 weights) is refused, naming the option, before anything is allocated: a
typo (or a hostile config) such as ``hidden: [1000000]`` on 10⁶ inputs must not exhaust memory.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from governance.errors import InputError

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "PARAMETER_BUDGET",
    "ArchitectureError",
    "architecture_names",
    "build_architecture",
    "build_factory",
    "count_parameters",
    "register_architecture",
]

#: The most parameters a built-in architecture may have (documented in the module docstring).
PARAMETER_BUDGET = 1_000_000_000

ERR_DUPLICATE = "architecture {name!r} is already registered"
ERR_UNKNOWN = "unknown architecture {name!r}; expected one of {known}"
ERR_FACTORY_TYPE = "factory {factory!r} returned {type}, expected a torch.nn.Module"
ERR_BUDGET = (
    "would make {count:.3g} parameters, over the budget of {budget:.0e} "
    "(governance.models.architectures.PARAMETER_BUDGET); expected smaller layers"
)


class ArchitectureError(ValueError):
    """A built-in architecture's option (``field``, e.g. ``hidden``) is out of range or absurd."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(message)


def _positive_ints(field: str, value: Any, length: int | None = None) -> tuple[int, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise ArchitectureError(field, f"expected a list of positive integers, got {value!r}")
    out = []
    for v in value:
        if isinstance(v, bool) or not isinstance(v, int | float) or v != int(v) or int(v) < 1:
            raise ArchitectureError(field, f"expected positive integers, got {v!r}")
        out.append(int(v))
    if length is not None and len(out) != length:
        raise ArchitectureError(field, f"expected {length} positive integers, got {len(out)}")
    return tuple(out)


def _mlp_parameters(n_inputs: int, n_classes: int, *, hidden: Any = (64, 32)) -> int:
    widths = [n_inputs, *_positive_ints("hidden", hidden), n_classes]
    return sum(a * b + b for a, b in itertools.pairwise(widths))


def _cnn_parameters(
    n_inputs: int, n_classes: int, *, input_shape: Any = (1, 8, 8), channels: Any = (16, 32)
) -> int:
    c0 = _positive_ints("input_shape", input_shape, 3)[0]
    c1, c2 = _positive_ints("channels", channels, 2)
    return (c0 * c1 * 9 + c1) + 2 * c1 + (c1 * c2 * 9 + c2) + 2 * c2 + (c2 * 4 * n_classes + n_classes)


@dataclass(frozen=True)
class _Entry:
    build: Callable[..., nn.Module]
    #: ``(n_inputs, n_classes, **options) -> int`` without allocating; None: no budget check.
    parameters: Callable[..., int] | None = None


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


_REGISTRY: dict[str, _Entry] = {
    "mlp": _Entry(_mlp, _mlp_parameters),
    "cnn": _Entry(_cnn, _cnn_parameters),
    "hf": _Entry(_hf),  # its size is the base folder's, checked by the safetensors header
}


def register_architecture(
    name: str, builder: Builder, *, parameters: Callable[..., int] | None = None
) -> None:
    """Register ``builder(n_inputs, n_classes, **options) -> nn.Module`` under ``name``.

    ``parameters(n_inputs, n_classes, **options) -> int`` counts the parameters without building,
    so that sizes over :data:`PARAMETER_BUDGET` are refused before anything is allocated.
    """
    if name in _REGISTRY:
        raise ValueError(ERR_DUPLICATE.format(name=name))
    _REGISTRY[name] = _Entry(builder, parameters)


def count_parameters(name: str, n_inputs: int, n_classes: int, options: Mapping[str, Any]) -> int | None:
    """Parameters the architecture would have (None when it cannot tell without building).

    Raises
    ------
    ArchitectureError
        An option that is not a list of positive integers, or a size over the budget.
    """
    entry = _REGISTRY.get(name)
    if entry is None or entry.parameters is None:
        return None
    try:
        count = entry.parameters(n_inputs, n_classes, **dict(options))
    except TypeError as exc:
        raise ArchitectureError("", f"options do not fit architecture {name!r} ({exc})") from None
    if count > PARAMETER_BUDGET:
        sizes = [k for k in ("hidden", "channels", "input_shape") if k in options]
        raise ArchitectureError(
            sizes[0] if sizes else "", ERR_BUDGET.format(count=count, budget=PARAMETER_BUDGET)
        )
    return count


def architecture_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def build_architecture(name: str, n_inputs: int, n_classes: int, options: Mapping[str, Any]) -> nn.Module:
    """Build a registered architecture; raises ValueError on an unknown name or bad options.

    Sizes are checked against :data:`PARAMETER_BUDGET` first (:class:`ArchitectureError`).
    """
    try:
        entry = _REGISTRY[name]
    except KeyError:
        raise ValueError(ERR_UNKNOWN.format(name=name, known=sorted(_REGISTRY))) from None
    for field, value in (("n_inputs", n_inputs), ("n_classes", n_classes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ArchitectureError(field, f"expected a positive integer, got {value!r}")
    count_parameters(name, n_inputs, n_classes, options)
    return entry.build(n_inputs, n_classes, **dict(options))


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
