"""DataBundle: the loaded, validated data every stage after the spec works on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MISSING_GROUP", "DataBundle"]

#: The one name of a missing sensitive value (an empty CSV cell, a null in Parquet or JSONL, NaN),
#: in every file format and on both fairness paths (pandas and the predictions fast path): such
#: rows are a group of their own, counted, never dropped.
MISSING_GROUP = "(missing)"


@dataclass(frozen=True)
class DataBundle:
    """Train and eval frames plus what the spec says their columns mean.

    ``label`` values and ``sensitive`` group values are strings, as they appear in the data.
    ``features`` are the model inputs (never the sensitive attributes unless the spec lists them).
    """

    task: str
    label: str
    classes: tuple[str, ...]
    features: tuple[str, ...]
    sensitive: tuple[str, ...]
    train: pd.DataFrame | None
    eval: pd.DataFrame
    text: str | None = None
    #: Sensitive attribute → declared proxy features.
    proxies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: Split name → file it came from (for SHA-256 in results.subject).
    paths: Mapping[str, Path] = field(default_factory=dict)
    source: str | None = None
    license: str | None = None
    #: Binary tasks: the favourable outcome, always ``classes[-1]`` (``y_score`` is its
    #: probability, i.e. ``proba[:, -1]``); None for multiclass tasks.
    positive: str | None = None
    #: The features read as numbers (standardised); the other features are categorical.
    numeric: tuple[str, ...] = ()
    #: Image tasks: the (channels, height, width) the feature columns reshape to.
    image_shape: tuple[int, ...] | None = None
    #: Each eval row's time (``data.timestamp``) in microseconds since the epoch, UTC, when the
    #: loader read it (int64; ``timestamps_missing`` marks rows without one).
    timestamps: Any = None
    timestamps_missing: Any = None
