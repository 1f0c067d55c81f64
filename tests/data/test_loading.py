from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from governance.data.loading import load_bundle, read_table
from governance.errors import InputError
from governance.spec import load_spec
from tests.data.helpers import spec_dict, tabular_frame, write_spec, write_split

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".jsonl"])
def test_formats_load_the_same(tmp_path: Path, suffix: str) -> None:
    write_split(tmp_path, suffix=suffix)
    spec = load_spec(write_spec(tmp_path, spec_dict(f"train{suffix}", f"eval{suffix}")))
    bundle = load_bundle(spec)
    assert bundle.train is not None and len(bundle.train) == 140 and len(bundle.eval) == 60
    assert bundle.features == ("x1", "x2", "colour")  # sensitive attributes are not features
    assert bundle.numeric == ("x1", "x2")
    assert bundle.classes == ("no", "yes") and bundle.positive == "yes"
    expected = tabular_frame()["x1"].iloc[:140].to_numpy()
    assert bundle.train["x1"].to_numpy() == pytest.approx(expected)


def test_positive_class_from_spec_goes_last(tmp_path: Path) -> None:
    write_split(tmp_path)
    spec = spec_dict()
    spec["data"]["positive"] = "no"
    bundle = load_bundle(load_spec(write_spec(tmp_path, spec)))
    assert bundle.classes == ("yes", "no") and bundle.positive == "no"


def test_integer_labels_and_groups_become_strings(tmp_path: Path) -> None:
    frame = tabular_frame(60)
    frame["target"] = (frame["target"] == "yes").astype(float)  # 0.0 / 1.0 as read from a CSV
    frame["sex"] = (frame["sex"] == "male").astype(int)
    frame.to_csv(tmp_path / "eval.csv", index=False)
    spec = spec_dict()
    del spec["data"]["train"]
    spec["model"] = {"predictions": "preds.csv"}
    bundle = load_bundle(load_spec(write_spec(tmp_path, spec)))
    assert bundle.train is None  # a predictions-only spec has no training data
    assert bundle.classes == ("0", "1") and bundle.positive == "1"
    assert set(bundle.eval["sex"]) == {"0", "1"}


def test_german_credit_spec_loads() -> None:
    bundle = load_bundle(load_spec(REPO / "audits" / "german-credit.yaml"))
    assert bundle.train is not None and (len(bundle.train), len(bundle.eval)) == (700, 300)
    assert bundle.classes == ("bad", "good") and bundle.positive == "good"
    assert "age" in bundle.features and "sex" not in bundle.features and "age_group" not in bundle.features
    assert len(bundle.features) == 19  # UCI's 20 attributes less personal status (sex is sensitive)
    assert bundle.license == "CC BY 4.0"
    # the split is stratified by (risk, sex): each cell's eval share is within one row of 30 %
    full = pd.concat([bundle.train, bundle.eval])
    for key, cell in full.groupby(["risk", "sex"]):
        in_eval = len(bundle.eval[(bundle.eval.risk == key[0]) & (bundle.eval.sex == key[1])])
        assert abs(in_eval - 0.3 * len(cell)) <= 1


def test_digits_builtin_is_stratified_and_shaped(tmp_path: Path) -> None:
    spec = {
        "name": "digits",
        "task": "image_classification",
        "data": {"builtin": "sklearn:digits", "label": "label"},
        "model": {"architecture": "cnn"},
    }
    bundle = load_bundle(load_spec(write_spec(tmp_path, spec)))
    assert bundle.image_shape == (1, 8, 8) and len(bundle.features) == 64
    assert bundle.classes == tuple(str(i) for i in range(10)) and bundle.positive is None
    assert bundle.train is not None and len(bundle.train) + len(bundle.eval) == 1797


def test_ragged_csv_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("a,b,c\n1,2,3\n4,5\n")
    with pytest.raises(InputError) as err:
        read_table(path)
    assert err.value.field == "line 3" and "2 fields" in err.value.message


def test_unknown_extension(tmp_path: Path) -> None:
    path = tmp_path / "data.xlsx"
    path.write_text("x")
    with pytest.raises(InputError, match=re.escape("expected .csv, .parquet or .jsonl")):
        read_table(path)
