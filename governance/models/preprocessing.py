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

A spec may declare the schema publicly (``data.schema``: categories per column, numeric ranges,
the pixel range). What it declares is used instead of being fitted: a declared range [lo, hi]
clips the column to it and maps it to [-1, 1] (centre (lo+hi)/2, scale (hi-lo)/2); declared
categories are the one-hot order (plus ``<missing>``); a declared pixel range clips pixels and
divides by max(|lo|, |hi|). Whatever is still fitted on the train rows is named by
:func:`statistics_from_rows`, and a DP run lists it in ``privacy.scope.outside``: those numbers
are published in ``preprocessing.json`` without the guarantee.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from governance.data.bundle import DataBundle
    from governance.spec import DataSchema

__all__ = [
    "MISSING",
    "Preprocessor",
    "check_schema",
    "fit_preprocessor",
    "preprocessor_for",
    "private_statistics",
    "statistics_from_rows",
]

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
    #: train mean of the encoded matrix (the attribution baseline); the eval split's in DP runs
    encoded_mean: tuple[float, ...] = ()
    #: numeric feature → (low, high) declared in ``data.schema``: values are clipped to it
    clip: Mapping[str, tuple[float, float]] = field(default_factory=dict)

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
            if self.clip:
                low = np.asarray([self.clip.get(c, (-np.inf, np.inf))[0] for c in self.numeric])
                high = np.asarray([self.clip.get(c, (-np.inf, np.inf))[1] for c in self.numeric])
                values = np.clip(values, low, high)
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
            "clip": {k: list(v) for k, v in self.clip.items()},
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
            clip={k: (float(v[0]), float(v[1])) for k, v in (raw.get("clip") or {}).items()},
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
    schema: Any = None,
    baseline: pd.DataFrame | None = None,
) -> Preprocessor:
    """Fit the encoder on the training frame only (what ``schema`` declares is not fitted).

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
    schema
        The publicly declared schema (:class:`governance.spec.DataSchema`), or None.
    baseline
        The rows whose encoded mean becomes ``encoded_mean`` (default ``train``); DP training
        passes the eval split so that the attribution baseline says nothing of the private rows.

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
    declared_cats: Mapping[str, Sequence[str]] = getattr(schema, "categories", None) or {}
    declared_ranges: Mapping[str, Sequence[float]] = getattr(schema, "ranges", None) or {}
    pixel_range = getattr(schema, "pixel_range", None)
    clip: dict[str, tuple[float, float]] = {}
    if image_shape is not None and numeric_cols:
        # Pixel units (module docstring): one scale for every pixel, no centring.
        if pixel_range is not None:
            low, high = float(pixel_range[0]), float(pixel_range[1])
            scale = max(abs(low), abs(high))
            clip = dict.fromkeys(numeric_cols, (low, high))
        else:
            values = train[list(numeric_cols)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype="float64")
            peak = float(np.nanmax(np.abs(values))) if values.size and not np.isnan(values).all() else 1.0
            scale = max(peak, 1.0)
        mean = np.zeros(len(numeric_cols))
        std = np.full(len(numeric_cols), scale)
    elif numeric_cols:
        values = train[list(numeric_cols)].apply(pd.to_numeric, errors="coerce").to_numpy(dtype="float64")
        fitted = [c for c in numeric_cols if c not in declared_ranges]
        mean = np.zeros(len(numeric_cols))
        std = np.ones(len(numeric_cols))
        if fitted and len(values):
            idx = [numeric_cols.index(c) for c in fitted]
            mean[idx] = np.nan_to_num(np.nanmean(values[:, idx], axis=0))
            # A constant column keeps std 1 so it encodes as 0 instead of dividing by zero.
            spread = np.nan_to_num(np.nanstd(values[:, idx], axis=0))
            std[idx] = np.where(spread > 1e-12, spread, 1.0)
        for i, c in enumerate(numeric_cols):
            if c in declared_ranges:
                low, high = float(declared_ranges[c][0]), float(declared_ranges[c][1])
                mean[i], std[i] = (low + high) / 2, (high - low) / 2
                clip[c] = (low, high)
    else:
        mean = std = np.zeros(0)
    categories = {
        name: _declared(declared_cats[name])
        if name in declared_cats
        else tuple(sorted(set(_category_strings(train[name]))))
        for name in categorical
    }
    pre = Preprocessor(
        features=tuple(features),
        numeric=numeric_cols,
        mean=tuple(float(v) for v in mean),
        std=tuple(float(v) for v in std),
        categories=categories,
        image_shape=image_shape,
        clip=clip,
    )
    rows = train if baseline is None or not len(baseline) else baseline
    encoded_mean = pre.transform(rows).astype("float64").mean(axis=0)
    return replace(pre, encoded_mean=tuple(float(v) for v in encoded_mean))


def _declared(categories: Sequence[str]) -> tuple[str, ...]:
    """Declared categories in their order, then ``<missing>`` (missing values need a column)."""
    cats = tuple(str(c) for c in categories)
    return cats if MISSING in cats else (*cats, MISSING)


def statistics_from_rows(
    features: Sequence[str],
    numeric: Sequence[str],
    *,
    image_shape: tuple[int, ...] | None = None,
    schema: Any = None,
    baseline_from_train: bool = True,
) -> list[dict[str, Any]]:
    """What :func:`fit_preprocessor` reads off the rows it is fitted on, for ``privacy.scope``.

    One item per kind of statistic (``name``, ``where``, ``columns``, ``detail``); empty when the
    schema declares everything and the baseline comes from other rows.

    Examples
    --------
    >>> [i["name"] for i in statistics_from_rows(["a", "c"], ["a"])]
    ['preprocessing.mean_std', 'preprocessing.categories', 'preprocessing.encoded_mean']
    """
    declared_cats = set(getattr(schema, "categories", None) or {})
    declared_ranges = set(getattr(schema, "ranges", None) or {})
    numeric_cols = [c for c in features if c in set(numeric)]
    categorical = [c for c in features if c not in set(numeric)]
    items: list[dict[str, Any]] = []
    if image_shape is not None and numeric_cols:
        if getattr(schema, "pixel_range", None) is None:
            items.append(
                _item("preprocessing.pixel_scale", [], "the brightest absolute pixel value of the train rows")
            )
    else:
        fitted = [c for c in numeric_cols if c not in declared_ranges]
        if fitted:
            items.append(
                _item("preprocessing.mean_std", fitted, "mean and standard deviation of the train rows")
            )
    cats = [c for c in categorical if c not in declared_cats]
    if cats:
        items.append(
            _item(
                "preprocessing.categories",
                cats,
                "the categories seen in the train rows (a category only one row has reveals that row)",
            )
        )
    if baseline_from_train:
        items.append(
            _item("preprocessing.encoded_mean", [], "the mean encoded train row (the attribution baseline)")
        )
    return items


def _item(name: str, columns: Sequence[str], detail: str) -> dict[str, Any]:
    return {"name": name, "where": "preprocessing.json", "columns": list(columns), "detail": detail}


ERR_SCHEMA_COLUMN = "{column!r} is not a model input; the schema declares only features"
ERR_SCHEMA_KIND = "the column is {kind} in the data; declare it under the other key"


def preprocessor_for(
    bundle: DataBundle, *, schema: DataSchema | None = None, private: bool = False, source: Any = None
) -> Preprocessor:
    """Fit the encoder on the train split (eval when a spec brings weights and no train file).

    ``schema`` (the spec's ``data.schema``) replaces what it declares; ``private`` (DP training)
    takes the attribution baseline from the eval split, so that only what
    :func:`private_statistics` names is read off the private rows.
    """
    check_schema(schema, bundle, source)
    frame = bundle.train if bundle.train is not None else bundle.eval
    baseline = bundle.eval if private and bundle.train is not None else None
    return fit_preprocessor(
        frame,
        bundle.features,
        bundle.numeric,
        image_shape=bundle.image_shape,
        schema=schema,
        baseline=baseline,
    )


def private_statistics(bundle: DataBundle, schema: DataSchema | None) -> list[dict[str, Any]]:
    """What a DP run's preprocessing reads off the private train rows (``privacy.scope.outside``)."""
    return statistics_from_rows(
        bundle.features,
        bundle.numeric,
        image_shape=bundle.image_shape,
        schema=schema,
        baseline_from_train=bundle.eval is None or not len(bundle.eval),
    )


def check_schema(schema: DataSchema | None, bundle: DataBundle, source: Any = None) -> None:
    """Every column ``data.schema`` names is a model input of the declared kind."""
    from governance.errors import InputError

    if schema is None:
        return
    numeric = set(bundle.numeric)
    features = set(bundle.features)
    kinds = [("categories", c, c not in numeric) for c in schema.categories]
    kinds += [("ranges", c, c in numeric) for c in schema.ranges]
    for key, column, fits in kinds:
        if column not in features:
            raise InputError(source, f"data.schema.{key}.{column}", ERR_SCHEMA_COLUMN.format(column=column))
        if not fits:
            kind = "numeric" if key == "categories" else "categorical"
            raise InputError(source, f"data.schema.{key}.{column}", ERR_SCHEMA_KIND.format(kind=kind))
    if schema.pixel_range is not None and bundle.image_shape is None:
        raise InputError(source, "data.schema.pixel_range", "only image tasks have pixels; use ranges")
