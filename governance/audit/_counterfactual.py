"""Counterfactual fairness: does swapping only the identity term change the prediction?

The eval data carries a pair column: rows with the same pair id are the same sentence with a
different identity term (Dixon et al. 2018 templates; ``audits/data/sentiment``). Over every
unordered pair of rows that share a pair id:

``fairness.counterfactual.flip_rate``
    the share of pairs whose predicted classes differ;
``fairness.counterfactual.mean_abs_score_change``
    the mean total-variation distance between the two predicted distributions, which for a
    binary model is ``|p_i(positive) - p_j(positive)|``.

Both come from the eval predictions the runner computed once (no extra model calls), so they
also work for a predictions-only audit that has scores. Per term, the same two numbers over the
pairs the term takes part in show *which* terms move the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from governance._options import Options, Str, parse_options
from governance.errors import InputError
from governance.results import metric_id

if TYPE_CHECKING:
    import pandas as pd

    from governance.audit.base import Predictions

__all__ = [
    "CounterfactualOptions",
    "CounterfactualResult",
    "add_counterfactual",
    "counterfactual_options",
    "counterfactual_pairs",
    "with_counterfactual",
]

ERR_COLUMN = "column {column!r} not found in the eval data"


class CounterfactualOptions(Options):
    """``audits.fairness.counterfactual``: which columns pair the rows and name the terms."""

    pair_column: Str
    term_column: Str | None = None

    def check(self, frame: pd.DataFrame, *, source: str | None) -> None:
        for field, column in (("pair_column", self.pair_column), ("term_column", self.term_column)):
            if column is not None and column not in frame.columns:
                raise InputError(
                    source, f"audits.fairness.counterfactual.{field}", ERR_COLUMN.format(column=column)
                )


@dataclass(frozen=True)
class CounterfactualResult:
    """Flip rate and score change over counterfactual pairs, overall and per term."""

    pairs: int
    groups: int
    flip_rate: float | None
    mean_abs_score_change: float | None
    by_term: tuple[dict[str, Any], ...]

    def metrics(self) -> dict[str, float | None]:
        return {
            metric_id("fairness", "counterfactual", "flip_rate"): self.flip_rate,
            metric_id("fairness", "counterfactual", "mean_abs_score_change"): self.mean_abs_score_change,
            metric_id("fairness", "counterfactual", "pairs"): float(self.pairs),
        }


def counterfactual_pairs(
    frame: pd.DataFrame, predictions: Predictions, options: CounterfactualOptions
) -> CounterfactualResult:
    """Compare every two rows of ``frame`` that share a pair id (see the module docstring).

    Parameters
    ----------
    frame
        The eval rows, in the order of ``predictions``.
    predictions
        The eval predictions (``y_pred``; ``proba`` or binary ``y_score`` for score changes).
    options
        The pair and term columns.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from governance.audit.base import Predictions
    >>> frame = pd.DataFrame({"pair": ["a", "a", "b", "b"]})
    >>> pred = Predictions(y_true=np.array(["1"] * 4), y_pred=np.array(["1", "0", "1", "1"]),
    ...                    y_score=np.array([0.9, 0.4, 0.8, 0.7]))
    >>> r = counterfactual_pairs(frame, pred, CounterfactualOptions(pair_column="pair"))
    >>> r.pairs, r.flip_rate, round(r.mean_abs_score_change, 3)
    (2, 0.5, 0.3)
    """
    import pandas as pd

    pairs_col = frame[options.pair_column]
    valid = pairs_col.notna() & (pairs_col.astype(str).str.strip() != "")
    codes, _ = pd.factorize(pairs_col.where(valid).astype("string"), use_na_sentinel=True)
    pred = np.asarray(predictions.y_pred).astype(str)
    scores = _scores(predictions)
    terms = frame[options.term_column].astype(str).to_numpy() if options.term_column else None

    flips: list[bool] = []
    changes: list[float] = []
    per_term: dict[str, list[tuple[bool, float | None]]] = {}
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    bounds = np.flatnonzero(np.diff(sorted_codes)) + 1
    groups = 0
    for block in np.split(order, bounds):
        if len(block) < 2 or codes[block[0]] < 0:
            continue
        groups += 1
        for a in range(len(block)):
            for b in range(a + 1, len(block)):
                i, j = int(block[a]), int(block[b])
                flip = bool(pred[i] != pred[j])
                change = None if scores is None else float(0.5 * np.abs(scores[i] - scores[j]).sum())
                flips.append(flip)
                if change is not None:
                    changes.append(change)
                if terms is not None:
                    for t in (terms[i], terms[j]):
                        per_term.setdefault(t, []).append((flip, change))
    by_term = []
    for term in sorted(per_term):
        values = per_term[term]
        term_changes = [c for _, c in values if c is not None]
        by_term.append(
            {
                "term": term,
                "pairs": len(values),
                "flip_rate": float(np.mean([f for f, _ in values])),
                "mean_abs_score_change": float(np.mean(term_changes)) if term_changes else None,
            }
        )
    return CounterfactualResult(
        pairs=len(flips),
        groups=groups,
        flip_rate=float(np.mean(flips)) if flips else None,
        mean_abs_score_change=float(np.mean(changes)) if changes else None,
        by_term=tuple(by_term),
    )


def _scores(predictions: Predictions) -> np.ndarray | None:
    """Per-row class distributions: ``proba``, or ``(1 - s, s)`` from a binary ``y_score``."""
    if predictions.proba is not None:
        return np.asarray(predictions.proba, dtype=np.float64)
    if predictions.y_score is not None:
        s = np.asarray(predictions.y_score, dtype=np.float64)
        return np.stack([1.0 - s, s], axis=1)
    return None


def with_counterfactual(section: Any, result: CounterfactualResult, options: CounterfactualOptions) -> Any:
    """``section`` (the fairness AuditSection) with the counterfactual metrics, table and details."""
    from dataclasses import replace

    return replace(
        section,
        metrics={**section.metrics, **result.metrics()},
        tables={**section.tables, "counterfactual_by_term": list(result.by_term)},
        details={
            **section.details,
            "counterfactual": {
                "pair_column": options.pair_column,
                "term_column": options.term_column,
                "pairs": result.pairs,
                "pair_groups": result.groups,
                "score_change": "total-variation distance of the predicted distributions "
                "(binary: |p_i(positive) - p_j(positive)|)",
            },
        },
    )


def counterfactual_options(
    raw: Mapping[str, Any], frame: pd.DataFrame, *, source: str | None
) -> CounterfactualOptions | None:
    """The parsed, column-checked ``counterfactual`` entry of the fairness options, if any."""
    if raw.get("counterfactual") is None:
        return None
    options = parse_options(
        CounterfactualOptions, raw["counterfactual"], source=source, where="audits.fairness.counterfactual"
    )
    options.check(frame, source=source)
    return options


def add_counterfactual(section: Any, context: Any, *, source: str | None) -> Any:
    """The fairness section plus counterfactual metrics when the spec asks for them."""
    options = counterfactual_options(context.options, context.data.eval, source=source)
    if options is None:
        return section
    result = counterfactual_pairs(context.data.eval, context.eval_predictions, options)
    return with_counterfactual(section, result, options)
