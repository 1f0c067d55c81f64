"""privacy.scope: nothing about the private rows is published outside the guarantee by accident.

Round 1 fitted mean/std, category lists and the brightest pixel on the private train rows and
shipped them in preprocessing.json, and published the per-epoch loss of the private batches,
all without saying so. Here: a DP ledger names every such item (``privacy.scope.outside``); a
publicly declared schema (``data.schema``) makes preprocessing read no private row; the
per-epoch loss of a DP run is the eval split's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from governance.cli import main
from governance.models.preprocessing import MISSING, fit_preprocessor, preprocessor_for, private_statistics
from governance.spec import DataSchema
from tests.data.helpers import spec_dict, tabular_frame, write_spec, write_split

SCHEMA = {"categories": {"colour": ["red", "green", "blue"]}, "ranges": {"x1": [-4, 4], "x2": [-4, 4]}}


@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _train(tmp_path: Path, **data: Any) -> dict[str, Any]:
    write_split(tmp_path)
    spec = spec_dict(train__privacy={"target_epsilon": 5.0, "delta": 1e-3})
    spec["data"].update(data)
    out = tmp_path / "out"
    assert main(["train", str(write_spec(tmp_path, spec)), "--out", str(out)]) == 0
    return json.loads((out / "training.json").read_text())


def test_dp_ledger_names_what_preprocessing_read_off_the_private_rows(tmp_path: Path) -> None:
    ledger = _train(tmp_path)
    scope = ledger["privacy"]["scope"]
    assert "model weights" in scope["covers"] and scope["noise_source"] == "os-entropy"
    assert "Mironov" in scope["floating_point"]
    outside = {item["name"]: item for item in scope["outside"]}
    assert sorted(outside) == ["preprocessing.categories", "preprocessing.mean_std"]
    assert outside["preprocessing.mean_std"]["columns"] == ["x1", "x2"]
    assert outside["preprocessing.categories"]["columns"] == ["colour"]
    # What it names is really there: the published mean is the private rows' mean.
    pre = json.loads((tmp_path / "out" / "preprocessing.json").read_text())
    train = pd.read_csv(tmp_path / "train.csv")
    assert pre["mean"] == pytest.approx(train[["x1", "x2"]].mean().tolist())
    # The attribution baseline of a DP run is the eval split's mean, not the private rows'.
    assert "preprocessing.encoded_mean" not in outside


def test_public_schema_empties_outside(tmp_path: Path) -> None:
    ledger = _train(tmp_path, schema=SCHEMA)
    assert ledger["privacy"]["scope"]["outside"] == []
    pre = json.loads((tmp_path / "out" / "preprocessing.json").read_text())
    assert pre["mean"] == [0.0, 0.0] and pre["std"] == [4.0, 4.0]
    assert pre["categories"]["colour"] == ["red", "green", "blue", MISSING]
    assert pre["clip"] == {"x1": [-4.0, 4.0], "x2": [-4.0, 4.0]}


@settings(max_examples=25, deadline=None)
@given(
    x1=st.floats(-1e6, 1e6, allow_nan=False),
    colour=st.sampled_from(["red", "purple", "a-category-only-this-row-has"]),
)
def test_with_a_schema_preprocessing_reads_no_private_row(x1: float, colour: str) -> None:
    """Add any one row to the private train split: the fitted preprocessing does not move."""
    from governance.data.bundle import DataBundle

    frame = tabular_frame(120, seed=3)
    train, evaluation = frame.iloc[:80], frame.iloc[80:]
    extra = train.iloc[[0]].assign(x1=x1, colour=colour)
    schema = DataSchema.model_validate(SCHEMA)

    def fitted(rows: pd.DataFrame) -> Any:
        bundle = DataBundle(
            task="binary_classification",
            label="target",
            train=rows,
            eval=evaluation,
            features=("x1", "x2", "colour"),
            numeric=("x1", "x2"),
            sensitive=("sex", "age_group"),
            classes=("no", "yes"),
        )
        return preprocessor_for(bundle, schema=schema, private=True)

    assert fitted(train) == fitted(pd.concat([train, extra]))


def _bundle(
    features: tuple[str, ...], numeric: tuple[str, ...], *, eval_rows: int, image_shape: Any = None
) -> Any:
    from governance.data.bundle import DataBundle

    return DataBundle(
        task="binary_classification",
        label="y",
        classes=("0", "1"),
        features=features,
        sensitive=(),
        train=pd.DataFrame({c: [0.0] for c in features}),
        eval=pd.DataFrame({c: [0.0] * eval_rows for c in features}),
        numeric=numeric,
        image_shape=image_shape,
    )


def test_partial_schema_names_only_what_is_still_fitted() -> None:
    schema = DataSchema.model_validate({"ranges": {"x1": [0, 1]}})
    items = private_statistics(_bundle(("x1", "x2", "c"), ("x1", "x2"), eval_rows=1), schema)
    assert [(i["name"], i["columns"]) for i in items] == [
        ("preprocessing.mean_std", ["x2"]),
        ("preprocessing.categories", ["c"]),
    ]


def test_declared_ranges_clip_and_declared_categories_fix_the_encoding() -> None:
    schema = DataSchema.model_validate({"categories": {"c": ["b", "a"]}, "ranges": {"x": [0, 10]}})
    train = pd.DataFrame({"x": [1.0, 2.0], "c": ["a", "a"]})
    pre = fit_preprocessor(train, ["x", "c"], ["x"], schema=schema)
    encoded = pre.transform(pd.DataFrame({"x": [-5.0, 5.0, 50.0, None], "c": ["a", "b", "z", None]}))
    np.testing.assert_allclose(encoded[:, 0], [-1.0, 0.0, 1.0, 0.0])  # clipped to [0, 10] -> [-1, 1]
    np.testing.assert_array_equal(encoded[:, 1:], [[0, 1, 0], [1, 0, 0], [0, 0, 0], [0, 0, 1]])
    assert pre.categories["c"] == ("b", "a", MISSING)
    assert type(pre).from_dict(json.loads(pre.to_json())) == pre


def test_declared_pixel_range_replaces_the_brightest_private_pixel() -> None:
    schema = DataSchema.model_validate({"pixel_range": [0, 16]})
    train = pd.DataFrame({"p0": [3.0, 7.0], "p1": [1.0, 2.0]})
    pre = fit_preprocessor(train, ["p0", "p1"], ["p0", "p1"], image_shape=(1, 1, 2), schema=schema)
    assert pre.std == (16.0, 16.0)
    np.testing.assert_allclose(pre.transform(pd.DataFrame({"p0": [32.0], "p1": [-1.0]})), [[1.0, 0.0]])
    fitted = fit_preprocessor(train, ["p0", "p1"], ["p0", "p1"], image_shape=(1, 1, 2))
    assert fitted.std == (7.0, 7.0)  # round 1: the brightest private pixel, published
    items = private_statistics(_bundle(("p0",), ("p0",), image_shape=(1, 1, 1), eval_rows=0), None)
    assert [i["name"] for i in items] == ["preprocessing.pixel_scale", "preprocessing.encoded_mean"]


@pytest.mark.parametrize(
    ("schema", "field"),
    [
        ({"ranges": {"x1": [5, 1]}}, "data.schema.ranges"),
        ({"categories": {"colour": []}}, "data.schema.categories"),
        ({"categories": {"colour": ["red", "red"]}}, "data.schema.categories"),
        ({"colours": {}}, "data.schema.colours"),
        ({"categories": {"nope": ["a"]}}, "data.schema.categories.nope"),
        ({"categories": {"x1": ["a"]}}, "data.schema.categories.x1"),
        ({"ranges": {"colour": [0, 1]}}, "data.schema.ranges.colour"),
        ({"pixel_range": [0, 16]}, "data.schema.pixel_range"),
    ],
)
def test_bad_schema_is_one_line_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], schema: dict[str, Any], field: str
) -> None:
    write_split(tmp_path)
    spec = spec_dict(train__privacy={"target_epsilon": 5.0, "delta": 1e-3})
    spec["data"]["schema"] = schema
    assert main(["train", str(write_spec(tmp_path, spec)), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert field in err and len(err.splitlines()) == 1 and not (tmp_path / "out").exists()


def test_dp_epoch_loss_is_the_eval_splits_not_the_private_batches() -> None:
    from torch import nn

    from governance.train.dp import PrivacySettings
    from governance.train.trainer import Trainer

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4)).astype("float32")
    y = (x[:, 0] > 0).astype("int64")
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    privacy = PrivacySettings(target_epsilon=50.0, delta=1e-3, noise_multiplier=1.0)
    result = Trainer(
        model=model, train_data=(x[:150], y[:150]), eval_data=(x[150:], y[150:]), privacy=privacy, epochs=2
    ).fit()
    assert all(r["train_loss"] is None for r in result.history) and result.ledger["train_loss"] is None
    with torch.no_grad():
        expected = nn.functional.cross_entropy(
            result.model(torch.from_numpy(x[150:])), torch.from_numpy(y[150:])
        )
    assert result.history[-1]["eval_loss"] == pytest.approx(float(expected), rel=1e-5)
    assert result.ledger["eval_loss"] == result.history[-1]["eval_loss"]

    # Non-private training keeps its train loss: there is no guarantee for it to break.
    torch.manual_seed(0)
    plain = Trainer(model=nn.Sequential(nn.Linear(4, 2)), train_data=(x, y), epochs=1).fit()
    assert plain.ledger["train_loss"] is not None and np.isfinite(plain.ledger["train_loss"])
