"""One name for a missing group value in every file format and on both fairness paths.

The pandas path (``governance.data.loading`` → ``audit/fairness.py``) and the predictions fast
path (``audit/predictions.py``, pyarrow codes) must name a missing sensitive value the same:
:data:`governance.data.bundle.MISSING_GROUP`, whether the file is CSV (an empty cell), Parquet or
JSONL (a null), and whether the column holds strings or numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from governance.data.bundle import MISSING_GROUP
from governance.pipeline import run_audit
from governance.spec import load_spec

FORMATS = ("csv", "parquet", "jsonl")


def _log(n: int = 120) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, n)
    frame = pd.DataFrame(
        {
            "outcome": y,
            "sex": rng.choice(["F", "M"], n).astype(object),
            "band": rng.choice([1.0, 2.0], n),
            "y_pred": np.where(rng.random(n) < 0.8, y, 1 - y),
        }
    )
    frame.loc[[3, 10, 50], "sex"] = None
    frame.loc[[4, 11], "band"] = np.nan
    return frame


def _write(frame: pd.DataFrame, path: Path) -> None:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_json(path, orient="records", lines=True)


def _groups(tmp_path: Path, fmt: str, *, separate_eval: bool) -> dict[str, set[str]]:
    frame = _log()
    if separate_eval:
        # The pandas path: eval data through load_bundle, decisions in their own file. The eval
        # file has no feature column at all (predictions-only audits need none).
        _write(frame[["outcome", "sex", "band"]], tmp_path / f"eval.{fmt}")
        _write(frame[["y_pred"]], tmp_path / f"pred.{fmt}")
        data = f"eval.{fmt}"
    else:
        # The fast path: one decision log holding label, groups and decisions, read by pyarrow.
        _write(frame, tmp_path / f"pred.{fmt}")
        data = f"pred.{fmt}"
    (tmp_path / "spec.yaml").write_text(
        "name: groups\ntask: binary_classification\nseed: 0\n"
        f"data: {{eval: {data}, label: outcome, sensitive: [sex, band]}}\n"
        f"model: {{predictions: pred.{fmt}}}\naudits: {{fairness: {{bootstrap: 0}}, data_quality: {{}}}}\n"
    )
    outcome = run_audit(
        load_spec(tmp_path / "spec.yaml"), tmp_path / "out", progress=False, report_formats=()
    )
    assert not outcome.errored
    out: dict[str, set[str]] = {}
    for row in outcome.results.sections["fairness"].tables["groups"]:
        out.setdefault(row["attribute"], set()).add(row["group"])
    return out


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("separate_eval", [False, True], ids=["fast-path", "pandas-path"])
def test_missing_group_has_one_name(tmp_path: Path, fmt: str, separate_eval: bool) -> None:
    groups = _groups(tmp_path, fmt, separate_eval=separate_eval)
    assert groups["sex"] == {"F", "M", MISSING_GROUP}
    assert groups["band"] == {"1", "2", MISSING_GROUP}


def test_the_name_is_the_documented_one() -> None:
    from governance.audit._encode import MISSING_GROUP as encode_name

    assert MISSING_GROUP == encode_name == "(missing)"
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert f"`{MISSING_GROUP}`" in readme


def test_data_quality_groups_use_the_same_name(tmp_path: Path) -> None:
    from governance.data.loading import load_bundle
    from governance.data.quality import assess

    frame = _log()
    _write(frame, tmp_path / "eval.csv")
    (tmp_path / "spec.yaml").write_text(
        "name: g\ntask: binary_classification\nseed: 0\n"
        "data: {eval: eval.csv, label: outcome, sensitive: [sex]}\nmodel: {predictions: eval.csv}\n"
    )
    section = assess(load_bundle(load_spec(tmp_path / "spec.yaml")))
    assert {r["group"] for r in section.tables["groups"]} == {"F", "M", MISSING_GROUP}
