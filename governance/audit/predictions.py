"""Predictions-only mode: audit a saved decision log (``model: {predictions: FILE}``), no model.

The file has a column ``y_pred`` (the decided class, as the labels appear in the data) and optionally
``y_score`` (the probability of the positive class, binary tasks only). Its rows align with
``data.eval``; or, when the spec gives no separate eval file (or names the predictions file itself),
the file carries the label and sensitive columns too and is the eval data.

Reading is columnar (pyarrow) and dictionary-encoded: only the needed columns are read, string
columns are never turned into Python objects row by row, and the audits get integer codes
(:class:`governance.audit.base.Predictions` ``*_codes``). 10M rows from Parquet load in well under a
second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from governance.audit.base import Predictions
from governance.data.globs import expand, is_glob
from governance.errors import InputError

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa
    from numpy.typing import NDArray

    from governance.data.bundle import DataBundle
    from governance.spec import Spec

__all__ = [
    "PRED_COLUMN",
    "SCORE_COLUMN",
    "EncodedColumn",
    "load_prediction_inputs",
    "read_columns",
]

PRED_COLUMN = "y_pred"
SCORE_COLUMN = "y_score"
SUFFIXES = (".csv", ".parquet", ".pq", ".jsonl")

ERR_SUFFIX = "unsupported file type {suffix!r}; expected one of .csv, .parquet, .jsonl"
ERR_MISSING = "column is missing; the file has {have}"
ERR_NULL = "{n} missing value(s), first at row {row}; every row needs a value"
ERR_OUTSIDE = "value {value!r} (row {row}) is not in the label set {labels}"
ERR_SCORE_RANGE = "value {value!r} (row {row}) is outside [0, 1]; expected the positive-class probability"
ERR_SCORE_NAN = "NaN at row {row}; expected the positive-class probability"
ERR_LENGTH = "has {n} rows but the eval data {eval_path} has {m}; rows must align one to one"
ERR_NON_FINITE = "{n} row(s) hold a non-finite number ({value}), first at row {row}; expected finite values"
ERR_SCORE_MULTICLASS = "y_score is a binary-task column; this spec's task is {task}"


@dataclass(frozen=True)
class EncodedColumn:
    """A column as integer codes into its distinct values (strings), ``-1`` for missing."""

    codes: NDArray[np.integer]
    names: tuple[str, ...]
    n_missing: int = 0
    #: Every name occurs in ``codes`` (known without another pass over the rows).
    all_used: bool = False


def read_columns(path: Path, columns: Sequence[str], *, optional: Sequence[str] = ()) -> pa.Table:
    """Read just ``columns`` (and those of ``optional`` that exist) from a csv/parquet/jsonl file.

    String columns of Parquet files are read dictionary-encoded. Raises :class:`InputError` naming
    the file (and the column) for a missing file, an unknown suffix or a missing column.
    """
    import pyarrow as pa

    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(path, None, ERR_SUFFIX.format(suffix=suffix))
    if not path.is_file():
        raise InputError(path, None, "file not found")
    try:
        have = _column_names(path, suffix)
        for col in columns:
            if col not in have:
                raise InputError(path, col, ERR_MISSING.format(have=sorted(have)))
        wanted = list(dict.fromkeys([*columns, *(c for c in optional if c in have)]))
        table = _read(path, suffix, wanted, have)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OSError, UnicodeDecodeError) as exc:
        raise InputError(path, None, f"cannot read file ({exc.__class__.__name__}: {exc})") from None
    return table.select(wanted)


def _column_names(path: Path, suffix: str) -> list[str]:
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    if suffix == ".csv":
        import csv

        with open(path, encoding="utf-8", newline="") as handle:
            return next(csv.reader(handle), [])
    import pyarrow.json as pj

    return list(pj.read_json(path).column_names)


def _read(path: Path, suffix: str, wanted: list[str], have: list[str]) -> pa.Table:
    if suffix in (".parquet", ".pq"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = pq.read_schema(path)
        strings = [
            c
            for c in wanted
            if pa.types.is_string(schema.field(c).type) or pa.types.is_large_string(schema.field(c).type)
        ]
        # ParquetFile, not pq.read_table: read_table goes through pyarrow.dataset, whose import
        # pulls in pandas and pyarrow.compute (~0.5 s, more than reading 10M rows).
        return pq.ParquetFile(path, read_dictionary=strings).read(columns=wanted, use_threads=True)
    if suffix == ".csv":
        import pyarrow.csv as pcsv

        # strings_can_be_null: an empty cell is a missing value, as pandas reads it on the other path.
        options = pcsv.ConvertOptions(include_columns=wanted, strings_can_be_null=True)
        return pcsv.read_csv(path, convert_options=options)
    import pyarrow.json as pj

    return pj.read_json(path).select(wanted)


def encode(column: pa.ChunkedArray, *, drop_unused: bool = False) -> EncodedColumn:
    """Dictionary-encode a column: integer codes plus its distinct values as strings, sorted.

    Values are sorted in their own type (so numeric groups sort numerically) before becoming
    strings; integral floats are written as integers (``1.0`` → ``"1"``), so a label column read as
    integers and a prediction column read as floats still agree. Codes are int32 (or the
    narrower type the column had).

    With ``drop_unused``, dictionary values no row uses are left out of the names (sensitive
    groups: a group needs rows), and the result says ``all_used``.
    """
    import pyarrow as pa

    if (pa.types.is_integer(column.type) or pa.types.is_boolean(column.type)) and column.null_count == 0:
        small = _encode_small_ints(column)
        if small is not None:
            return small
    if not pa.types.is_dictionary(column.type):
        # Imported here only: pyarrow.compute builds its function wrappers at import (~0.1 s),
        # and Parquet string columns arrive dictionary-encoded already.
        import pyarrow.compute as pc

        column = pc.dictionary_encode(column)
    combined = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if isinstance(combined, pa.ChunkedArray):  # pragma: no cover - older pyarrow
        combined = combined.combine_chunks()
    dictionary = combined.dictionary
    indices = combined.indices
    if indices.null_count:
        indices = indices.fill_null(-1)
    index_array = _numpy(indices).astype(np.int32, copy=False)
    values = _numpy(dictionary)
    valid = np.ones(len(values), dtype=bool)
    if pa.types.is_floating(dictionary.type):
        valid = np.isfinite(values)  # NaN is a missing value, not a class
        integral = bool(np.all(values[valid] == np.round(values[valid])))
        names_raw = [(str(int(v)) if integral else str(v)) if ok else "" for v, ok in zip(values, valid)]
    else:
        names_raw = [str(v) for v in values]
    # Sort in the values' own type (numeric groups numerically), then merge equal strings
    # (1 and 1.0 both become "1").
    sorted_names: list[str] = []
    remap = np.full(len(names_raw) + 1, -1, dtype=np.int32)  # the last slot serves code -1
    for old in np.argsort(values, kind="stable"):
        if not valid[old]:
            continue
        name = names_raw[old]
        if name not in sorted_names:
            sorted_names.append(name)
        remap[old] = sorted_names.index(name)
    has_missing = bool(combined.indices.null_count or not valid.all())
    all_used = False
    if drop_unused and not has_missing:
        # One count over the dictionary indices finds the unused values, so the caller need not
        # count the codes again (group_codes would, to drop empty groups).
        used_raw = np.bincount(index_array, minlength=len(names_raw)) > 0
        mapped = remap[:-1] >= 0
        used = np.zeros(len(sorted_names), dtype=bool)
        np.logical_or.at(used, remap[:-1][mapped], used_raw[mapped])
        renumber = (np.cumsum(used) - 1).astype(np.int32)
        keep = mapped & used[np.where(mapped, remap[:-1], 0)]
        remap = np.append(np.where(keep, renumber[np.where(mapped, remap[:-1], 0)], -1), -1).astype(np.int32)
        used_names = [n for n, u in zip(sorted_names, used) if u]
        sorted_names, all_used = used_names, True
    if not has_missing and np.array_equal(remap[:-1], np.arange(len(names_raw))):
        codes = index_array  # the dictionary is sorted and fully used: its indices are the codes
    else:
        codes = remap[index_array]  # code -1 picks remap[-1] == -1
    n_missing = int((codes < 0).sum()) if has_missing else 0
    return EncodedColumn(codes=codes, names=tuple(sorted_names), n_missing=n_missing, all_used=all_used)


def _numpy(column: pa.ChunkedArray | pa.Array) -> NDArray[Any]:
    """A column as one numpy array, without pyarrow's ``to_numpy`` where that can be avoided.

    pyarrow's ``to_numpy`` imports pandas (~0.5 s, more than reading 10M rows); fixed-width
    numbers and booleans without nulls are read straight from their Arrow buffers instead
    (zero-copy for numbers in one chunk). Anything else goes through ``to_numpy``.
    """
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        if column.num_chunks == 1:
            return _array_numpy(column.chunk(0))
        if column.num_chunks == 0:
            return _array_numpy(column.combine_chunks())
        return np.concatenate([_array_numpy(c) for c in column.chunks])
    return _array_numpy(column)


def _array_numpy(array: pa.Array) -> NDArray[Any]:
    import pyarrow as pa

    kind = array.type
    if array.null_count == 0 and len(array) and (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        width = kind.bit_width // 8
        letter = "f" if pa.types.is_floating(kind) else ("i" if pa.types.is_signed_integer(kind) else "u")
        data = array.buffers()[1]
        return np.frombuffer(
            data, dtype=np.dtype(f"<{letter}{width}"), count=len(array), offset=array.offset * width
        )
    if array.null_count == 0 and len(array) and pa.types.is_boolean(kind):
        bits = np.frombuffer(array.buffers()[1], dtype=np.uint8)
        unpacked = np.unpackbits(bits, bitorder="little", count=array.offset + len(array))
        return unpacked[array.offset :].astype(bool)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return np.asarray(array.to_pylist(), dtype=object)  # dictionaries: a handful of values
    return array.to_numpy(zero_copy_only=False)


def _encode_small_ints(column: pa.ChunkedArray) -> EncodedColumn | None:
    """Integer columns with a small range (labels, decisions): codes by offset, no hashing."""
    values = _numpy(column)
    if values.size == 0:
        return None
    is_bool = values.dtype.kind == "b"
    lo, hi = int(values.min()), int(values.max())
    if hi - lo >= 1 << 16:
        return None
    if values.dtype.kind == "b":
        values = values.view(np.int8)  # codes must be integers: a bool array would index as a mask
    shifted = values.astype(np.int32) - np.int32(lo) if lo or values.dtype.itemsize > 4 else values
    if hi - lo <= 1:  # min and max both occur: nothing to count (the usual 0/1 labels)
        present = np.ones(hi - lo + 1, dtype=bool)
    else:
        present = np.bincount(shifted, minlength=hi - lo + 1) > 0
    names = tuple(str(bool(lo + i)) if is_bool else str(lo + i) for i in np.flatnonzero(present))
    if present.all():  # codes are the shifted values already
        return EncodedColumn(codes=shifted, names=names, all_used=True)
    lookup = (np.cumsum(present) - 1).astype(np.int32)
    return EncodedColumn(codes=lookup[shifted], names=names, all_used=True)


def _first(mask: NDArray[np.bool_]) -> int:
    return int(np.flatnonzero(mask)[0])


def _require_finite(table: pa.Table, path: Path, names: Sequence[str]) -> None:
    """inf/-inf in a label, decision or group column is bad input, never a group or a class."""
    import pyarrow as pa

    for name in names:
        column = table[name]
        if not pa.types.is_floating(column.type):
            continue
        values = np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.float64)
        bad = np.isinf(values)
        if bad.any():
            shown = ", ".join(sorted({repr(float(v)) for v in values[bad]}))
            raise InputError(
                path, name, ERR_NON_FINITE.format(n=int(bad.sum()), value=shown, row=_first(bad))
            )


def _require_complete(col: EncodedColumn, path: Path, name: str) -> None:
    if col.n_missing:
        raise InputError(path, name, ERR_NULL.format(n=col.n_missing, row=_first(col.codes < 0)))


def _scores(table: pa.Table, path: Path) -> NDArray[np.floating] | None:
    if SCORE_COLUMN not in table.column_names:
        return None
    col = table[SCORE_COLUMN]
    if col.null_count:
        raise InputError(
            path,
            SCORE_COLUMN,
            ERR_NULL.format(n=col.null_count, row=_first(col.is_null().to_numpy(zero_copy_only=False))),
        )
    try:
        values = _numpy(col)
        if not np.issubdtype(values.dtype, np.floating):
            values = values.astype(np.float64)
    except (TypeError, ValueError):
        raise InputError(path, SCORE_COLUMN, f"expected numbers, got {col.type}") from None
    if values.size == 0 or (values.min() >= 0 and values.max() <= 1):  # fast path; NaN fails it
        return values
    nan = np.isnan(values)
    if nan.any():
        raise InputError(path, SCORE_COLUMN, ERR_SCORE_NAN.format(row=_first(nan)))
    bad = (values < 0) | (values > 1)
    if bad.any():
        row = _first(bad)
        raise InputError(path, SCORE_COLUMN, ERR_SCORE_RANGE.format(value=float(values[row]), row=row))
    return values


def _recode(col: EncodedColumn, classes: tuple[str, ...], path: Path, name: str) -> NDArray[np.integer]:
    """Codes of ``col`` into ``classes``; a value outside them is an InputError naming the column."""
    lookup = np.array([classes.index(n) if n in classes else -1 for n in col.names] + [-1], dtype=np.int32)
    if not col.n_missing and np.array_equal(lookup[:-1], np.arange(len(col.names))):
        return col.codes  # the decisions use the label set in its order: no pass over the rows
    codes = lookup[col.codes]
    bad = codes < 0
    if bad.any():
        row = _first(bad)
        raise InputError(
            path, name, ERR_OUTSIDE.format(value=col.names[col.codes[row]], row=row, labels=list(classes))
        )
    return codes


def _predictions(
    classes: tuple[str, ...],
    true_codes: NDArray[np.integer],
    pred_codes: NDArray[np.integer],
    scores: NDArray[np.floating] | None,
) -> Predictions:
    # Short class names as fixed-width numpy strings: indexing copies a few bytes per row instead of
    # bumping a Python refcount per row (3-5x faster on 10M rows); both compare equal to str.
    longest = max((len(c) for c in classes), default=1)
    names = np.asarray(classes, dtype=f"<U{longest}") if longest <= 8 else np.asarray(classes, dtype=object)
    return Predictions(
        y_true=names[true_codes],
        y_pred=names[pred_codes],
        y_score=scores,
        classes=classes,
        y_true_codes=true_codes,
        y_pred_codes=pred_codes,
    )


def load_prediction_inputs(spec: Spec) -> tuple[DataBundle, Predictions]:
    """The eval data and the saved predictions of a predictions-only spec.

    Returns
    -------
    (DataBundle, Predictions)
        The bundle's eval frame holds the label and sensitive columns (when read here, as a
        :class:`~governance.audit._encode.CodedFrame`: integer codes, a pandas frame of
        categoricals on demand); the predictions carry integer codes.

    Raises
    ------
    InputError
        Naming the file and the column: a missing column, missing or NaN predictions, a prediction
        outside the label set, a score outside [0, 1], or a length that does not match the eval data.
    """
    path = spec.model.predictions
    assert path is not None, "load_prediction_inputs needs model.predictions"
    eval_path = spec.data.eval
    if _self_contained_log(spec):
        return _self_contained(spec, Path(path))
    assert eval_path is not None
    return _aligned(spec, Path(path), Path(eval_path))


def _self_contained_log(spec: Spec) -> bool:
    path, eval_path = spec.model.predictions, spec.data.eval
    return (
        eval_path is None
        or str(eval_path) == str(path)
        or Path(eval_path).resolve() == Path(str(path)).resolve()
    )


def _read_log(path: Path, columns: Sequence[str], *, optional: Sequence[str] = (), field: str) -> pa.Table:
    """:func:`read_columns` over a file or a glob of files (one table, rows in file-name order)."""
    files = expand(path, source=path, field=None) if is_glob(path) else (path,)
    if len(files) == 1:
        return read_columns(files[0], columns, optional=optional)
    import pyarrow as pa

    tables = [read_columns(f, columns, optional=optional) for f in files]
    try:
        # Each file's string columns have their own dictionary: one shared dictionary lets the
        # codes of every file mean the same value.
        return pa.concat_tables(tables, promote_options="permissive").unify_dictionaries()
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise InputError(path, field, f"the matched files do not share one schema ({exc})") from None


def _timestamps(
    table: pa.Table, column: str, path: Path
) -> tuple[NDArray[np.int64], NDArray[np.bool_] | None]:
    """Microseconds since the epoch (UTC) of each row, and the rows without a time (None if none)."""
    import pyarrow as pa

    col = table[column]
    kind = col.type
    if pa.types.is_timestamp(kind):
        target = pa.timestamp("us", tz="UTC") if kind.tz else pa.timestamp("us")
    else:
        target = pa.timestamp("us")
    try:
        col = col.cast(target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        raise InputError(path, column, f"expected timestamps, got {kind}") from None
    missing = None
    if col.null_count:
        missing = np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        col = col.fill_null(pa.scalar(0, type=target))
    micros = np.asarray(col.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
    return micros, missing


def _check_task(
    spec: Spec, scores: NDArray[np.floating] | None, classes: tuple[str, ...], path: Path
) -> None:
    if scores is not None and len(classes) > 2:
        raise InputError(path, SCORE_COLUMN, ERR_SCORE_MULTICLASS.format(task=spec.task.value))


def _self_contained(spec: Spec, path: Path) -> tuple[DataBundle, Predictions]:
    """The predictions file carries the label and sensitive columns: it is the eval data."""
    from governance.audit._encode import CodedFrame
    from governance.data.bundle import DataBundle

    label = spec.data.label
    sensitive = tuple(spec.data.sensitive)
    stamp = _timestamp_column(spec)
    wanted = [label, *sensitive, PRED_COLUMN, *([stamp] if stamp else [])]
    table = _read_log(path, wanted, optional=[SCORE_COLUMN], field="model.predictions")
    _require_finite(table, path, [label, *sensitive, PRED_COLUMN])
    y_true = encode(table[label])
    _require_complete(y_true, path, label)
    y_pred = encode(table[PRED_COLUMN])
    _require_complete(y_pred, path, PRED_COLUMN)
    classes, true_codes = _positive_last(y_true, getattr(spec.data, "positive", None), spec)
    pred_codes = _recode(y_pred, classes, path, PRED_COLUMN)
    scores = _scores(table, path)
    _check_task(spec, scores, classes, path)
    columns: dict[str, tuple[NDArray[np.integer], list[str]]] = {label: (true_codes, list(classes))}
    all_used = set()
    for attr in sensitive:
        col = encode(table[attr], drop_unused=True)
        names = list(col.names)
        codes = col.codes
        if col.n_missing:
            from governance.audit._encode import MISSING_GROUP

            codes = np.where(codes < 0, len(names), codes)
            names.append(MISSING_GROUP)
        columns[attr] = (codes, names)
        if col.all_used:
            all_used.add(attr)
    times = _timestamps(table, stamp, path) if stamp else (None, None)
    bundle = DataBundle(
        task=spec.task.value,
        label=label,
        classes=classes,
        features=(),
        sensitive=sensitive,
        train=None,
        # Codes, not pandas: the fairness audit reads them as they are, and a pandas frame of
        # categoricals is built only if another audit asks for one (see CodedFrame).
        eval=cast("pd.DataFrame", CodedFrame(columns, table.num_rows, all_used=all_used)),
        paths={"eval": path},
        source=spec.data.source,
        license=spec.data.license,
        timestamps=times[0],
        timestamps_missing=times[1],
    )
    return bundle, _predictions(classes, true_codes, pred_codes, scores)


def _timestamp_column(spec: Spec) -> str | None:
    """The timestamp column: ``audits.fairness.timestamp``, else ``data.timestamp`` (as the
    fairness audit reads them)."""
    fairness = spec.audits.get("fairness") or {}
    value = fairness.get("timestamp") if isinstance(fairness, dict) else None
    if isinstance(value, str):
        return value
    named = getattr(spec.data, "timestamp", None)
    return str(named) if named else None


def load_counted_log(spec: Spec, engine: str) -> tuple[DataBundle, Predictions, Any]:
    """A self-contained decision log counted by ``engine`` (duckdb or spark), no rows in memory.

    Returns the bundle (an eval frame of no columns, as many rows as the log), empty predictions
    that carry the classes, and the :class:`~governance.audit._engines.CountedLog` the count-based
    audits read.
    """
    from governance.audit._encode import CodedFrame
    from governance.audit._engines import count_log, engine_settings
    from governance.data.bundle import DataBundle

    path = spec.model.predictions
    assert path is not None
    if not _self_contained_log(spec):
        raise InputError(
            spec.source,
            "engine",
            f"engine {engine} counts a self-contained decision log (label, sensitive columns and "
            "y_pred in the same files); give model.predictions without a separate data.eval",
        )
    files = expand(path, source=spec.source, field="model.predictions")
    for f in files:
        if not f.is_file():
            raise InputError(f, None, "file not found")
    fairness = spec.audits.get("fairness") or {}
    window = fairness.get("window") if isinstance(fairness, dict) and "fairness" in spec.audits else None
    counted = count_log(
        files,
        label=spec.data.label,
        sensitive=tuple(spec.data.sensitive),
        prediction=PRED_COLUMN,
        positive=getattr(spec.data, "positive", None),
        timestamp=_timestamp_column(spec),
        window=window if isinstance(window, str) else None,
        engine=engine,
        settings=engine_settings(spec),
        source=spec.source,
    )
    classes = counted.joint.classes
    empty = np.zeros(0, dtype=np.int32)
    bundle = DataBundle(
        task=spec.task.value,
        label=spec.data.label,
        classes=classes,
        features=(),
        sensitive=tuple(spec.data.sensitive),
        train=None,
        eval=cast("pd.DataFrame", CodedFrame({}, counted.rows)),
        paths={},
        source=spec.data.source,
        license=spec.data.license,
    )
    names = np.asarray(classes, dtype=object)
    predictions = Predictions(
        y_true=names[empty], y_pred=names[empty], classes=classes, y_true_codes=empty, y_pred_codes=empty
    )
    return bundle, predictions, counted


def _positive_last(
    col: EncodedColumn, positive: str | None, spec: Spec
) -> tuple[tuple[str, ...], NDArray[np.integer]]:
    """Classes in sorted order with the favourable one (``data.positive``) moved last, as the
    data stage orders them: for binary tasks ``classes[-1]`` is the positive class."""
    if positive is None:
        return col.names, col.codes
    if positive not in col.names:
        raise InputError(
            spec.source, "data.positive", f"{positive!r} is not one of the labels {list(col.names)}"
        )
    order = [n for n in col.names if n != positive] + [positive]
    remap = np.array([order.index(n) for n in col.names], dtype=np.int64)
    return tuple(order), remap[col.codes]


def _aligned(spec: Spec, path: Path, eval_path: Path) -> tuple[DataBundle, Predictions]:
    """Predictions in one file, the eval data (label, sensitive, features) in another."""
    bundle = _load_bundle(spec)
    table = _read_log(path, [PRED_COLUMN], optional=[SCORE_COLUMN], field="model.predictions")
    _require_finite(table, path, [PRED_COLUMN])
    if table.num_rows != len(bundle.eval):
        raise InputError(
            path, None, ERR_LENGTH.format(n=table.num_rows, eval_path=eval_path, m=len(bundle.eval))
        )
    y_pred = encode(table[PRED_COLUMN])
    _require_complete(y_pred, path, PRED_COLUMN)
    classes = tuple(bundle.classes)
    true_values = bundle.eval[bundle.label].astype(str).to_numpy()
    lookup = {c: i for i, c in enumerate(classes)}
    true_codes = np.array([lookup.get(v, -1) for v in true_values], dtype=np.int64)
    if (true_codes < 0).any():
        row = _first(true_codes < 0)
        raise InputError(
            eval_path, bundle.label, ERR_OUTSIDE.format(value=true_values[row], row=row, labels=list(classes))
        )
    pred_codes = _recode(y_pred, classes, path, PRED_COLUMN)
    scores = _scores(table, path)
    _check_task(spec, scores, classes, path)
    return bundle, _predictions(classes, true_codes, pred_codes, scores)


def _load_bundle(spec: Spec) -> DataBundle:
    """The eval data through the data stage (``governance.data.loading.load_bundle``)."""
    from governance.data.loading import load_bundle

    return load_bundle(spec)
