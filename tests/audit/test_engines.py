"""Decision logs beyond memory (issue 17): DuckDB and Spark count the same cells as numpy.

Every number of the fairness and performance audits derives from the joint confusion counts, so
the engines are held to the same ``JointCounts`` (names, order, counts) as the in-memory path on
awkward logs (a one-row group, missing values in string and float columns, multiclass, several
files), and the audits' sections to equality, bootstrap intervals included.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from governance.audit._confusion import JointCounts
from governance.audit._encode import group_codes
from governance.audit._engines import AUTO_MAX_ROWS, choose_engine, count_log, window_labels
from governance.audit.predictions import load_prediction_inputs
from governance.data.bundle import MISSING_GROUP
from governance.errors import InputError
from governance.pipeline import run_audit
from governance.spec import load_spec

START_US = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


def _awkward(n: int, seed: int, *, classes: int = 3) -> pa.Table:
    """A log with a one-row group, missing values (string and float), integral floats, 3 classes."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    region = rng.choice(["north", "south", "east"], n).astype(object)
    region[0] = "tiny"  # a group of one row
    region[rng.random(n) < 0.05] = None  # missing -> "(missing)"
    age = rng.choice([20.0, 40.0, 60.0], n)
    age[rng.random(n) < 0.04] = np.nan  # NaN is missing too, never a group of its own
    y_pred = np.where(rng.random(n) < 0.7, y, rng.integers(0, classes, n))
    ts = START_US + rng.integers(0, 400 * 86_400, n) * 1_000_000
    return pa.table(
        {
            "label": pa.array(y, pa.int64()),
            "region": pa.array(list(region), pa.string()),
            "age": pa.array(age, pa.float64()),
            "y_pred": pa.array(y_pred, pa.int64()),
            "ts": pa.array(ts, pa.timestamp("us")),
        }
    )


def _write(folder: Path, table: pa.Table, *, parts: int = 3, fmt: str = "parquet") -> str:
    folder.mkdir(parents=True, exist_ok=True)
    bounds = np.linspace(0, table.num_rows, parts + 1).astype(int)
    for i in range(parts):
        part = table.slice(bounds[i], bounds[i + 1] - bounds[i])
        path = folder / f"2026-{i:02d}.{fmt}"
        if fmt == "parquet":
            pq.write_table(part, path)
        else:
            pcsv.write_csv(part, path)
    return f"logs/2026-*.{fmt}"


def _spec(
    folder: Path,
    pattern: str,
    *,
    engine: str,
    task: str = "multiclass_classification",
    extra: str = "",
    fairness: str = "{bootstrap: 50, window: month}",
    sensitive: str = "region, age",
) -> Path:
    spec = folder / f"spec-{engine}.yaml"
    spec.write_text(
        f"name: log\ntask: {task}\nseed: 3\nengine: {engine}\n"
        f"data: {{label: label, sensitive: [{sensitive}], timestamp: ts, event_logs: true}}\n"
        f'model: {{predictions: "{pattern}"}}\n'
        f"audits: {{data_quality: {{}}, performance: {{baselines: false}}, fairness: {fairness}}}\n{extra}"
    )
    return spec


def _run(spec: Path, out: Path) -> dict[str, Any]:
    run_audit(load_spec(spec), out, progress=False, report_formats=())
    return json.loads((out / "results.json").read_text())


def _section(results: dict[str, Any], name: str) -> dict[str, Any]:
    sections = results["sections"]
    return sections[name] if isinstance(sections, dict) else next(s for s in sections if s["name"] == name)


def _memory_joint(spec: Path) -> JointCounts:
    bundle, pred = load_prediction_inputs(load_spec(spec))
    codes, cats = zip(*(group_codes(bundle.eval[a]) for a in bundle.sensitive))
    return JointCounts.from_codes(
        list(codes),
        list(cats),
        pred.y_true_codes,
        pred.y_pred_codes,
        pred.classes,
        attributes=bundle.sensitive,
    )


def _assert_same_joint(a: JointCounts, b: JointCounts) -> None:
    assert a.attributes == b.attributes
    assert a.categories == b.categories
    assert a.classes == b.classes
    assert np.array_equal(a.counts, b.counts)


def test_duckdb_counts_equal_numpy_on_awkward_multiclass_log(tmp_path: Path) -> None:
    table = _awkward(3000, 0)
    pattern = _write(tmp_path / "logs", table)
    spec = _spec(tmp_path, pattern, engine="memory")
    memory = _memory_joint(spec)
    files = sorted((tmp_path / "logs").glob("*.parquet"))
    counted = count_log(files, label="label", sensitive=["region", "age"], timestamp="ts", window="month")
    _assert_same_joint(counted.joint, memory)
    assert MISSING_GROUP in counted.joint.categories[0] and MISSING_GROUP in counted.joint.categories[1]
    assert "tiny" in counted.joint.categories[0]
    assert counted.joint.categories[1] == ("20", "40", "60", MISSING_GROUP)  # integral floats as ints
    assert counted.rows == 3000 and len(counted.windows) == 14  # 400 days from 2026-01-01
    assert sum(j.total for _, j in counted.windows) == 3000
    ts = table["ts"].cast(pa.int64()).to_numpy()
    assert counted.first_us == ts.min() and counted.last_us == ts.max()


def test_duckdb_and_memory_audits_are_identical(tmp_path: Path) -> None:
    pattern = _write(tmp_path / "logs", _awkward(2000, 1))
    memory = _run(_spec(tmp_path, pattern, engine="memory"), tmp_path / "m")
    duck = _run(_spec(tmp_path, pattern, engine="duckdb"), tmp_path / "d")
    assert _section(duck, "fairness")["metrics"] == _section(memory, "fairness")["metrics"]
    for table in ("groups", "disparities", "windows"):
        assert _section(duck, "fairness")["tables"][table] == _section(memory, "fairness")["tables"][table]
    perf_m, perf_d = _section(memory, "performance")["metrics"], _section(duck, "performance")["metrics"]
    assert perf_d == {k: v for k, v in perf_m.items() if k != "performance.roc_auc"}
    span_m = _section(memory, "data_quality")["metrics"]["data_quality.log_span_days"]
    assert _section(duck, "data_quality")["metrics"]["data_quality.log_span_days"] == span_m
    assert duck["subject"]["engine"] == "duckdb"
    # every matched file is hashed into the subject and the manifest
    files = duck["subject"]["predictions"]["files"]
    assert len(files) == 3 and all(len(h) == 64 for h in files.values())
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    inputs = manifest["inputs"]
    assert sorted(k for k in inputs if k.startswith("predictions")) == [f"predictions[{i}]" for i in range(3)]
    assert {Path(v["path"]).name for k, v in inputs.items() if k.startswith("predictions")} == {
        f"2026-{i:02d}.parquet" for i in range(3)
    }
    assert files == {
        str(tmp_path / "logs" / f"2026-{i:02d}.parquet"): inputs[f"predictions[{i}]"]["sha256"]
        for i in range(3)
    }


def test_duckdb_reads_csv_globs_like_memory(tmp_path: Path) -> None:
    pattern = _write(tmp_path / "logs", _awkward(800, 2, classes=2), parts=2, fmt="csv")
    kw = {"task": "binary_classification", "fairness": "{bootstrap: 0, window: week}"}
    memory = _run(_spec(tmp_path, pattern, engine="memory", **kw), tmp_path / "m")
    duck = _run(_spec(tmp_path, pattern, engine="duckdb", **kw), tmp_path / "d")
    assert _section(duck, "fairness")["metrics"] == _section(memory, "fairness")["metrics"]
    assert _section(duck, "fairness")["tables"]["groups"] == _section(memory, "fairness")["tables"]["groups"]
    assert (
        _section(duck, "fairness")["tables"]["windows"] == _section(memory, "fairness")["tables"]["windows"]
    )
    span = _section(memory, "data_quality")["metrics"]["data_quality.log_span_days"]
    assert (
        span is not None and _section(duck, "data_quality")["metrics"]["data_quality.log_span_days"] == span
    )


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(1, 60),
    seed=st.integers(0, 10_000),
    groups=st.integers(1, 4),
    k=st.integers(2, 4),
    p_missing=st.sampled_from([0.0, 0.3, 1.0]),
)
def test_duckdb_counts_equal_numpy_property(
    tmp_path_factory: Any, n: int, seed: int, groups: int, k: int, p_missing: float
) -> None:
    """Tiny logs: a class or group that occurs once, a column that is all missing."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, groups, n).astype(float) * 1.5  # non-integral floats keep "1.5"
    g[rng.random(n) < p_missing] = np.nan
    y = rng.integers(0, k, n)
    table = pa.table({"label": y, "g": g, "y_pred": y[rng.permutation(n)]})
    folder = tmp_path_factory.mktemp("log")
    pq.write_table(table, folder / "log.parquet")
    counted = count_log([folder / "log.parquet"], label="label", sensitive=["g"])
    spec = folder / "spec.yaml"
    spec.write_text(
        "name: p\ntask: multiclass_classification\n"
        "data: {label: label, sensitive: [g]}\nmodel: {predictions: log.parquet}\n"
    )
    expected = _memory_joint(spec)
    _assert_same_joint(counted.joint, expected)


def test_windows_find_a_month_that_breaks_four_fifths(tmp_path: Path) -> None:
    """Over the year the selection rates are within four-fifths; in March they are not."""
    rng = np.random.default_rng(5)
    n = 12_000
    month = rng.integers(0, 12, n)
    sex = rng.choice(["F", "M"], n)
    march = month == 2
    rate = np.where((sex == "F") & march, 0.2, 0.5)
    y_pred = (rng.random(n) < rate).astype(int)
    days = np.array([np.datetime64(f"2026-{m + 1:02d}-10") for m in month]).astype("datetime64[us]")
    table = pa.table(
        {
            "label": rng.integers(0, 2, n),
            "sex": sex,
            "age": rng.choice([30, 50], n),
            "y_pred": y_pred,
            "ts": pa.array(days),
        }
    )
    pattern = _write(tmp_path / "logs", table, parts=2)
    for engine in ("memory", "duckdb"):
        out = _run(
            _spec(
                tmp_path,
                pattern,
                engine=engine,
                task="binary_classification",
                fairness="{bootstrap: 0, window: month, intersections: false}",
                sensitive="sex, age",
            ),
            tmp_path / engine,
        )
        fair = _section(out, "fairness")
        whole = fair["metrics"]["fairness.sex.demographic_parity_ratio"]
        worst = fair["metrics"]["fairness.sex.demographic_parity_ratio.max_window"]
        assert whole >= 0.8 > worst
        march_rows = [
            r
            for r in fair["tables"]["windows"]
            if r["window"] == "2026-03-01"
            and r["attribute"] == "sex"
            and r["metric"] == "demographic_parity_ratio"
        ]
        assert march_rows[0]["value"] == pytest.approx(worst)
        ids = [f["id"] for f in fair["findings"]]
        assert "fairness.window_breach.sex.demographic_parity_ratio" in ids
        assert len(fair["details"]["window"]["windows"]) == 12
    # The report draws the trend, one point per month, March below the four-fifths line.
    from governance.report.charts import build_charts
    from governance.results import load_results

    (trend,) = [
        c
        for c in build_charts(load_results(tmp_path / "duckdb" / "results.json"))["fairness"]
        if c.id == "fairness_trend"
    ]
    assert trend.svg is not None and "2026-03-01" in trend.alt


def test_week_windows_start_on_monday() -> None:
    micros = np.array([START_US, START_US + 3 * 86_400_000_000, START_US + 5 * 86_400_000_000])
    codes, labels = window_labels(micros, "week")  # 2026-01-01 is a Thursday
    assert labels == ("2025-12-29", "2026-01-05") and codes.tolist() == [0, 0, 1]
    assert window_labels(micros, "month")[1] == ("2026-01-01",)
    assert window_labels(micros, "day")[1] == ("2026-01-01", "2026-01-04", "2026-01-06")


def test_log_span_only_when_flagged(tmp_path: Path) -> None:
    table = pa.table(
        {
            "label": [0, 1, 1, 0],
            "sex": ["F", "M", "F", "M"],
            "y_pred": [0, 1, 0, 0],
            "ts": pa.array(
                np.array(
                    ["2026-01-01T00:00", "2026-03-01T12:00", None, "2026-07-03T00:00"], dtype="datetime64[us]"
                )
            ),
        }
    )
    pq.write_table(table, tmp_path / "log.parquet")
    spec = tmp_path / "s.yaml"
    base = (
        "name: s\ntask: binary_classification\n"
        "data: {{label: label, sensitive: [sex], timestamp: ts{flag}}}\nmodel: {{predictions: log.parquet}}\n"
        "audits: {{data_quality: {{}}}}\nengine: {engine}\n"
    )
    for engine in ("memory", "duckdb"):
        spec.write_text(base.format(flag=", event_logs: true", engine=engine))
        metrics = _section(_run(spec, tmp_path / f"o-{engine}"), "data_quality")["metrics"]
        assert metrics["data_quality.log_span_days"] == pytest.approx(183.0)
        spec.write_text(base.format(flag="", engine=engine))
        metrics = _section(_run(spec, tmp_path / f"n-{engine}"), "data_quality")["metrics"]
        assert "data_quality.log_span_days" not in metrics


def test_log_retention_rule_in_eu_pack() -> None:
    from governance.policy.loader import load_policy

    rule = next(
        r for r in load_policy("eu-ai-act-high-risk").rules if r.metric == "data_quality.log_span_days"
    )
    assert rule.threshold == 183 and rule.op == ">=" and str(rule.threshold_source.value) == "regulation"
    assert str(rule.on_missing.value) == "skip"
    assert {"EU AI Act Art. 19(1)", "EU AI Act Art. 26(6)"} <= set(rule.refs)


def test_glob_matching_nothing_is_exit_2_naming_the_field(tmp_path: Path) -> None:
    spec = _spec(tmp_path, "logs/nothing-*.parquet", engine="auto")
    with pytest.raises(InputError) as err:
        run_audit(load_spec(spec), tmp_path / "o", progress=False, report_formats=())
    assert err.value.field == "model.predictions" and "matches no file" in err.value.message
    assert not (tmp_path / "o" / "results.json").exists()


def test_engine_errors_name_file_and_column(tmp_path: Path) -> None:
    table = pa.table({"label": [0, 1, None], "sex": ["F", "M", "F"], "y_pred": [0, 1, 2]})
    pq.write_table(table, tmp_path / "log.parquet")
    with pytest.raises(InputError) as err:
        count_log([tmp_path / "log.parquet"], label="label", sensitive=["sex"])
    assert err.value.field == "label" and "1 row(s)" in err.value.message
    with pytest.raises(InputError) as err:
        count_log([tmp_path / "log.parquet"], label="label", sensitive=["race"])
    assert err.value.field == "race"
    pq.write_table(table.slice(0, 2).set_column(2, "y_pred", pa.array([0, 5])), tmp_path / "log.parquet")
    with pytest.raises(InputError) as err:
        count_log([tmp_path / "log.parquet"], label="label", sensitive=["sex"])
    assert err.value.field == "y_pred" and "'5'" in err.value.message


def test_auto_engine_by_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pq.write_table(_awkward(100, 3), tmp_path / "a.parquet")
    assert choose_engine("auto", [tmp_path / "a.parquet"]) == "memory"
    monkeypatch.setattr("governance.audit._engines.AUTO_MAX_ROWS", 99)
    assert choose_engine("auto", [tmp_path / "a.parquet"]) == "duckdb"
    assert choose_engine("spark", [tmp_path / "a.parquet"]) == "spark"
    assert AUTO_MAX_ROWS == 10_000_000


# -- Spark ----------------------------------------------------------------------------------------


def _spark_missing() -> str | None:
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install 'governance[spark]')"
    if shutil.which("java") is None:
        return "no java on PATH: Spark needs a JDK"
    try:
        subprocess.run(["java", "-version"], capture_output=True, check=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "java does not run: Spark needs a JDK"
    return None


spark = pytest.mark.skipif(_spark_missing() is not None, reason=str(_spark_missing()))


@spark
@pytest.mark.slow
def test_spark_local_counts_equal_duckdb_and_numpy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pattern = _write(tmp_path / "logs", _awkward(1500, 4))
    memory = _run(_spec(tmp_path, pattern, engine="memory"), tmp_path / "m")
    monkeypatch.setenv("SPARK_MASTER", "local[2]")
    spark_out = _run(_spec(tmp_path, pattern, engine="spark"), tmp_path / "s")
    assert spark_out["subject"]["engine"] == "spark"
    assert _section(spark_out, "fairness")["metrics"] == _section(memory, "fairness")["metrics"]
    for table in ("groups", "disparities", "windows"):
        assert (
            _section(spark_out, "fairness")["tables"][table] == _section(memory, "fairness")["tables"][table]
        )
    span = _section(memory, "data_quality")["metrics"]["data_quality.log_span_days"]
    assert _section(spark_out, "data_quality")["metrics"]["data_quality.log_span_days"] == span
    files = sorted((tmp_path / "logs").glob("*.parquet"))
    from governance.audit._engines import EngineSettings

    counted = count_log(
        files,
        label="label",
        sensitive=["region", "age"],
        timestamp="ts",
        window="week",
        engine="spark",
        settings=EngineSettings(spark_master="local[2]"),
    )
    duck = count_log(files, label="label", sensitive=["region", "age"], timestamp="ts", window="week")
    _assert_same_joint(counted.joint, duck.joint)
    assert [w for w, _ in counted.windows] == [w for w, _ in duck.windows]
    for (_, a), (_, b) in zip(counted.windows, duck.windows):
        _assert_same_joint(a, b)


@spark
def test_spark_without_master_is_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPARK_MASTER", raising=False)
    pattern = _write(tmp_path / "logs", _awkward(50, 6), parts=1)
    with pytest.raises(InputError) as err:
        _run(_spec(tmp_path, pattern, engine="spark"), tmp_path / "s")
    assert err.value.field == "spark.master"


def test_data_eval_glob_beside_a_predictions_file(tmp_path: Path) -> None:
    """``data: {eval: GLOB}``: the eval rows come from every match, in file-name order."""
    table = _awkward(600, 7, classes=2).drop_columns(["ts"])
    _write(tmp_path / "logs", table.drop_columns(["y_pred"]), parts=3, fmt="csv")
    pq.write_table(table.select(["y_pred"]), tmp_path / "pred.parquet")
    pq.write_table(table, tmp_path / "whole.parquet")
    spec = tmp_path / "s.yaml"
    body = (
        "name: s\ntask: binary_classification\n"
        "data: {{eval: {eval}, label: label, sensitive: [region, age]}}\n"
        "model: {{predictions: {pred}}}\naudits: {{fairness: {{bootstrap: 0}}}}\n"
    )
    spec.write_text(body.format(eval='"logs/2026-*.csv"', pred="pred.parquet"))
    split = _run(spec, tmp_path / "a")
    spec.write_text(body.format(eval="whole.parquet", pred="whole.parquet"))
    whole = _run(spec, tmp_path / "b")
    assert _section(split, "fairness")["metrics"] == _section(whole, "fairness")["metrics"]
    assert sorted(split["subject"]["data"]) == ["eval[0]", "eval[1]", "eval[2]"]


def test_glob_of_mixed_types_is_bad_input(tmp_path: Path) -> None:
    from governance.data.globs import expand

    (tmp_path / "a.csv").write_text("x\n1\n")
    (tmp_path / "b.parquet").write_bytes(b"")
    (tmp_path / "c.jsonl").write_text("{}\n")
    with pytest.raises(InputError, match="different types"):
        expand(tmp_path / "[ab].*", source="spec.yaml", field="data.eval")
    with pytest.raises(InputError, match=r"must name \.parquet or \.csv"):
        expand(tmp_path / "*", source="spec.yaml", field="data.eval")
    assert expand(tmp_path / "a.csv") == (tmp_path / "a.csv",)  # no pattern: the path itself


def test_counted_log_report_and_skipped_audits(tmp_path: Path) -> None:
    """The HTML report renders a counted log with windows; audits that need rows say why they skip."""
    pattern = _write(tmp_path / "logs", _awkward(500, 8, classes=2), parts=2)
    spec = _spec(tmp_path, pattern, engine="duckdb", task="binary_classification")
    text = spec.read_text().replace("fairness:", "attribution: {}, fairness:")
    spec.write_text(text)
    run_audit(load_spec(spec), tmp_path / "o", progress=False, report_formats=("html",))
    results = json.loads((tmp_path / "o" / "results.json").read_text())
    assert _section(results, "attribution")["status"] == "skipped"
    assert (tmp_path / "o" / "report.html").stat().st_size > 0
    perf = _section(results, "performance")
    assert "performance.roc_auc" not in perf["metrics"] and perf["details"]["not_computed"] == [
        "roc_auc",
        "baselines",
    ]


def test_unreadable_log_is_bad_input_on_duckdb(tmp_path: Path) -> None:
    (tmp_path / "log.parquet").write_bytes(b"PAR1 not really parquet")
    with pytest.raises(InputError) as err:
        count_log([tmp_path / "log.parquet"], label="label", sensitive=["sex"])
    assert err.value.source == str(tmp_path / "log.parquet") and "cannot read the log" in err.value.message
    table = pa.table({"label": [0, 1], "sex": ["F", "M"], "y_pred": [0, 1], "ts": ["soon", "later"]})
    pq.write_table(table, tmp_path / "log.parquet")
    with pytest.raises(InputError, match="cannot read the log"):
        count_log([tmp_path / "log.parquet"], label="label", sensitive=["sex"], timestamp="ts")
