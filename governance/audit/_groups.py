"""Per-group accuracy rows shared by the tabular/image and text robustness audits."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["accuracy_by_group"]


def accuracy_by_group(
    frame: pd.DataFrame, sensitive: tuple[str, ...], clean: np.ndarray, correct: np.ndarray
) -> list[dict[str, Any]]:
    """Clean and perturbed accuracy per group of each sensitive attribute (the ``accuracy_by_group`` rows)."""
    rows = []
    for attr in sensitive:
        if attr not in frame.columns:
            continue
        groups = frame[attr].astype(str).to_numpy()
        for group in sorted(set(groups)):
            sel = groups == group
            c, a = float(clean[sel].mean()), float(correct[sel].mean())
            rows.append(
                {
                    "attribute": attr,
                    "group": group,
                    "n": int(sel.sum()),
                    "clean_accuracy": c,
                    "accuracy": a,
                    "accuracy_drop": c - a,
                }
            )
    return rows
