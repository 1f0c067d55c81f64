"""Per-group confusion counts: the one data structure every fairness number is derived from.

Why not fairlearn's ``MetricFrame``? It slices the rows once per group and calls a metric function
per slice (≈30 s for 1M rows, 10 groups, 4 metrics). Every metric the fairness audit reports is a
function of the per-group confusion matrix alone, so one ``np.bincount`` over the rows gives the
counts and everything else is arithmetic on a few hundred integers. fairlearn stays the oracle in
the tests (tests/audit/test_fairness_oracle.py).

The counts are the *joint* table over all sensitive attributes at once, shape
``(n_groups_1, ..., n_groups_m, K, K)`` indexed ``[g1, ..., gm, true, pred]``. The table of one
attribute, or of a pair (intersectional groups), is a sum over the other axes, so one pass over the
rows serves every attribute and every intersection. Tables merge by addition after aligning their
group names, so a Spark or DuckDB job can produce counts shard by shard (:meth:`JointCounts.merge`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["GroupTable", "JointCounts", "reduce_joint"]

# Beyond this many cells the joint table (all attributes at once) would cost more memory than the
# rows themselves; the caller then counts each attribute/pair on its own (see JointCounts.from_codes).
MAX_JOINT_CELLS = 50_000_000


@dataclass(frozen=True)
class GroupTable:
    """Confusion counts of the groups of one attribute or one intersection of attributes.

    Attributes
    ----------
    attributes
        The attribute names, one for a marginal table, two for an intersection.
    groups
        One tuple of group values (strings) per row of ``counts``, in the order of ``attributes``.
    classes
        The class labels, the order of the last two axes of ``counts``.
    counts
        Integer array ``(n_groups, K, K)`` indexed ``[group, true class, predicted class]``.
        Empty groups (an intersection nobody falls into) keep a row of zeros; metrics skip them,
        as fairlearn's ``MetricFrame`` leaves them NaN and skips them in ``difference``/``ratio``.
    """

    attributes: tuple[str, ...]
    groups: tuple[tuple[str, ...], ...]
    classes: tuple[str, ...]
    counts: NDArray[np.int64]

    @property
    def name(self) -> str:
        """The attribute names joined by ``*`` (the qualifier used in metric IDs)."""
        return "*".join(self.attributes)

    @property
    def sizes(self) -> NDArray[np.int64]:
        return np.asarray(self.counts.sum(axis=(-2, -1)), dtype=np.int64)


@dataclass(frozen=True)
class JointCounts:
    """Confusion counts over the joint groups of every sensitive attribute.

    Attributes
    ----------
    attributes
        The sensitive attribute names, in order.
    categories
        For each attribute, its group values (strings), the order of its axis in ``counts``.
    classes
        The class labels, the order of the last two axes.
    counts
        Integer array ``(len(categories[0]), ..., len(categories[-1]), K, K)``.

    Examples
    --------
    >>> import numpy as np
    >>> jc = JointCounts.from_codes(
    ...     [np.array([0, 0, 1, 1])], [("a", "b")], np.array([0, 1, 1, 1]), np.array([0, 1, 0, 1]),
    ...     ("0", "1"), attributes=["sex"],
    ... )
    >>> jc.table(["sex"]).sizes.tolist()
    [2, 2]
    """

    attributes: tuple[str, ...]
    categories: tuple[tuple[str, ...], ...]
    classes: tuple[str, ...]
    counts: NDArray[np.int64]

    @classmethod
    def from_codes(
        cls,
        attribute_codes: Sequence[NDArray[np.integer]],
        categories: Sequence[Sequence[str]],
        y_true_codes: NDArray[np.integer],
        y_pred_codes: NDArray[np.integer],
        classes: Sequence[str],
        *,
        attributes: Sequence[str] | None = None,
    ) -> JointCounts:
        """Count rows per (joint group, true class, predicted class) in one ``np.bincount``.

        Parameters
        ----------
        attribute_codes
            One integer array per attribute, values in ``range(len(categories[i]))``.
        categories
            The group values of each attribute.
        y_true_codes, y_pred_codes
            Integer class indices into ``classes``.
        classes
            The class labels.
        attributes
            Attribute names; ``a0, a1, ...`` when omitted.
        """
        k = len(classes)
        shape = (*(len(c) for c in categories), k, k)
        n_cells = int(np.prod(shape, dtype=np.int64))
        if n_cells > MAX_JOINT_CELLS:
            raise ValueError(f"{n_cells} joint cells exceed {MAX_JOINT_CELLS}; count attributes separately")
        # Mixed-radix index of each row's cell, built in the smallest integer type that holds it
        # (int32 halves the memory traffic of the pass over 10M rows).
        dtype = np.int32 if n_cells < 2**31 else np.int64
        index = np.zeros(len(y_true_codes), dtype=dtype)
        for codes, cats in zip(attribute_codes, categories):
            np.multiply(index, len(cats), out=index)
            np.add(index, codes.astype(dtype, copy=False), out=index)
        for codes in (y_true_codes, y_pred_codes):
            np.multiply(index, k, out=index)
            np.add(index, codes.astype(dtype, copy=False), out=index)
        flat = np.bincount(index, minlength=n_cells).astype(np.int64, copy=False)
        names = (
            tuple(attributes) if attributes is not None else tuple(f"a{i}" for i in range(len(categories)))
        )
        return cls(
            attributes=names,
            categories=tuple(tuple(str(v) for v in c) for c in categories),
            classes=tuple(str(c) for c in classes),
            counts=flat.reshape(shape),
        )

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def table(self, attributes: Sequence[str]) -> GroupTable:
        """The table of one attribute or of an intersection, summing out the others."""
        axes = [self.attributes.index(a) for a in attributes]
        counts = reduce_joint(self.counts, len(self.attributes), axes)
        grids = np.meshgrid(*[np.arange(len(self.categories[a])) for a in axes], indexing="ij")
        flat = [grid.ravel() for grid in grids]
        groups = tuple(
            tuple(self.categories[a][int(f[i])] for a, f in zip(axes, flat)) for i in range(counts.shape[0])
        )
        return GroupTable(attributes=tuple(attributes), groups=groups, classes=self.classes, counts=counts)

    def merge(self, other: JointCounts) -> JointCounts:
        """Add the counts of another shard; group values and classes are aligned by name.

        Raises
        ------
        ValueError
            If the shards count different attributes.
        """
        if self.attributes != other.attributes:
            raise ValueError(
                f"cannot merge counts over {self.attributes} with counts over {other.attributes}"
            )
        categories = tuple(
            tuple(dict.fromkeys((*mine, *theirs))) for mine, theirs in zip(self.categories, other.categories)
        )
        classes = tuple(dict.fromkeys((*self.classes, *other.classes)))
        shape = (*(len(c) for c in categories), len(classes), len(classes))
        out = np.zeros(shape, dtype=np.int64)
        for part in (self, other):
            index = [
                np.asarray([cats.index(v) for v in pcats]) for cats, pcats in zip(categories, part.categories)
            ]
            cls_index = np.asarray([classes.index(c) for c in part.classes])
            out[np.ix_(*index, cls_index, cls_index)] += part.counts
        return JointCounts(attributes=self.attributes, categories=categories, classes=classes, counts=out)


def reduce_joint(counts: NDArray[np.int64], n_attributes: int, axes: Sequence[int]) -> NDArray[np.int64]:
    """Sum a joint table down to the attributes ``axes`` (in that order), groups flattened.

    ``counts`` is ``(*batch, n_1, ..., n_m, K, K)`` with ``m = n_attributes``; any leading batch axes
    (bootstrap replicates) are kept. Returns ``(*batch, G, K, K)`` with ``G`` the product of the kept
    attributes' sizes, in row-major order of ``axes``.
    """
    n_batch = counts.ndim - n_attributes - 2
    attr_axes = [n_batch + i for i in range(n_attributes)]
    keep = [n_batch + a for a in axes]
    drop = tuple(a for a in attr_axes if a not in keep)
    reduced = counts.sum(axis=drop) if drop else counts
    # After the sum the kept attribute axes sit in their original order; reorder to `axes`.
    order = sorted(axes)
    src = [n_batch + order.index(a) for a in axes]
    reduced = np.moveaxis(reduced, src, [n_batch + i for i in range(len(axes))])
    k = counts.shape[-1]
    return (
        np.ascontiguousarray(reduced)
        .reshape((*counts.shape[:n_batch], -1, k, k))
        .astype(np.int64, copy=False)
    )
