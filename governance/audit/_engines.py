"""Decision logs beyond memory: the confusion-cell counts per group from DuckDB or Spark.

Every fairness and performance number of a predictions-only audit is a function of one table: the
number of rows per (sensitive group of every attribute, true class, predicted class), a
:class:`~governance.audit._confusion.JointCounts`. Over a log that fits in memory it is one
``np.bincount`` (:mod:`governance.audit.predictions`); beyond memory, an engine computes it as one
``GROUP BY`` over the files, out of core, and hands back a few hundred rows. The rest of the maths
(rates, disparities, bootstrap, windows) stays ours, on the counts, so the numbers are identical
whichever engine counted (tests/audit/test_engines.py).

Engines
-------
``memory``
    The in-memory path: every needed column read into numpy (the only one that keeps the rows for
    ROC AUC, baselines and counterfactual pairs), the default up to :data:`AUTO_MAX_ROWS`.
``duckdb``
    Embedded, out of core (``SET memory_limit``, spills to a temp folder), the default beyond
    :data:`AUTO_MAX_ROWS`.
``spark``
    pyspark against ``spark.master`` (spec) or ``SPARK_MASTER``, for logs that live in a cluster.

Values become group names exactly as the in-memory loader names them (``encode`` in
:mod:`governance.audit.predictions`): integral floats as integers, booleans as ``True``/``False``,
sorted in their own type, and a missing value (null, NaN) is the group ``(missing)``.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from governance.audit._confusion import JointCounts
from governance.data.bundle import MISSING_GROUP
from governance.errors import InputError

if TYPE_CHECKING:
    from governance.spec import Spec

__all__ = [
    "AUTO_MAX_CSV_BYTES",
    "AUTO_MAX_ROWS",
    "WINDOWS",
    "CountedLog",
    "EngineSettings",
    "choose_engine",
    "count_log",
    "engine_settings",
    "window_labels",
]

#: ``engine: auto`` counts with DuckDB above this many rows (read from the Parquet footers, no pass
#: over the data). Up to it the in-memory path keeps the rows, which ROC AUC, the baselines,
#: counterfactual pairs, duplicates and PII need, and is as fast as DuckDB at 1M rows (both 1.24 s
#: for the whole process, docs/scale.md); above it its peak memory (~110 bytes a row with scores:
#: 1.13 GB at 10M rows, DuckDB 0.34 GB) would pass 1.5 GB.
AUTO_MAX_ROWS = 10_000_000
#: The same limit for CSV logs, whose row count is unknown without reading them (~50 bytes a row).
AUTO_MAX_CSV_BYTES = 512 << 20

Window = Literal["month", "week", "day"]
WINDOWS: tuple[str, ...] = ("month", "week", "day")

ERR_MISSING_COLUMN = "column is missing; the file has {have}"
ERR_NULL = "{n} row(s) have no value; every row needs one"
ERR_NON_FINITE = "{n} row(s) hold a non-finite number ({value}); expected finite values"
ERR_OUTSIDE = "value {value!r} ({n} row(s)) is not in the label set {labels}"
ERR_NO_PYSPARK = "engine spark needs pyspark (pip install 'governance[spark]')"
ERR_NO_MASTER = "engine spark needs spark.master in the spec or the SPARK_MASTER environment variable"
ERR_TIMESTAMP = "{n} row(s) have no timestamp; every row of a windowed log needs one"


@dataclass(frozen=True)
class EngineSettings:
    """How an engine runs: DuckDB's memory limit and threads, Spark's master URL."""

    memory_limit: str = "1GB"
    threads: int | None = None
    temp_directory: str | None = None
    spark_master: str | None = None


@dataclass(frozen=True)
class CountedLog:
    """The counts of a decision log, as one engine computed them.

    Attributes
    ----------
    joint
        Confusion counts over every sensitive attribute's groups (the whole period).
    windows
        ``(window start as YYYY-MM-DD, counts)`` in time order, when a window was asked for; every
        window's counts have the categories and classes of ``joint``.
    first_us, last_us
        The first and last timestamp (microseconds since the epoch, UTC), when a timestamp column
        was named.
    engine
        ``memory``, ``duckdb`` or ``spark``.
    """

    joint: JointCounts
    windows: tuple[tuple[str, JointCounts], ...] = ()
    first_us: int | None = None
    last_us: int | None = None
    engine: str = "memory"
    files: tuple[Path, ...] = field(default=())

    @property
    def rows(self) -> int:
        return self.joint.total

    @property
    def span_days(self) -> float | None:
        """Days from the first to the last timestamp (None without timestamps)."""
        if self.first_us is None or self.last_us is None:
            return None
        return (self.last_us - self.first_us) / 86_400e6


def engine_settings(spec: Spec) -> EngineSettings:
    """The spec's ``duckdb:`` and ``spark:`` settings, ``SPARK_MASTER`` filling a missing master."""
    duck = getattr(spec, "duckdb", None)
    spark = getattr(spec, "spark", None)
    master = (spark.master if spark is not None else None) or os.environ.get("SPARK_MASTER") or None
    return EngineSettings(
        memory_limit=duck.memory_limit if duck is not None else "1GB",
        threads=duck.threads if duck is not None else None,
        temp_directory=None if duck is None or duck.temp_directory is None else str(duck.temp_directory),
        spark_master=master,
    )


def choose_engine(requested: str, files: Sequence[Path]) -> str:
    """``memory``, ``duckdb`` or ``spark``: the requested engine, or by size for ``auto``."""
    if requested != "auto":
        return requested
    rows = 0
    for path in files:
        suffix = path.suffix.lower()
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            try:
                rows += pq.read_metadata(path).num_rows
            except (OSError, ValueError):
                return "memory"  # the in-memory reader reports the broken file, naming it
        elif suffix == ".csv" and path.is_file():
            rows += math.ceil(path.stat().st_size * AUTO_MAX_ROWS / AUTO_MAX_CSV_BYTES)
        else:
            return "memory"  # JSON lines: only the in-memory path reads them
    return "duckdb" if rows > AUTO_MAX_ROWS else "memory"


# -- counting -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Query:
    """What to count: the columns, by role."""

    label: str
    prediction: str
    sensitive: tuple[str, ...]
    timestamp: str | None
    window: str | None

    @property
    def keys(self) -> tuple[str, ...]:
        return (*self.sensitive, self.label, self.prediction)


def count_log(
    files: Sequence[Path],
    *,
    label: str,
    sensitive: Sequence[str],
    prediction: str = "y_pred",
    positive: str | None = None,
    timestamp: str | None = None,
    window: str | None = None,
    engine: str = "duckdb",
    settings: EngineSettings | None = None,
    source: str | os.PathLike[str] | None = None,
) -> CountedLog:
    """Count a decision log's rows per (groups, true class, predicted class) with ``engine``.

    Parameters
    ----------
    files
        Parquet or CSV files (one type), read as one table.
    label, prediction, sensitive
        The columns of the true class, the decided class and the sensitive attributes.
    positive
        The favourable class (``data.positive``): moved last among the classes, as the data stage
        orders them.
    timestamp, window
        A timestamp column: its first and last value are reported; with ``window`` (month, week,
        day) the counts are also split by the window each row falls in.
    engine
        ``duckdb`` or ``spark``.

    Raises
    ------
    InputError
        Naming the first file and the column: a missing column, a missing label or decision, a
        decision outside the label set, an infinite value, a row without timestamp.
    """
    settings = settings or EngineSettings()
    if window is not None and window not in WINDOWS:
        raise ValueError(f"unknown window {window!r}; expected one of {list(WINDOWS)}")
    query = _Query(label, prediction, tuple(sensitive), timestamp, window if timestamp else None)
    where = files[0] if files else source
    if engine == "duckdb":
        rows, kinds = _duckdb_rows(files, query, settings, where)
    elif engine == "spark":
        rows, kinds = _spark_rows(files, query, settings, source)
    else:
        raise ValueError(f"unknown engine {engine!r}")
    return _counted(rows, kinds, query, positive=positive, engine=engine, files=tuple(files), where=where)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _duckdb_rows(
    files: Sequence[Path], query: _Query, settings: EngineSettings, where: Any
) -> tuple[list[tuple[Any, ...]], tuple[str, ...]]:
    import duckdb

    con = duckdb.connect(":memory:")
    try:
        con.execute(f"SET memory_limit = '{settings.memory_limit}'")
        if settings.threads is not None:
            con.execute(f"SET threads = {int(settings.threads)}")
        temp = settings.temp_directory or os.path.join(tempfile.gettempdir(), "governance-duckdb")
        con.execute("SET temp_directory = ?", [temp])
        con.execute("SET preserve_insertion_order = false")
        con.execute("SET enable_progress_bar = false")  # stdout belongs to the CLI
        con.execute("SET TimeZone = 'UTC'")
        paths = [str(p) for p in files]
        suffix = files[0].suffix.lower()
        reader = (
            "read_csv(?, header = true, union_by_name = true)"
            if suffix == ".csv"
            else ("read_parquet(?, union_by_name = true)")
        )
        described = con.execute(f"DESCRIBE SELECT * FROM {reader}", [paths]).fetchall()
        types = {str(r[0]): str(r[1]).upper() for r in described}
        _require_columns(query, list(types), where)
        kinds = tuple(_kind(types[c]) for c in query.keys)
        keys = [_quote(c) for c in query.keys]
        select = list(keys)
        aggs = ["count(*) AS n"]
        if query.timestamp is not None:
            ts = f"CAST({_quote(query.timestamp)} AS TIMESTAMP)"
            aggs += [f"min(epoch_us({ts}))", f"max(epoch_us({ts}))", f"count(*) - count({ts})"]
            if query.window is not None:
                select.append(f"strftime(date_trunc('{query.window}', {ts}), '%Y-%m-%d') AS w")
        group = ", ".join(str(i + 1) for i in range(len(select)))
        sql = f"SELECT {', '.join(select + aggs)} FROM {reader} GROUP BY {group}"
        return con.execute(sql, [paths]).fetchall(), kinds
    except duckdb.Error as exc:  # a missing, truncated or unreadable file
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise InputError(where, None, f"cannot read the log ({first})") from None
    finally:
        con.close()


def _kind(type_name: str) -> str:
    if type_name in ("FLOAT", "DOUBLE", "REAL") or type_name.startswith("DECIMAL"):
        return "float"
    return "other"


def _require_columns(query: _Query, have: Sequence[str], where: Any) -> None:
    wanted = [*query.keys, *([query.timestamp] if query.timestamp else [])]
    for col in wanted:
        if col not in have:
            raise InputError(where, col, ERR_MISSING_COLUMN.format(have=sorted(have)))


def _spark_rows(
    files: Sequence[Path], query: _Query, settings: EngineSettings, source: Any
) -> tuple[list[tuple[Any, ...]], tuple[str, ...]]:
    try:
        from pyspark.sql import SparkSession
        from pyspark.sql import functions as F
        from pyspark.sql import types as T
    except ImportError:
        raise InputError(source, "engine", ERR_NO_PYSPARK) from None
    if not settings.spark_master:
        raise InputError(source, "spark.master", ERR_NO_MASTER)
    spark = (
        SparkSession.builder.master(settings.spark_master)
        .appName("governance-audit")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .getOrCreate()
    )
    paths = [str(p) for p in files]
    where = files[0]
    try:
        if files[0].suffix.lower() == ".csv":
            frame = spark.read.option("header", True).option("inferSchema", True).csv(paths)
        else:
            frame = spark.read.parquet(*paths)
    except Exception as exc:  # pyspark's AnalysisException and friends: the files cannot be read
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise InputError(where, None, f"Spark cannot read the log ({first})") from None
    _require_columns(query, frame.columns, where)
    floating = (T.FloatType, T.DoubleType, T.DecimalType)
    kinds = tuple("float" if isinstance(frame.schema[c].dataType, floating) else "other" for c in query.keys)
    keys = [F.col(f"`{c}`").alias(f"k{i}") for i, c in enumerate(query.keys)]
    aggs = [F.count(F.lit(1)).alias("n")]
    if query.timestamp is not None:
        ts = F.col(f"`{query.timestamp}`").cast("timestamp")
        micros = F.unix_micros(ts)
        aggs += [F.min(micros), F.max(micros), (F.count(F.lit(1)) - F.count(ts))]
        if query.window is not None:
            keys.append(F.date_format(F.date_trunc(query.window, ts), "yyyy-MM-dd").alias("w"))
    result = frame.groupBy(*keys).agg(*aggs).collect()
    return [tuple(r) for r in result], kinds


# -- from engine rows to JointCounts --------------------------------------------------------------


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _names(values: Sequence[Any], kind: str) -> dict[Any, str]:
    """Each present value's name, as the in-memory ``encode`` writes it."""
    present = [v for v in values if not _is_missing(v)]
    if kind == "float":
        floats = [float(v) for v in present]
        integral = all(f == round(f) for f in floats)
        return {v: (str(int(float(v))) if integral else str(float(v))) for v in present}
    return {v: str(v) for v in present}


def _sorted_names(values: Sequence[Any], kind: str) -> tuple[list[str], dict[Any, str]]:
    """Distinct names sorted in the values' own type (numbers numerically), equal names merged."""
    named = _names(values, kind)
    order: list[str] = []
    for v in sorted(named, key=lambda x: float(x) if kind == "float" else x):
        if named[v] not in order:
            order.append(named[v])
    return order, named


def _counted(
    rows: list[tuple[Any, ...]],
    kinds: tuple[str, ...],
    query: _Query,
    *,
    positive: str | None,
    engine: str,
    files: tuple[Path, ...],
    where: Any,
) -> CountedLog:
    m = len(query.sensitive)
    n_keys = m + 2
    windowed = query.window is not None
    n_at = n_keys + (1 if windowed else 0)
    for i, col in enumerate(query.keys):
        bad = [r for r in rows if isinstance(r[i], float) and math.isinf(r[i])]
        if bad:
            shown = ", ".join(sorted({repr(float(r[i])) for r in bad}))
            raise InputError(where, col, ERR_NON_FINITE.format(n=sum(r[n_at] for r in bad), value=shown))
    for i, col in ((m, query.label), (m + 1, query.prediction)):
        missing = sum(r[n_at] for r in rows if _is_missing(r[i]))
        if missing:
            raise InputError(where, col, ERR_NULL.format(n=missing))
    if query.timestamp is not None:
        no_time = sum(int(r[n_at + 3]) for r in rows)
        if no_time and windowed:
            raise InputError(where, query.timestamp, ERR_TIMESTAMP.format(n=no_time))
    # Classes: the labels that occur, sorted in their type, the favourable one last.
    classes, label_names = _sorted_names([r[m] for r in rows], kinds[m])
    if positive is not None:
        if positive not in classes:
            raise InputError(None, "data.positive", f"{positive!r} is not one of the labels {classes}")
        classes = [c for c in classes if c != positive] + [positive]
    _, pred_names = _sorted_names([r[m + 1] for r in rows], kinds[m + 1])
    outside = {pred_names[r[m + 1]]: 0 for r in rows if pred_names[r[m + 1]] not in classes}
    if outside:
        for r in rows:
            if pred_names[r[m + 1]] in outside:
                outside[pred_names[r[m + 1]]] += r[n_at]
        value, n = next(iter(outside.items()))
        raise InputError(where, query.prediction, ERR_OUTSIDE.format(value=value, n=n, labels=classes))
    categories: list[list[str]] = []
    group_names: list[dict[Any, str]] = []
    for i in range(m):
        values = [r[i] for r in rows if r[n_at] > 0]
        order, named = _sorted_names(values, kinds[i])
        if any(_is_missing(v) for v in values):
            order.append(MISSING_GROUP)
        categories.append(order)
        group_names.append(named)
    k = len(classes)
    shape = (*(len(c) for c in categories), k, k)
    windows = sorted({r[n_keys] for r in rows}) if windowed else []
    counts = np.zeros((max(len(windows), 1), *shape), dtype=np.int64)
    for r in rows:
        cell = [0 if not windowed else windows.index(r[n_keys])]
        for i in range(m):
            cell.append(categories[i].index(MISSING_GROUP if _is_missing(r[i]) else group_names[i][r[i]]))
        cell.append(classes.index(label_names[r[m]]))
        cell.append(classes.index(pred_names[r[m + 1]]))
        counts[tuple(cell)] += int(r[n_at])
    cats = tuple(tuple(c) for c in categories)

    def joint(table: np.ndarray) -> JointCounts:
        return JointCounts(attributes=query.sensitive, categories=cats, classes=tuple(classes), counts=table)

    first = last = None
    if query.timestamp is not None:
        firsts = [int(r[n_at + 1]) for r in rows if r[n_at + 1] is not None]
        lasts = [int(r[n_at + 2]) for r in rows if r[n_at + 2] is not None]
        first, last = (min(firsts), max(lasts)) if firsts else (None, None)
    return CountedLog(
        joint=joint(counts.sum(axis=0)),
        windows=tuple((w, joint(counts[i])) for i, w in enumerate(windows)),
        first_us=first,
        last_us=last,
        engine=engine,
        files=files,
    )


# -- the in-memory path's windows ------------------------------------------------------------------


def window_labels(micros: np.ndarray, window: str) -> tuple[np.ndarray, tuple[str, ...]]:
    """Codes and labels (``YYYY-MM-DD`` of the window's first day, UTC) of timestamps in µs.

    Weeks start on Monday, as DuckDB's and Spark's ``date_trunc('week')``.
    """
    days = np.floor_divide(micros, 86_400_000_000).astype("datetime64[D]")
    if window == "month":
        start = days.astype("datetime64[M]").astype("datetime64[D]")
    elif window == "week":
        d = days.astype(np.int64)
        start = (d - (d + 3) % 7).astype("datetime64[D]")  # 1970-01-01 was a Thursday
    else:
        start = days
    uniques, codes = np.unique(start, return_inverse=True)
    return codes.astype(np.int64), tuple(str(u) for u in uniques)
