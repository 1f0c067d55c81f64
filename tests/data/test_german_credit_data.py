"""The vendored German Credit: UCI's file as published, decoded and split reproducibly."""

from __future__ import annotations

import hashlib
import importlib.util
import io
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "audits" / "data"
#: SHA-256 of UCI's german.data, as audits/data/README.md records it.
UCI_SHA256 = "b21f3d81db8071257d5ff1deaeba1fd4303b62712e6fcc9715c7a86202cb5871"


def _make_split() -> ModuleType:
    loaded = importlib.util.spec_from_file_location("german_make_split", DATA / "make_split.py")
    assert loaded is not None and loaded.loader is not None
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def make_split() -> ModuleType:
    return _make_split()


def test_german_data_is_uci_file_byte_for_byte() -> None:
    """The digest the data README records (the file as UCI publishes it, 1000 rows, 21 fields)."""
    raw = (DATA / "german.data").read_bytes()
    assert hashlib.sha256(raw).hexdigest() == UCI_SHA256
    lines = raw.decode("ascii").splitlines()
    assert len(lines) == 1000 and {len(line.split(" ")) for line in lines} == {21}
    assert UCI_SHA256 in (DATA / "README.md").read_text(encoding="utf-8")


def test_make_split_reproduces_the_shipped_files(make_split: ModuleType) -> None:
    train, evaluation = make_split.split(make_split.decode(make_split.load_uci()))
    for frame, name in ((train, "german_credit_train.csv"), (evaluation, "german_credit_eval.csv")):
        text = io.StringIO()
        frame.to_csv(text, index=False, lineterminator="\n")
        assert text.getvalue() == (DATA / name).read_text(encoding="utf-8"), name


def test_first_uci_row_decodes_by_the_code_book(make_split: ModuleType) -> None:
    """Row 1 of german.data, ``A11 6 A34 A43 1169 A65 A75 4 A93 A101 4 A121 67 A143 A152 2 A173 1
    A192 A201 1``, read by hand against german.doc."""
    row = make_split.decode(make_split.load_uci()).iloc[0].to_dict()
    assert row == {
        "risk": "good",
        "sex": "male",  # A93: male, single
        "checking_account": "little",  # A11: ... < 0 DM
        "duration": 6,
        "credit_history": "critical account",  # A34
        "purpose": "radio/TV",  # A43
        "credit_amount": 1169,
        "saving_accounts": "not_known",  # A65: unknown / no savings account
        "employment_since": ">=7 years",  # A75
        "installment_rate": 4,
        "other_debtors": "none",  # A101
        "residence_since": 4,
        "property": "real estate",  # A121
        "age": 67,
        "other_installment_plans": "none",  # A143
        "housing": "own",  # A152
        "existing_credits": 2,
        "job": 2,  # A173: skilled employee / official
        "people_liable": 1,
        "telephone": "yes",  # A192: registered under the customer's name
        "foreign_worker": "yes",  # A201
        "age_group": "60+",
    }


def test_sex_comes_from_personal_status_and_marital_status_is_dropped(make_split: ModuleType) -> None:
    raw = make_split.load_uci()
    decoded = make_split.decode(raw)
    female = raw["personal_status_sex"].isin(["A92", "A95"])
    assert (decoded["sex"] == female.map({True: "female", False: "male"})).all()
    assert decoded["sex"].value_counts().to_dict() == {"male": 690, "female": 310}
    assert "personal_status_sex" not in decoded.columns
    assert decoded["risk"].value_counts().to_dict() == {"good": 700, "bad": 300}


def test_unknown_code_is_refused(make_split: ModuleType) -> None:
    raw = make_split.load_uci().head(3).copy()
    raw.loc[1, "purpose"] = "A499"
    with pytest.raises(ValueError, match="'purpose' has unknown code"):
        make_split.decode(raw)


def test_shipped_rows_lie_within_the_declared_schema() -> None:
    """The spec's public schema (what DP preprocessing uses instead of the rows) covers every value."""
    from governance.data.loading import load_bundle
    from governance.spec import load_spec

    spec = load_spec(REPO / "audits" / "german-credit.yaml")
    bundle = load_bundle(spec)
    schema = spec.data.public_schema
    assert schema is not None
    rows = pd.concat([bundle.train, bundle.eval])
    assert set(schema.categories) | set(schema.ranges) == set(bundle.features)
    for column, categories in schema.categories.items():
        assert set(rows[column].astype(str)) <= {str(c) for c in categories}, column
    for column, (low, high) in schema.ranges.items():
        assert low <= rows[column].min() and rows[column].max() <= high, column
