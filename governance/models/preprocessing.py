"""Feature preprocessing that travels with the model (``preprocessing.json``).

Fitted on the training split only: standardisation for numeric columns (train mean and std;
missing values become the train mean, i.e. 0 after scaling), one-hot for categorical columns
(categories seen in train, sorted; missing is its own category ``<missing>``; an unseen
category encodes as all zeros). ``load_model``, ``load_handle`` and every audit read this file,
so they see exactly the inputs the model was trained on.

Encoded layout: the numeric columns first, in feature order, then each categorical column's
one-hot block. Because numeric inputs are standardised, a perturbation of ε in encoded units
is ε standard deviations of the original feature.

Images (``image_shape`` set) are not standardised per pixel: every pixel is divided by one
scale, the brightest absolute value in the training split (16 for scikit-learn's digits, 255
for 8-bit images, 1 for images already in [0, 1]), so inputs lie in [0, 1] and an ε or σ in
encoded units is a fraction of the full intensity range: *pixel units*, the unit the image
robustness literature reports. Per-pixel standardisation would give every pixel its own unit
(a border pixel that is almost always 0 would be blown up) and make a [0, 1] clip meaningless.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from governance.data.bundle import DataBundle

__all__ = ["MISSING", "Preprocessor", "fit_preprocessor", "preprocessor_for"]

MISSING = "<missing>"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class Preprocessor:
    """A fitted tabular encoder. Build it with :func:`fit_preprocessor`."""

    features: tuple[str, ...]
    numeric: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    #: categorical feature → categories in one-hot order
    categories: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: image tasks: shape the encoded row reshapes to, e.g. (1, 8, 8)
    image_shape: tuple[int, ...] | None = None
    #: train mean of the encoded matrix (the attribution baseline)
    encoded_mean: tuple[float, ...] = ()

    @property
    def categorical(self) -> tuple[str, ...]:
        return tuple(self.categories)

    @property
    def n_encoded(self) -> int:
        return len(self.numeric) + sum(len(c) for c in self.categories.values())

    @property
    def feature_groups(self) -> dict[str, tuple[int, ...]]:
        """Original feature → the encoded column indices it became."""
        groups: dict[str, tuple[int, ...]] = {name: (i,) for i, name in enumerate(self.numeric)}
        start = len(self.numeric)
        for name, cats in self.categories.items():
            groups[name] = tuple(range(start, start + len(cats)))
            start += len(cats)
        return {name: groups[name] for name in self.features if name in groups}

    @property
    def numeric_columns(self) -> tuple[int, ...]:
        return tuple(range(len(self.numeric)))

    @property
    def onehot_columns(self) -> tuple[int, ...]:
        return tuple(range(len(self.numeric), self.n_encoded))

    @property
    def encoded_names(self) -> tuple[str, ...]:
        names = list(self.numeric)
        for name, cats in self.categories.items():
            names.extend(f"{name}={c}" for c in cats)
        return tuple(names)

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """Encode ``frame`` into a float32 matrix (n, n_encoded); columns must exist."""
        import numpy as np
        import pandas as pd

        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise KeyError(f"columns missing from the frame: {missing}")
        blocks: list[np.ndarray] = []
        if self.numeric:
            values = frame[list(self.numeric)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype="float64")
            mean = np.asarray(self.mean)
            values = np.where(np.isnan(values), mean, values)
            blocks.append((values - mean) / np.asarray(self.std))
        for name, cats in self.categories.items():
            column = _category_strings(frame[name])
            lookup = {c: i for i, c in enumerate(cats)}
            onehot = np.zeros((len(frame), len(cats)))
            idx = np.fromiter((lookup.get(v, -1) for v in column), dtype=np.int64, count=len(frame))
            seen = idx >= 0
            onehot[np.flatnonzero(seen), idx[seen]] = 1.0
            blocks.append(onehot)
        if not blocks:
            return np.zeros((len(frame), 0), dtype="float32")
        return np.concatenate(blocks, axis=1).astype("float32")

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "kind": "tabular",
            "features": list(self.features),
            "numeric": list(self.numeric),
            "mean": list(self.mean),
            "std": list(self.std),
            "categories": {k: list(v) for k, v in self.categories.items()},
            "image_shape": None if self.image_shape is None else list(self.image_shape),
            "encoded_mean": list(self.encoded_mean),
            "encoded_names": list(self.encoded_names),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Preprocessor:
        return cls(
            features=tuple(raw["features"]),
            numeric=tuple(raw["numeric"]),
            mean=tuple(float(v) for v in raw["mean"]),
            std=tuple(float(v) for v in raw["std"]),
            categories={k: tuple(v) for k, v in raw["categories"].items()},
            image_shape=None if raw.get("image_shape") is None else tuple(raw["image_shape"]),
            encoded_mean=tuple(float(v) for v in raw.get("encoded_mean", ())),
        )

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"


def _category_strings(values: pd.Series) -> list[str]:
    import pandas as pd

    return [MISSING if pd.isna(v) else str(v) for v in values]


def fit_preprocessor(
    train: pd.DataFrame,
    features: Sequence[str],
    numeric: Sequence[str],
    *,
    image_shape: tuple[int, ...] | None = None,
) -> Preprocessor:
    """Fit the encoder on the training frame only.

    Parameters
    ----------
    train
        The training split.
    features
        Model inputs in order; those in ``numeric`` are standardised, the rest one-hot encoded.
    numeric
        The numeric features.
    image_shape
        For image tasks, the shape each encoded row reshapes to.

    Examples
    --------
    >>> import pandas as pd
    >>> pre = fit_preprocessor(pd.DataFrame({"a": [1.0, 3.0], "c": ["x", "y"]}), ["a", "c"], ["a"])
    >>> pre.transform(pd.DataFrame({"a": [2.0], "c": ["y"]})).tolist()
    [[0.0, 0.0, 1.0]]
    """
    import numpy as np
    import pandas as pd

    numeric_cols = tuple(c for c in features if c in set(numeric))
    categorical = tuple(c for c in features if c not in set(numeric))
    if image_shape is not None and numeric_cols:
        # Pixel units (module docstring): one scale for every pixel, no centring.
        values = train[list(numeric_cols)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype="float64")
        peak = float(np.nanmax(np.abs(values))) if values.size and not np.isnan(values).all() else 1.0
        scale = max(peak, 1.0)
        mean = np.zeros(len(numeric_cols))
        std = np.full(len(numeric_cols), scale)
    elif numeric_cols:
        values = train[list(numeric_cols)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype="float64")
        mean = np.nan_to_num(np.nanmean(values, axis=0)) if len(values) else np.zeros(len(numeric_cols))
        std = np.nan_to_num(np.nanstd(values, axis=0))
        # A constant column keeps std 1 so it encodes as 0 instead of dividing by zero.
        std = np.where(std > 1e-12, std, 1.0)
    else:
        mean = std = np.zeros(0)
    categories = {name: tuple(sorted(set(_category_strings(train[name])))) for name in categorical}
    pre = Preprocessor(
        features=tuple(features),
        numeric=numeric_cols,
        mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std),
        categories=categories,
        image_shape=image_shape,
    )
    encoded_mean = pre.transform(train).astype("float64").mean(axis=0)
    return Preprocessor(
        features=pre.features,
        numeric=pre.numeric,
        mean=pre.mean,
        std=pre.std,
        categories=pre.categories,
        image_shape=image_shape,
        encoded_mean=tuple(float(v) for v in encoded_mean),
    )


def preprocessor_for(bundle: DataBundle) -> Preprocessor:
    """Fit the encoder on the train split (eval when a spec brings weights and no train file)."""
    frame = bundle.train if bundle.train is not None else bundle.eval
    return fit_preprocessor(frame, bundle.features, bundle.numeric, image_shape=bundle.image_shape)
