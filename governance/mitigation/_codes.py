"""Labels and group values as integer codes, once, so that a sweep over a million rows never hashes
strings again: the decision log arrives coded (:class:`governance.audit._encode.CodedColumn`), and
anything else is converted with ``str`` as before, in one vectorised pass.

Groups are numbered in the sorted order of their names and only groups present get a code, which
is what ``compare_predictions`` does with strings, so :func:`governance.audit.paired.compare_codes`
on these codes gives the same comparison.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["as_strings", "group_codes", "label_codes", "present"]


def as_strings(values: Any) -> NDArray[np.str_]:
    """``str(v)`` for every value (numpy's string conversion is Python's ``str``), as a numpy array."""
    array = np.asarray(values)
    return array if array.dtype.kind == "U" else array.astype(str)


def label_codes(values: Any, classes: Sequence[str], what: str) -> NDArray[np.int64]:
    """Index of each label in ``classes`` (compared as strings).

    Raises
    ------
    ValueError
        A label that is not one of ``classes``.
    """
    labels = as_strings(values)
    codes = np.full(len(labels), -1, dtype=np.int64)
    for i, name in enumerate(classes):
        codes[labels == str(name)] = i
    if (codes < 0).any():
        raise ValueError(f"{what} value {labels[codes < 0][0]!r} is not one of the classes {list(classes)}")
    return codes


def present(codes: NDArray[np.integer], names: Sequence[str]) -> tuple[NDArray[np.int64], tuple[str, ...]]:
    """Only the groups that occur in ``codes``, renumbered in the sorted order of their names."""
    used = np.flatnonzero(np.bincount(codes, minlength=len(names)) > 0)
    order = sorted(used.tolist(), key=lambda c: names[c])
    remap = np.full(len(names), -1, dtype=np.int64)
    remap[order] = np.arange(len(order))
    return remap[codes], tuple(names[c] for c in order)


def group_codes(values: Any) -> tuple[NDArray[np.int64], tuple[str, ...]]:
    """Codes and names of a sensitive column (present groups, sorted by name)."""
    coded = getattr(values, "coded", None)
    if coded is not None:  # a decision log's column: codes already
        codes, names = coded
        return present(np.asarray(codes, dtype=np.int64), [str(n) for n in names])
    names_, codes_ = np.unique(as_strings(values), return_inverse=True)
    return np.asarray(codes_, dtype=np.int64).reshape(-1), tuple(str(n) for n in names_)
