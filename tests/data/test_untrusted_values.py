"""Values that must never reach training or audit math silently: inf/-inf, numbers with stray text."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from governance.data.loading import load_bundle
from governance.data.quality import assess
from governance.errors import InputError
from governance.results import Severity
from governance.spec import load_spec
from tests.data.helpers import spec_dict, write_spec, write_split


def _bundle(tmp_path: Path, *, train=None, eval_=None, **overrides):  # type: ignore[no-untyped-def]
    tr_path, ev_path = write_split(tmp_path, n=120)
    for path, mutate in ((tr_path, train), (ev_path, eval_)):
        if mutate is not None:
            mutate(pd.read_csv(path)).to_csv(path, index=False)
    return load_bundle(load_spec(write_spec(tmp_path, spec_dict(**overrides))))


@pytest.mark.parametrize("value", [np.inf, -np.inf])
@pytest.mark.parametrize("split", ["train", "eval"])
def test_inf_in_a_feature_is_bad_input_naming_file_column_and_count(
    tmp_path: Path, value: float, split: str
) -> None:
    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[[2, 4, 6], "x2"] = value
        return frame

    with pytest.raises(InputError) as info:
        _bundle(tmp_path, **{"train" if split == "train" else "eval_": mutate})
    err = info.value
    assert Path(err.source or "").name == f"{split}.csv" and err.field == "x2"
    assert err.message.startswith(f"3 row(s) hold a non-finite number ({value!r}), first at row 2")


def test_nan_stays_a_missing_value_counted_by_data_quality(tmp_path: Path) -> None:
    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[[1, 2], "x1"] = np.nan
        return frame

    bundle = _bundle(tmp_path, eval_=mutate)
    section = assess(bundle)
    assert section.metrics["data_quality.missing_rate"] > 0
    assert any(f.id == "data_quality.missing.x1" for f in section.findings)


def test_numbers_with_stray_strings_are_a_blocking_finding_with_the_count(tmp_path: Path) -> None:
    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        frame["x1"] = frame["x1"].round(3).astype(object)
        frame.loc[[0, 5, 9], "x1"] = ["n.a.", "?", "n.a."]
        return frame

    bundle = _bundle(tmp_path, train=mutate)
    assert "x1" not in bundle.numeric  # read as text: it would be one-hot encoded
    section = assess(bundle)
    found = [f for f in section.findings if f.id == "data_quality.non_numeric.x1"]
    assert len(found) == 1 and found[0].severity is Severity.BLOCKING
    assert "3 value(s) are not numbers" in found[0].message and "'?', 'n.a.'" in found[0].message
    assert section.tables["non_numeric"] == [
        {"column": "x1", "non_numeric": 3, "numeric": 117, "examples": ["?", "n.a."]}
    ]


def test_a_categorical_column_is_not_flagged(tmp_path: Path) -> None:
    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[[0], "colour"] = "42"  # one number among words: still categorical
        return frame

    section = assess(_bundle(tmp_path, train=mutate))
    assert not [f for f in section.findings if f.id.startswith("data_quality.non_numeric")]
    assert section.tables["non_numeric"] == []


def test_declared_numeric_column_with_text_names_the_count(tmp_path: Path) -> None:
    def mutate(frame: pd.DataFrame) -> pd.DataFrame:
        frame["x1"] = frame["x1"].astype(object)
        frame.loc[[7, 8], "x1"] = "abc"
        return frame

    with pytest.raises(InputError) as info:
        _bundle(tmp_path, train=mutate, data={**spec_dict()["data"], "numeric": ["x1", "x2"]})
    assert info.value.field == "x1"
    assert "2 value(s) are not numbers, first 'abc' at row 7" in info.value.message
