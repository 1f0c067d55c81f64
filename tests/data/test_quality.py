from __future__ import annotations

import pandas as pd
import pytest

from governance.data.bundle import DataBundle
from governance.data.quality import assess, blocking_findings, quality_options
from governance.errors import InputError
from governance.results import Severity


def _bundle(train: pd.DataFrame, evaluation: pd.DataFrame, *, text: str | None = None) -> DataBundle:
    features = tuple(c for c in train.columns if c not in ("y", "g"))
    return DataBundle(
        task="binary_classification",
        label="y",
        classes=("0", "1"),
        features=features,
        sensitive=("g",),
        train=train,
        eval=evaluation,
        text=text,
        positive="1",
        numeric=tuple(c for c in features if pd.api.types.is_numeric_dtype(train[c])),
    )


def test_metrics_against_hand_counts() -> None:
    train = pd.DataFrame(
        {
            "a": [1.0, 1.0, 2.0, None, 5.0, 6.0],
            "k": ["c", "c", "c", "c", "c", "c"],
            "g": ["m", "m", "f", "f", "m", "m"],
            "y": ["1", "1", "0", "0", "1", "0"],
        }
    )
    evaluation = pd.DataFrame({"a": [2.0, 7.0], "k": ["c", "c"], "g": ["m", "f"], "y": ["0", "1"]})
    section = assess(_bundle(train, evaluation))
    m = section.metrics
    assert section.name == "data_quality"
    assert m["data_quality.duplicate_rate"] == pytest.approx(1 / 8)  # row 2 repeats row 1
    assert m["data_quality.missing_rate"] == pytest.approx(1 / (8 * 4))
    assert m["data_quality.train_eval_overlap"] == pytest.approx(0.0)  # eval row (2,c,m,0) differs in g
    # groups over all 8 rows: m = 5, f = 3; positive rate m = 3/5, f = 1/3
    assert m["data_quality.min_group_share"] == pytest.approx(3 / 8)
    assert m["data_quality.label_rate_gap.g"] == pytest.approx(3 / 5 - 1 / 3)
    assert m["data_quality.constant_columns"] == 1
    ids = {f.id for f in section.findings}
    assert {"data_quality.duplicates", "data_quality.missing.a", "data_quality.constant_columns"} <= ids
    assert "data_quality.label_rate_gap.g" in ids  # 0.27 > 0.2
    groups = {(r["group"]): r for r in section.tables["groups"]}
    assert groups["f"]["rows"] == 3 and groups["f"]["label_rate"] == pytest.approx(1 / 3)


def test_overlap_blocks() -> None:
    train = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "g": ["m", "f", "m", "f"], "y": ["1", "0", "1", "0"]})
    evaluation = train.iloc[:2].copy()
    section = assess(_bundle(train, evaluation))
    assert section.metrics["data_quality.train_eval_overlap"] == 1.0
    assert [f.id for f in blocking_findings(section)] == ["data_quality.train_eval_overlap"]


def test_pii_in_text_column_blocks_by_default_and_severity_is_an_option() -> None:
    train = pd.DataFrame(
        {
            "note": ["call me at jane@example.org", "fine", "ok", "card 4111 1111 1111 1111"],
            "g": ["m", "f"] * 2,
            "y": ["1", "0"] * 2,
        }
    )
    evaluation = pd.DataFrame({"note": ["x", "y"], "g": ["m", "f"], "y": ["1", "0"]})
    section = assess(_bundle(train, evaluation, text="note"))
    kinds = {f.id for f in blocking_findings(section)}
    assert kinds == {"data_quality.pii.note.email", "data_quality.pii.note.card_number"}
    assert section.metrics["data_quality.pii_values"] == 2
    relaxed = assess(_bundle(train, evaluation, text="note"), {"pii_severity": "minor"})
    assert not blocking_findings(relaxed)
    assert all(f.severity == Severity.MINOR for f in relaxed.findings if ".pii." in f.id)


def test_bad_option_names_field() -> None:
    with pytest.raises(InputError) as err:
        quality_options({"max_duplicate_rate": 2}, source="spec.yaml")
    assert err.value.field == "audits.data_quality.max_duplicate_rate"
    with pytest.raises(InputError, match="unknown option"):
        quality_options({"nope": 1}, source="spec.yaml")
