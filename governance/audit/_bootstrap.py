"""Bootstrap confidence intervals by resampling confusion counts instead of rows.

Why this is exact, not an approximation: a row bootstrap draws N rows with replacement, each one
independently landing in cell ``c`` (a joint group × true class × predicted class) with probability
``counts[c] / N``. The vector of how many resampled rows land in each cell is therefore
``Multinomial(N, counts / N)`` — jointly over *all* cells, so group sizes vary between replicates
just as they do when rows are resampled. Every fairness metric is a function of those cell counts
alone, so its distribution over multinomial count draws is identical to its distribution over row
resamples. Drawing the counts costs O(cells) per replicate instead of O(N) plus a full
recomputation (fairlearn's ``n_boot`` re-runs ``MetricFrame``: ~1.2 s per replicate at 100k rows).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["percentile_interval", "resample_counts"]


def resample_counts(counts: NDArray[np.integer], n_boot: int, seed: int) -> NDArray[np.int64]:
    """``n_boot`` bootstrap replicates of a count table, shape ``(n_boot, *counts.shape)``.

    Parameters
    ----------
    counts
        Non-negative integer counts of any shape (all cells are resampled jointly).
    n_boot
        Number of replicates.
    seed
        Seed of the generator; the same seed gives the same replicates.
    """
    flat = np.asarray(counts, dtype=np.int64).ravel()
    total = int(flat.sum())
    rng = np.random.default_rng(seed)
    if total == 0:
        return np.zeros((n_boot, *counts.shape), dtype=np.int64)
    # Only non-empty cells can receive rows; drawing over them alone keeps the cost at the number
    # of occupied cells (empty intersections are common).
    occupied = np.flatnonzero(flat)
    draws = rng.multinomial(total, flat[occupied] / total, size=n_boot)
    out = np.zeros((n_boot, flat.size), dtype=np.int64)
    out[:, occupied] = draws
    return out.reshape((n_boot, *counts.shape))


def percentile_interval(
    replicates: NDArray[np.float64], confidence: float
) -> tuple[float | None, float | None]:
    """Percentile interval of bootstrap replicates (NaN replicates skipped); None if all are NaN."""
    finite = replicates[np.isfinite(replicates)]
    if finite.size == 0:
        return None, None
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(finite, [alpha, 1.0 - alpha])
    return float(lo), float(hi)
