"""Reproduce the German Credit train/eval split from the vendored ``german.csv``.

Run from anywhere: ``python audits/data/make_split.py``. The split is deterministic (seed 0),
70 % train / 30 % eval, stratified jointly by the label and ``sex`` so that every
(label, sex) cell keeps its share in both files. Only numpy and pandas are used.

Derived columns
---------------
risk
    The source codes good credit risk as 1 and bad as 0; we write the words ``good`` / ``bad``
    so reports read naturally. The favourable outcome (positive class) is ``good``.
age_group
    ``<25``, ``25-39``, ``40-59``, ``60+``: the youngest band matches the age at which the
    German Credit literature usually draws its age-discrimination line (Kamiran & Calders use
    25), and the oldest band is kept separate because credit scoring often disadvantages older
    applicants. Counts in the full data: 149 / 552 / 248 / 51.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
SEED = 0
EVAL_SHARE = 0.3
AGE_BINS = (0, 25, 40, 60, 200)
AGE_LABELS = ("<25", "25-39", "40-59", "60+")


def age_group(age: pd.Series) -> pd.Series:
    """Bin ages into the four bands documented above (left-closed intervals)."""
    return pd.cut(age, bins=list(AGE_BINS), labels=list(AGE_LABELS), right=False).astype(str)


def split(frame: pd.DataFrame, seed: int = SEED) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified by (risk, sex): in each cell a seeded permutation sends ~30 % to eval."""
    rng = np.random.default_rng(seed)
    eval_index: list[int] = []
    for _, cell in frame.groupby(["risk", "sex"], sort=True):
        order = rng.permutation(cell.index.to_numpy())
        eval_index.extend(order[: round(len(order) * EVAL_SHARE)].tolist())
    is_eval = frame.index.isin(eval_index)
    return frame[~is_eval], frame[is_eval]


def main() -> None:
    raw = pd.read_csv(HERE / "german.csv")
    frame = raw.assign(
        risk=raw["risk"].map({1: "good", 0: "bad"}),
        age_group=age_group(raw["age"]),
    )
    train, evaluation = split(frame)
    train.to_csv(HERE / "german_credit_train.csv", index=False, lineterminator="\n")
    evaluation.to_csv(HERE / "german_credit_eval.csv", index=False, lineterminator="\n")
    print(f"train {len(train)} rows, eval {len(evaluation)} rows")


if __name__ == "__main__":
    main()
