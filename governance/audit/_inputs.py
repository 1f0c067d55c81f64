"""Model inputs for the gradient-based audits: encoded tensors, feature groups, masks, baselines.

Attribution and robustness both work in the model's encoded input space (standardised numeric
columns, one-hot categories, pixels). This module is the one place that reads the tabular
extras of a :class:`~governance.audit.base.ModelHandle` (``feature_groups``,
``numeric_columns``, ``onehot_columns``, ``baseline``) and falls back to "every column is its
own feature, every column may move" when a handle does not provide them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from governance._options import Options, parse_options
from governance.errors import InputError

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from governance.audit.base import AuditContext, ModelHandle

__all__ = [
    "class_indices",
    "encode",
    "feature_groups",
    "option_error",
    "parse_audit_options",
    "perturbable_mask",
    "sample_frame",
    "tabular_baseline",
]

OptionsT = TypeVar("OptionsT", bound=Options)


def option_error(context: AuditContext, audit: str, field: str, message: str) -> InputError:
    """An :class:`InputError` naming the spec file (or ``audits.<audit>``) and the option."""
    source = context.spec.source if context.spec.source is not None else f"audits.{audit}"
    return InputError(source, f"audits.{audit}.{field}", message)


def sample_frame(frame: pd.DataFrame, n: int | None, seed: int) -> pd.DataFrame:
    """At most ``n`` rows of ``frame``, drawn without replacement with ``seed`` (all rows if fewer)."""
    if n is None or len(frame) <= n:
        return frame
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(frame), size=n, replace=False))
    return frame.iloc[rows]


def encode(handle: ModelHandle, frame: pd.DataFrame) -> torch.Tensor:
    """The model's float input tensor for ``frame``, detached, on the handle's device."""
    import torch

    x = handle.encode(frame)
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(np.asarray(x))
    return x.detach().to(dtype=torch.float32, device=handle.device)


def class_indices(classes: Sequence[str], labels: Sequence[Any]) -> np.ndarray:
    """Map string labels to output indices of the model (``classes`` order)."""
    lookup = {str(c): i for i, c in enumerate(classes)}
    try:
        return np.fromiter((lookup[str(v)] for v in labels), dtype=np.int64, count=len(labels))
    except KeyError as exc:
        raise ValueError(f"label {exc.args[0]!r} is not one of the model's classes {list(classes)}") from None


def feature_groups(
    handle: ModelHandle, n_columns: int, features: Sequence[str]
) -> dict[str, tuple[int, ...]]:
    """Original feature → encoded column indices (one-hot columns of a category grouped).

    Falls back to one column per feature when the handle has no ``feature_groups``: named after
    ``features`` when their count matches the encoded width, else ``col_<i>``.
    """
    groups: Mapping[str, Sequence[int]] | None = getattr(handle, "feature_groups", None)
    if groups:
        return {str(k): tuple(int(i) for i in v) for k, v in groups.items()}
    names = list(features) if len(features) == n_columns else [f"col_{i}" for i in range(n_columns)]
    return {name: (i,) for i, name in enumerate(names)}


def perturbable_mask(handle: ModelHandle, shape: tuple[int, ...]) -> np.ndarray | None:
    """1.0 where an attack or noise may move an input, 0.0 on one-hot columns; None = everywhere.

    One-hot columns are never perturbed: a category at 0.93 is not a value the world can produce,
    so robustness to it says nothing about robustness to real inputs.
    """
    onehot: Sequence[int] = tuple(getattr(handle, "onehot_columns", ()) or ())
    if handle.kind != "tabular" or not onehot:
        return None
    mask = np.ones(shape[1:], dtype=np.float32)
    mask[list(onehot)] = 0.0
    return mask


def tabular_baseline(handle: ModelHandle, train: pd.DataFrame | None, x: torch.Tensor) -> torch.Tensor:
    """The IG baseline for tabular inputs: the train mean in encoded space, shaped like ``x``.

    Uses the handle's ``baseline(frame)`` when it has one, else the mean of the encoded train
    frame (the eval inputs' mean when there is no train split).
    """
    import torch

    maker = getattr(handle, "baseline", None)
    if callable(maker) and train is not None:
        base = maker(train)
        base = torch.as_tensor(base).detach().to(dtype=x.dtype, device=x.device)
    elif train is not None:
        base = encode(handle, train).mean(dim=0, keepdim=True)
    else:
        base = x.mean(dim=0, keepdim=True)
    base = base.reshape(-1, *x.shape[1:])[:1]
    return base.expand_as(x).contiguous()


def parse_audit_options(model: type[OptionsT], context: AuditContext, audit: str) -> OptionsT:
    """The audit's options model from ``context.options`` (errors name ``audits.<audit>.<field>``).

    The pipeline has validated the same mapping before any work (:func:`governance.audit.suite.check_audits`);
    audits run on their own (tests, notebooks) get the same errors here.
    """
    source = context.spec.source if context.spec.source is not None else f"audits.{audit}"
    return parse_options(model, context.options, source=source, where=f"audits.{audit}")
