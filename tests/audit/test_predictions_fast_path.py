"""The predictions-only fast path: no pandas import, Arrow buffers to numpy, coded eval columns."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from governance.audit._encode import CodedColumn, CodedFrame, group_codes
from governance.audit.predictions import _numpy, encode, load_prediction_inputs
from governance.spec import load_spec


def _write_log(folder: Path, n: int = 500) -> Path:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, n).astype(np.int8)
    table = pa.table(
        {
            "label": y,
            "sex": pa.array(rng.choice(["F", "M"], n)),
            "race": pa.DictionaryArray.from_arrays(
                pa.array(rng.integers(0, 3, n).astype(np.int32)), pa.array(["a", "b", "c", "unused"])
            ),
            "y_pred": np.where(rng.random(n) < 0.8, y, 1 - y).astype(np.int8),
            "y_score": rng.random(n).astype(np.float32),
        }
    )
    path = folder / "log.parquet"
    pq.write_table(table, path, row_group_size=128)  # several row groups: several chunks
    spec = folder / "spec.yaml"
    spec.write_text(
        "name: log\ntask: binary_classification\nseed: 0\n"
        "data: {eval: log.parquet, label: label, sensitive: [sex, race]}\n"
        "model: {predictions: log.parquet}\naudits: {fairness: {bootstrap: 20}}\n"
    )
    return spec


def test_predictions_only_audit_never_imports_pandas(tmp_path: Path) -> None:
    spec = _write_log(tmp_path)
    code = (
        "import sys; from governance.pipeline import run_audit; from governance.spec import load_spec; "
        f"run_audit(load_spec({str(spec)!r}), {str(tmp_path / 'o')!r}, progress=False, report_formats=()); "
        "print(sorted(m for m in ('pandas', 'pyarrow.dataset', 'pyarrow.compute') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_coded_eval_frame_gives_the_same_groups_as_pandas(tmp_path: Path) -> None:
    spec = load_spec(_write_log(tmp_path))
    bundle, _ = load_prediction_inputs(spec)
    frame = bundle.eval
    assert isinstance(frame, CodedFrame) and len(frame) == 500
    source = pd.read_parquet(tmp_path / "log.parquet")
    for attr in ("sex", "race"):
        column = frame[attr]
        assert isinstance(column, CodedColumn)
        codes, names = group_codes(column)
        expected_codes, expected_names = group_codes(source[attr].astype("category"))
        assert names == expected_names  # "unused" dictionary entry dropped on both sides
        assert np.array_equal(codes, expected_codes)
    # Any other use is a real pandas frame of categoricals.
    assert list(frame.columns) == ["label", "sex", "race"]
    assert isinstance(frame[["sex", "race"]], pd.DataFrame)
    assert int(frame[["sex"]].isna().sum().sum()) == 0
    assert list(frame["sex"].astype(str)[:3]) == [str(v) for v in source["sex"][:3]]
    assert (frame["sex"] == "F").sum() == (source["sex"] == "F").sum()


@pytest.mark.parametrize(
    "array",
    [
        pa.chunked_array([np.arange(5, dtype=np.int16), np.arange(3, dtype=np.int16)]),
        pa.chunked_array([pa.array(np.linspace(0, 1, 9, dtype=np.float32)).slice(2, 5)]),
        pa.chunked_array([pa.array([True, False, True, True, False, True, False, False, True]).slice(3)]),
        pa.chunked_array([], type=pa.int64()),
        pa.array(np.arange(4, dtype=np.uint32)).slice(1),
        pa.array([1.0, None, 3.0]),
    ],
)
def test_arrow_to_numpy_without_pyarrow_to_numpy_matches_it(array: pa.Array | pa.ChunkedArray) -> None:
    got = _numpy(array)
    expected = (
        array.to_numpy() if isinstance(array, pa.ChunkedArray) else array.to_numpy(zero_copy_only=False)
    )
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


def test_encode_multi_chunk_dictionary_columns() -> None:
    chunks = [
        pa.DictionaryArray.from_arrays(pa.array([0, 1, 1], pa.int32()), pa.array(["m", "f"])),
        pa.DictionaryArray.from_arrays(pa.array([1, 0], pa.int32()), pa.array(["m", "f"])),
    ]
    col = encode(pa.chunked_array(chunks))
    assert col.names == ("f", "m")
    assert col.codes.tolist() == [1, 0, 0, 0, 1]


def test_run_audit_uses_and_closes_a_worker_started_by_the_caller(tmp_path: Path) -> None:
    from governance.pipeline import run_audit
    from governance.report.render import ReportWorker

    worker = ReportWorker.start(("html",))
    assert worker is not None
    process = worker._process
    assert process is not None
    outcome = run_audit(
        load_spec(_write_log(tmp_path)), tmp_path / "out", progress=False, report_worker=worker
    )
    assert outcome.paths["html"].read_text().count("<svg") == 3  # sex, race, sex*race
    assert not process.is_alive()
