"""Counterfactual fairness: flip rate and score change over identity-term swaps, by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from governance._options import parse_options
from governance.audit._counterfactual import CounterfactualOptions, counterfactual_pairs
from governance.audit.base import Predictions
from governance.errors import InputError
from tests.text.helpers import text_context
from tests.text.tiny_bert import write_tiny_bert


def _predictions(pred: list[str], score: list[float]) -> Predictions:
    s = np.asarray(score)
    return Predictions(
        y_true=np.array(pred, dtype=object),
        y_pred=np.array(pred, dtype=object),
        y_score=s,
        proba=np.stack([1 - s, s], axis=1),
    )


def test_flip_rate_and_score_change_match_a_hand_count() -> None:
    frame = pd.DataFrame(
        {
            "pair": ["a", "a", "a", "b", "b", "c", None],
            "term": ["muslim", "jewish", "hindu", "muslim", "jewish", "old", "young"],
        }
    )
    pred = ["pos", "pos", "neg", "neg", "neg", "pos", "neg"]
    score = [0.9, 0.7, 0.2, 0.4, 0.1, 0.8, 0.3]
    result = counterfactual_pairs(
        frame, _predictions(pred, score), CounterfactualOptions(pair_column="pair", term_column="term")
    )
    # Group a: pairs (0,1) no flip |.2|, (0,2) flip |.7|, (1,2) flip |.5|; group b: (3,4) no flip |.3|.
    # Group c has one row and the last row no pair id: neither forms a pair.
    assert result.pairs == 4 and result.groups == 2
    assert result.flip_rate == pytest.approx(2 / 4)
    assert result.mean_abs_score_change == pytest.approx((0.2 + 0.7 + 0.5 + 0.3) / 4)
    by_term = {row["term"]: row for row in result.by_term}
    assert by_term["hindu"]["pairs"] == 2 and by_term["hindu"]["flip_rate"] == 1.0
    assert by_term["muslim"]["pairs"] == 3 and by_term["muslim"]["flip_rate"] == pytest.approx(1 / 3)
    assert "young" not in by_term


def test_order_of_rows_does_not_matter() -> None:
    rng = np.random.default_rng(0)
    n = 60
    frame = pd.DataFrame({"pair": rng.integers(0, 8, n).astype(str), "term": rng.choice(["x", "y", "z"], n)})
    score = rng.random(n)
    pred = np.where(score > 0.5, "pos", "neg").tolist()
    options = CounterfactualOptions(pair_column="pair", term_column="term")
    first = counterfactual_pairs(frame, _predictions(pred, score.tolist()), options)
    order = rng.permutation(n)
    second = counterfactual_pairs(
        frame.iloc[order].reset_index(drop=True),
        _predictions([pred[i] for i in order], score[order].tolist()),
        options,
    )
    assert first.pairs == second.pairs
    assert first.flip_rate == pytest.approx(second.flip_rate)
    assert first.mean_abs_score_change == pytest.approx(second.mean_abs_score_change)


WHERE = "audits.fairness.counterfactual"


def test_bad_options_are_bad_input() -> None:
    with pytest.raises(InputError, match="pair_column"):
        parse_options(CounterfactualOptions, {"term_column": "t"}, source="spec.yaml", where=WHERE)
    with pytest.raises(InputError, match="unknown option"):
        parse_options(CounterfactualOptions, {"pair_column": "p", "oops": 1}, source="spec.yaml", where=WHERE)
    with pytest.raises(InputError, match="not found"):
        CounterfactualOptions(pair_column="nope").check(pd.DataFrame({"p": [1]}), source="spec.yaml")


def test_fairness_audit_adds_counterfactual_metrics_to_group_fairness(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    from governance.audit.registry import create_audit

    tiny = write_tiny_bert(tmp_path_factory.mktemp("bert"))
    options = {"bootstrap": 0, "counterfactual": {"pair_column": "pair_id", "term_column": "identity_term"}}
    context = text_context(tiny, tmp_path, "fairness", options)
    section = create_audit("fairness").run(context)
    m = section.metrics
    # Group fairness over identity categories still works as for tabular data.
    assert "fairness.identity_category.demographic_parity_ratio" in m
    # 4 templates x 22 terms: 4 * C(22, 2) pairs.
    assert m["fairness.counterfactual.pairs"] == 4 * 231
    frame = context.data.eval
    pred = context.eval_predictions.y_pred
    flips = changes = 0.0
    for _, idx in frame.groupby("pair_id").indices.items():
        for a in range(len(idx)):
            for b in range(a + 1, len(idx)):
                flips += pred[idx[a]] != pred[idx[b]]
                changes += abs(
                    context.eval_predictions.y_score[idx[a]] - context.eval_predictions.y_score[idx[b]]
                )
    assert m["fairness.counterfactual.flip_rate"] == pytest.approx(flips / (4 * 231))
    assert m["fairness.counterfactual.mean_abs_score_change"] == pytest.approx(changes / (4 * 231))
    assert len(section.tables["counterfactual_by_term"]) == 22
