"""Decision logs beyond memory (issue 17): a 1B-row log audited by ``governance audit`` on DuckDB.

Targets: a decision log of 1,000,000,000 rows (Parquet files written here in chunks into a temp
folder: label, two sensitive attributes, the decision) audited for fairness and performance by the
whole ``governance audit`` process (``engine: auto`` picks DuckDB at this size) in <= 60 s wall
with a peak RSS <= 1.5 GB (the child's own rusage, ``os.wait4``). Its numbers must equal an oracle:
per-group rates and the disparities computed by DuckDB SQL alone, written here independently of
governance's counting and maths. Beside it, Spark ``local[2]`` and DuckDB count the same 10M-row
log (no target: Spark exists for clusters).

Smoke mode: 2M rows and 200k for Spark (checks the harness, not the targets).
``SCALE_ROWS`` overrides the row count (e.g. 100_000_000 where 1B does not fit the time).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROWS = 1_000_000_000
SPARK_ROWS = 10_000_000
CHUNK = 25_000_000
DISTINCT_CHUNKS = 4
SECONDS_TARGET = 60.0
RSS_TARGET_MB = 1536.0
TOL = 1e-12


def write_chunk(path: Path, n: int, seed: int) -> None:
    """``n`` rows: label, sex (2 groups), region (5, one of them 1%), y_pred; strings dictionary-coded."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    sex = rng.integers(0, 2, n, dtype=np.int32)
    region = rng.choice(5, n, p=[0.45, 0.3, 0.14, 0.1, 0.01]).astype(np.int32)
    y = (rng.random(n) < 0.35 + 0.05 * sex).astype(np.int8)
    flip = rng.random(n) < 0.15 + 0.02 * region
    table = pa.table(
        {
            "label": y,
            "sex": pa.DictionaryArray.from_arrays(sex, pa.array(["female", "male"])),
            "region": pa.DictionaryArray.from_arrays(region, pa.array(["n", "s", "e", "w", "island"])),
            "y_pred": np.where(flip, 1 - y, y).astype(np.int8),
        }
    )
    pq.write_table(table, path, row_group_size=1 << 20)


def write_log(folder: Path, rows: int) -> list[Path]:
    """The log in files of ``CHUNK`` rows. ``DISTINCT_CHUNKS`` chunks are generated; further files
    are copies of them (generation would otherwise dominate the benchmark's own time); the oracle
    reads the same files, so the equality check is unaffected."""
    folder.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    n_files = max(1, -(-rows // CHUNK))
    for i in range(n_files):
        n = min(CHUNK, rows - i * CHUNK)
        path = folder / f"decisions-{i:04d}.parquet"
        source = folder / f"decisions-{i % DISTINCT_CHUNKS:04d}.parquet"
        if i >= DISTINCT_CHUNKS and n == CHUNK:
            shutil.copyfile(source, path)
        else:
            write_chunk(path, n, seed=i)
        files.append(path)
    return files


def write_spec(folder: Path, engine: str = "auto", memory_limit: str = "1GB") -> Path:
    spec = folder / f"spec-{engine}.yaml"
    spec.write_text(
        "name: scale-bench\ntask: binary_classification\nseed: 0\n"
        f"engine: {engine}\nduckdb: {{memory_limit: {memory_limit}, threads: 2}}\n"
        "data: {label: label, sensitive: [sex, region]}\n"
        'model: {predictions: "log/decisions-*.parquet"}\n'
        "audits: {performance: {baselines: false}, fairness: {bootstrap: 1000}}\n"
    )
    return spec


def audit_process(spec: Path, out: Path, cwd: Path) -> tuple[float, float, dict[str, Any]]:
    """Wall seconds and peak RSS (MB) of the whole ``governance audit`` child, and its results."""
    command = [
        str(Path(sys.executable).with_name("governance")),
        "audit",
        str(spec),
        "--out",
        str(out),
        "--no-progress",
        "--store",
        str(cwd / "history.sqlite"),
    ]
    start = time.perf_counter()
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    stderr = proc.stderr.read().decode() if proc.stderr is not None else ""
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise RuntimeError(f"governance audit exited {code}: {stderr.strip()[-500:]}")
    rss_mb = usage.ru_maxrss / 1024  # Linux: kilobytes
    return wall, rss_mb, json.loads((out / "results.json").read_text())


def oracle(files: list[Path]) -> dict[str, float]:
    """The fairness and performance numbers by DuckDB SQL alone (independent of governance)."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads = 2")
    con.execute("SET enable_progress_bar = false")
    paths = [str(p) for p in files]
    out: dict[str, float] = {}
    rates = """
        SELECT {key} AS g,
               avg(y_pred::DOUBLE) AS sel,
               sum(CASE WHEN label = 1 AND y_pred = 1 THEN 1 ELSE 0 END)::DOUBLE
                   / nullif(sum(CASE WHEN label = 1 THEN 1 ELSE 0 END), 0) AS tpr,
               sum(CASE WHEN label = 0 AND y_pred = 1 THEN 1 ELSE 0 END)::DOUBLE
                   / nullif(sum(CASE WHEN label = 0 THEN 1 ELSE 0 END), 0) AS fpr,
               avg(CASE WHEN label = y_pred THEN 1.0 ELSE 0.0 END) AS acc
        FROM read_parquet(?) GROUP BY 1
    """
    disparity = """
        SELECT max(sel) - min(sel), min(sel) / max(sel),
               greatest(max(tpr) - min(tpr), max(fpr) - min(fpr)), max(tpr) - min(tpr),
               max(acc) - min(acc)
        FROM ({rates})
    """
    names = (
        "demographic_parity_difference",
        "demographic_parity_ratio",
        "equalized_odds_difference",
        "equal_opportunity_difference",
        "accuracy_difference",
    )
    for qualifier, key in (("sex", "sex"), ("region", "region"), ("sex*region", "sex || '*' || region")):
        row = con.execute(disparity.format(rates=rates.format(key=key)), [paths]).fetchone()
        assert row is not None
        for name, value in zip(names, row):
            out[f"fairness.{qualifier}.{name}"] = float(value)
    row = con.execute(
        """SELECT count(*)::DOUBLE,
                  avg(CASE WHEN label = y_pred THEN 1.0 ELSE 0.0 END),
                  sum(CASE WHEN label = 1 AND y_pred = 1 THEN 1 ELSE 0 END)::DOUBLE / sum(y_pred),
                  sum(CASE WHEN label = 1 AND y_pred = 1 THEN 1 ELSE 0 END)::DOUBLE / sum(label)
           FROM read_parquet(?)""",
        [paths],
    ).fetchone()
    assert row is not None
    out["performance.rows"], out["performance.accuracy"] = row[0], row[1]
    out["performance.precision"], out["performance.recall"] = row[2], row[3]
    con.close()
    return out


def spark_vs_duckdb(folder: Path, rows: int) -> dict[str, Any]:
    """Seconds for Spark local[2] and DuckDB to count the same log (counts compared)."""
    from governance.audit._engines import EngineSettings, count_log

    files = write_log(folder, rows)
    kwargs: dict[str, Any] = {"label": "label", "sensitive": ["sex", "region"]}
    start = time.perf_counter()
    duck = count_log(files, engine="duckdb", settings=EngineSettings(threads=2), **kwargs)
    duck_s = time.perf_counter() - start
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return {"spark": "pyspark not installed", f"duckdb_{rows}_s": round(duck_s, 3)}
    settings = EngineSettings(spark_master="local[2]")
    start = time.perf_counter()
    spark = count_log(files, engine="spark", settings=settings, **kwargs)  # includes JVM start
    spark_first_s = time.perf_counter() - start
    start = time.perf_counter()
    count_log(files, engine="spark", settings=settings, **kwargs)
    spark_s = time.perf_counter() - start
    return {
        "spark_rows": rows,
        f"duckdb_{rows}_s": round(duck_s, 3),
        "spark_local2_s": round(spark_s, 3),
        "spark_local2_with_jvm_start_s": round(spark_first_s, 3),
        "spark_equals_duckdb": bool(
            np.array_equal(spark.joint.counts, duck.joint.counts)
            and spark.joint.categories == duck.joint.categories
        ),
    }


def engine_decision(folder: Path, rows: int = 1_000_000, repeats: int = 3) -> dict[str, Any]:
    """Could DuckDB be the only engine? The whole ``governance audit`` process at 1M rows with
    ``engine: memory`` and ``engine: duckdb`` (best of ``repeats``), beside fairlearn's
    ``MetricFrame`` on the same rows (bench_fairness's timing), in one run."""
    from benchmarks.bench_fairness import time_audit, time_fairlearn
    from benchmarks.bench_fairness import write_log as write_fairness_log

    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "log.parquet"
    write_fairness_log(data, rows)
    best: dict[str, float] = {}
    for engine in ("memory", "duckdb"):
        spec = folder / f"spec-{engine}.yaml"
        spec.write_text(
            f"name: decision\ntask: binary_classification\nseed: 0\nengine: {engine}\n"
            "data: {label: label, sensitive: [sex, race]}\nmodel: {predictions: log.parquet}\n"
            "audits: {fairness: {bootstrap: 1000}}\n"
        )
        times, _ = time_audit(spec, folder / f"out-{engine}", repeats)
        best[engine] = min(times)
    fairlearn_s, _ = time_fairlearn(data)
    return {
        "decision_rows": rows,
        "memory_process_1m_s": round(best["memory"], 3),
        "duckdb_process_1m_s": round(best["duckdb"], 3),
        "fairlearn_1m_s": round(fairlearn_s, 2),
        "ratio_memory_over_fairlearn": round(fairlearn_s / best["memory"], 1),
        "ratio_duckdb_over_fairlearn": round(fairlearn_s / best["duckdb"], 1),
    }


def run(smoke: bool = False) -> dict[str, Any]:
    rows = int(os.environ.get("SCALE_ROWS", 2_000_000 if smoke else ROWS))
    spark_rows = 200_000 if smoke else SPARK_ROWS
    base = Path(os.environ.get("SCALE_TMP", tempfile.gettempdir()))
    work = Path(tempfile.mkdtemp(prefix="governance-scale-", dir=base))
    try:
        free_gb = shutil.disk_usage(work).free / 2**30
        start = time.perf_counter()
        files = write_log(work / "log", rows)
        generate_s = time.perf_counter() - start
        size_gb = sum(p.stat().st_size for p in files) / 2**30
        spec = write_spec(work)
        wall, rss_mb, results = audit_process(spec, work / "out", work)
        metrics = {
            **results["sections"]["fairness"]["metrics"],
            **results["sections"]["performance"]["metrics"],
        }
        start = time.perf_counter()
        expected = oracle(files)
        oracle_s = time.perf_counter() - start
        diffs = {k: abs(metrics[k] - v) for k, v in expected.items()}
        worst = max(diffs.values())
        equal = worst <= TOL
        figures: dict[str, Any] = {
            "rows": rows,
            "files": len(files),
            "parquet_gb": round(size_gb, 2),
            "disk_free_gb_before": round(free_gb, 1),
            "generate_s": round(generate_s, 1),
            "engine": results["subject"].get("engine", "memory"),
            "audit_wall_s": round(wall, 2),
            "audit_peak_rss_mb": round(rss_mb, 1),
            "oracle_duckdb_sql_s": round(oracle_s, 2),
            "numbers_checked": len(expected),
            "max_abs_diff_vs_oracle": worst,
            "equal_to_oracle": equal,
        }
        figures.update(spark_vs_duckdb(work / "spark", spark_rows))
        if not smoke and not os.environ.get("SCALE_SKIP_DECISION"):
            figures.update(engine_decision(work / "decision"))
        figures["target_s"] = SECONDS_TARGET
        figures["target_rss_mb"] = RSS_TARGET_MB
        figures["met"] = equal and (smoke or (wall <= SECONDS_TARGET and rss_mb <= RSS_TARGET_MB))
        return figures
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    print(json.dumps(run(smoke="--smoke" in sys.argv), indent=2))
