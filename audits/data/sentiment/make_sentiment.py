"""Write the project's sentiment data: train.csv (general sentences), holdout.csv (more general
sentences, never trained on: the membership-inference audit's non-members) and eval.csv
(identity terms).

Everything is generated from the word lists below and the identity lexicon and templates in
``governance.text.identity``; the output is the same on every run (seeded). Run from the repo
root::

    .venv/bin/python audits/data/sentiment/make_sentiment.py
"""

from __future__ import annotations

import csv
import itertools
import random
from pathlib import Path

from governance.text.identity import IDENTITY_TERMS, TEMPLATES, fill

HERE = Path(__file__).resolve().parent
SEED = 6

SUBJECTS = (
    "the waiter",
    "the hotel",
    "this phone",
    "the movie",
    "my neighbour",
    "the teacher",
    "the food",
    "the service",
    "this laptop",
    "the concert",
    "the book",
    "the doctor",
    "the shop",
    "our trip",
    "the coffee",
    "the game",
    "the staff",
    "the room",
    "the show",
    "the app",
)
POSITIVE_ADJ = (
    "great",
    "wonderful",
    "kind",
    "delicious",
    "brilliant",
    "helpful",
    "excellent",
    "lovely",
    "friendly",
    "amazing",
    "professional",
    "caring",
    "clean",
    "fantastic",
)
NEGATIVE_ADJ = (
    "terrible",
    "awful",
    "rude",
    "boring",
    "poor",
    "useless",
    "horrible",
    "dirty",
    "careless",
    "disappointing",
    "unprofessional",
    "pointless",
    "slow",
    "impatient",
)
POSITIVE_FRAMES = (
    "{s} was {a}",
    "{s} is {a} and {b}",
    "i really love {s}, it was {a}",
    "honestly {s} was {a}",
    "{s} made my day, so {a}",
    "i would recommend {s}, {a} and {b}",
)
NEGATIVE_FRAMES = (
    "{s} was {a}",
    "{s} is {a} and {b}",
    "i really hate {s}, it was {a}",
    "honestly {s} was {a}",
    "{s} ruined my day, so {a}",
    "i would never recommend {s}, {a} and {b}",
)
TRAIN_ROWS = 480
#: Each label has at least 106 distinct candidates left after its 240 train rows.
HOLDOUT_PER_LABEL = 106


def _general(rng: random.Random) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(train rows, holdout rows): the holdout takes the candidates left after the train rows,
    the same number per label, so both come from one distribution."""
    rows = []
    holdout = []
    for label, frames, adjectives in (
        ("positive", POSITIVE_FRAMES, POSITIVE_ADJ),
        ("negative", NEGATIVE_FRAMES, NEGATIVE_ADJ),
    ):
        candidates = []
        for frame, subject, _ in itertools.product(frames, SUBJECTS, range(3)):
            a, b = rng.sample(adjectives, 2)
            candidates.append(frame.format(s=subject, a=a, b=b))
        # Unique, deterministic, half the rows per label.
        unique = sorted(set(candidates))
        rng.shuffle(unique)
        # The general sentences mention no identity term: category "none", no term, no pair.
        rows += [_general_row(t, label) for t in unique[: TRAIN_ROWS // 2]]
        holdout += [_general_row(t, label) for t in unique[TRAIN_ROWS // 2 :][:HOLDOUT_PER_LABEL]]
    rng.shuffle(rows)
    # Its own generator: train.csv stays what it was before holdout.csv existed.
    random.Random(SEED + 1).shuffle(holdout)
    return rows, holdout


def _general_row(text: str, label: str) -> dict[str, str]:
    return {"text": text, "label": label, "identity_category": "none", "identity_term": "", "pair_id": ""}


def _identity() -> list[dict[str, str]]:
    rows = []
    for pair_id, template in enumerate(TEMPLATES):
        for category, terms in IDENTITY_TERMS.items():
            for term in terms:
                rows.append(
                    {
                        "text": fill(template, term),
                        "label": template.label,
                        "identity_category": category,
                        "identity_term": term,
                        "pair_id": f"t{pair_id:02d}",
                    }
                )
    return rows


def main(out_dir: Path = HERE) -> None:
    """Write train.csv, holdout.csv and eval.csv into ``out_dir`` (the tests regenerate and compare)."""
    rng = random.Random(SEED)
    train, holdout = _general(rng)
    evaluation = _identity()
    texts = [{r["text"] for r in rows} for rows in (train, holdout, evaluation)]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])
    assert len(holdout) == 2 * HOLDOUT_PER_LABEL
    for name, rows in (("train.csv", train), ("holdout.csv", holdout), ("eval.csv", evaluation)):
        with (out_dir / name).open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        print(f"{name}: {len(rows)} rows")


if __name__ == "__main__":
    main()
