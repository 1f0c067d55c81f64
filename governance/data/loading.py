"""Read the spec's data files into a validated :class:`~governance.data.bundle.DataBundle`.

Every problem with the data is an :class:`~governance.errors.InputError` naming the file and
the column (or spec field), so ``governance train`` and ``governance audit`` exit 2 with one
line. Labels and sensitive groups become strings as they appear in the data (``1`` stays
``"1"``, never ``"1.0"``).

Class order
-----------
``classes`` are the label values sorted as strings. For binary tasks the positive
(favourable) class is ``data.positive`` from the spec or, when omitted, the last sorted label;
it is always moved to the end, so ``classes[-1]`` is the positive class and a model's
``proba[:, -1]`` is the score of the favourable outcome.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from governance.data.bundle import MISSING_GROUP, DataBundle
from governance.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from governance.spec import Spec

__all__ = ["BUILTIN_DATASETS", "load_bundle", "read_table", "register_builtin"]

ERR_EMPTY = "the file holds no data rows"
ERR_RAGGED = "line {line} has {found} fields, the header has {want}; expected a rectangular CSV"
ERR_FORMAT = "unsupported file type {suffix!r}; expected .csv, .parquet or .jsonl"
ERR_MISSING_COLUMN = "column {column!r} not found; the file has {columns}"
ERR_LABEL_NAN = "label column {column!r} has {n} missing value(s); every row needs a label"
ERR_ONE_CLASS = "label column {column!r} has a single class {value!r}; expected at least two"
ERR_NOT_NUMERIC = (
    "column {column!r} is declared numeric but {n} value(s) are not numbers, first {value!r} at row {row}"
)
ERR_NO_FEATURES = "no feature columns remain after removing the label and the sensitive attributes"
ERR_POSITIVE = "positive class {value!r} is not a label value; the labels are {classes}"
ERR_BINARY = "task is binary_classification but the label has {n} classes {classes}"
ERR_SHAPE_FORM = "expected [channels, height, width] as positive whole numbers, got {value!r}"
ERR_SHAPE_SIZE = "input_shape {shape} holds {want} pixels but {src} has {found} feature columns"
ERR_SHAPE_MISSING = (
    "required for image_classification: the [channels, height, width] each row's {found} pixel "
    "columns reshape to"
)
ERR_PIXEL = "pixel column {column!r} holds {value!r}; expected numbers"
ERR_NON_FINITE = (
    "{n} row(s) hold a non-finite number ({value}), first at row {row}; expected finite numbers "
    "(leave the cell empty for a missing value)"
)

#: Max rows whose fields are counted for the ragged-CSV check (pandas silently pads short rows).
_RAGGED_CHECK_BYTES = 256 << 20


def _read_csv(path: Path) -> pd.DataFrame:
    import pandas as pd

    text = path.read_text(encoding="utf-8")
    if path.stat().st_size <= _RAGGED_CHECK_BYTES:
        # pandas raises on long rows but pads short ones with NaN: check both ourselves.
        rows = csv.reader(io.StringIO(text))
        header = next(rows, None)
        if header is not None:
            for number, row in enumerate(rows, start=2):
                if row and len(row) != len(header):
                    raise InputError(
                        path,
                        f"line {number}",
                        ERR_RAGGED.format(line=number, found=len(row), want=len(header)),
                    )
    return pd.read_csv(io.StringIO(text))


def _read_parquet(path: Path) -> pd.DataFrame:
    import pandas as pd

    return pd.read_parquet(path)


def _read_jsonl(path: Path) -> pd.DataFrame:
    import pandas as pd

    return pd.read_json(path, lines=True)


_READERS: dict[str, Callable[[Path], pd.DataFrame]] = {
    ".csv": _read_csv,
    ".parquet": _read_parquet,
    ".pq": _read_parquet,
    ".jsonl": _read_jsonl,
    ".ndjson": _read_jsonl,
}


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV, Parquet or JSONL file into a DataFrame.

    Raises
    ------
    InputError
        If the file is missing, empty, ragged, or not of a supported type.
    """
    from governance.data.globs import expand, is_glob

    if is_glob(path):
        # A glob (issue 17): its matches, sorted by name, as one table.
        import pandas as pd

        return pd.concat([read_table(f) for f in expand(path, source=path)], ignore_index=True)
    path = Path(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise InputError(path, None, ERR_FORMAT.format(suffix=path.suffix))
    if not path.is_file():
        raise InputError(path, None, "file not found")
    if path.stat().st_size == 0:
        raise InputError(path, None, ERR_EMPTY)
    try:
        frame = reader(path)
    except InputError:
        raise
    except Exception as exc:  # pandas/pyarrow raise many types; all mean "unreadable"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise InputError(path, None, f"cannot read as {path.suffix} ({first})") from None
    if len(frame) == 0:
        raise InputError(path, None, ERR_EMPTY)
    frame.columns = [str(c) for c in frame.columns]
    return frame


# ---------------------------------------------------------------------------------------------
# Built-in datasets (``data.builtin``), built from installed packages: nothing is downloaded.


def _digits(seed: int) -> tuple[pd.DataFrame, pd.DataFrame, tuple[int, ...]]:
    import numpy as np
    import pandas as pd
    from sklearn.datasets import load_digits

    digits = load_digits()
    frame = pd.DataFrame(digits.data.astype("float32"), columns=[f"px{i}" for i in range(64)])
    frame["label"] = digits.target.astype(str)
    rng = np.random.default_rng(seed)
    is_eval = np.zeros(len(frame), dtype=bool)
    for _, idx in frame.groupby("label").groups.items():
        order = rng.permutation(np.asarray(idx))
        is_eval[order[: round(0.25 * len(order))]] = True
    return frame[~is_eval].reset_index(drop=True), frame[is_eval].reset_index(drop=True), (1, 8, 8)


#: name → function(seed) returning (train, eval, image shape or None).
BUILTIN_DATASETS: dict[str, Callable[[int], tuple[pd.DataFrame, pd.DataFrame, tuple[int, ...] | None]]] = {
    "sklearn:digits": _digits,
}


def register_builtin(
    name: str, loader: Callable[[int], tuple[pd.DataFrame, pd.DataFrame, tuple[int, ...] | None]]
) -> None:
    """Register a built-in dataset under ``name`` (raises on duplicates)."""
    if name in BUILTIN_DATASETS:
        raise ValueError(f"built-in dataset {name!r} is already registered")
    BUILTIN_DATASETS[name] = loader


# ---------------------------------------------------------------------------------------------


def _as_strings(values: pd.Series) -> pd.Series:
    """Label/group values as strings as they appear: integral floats lose their '.0'."""
    import pandas as pd

    if pd.api.types.is_float_dtype(values):
        non_null = values.dropna()
        if len(non_null) and (non_null == non_null.round()).all():
            return values.map(lambda v: None if pd.isna(v) else str(int(v)))
    if pd.api.types.is_bool_dtype(values):
        return values.map(lambda v: None if pd.isna(v) else str(bool(v)).lower())
    return values.map(lambda v: None if pd.isna(v) else str(v))


def _require_columns(frame: pd.DataFrame, columns: tuple[str, ...], path: Path | str) -> None:
    for column in columns:
        if column not in frame.columns:
            shown = list(frame.columns)[:12]
            raise InputError(path, column, ERR_MISSING_COLUMN.format(column=column, columns=shown))


def load_bundle(spec: Spec) -> DataBundle:
    """Load and validate the data a spec names.

    Parameters
    ----------
    spec
        A loaded spec (:func:`governance.spec.load_spec`); its data paths are absolute.

    Returns
    -------
    DataBundle
        ``train`` is None when the spec gives no training file (predictions-only audits).

    Raises
    ------
    InputError
        Naming the file (or spec) and the column for missing columns, a label with missing
        values or a single class, a non-numeric value in a declared-numeric column, an empty or
        ragged file.

    Examples
    --------
    >>> from governance.spec import load_spec
    >>> bundle = load_bundle(load_spec("audits/german-credit.yaml"))  # doctest: +SKIP
    >>> bundle.classes, bundle.positive                                # doctest: +SKIP
    (('bad', 'good'), 'good')
    """
    import pandas as pd

    data = spec.data
    spec_file = str(spec.source) if spec.source is not None else "spec"
    paths: dict[str, Path] = {}
    image_shape: tuple[int, ...] | None = None
    if data.builtin is not None:
        builtin = BUILTIN_DATASETS.get(data.builtin)
        if builtin is None:
            raise InputError(
                spec_file,
                "data.builtin",
                f"unknown built-in dataset; expected one of {sorted(BUILTIN_DATASETS)}",
            )
        train, evaluation, image_shape = builtin(spec.seed)
        train_src: Path | str = f"builtin {data.builtin} (train)"
        eval_src: Path | str = f"builtin {data.builtin} (eval)"
    else:
        train = read_table(data.train) if data.train is not None else None
        if data.eval is None:
            raise InputError(spec_file, "data.eval", "required: the audits measure on an eval split")
        evaluation = read_table(data.eval)
        train_src = data.train if data.train is not None else spec_file
        eval_src = data.eval
        if data.train is not None:
            paths["train"] = data.train
        paths["eval"] = data.eval
    declared_shape = spec.model.options.get("input_shape")
    if declared_shape is not None:
        # The model's declared shape wins over a built-in's: it is what the cnn will be built with.
        image_shape = _parse_shape(declared_shape, spec_file)

    frames = [(train_src, train), (eval_src, evaluation)] if train is not None else [(eval_src, evaluation)]
    for src, frame in frames:
        _require_columns(frame, (data.label, *data.sensitive), src)
        if data.text is not None:
            _require_columns(frame, (data.text,), src)
            if spec.task == "text_classification":
                from governance.text.tokens import check_texts

                check_texts(frame, data.text, src)  # empty or non-string texts are bad input
        for attr, proxies in data.proxies.items():
            if attr not in data.sensitive:
                raise InputError(spec_file, f"data.proxies.{attr}", "not one of data.sensitive")
            _require_columns(frame, tuple(proxies), src)

    if data.features is not None:
        features = tuple(data.features)
        for src, frame in frames:
            _require_columns(frame, features, src)
    else:
        excluded = {data.label, *data.sensitive}
        features = tuple(c for c in evaluation.columns if c not in excluded)
        if data.text is not None:
            features = (data.text,) if spec.task == "text_classification" else features
    if not features and spec.model.predictions is None:
        # Predictions-only audits read the label, the groups and the decisions: no model inputs.
        raise InputError(spec_file, "data.features", ERR_NO_FEATURES)
    if data.text is not None and spec.task == "text_classification":
        numeric: tuple[str, ...] = ()
    else:
        numeric = _numeric_features(frames, features, data.numeric, spec_file)
    if spec.task == "image_classification" or image_shape is not None:
        image_shape = _check_image(
            frames, features, numeric, image_shape, spec_file, declared_shape is not None
        )

    cleaned: list[pd.DataFrame] = []
    for src, frame in frames:
        label = frame[data.label]
        missing = int(label.isna().sum())
        if missing:
            raise InputError(src, data.label, ERR_LABEL_NAN.format(column=data.label, n=missing))
        frame = frame.copy()
        _reject_non_finite(label, src, data.label)
        frame[data.label] = _as_strings(label)
        for attr in data.sensitive:
            _reject_non_finite(frame[attr], src, attr)
            frame[attr] = _as_strings(frame[attr]).fillna(MISSING_GROUP)
        for column in numeric:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
            # Before any training or audit math: one inf turns a mean, a standardisation or an
            # attribution total into inf/NaN, and the audits downstream would report nonsense.
            _reject_non_finite(frame[column], src, column)
        cleaned.append(frame.reset_index(drop=True))

    reference_src, reference = (frames[0][0], cleaned[0])
    observed = sorted(set().union(*(set(f[data.label].unique()) for f in cleaned)))
    if len(set(reference[data.label])) < 2:
        only = reference[data.label].iloc[0]
        raise InputError(reference_src, data.label, ERR_ONE_CLASS.format(column=data.label, value=only))
    positive: str | None = None
    classes = tuple(observed)
    if spec.task == "binary_classification":
        if len(classes) != 2:
            raise InputError(
                reference_src, data.label, ERR_BINARY.format(n=len(classes), classes=list(classes))
            )
        positive = data.positive if data.positive is not None else classes[-1]
        if positive not in classes:
            raise InputError(
                spec_file, "data.positive", ERR_POSITIVE.format(value=positive, classes=list(classes))
            )
        classes = (*(c for c in classes if c != positive), positive)
    elif data.positive is not None:
        raise InputError(spec_file, "data.positive", "only meaningful for binary_classification")

    return DataBundle(
        task=str(spec.task),
        label=data.label,
        classes=classes,
        features=features,
        sensitive=tuple(data.sensitive),
        train=cleaned[0] if train is not None else None,
        eval=cleaned[-1],
        text=data.text,
        proxies={k: tuple(v) for k, v in data.proxies.items()},
        paths=paths,
        source=data.source,
        license=data.license,
        positive=positive,
        numeric=numeric,
        image_shape=image_shape,
    )


def _reject_non_finite(values: pd.Series, src: Path | str, column: str) -> None:
    """Bad input when a numeric column holds inf or -inf (NaN is a missing value, counted as such)."""
    import numpy as np
    import pandas as pd

    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return
    array = values.to_numpy(dtype="float64", na_value=np.nan)
    bad = np.isinf(array)
    if bad.any():
        rows = np.flatnonzero(bad)
        shown = ", ".join(sorted({repr(float(v)) for v in array[bad]}))
        raise InputError(src, column, ERR_NON_FINITE.format(n=len(rows), value=shown, row=int(rows[0])))


def _parse_shape(value: object, spec_file: str) -> tuple[int, ...]:
    """``model.options.input_shape`` as a tuple of three positive ints, or bad input."""
    field = "model.options.input_shape"
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise InputError(spec_file, field, ERR_SHAPE_FORM.format(value=value))
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        raise InputError(spec_file, field, ERR_SHAPE_FORM.format(value=value))
    return tuple(int(v) for v in value)


def _check_image(
    frames: list[tuple[Path | str, pd.DataFrame]],
    features: tuple[str, ...],
    numeric: tuple[str, ...],
    shape: tuple[int, ...] | None,
    spec_file: str,
    declared: bool,
) -> tuple[int, ...]:
    """Images must be all-numeric pixel columns that fill ``shape`` exactly.

    Caught here, at load time, so that a CSV with 63 pixel columns for an 8x8 model exits 2
    naming the file and the field, instead of failing inside the model's reshape mid-training.
    """
    import pandas as pd

    if shape is None:
        raise InputError(
            spec_file, "model.options.input_shape", ERR_SHAPE_MISSING.format(found=len(features))
        )
    want = shape[0] * shape[1] * shape[2]
    if want != len(features):
        src = frames[-1][0]
        field = "model.options.input_shape" if declared else "data.features"
        raise InputError(
            spec_file,
            field,
            ERR_SHAPE_SIZE.format(shape=list(shape), want=want, src=src, found=len(features)),
        )
    for src, frame in frames:
        for column in features:
            if column in numeric:
                continue
            values = frame[column]
            bad = values.notna() & pd.to_numeric(values, errors="coerce").isna()
            first = values[bad].iloc[0] if bad.any() else None
            raise InputError(src, column, ERR_PIXEL.format(column=column, value=first))
    return shape


def _numeric_features(
    frames: list[tuple[Path | str, pd.DataFrame]],
    features: tuple[str, ...],
    declared: tuple[str, ...] | None,
    spec_file: str,
) -> tuple[str, ...]:
    """Features read as numbers: the declared ones (checked), else those of numeric dtype."""
    import pandas as pd

    if declared is not None:
        for column in declared:
            if column not in features:
                raise InputError(spec_file, "data.numeric", f"{column!r} is not a feature column")
        for src, frame in frames:
            for column in declared:
                values = frame[column]
                coerced = pd.to_numeric(values, errors="coerce")
                bad = values.notna() & coerced.isna()
                if bad.any():
                    first = values[bad]
                    raise InputError(
                        src,
                        column,
                        ERR_NOT_NUMERIC.format(
                            column=column, n=int(bad.sum()), value=first.iloc[0], row=int(first.index[0])
                        ),
                    )
        return tuple(c for c in features if c in declared)
    numeric = []
    for column in features:
        if all(
            pd.api.types.is_numeric_dtype(frame[column]) and not pd.api.types.is_bool_dtype(frame[column])
            for _, frame in frames
        ):
            numeric.append(column)
    return tuple(numeric)
