"""Label balance relative to the uniform share 1/k (issue 19 item 2).

A balanced 10-class data set has 10% of rows per class: an absolute 10% floor flagged it (the
digits audit raised "the rarest class has 9.7% of rows"). The rarest class is now compared with
``min_class_ratio`` × 1/k.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from governance.data.bundle import DataBundle
from governance.data.quality import QualityOptions, assess, quality_options
from governance.errors import InputError
from governance.results import Severity

FINDING = "data_quality.label_balance"


def _bundle(counts: dict[str, int]) -> DataBundle:
    labels = [c for c, n in counts.items() for _ in range(n)]
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=len(labels)), "y": labels})
    cut = len(frame) * 7 // 10
    order = rng.permutation(len(frame))
    train, evaluation = frame.iloc[order[:cut]], frame.iloc[order[cut:]]
    classes = tuple(counts)
    return DataBundle(
        task="binary_classification" if len(classes) == 2 else "multiclass_classification",
        label="y",
        classes=classes,
        features=("x",),
        sensitive=(),
        train=train.reset_index(drop=True),
        eval=evaluation.reset_index(drop=True),
        text=None,
        positive=classes[1] if len(classes) == 2 else None,
        numeric=("x",),
    )


def _flagged(counts: dict[str, int], options: dict[str, float] | None = None) -> list[str]:
    section = assess(_bundle(counts), options)
    return [f.message for f in section.findings if f.id == FINDING]


def test_balanced_ten_classes_like_digits_pass():
    # sklearn's digits: 1797 rows, the rarest class (8) has 174 = 9.7% < 10%, yet the set is balanced.
    digits = {str(d): n for d, n in enumerate([178, 182, 177, 183, 181, 182, 181, 179, 174, 180])}
    assert not _flagged(digits)
    section = assess(_bundle(digits))
    assert section.metrics["data_quality.min_class_share"] == pytest.approx(174 / 1797)
    assert section.metrics["data_quality.min_class_ratio"] == pytest.approx(174 / 1797 * 10)


def test_ten_classes_with_one_truly_rare_class_is_flagged():
    counts = {str(d): 200 for d in range(9)} | {"9": 40}  # 40 / 1840 = 2.2%, 0.22 × the uniform 10%
    (message,) = _flagged(counts)
    assert "'9'" in message and "2.2% of rows" in message and "0.22×" in message and "10 classes" in message


@pytest.mark.parametrize(
    ("counts", "flagged"),
    [
        ({"no": 500, "yes": 500}, False),
        ({"no": 700, "yes": 300}, False),  # German-Credit-like 70/30: 0.6 × 50%
        ({"no": 760, "yes": 240}, True),  # 24% < 0.5 × 50%
        ({"no": 950, "yes": 50}, True),
    ],
)
def test_binary(counts, flagged):
    assert bool(_flagged(counts)) is flagged


@pytest.mark.parametrize(
    ("counts", "flagged"),
    [
        ({"a": 100, "b": 100, "c": 100}, False),
        ({"a": 150, "b": 100, "c": 60}, False),  # 60/310 = 19.4% ≥ 0.5 × 33.3%
        ({"a": 200, "b": 200, "c": 40}, True),  # 40/440 = 9.1% < 16.7%
    ],
)
def test_three_classes(counts, flagged):
    assert bool(_flagged(counts)) is flagged


def test_ratio_and_absolute_floor_are_options():
    counts = {"a": 200, "b": 200, "c": 40}
    assert not _flagged(counts, {"min_class_ratio": 0.2})
    # An absolute floor on top of the ratio, for those who want one.
    assert _flagged({"no": 700, "yes": 300}, {"min_class_share": 0.35})
    assert QualityOptions().min_class_ratio == 0.5
    with pytest.raises(InputError, match=r"audits\.data_quality\.min_class_ratio"):
        quality_options({"min_class_ratio": 2})


@settings(max_examples=40, deadline=None)
@given(k=st.integers(2, 12), n=st.integers(20, 60), rare=st.floats(0.0, 1.0))
def test_flagged_exactly_when_rarest_is_below_half_the_uniform_share(k, n, rare):
    """Against the definition: one class scaled by ``rare``, the others ``n`` rows each."""
    rare_rows = max(1, round(n * rare))
    counts = {f"c{i}": n for i in range(k - 1)} | {"rare": rare_rows}
    total = n * (k - 1) + rare_rows
    share = min(counts.values()) / total
    expected = share * k < 0.5
    found = _flagged(counts)
    assert bool(found) is expected, (counts, share * k)
    assert all(f.severity is Severity.MAJOR for f in assess(_bundle(counts)).findings if f.id == FINDING)
