"""Integer codes for labels and group values, without per-row Python.

The count-based audits work on integer codes; data loaded from Parquet arrives already
dictionary-encoded (pandas ``Categorical``), so taking its codes is free. Anything else is
factorised once here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd
    from numpy.typing import NDArray

    from governance.audit.base import Predictions

__all__ = ["MISSING_GROUP", "class_codes", "group_codes"]

#: The group name given to rows whose sensitive value is missing: they are counted, not dropped.
MISSING_GROUP = "(missing)"


def group_codes(values: pd.Series) -> tuple[NDArray[np.integer], tuple[str, ...]]:
    """Codes and group names (strings, as they appear in the data) of a sensitive column.

    Missing values become their own group, :data:`MISSING_GROUP`. Unused categories are dropped so
    that every returned group has at least one row.
    """
    import pandas as pd

    if isinstance(values.dtype, pd.CategoricalDtype):
        cat = values.array
        assert isinstance(cat, pd.Categorical)
        codes = np.asarray(cat.codes)  # int8/int16: no copy of millions of rows
        names = [str(v) for v in cat.categories]
    else:
        codes, uniques = pd.factorize(values, sort=True, use_na_sentinel=True)
        codes = np.asarray(codes, dtype=np.int64)
        names = [str(v) for v in uniques]
    if codes.size and codes.min() < 0:
        codes = np.where(codes < 0, len(names), codes)
        names.append(MISSING_GROUP)
    used = np.bincount(codes, minlength=len(names)) > 0
    if not used.all():
        remap = np.cumsum(used) - 1
        codes = remap[codes]
        names = [n for n, u in zip(names, used) if u]
    return codes, tuple(names)


def class_codes(
    predictions: Predictions, classes: Sequence[str]
) -> tuple[tuple[str, ...], NDArray[np.integer], NDArray[np.integer]]:
    """Class codes of ``y_true`` and ``y_pred`` into ``classes`` (the predictions' own if they carry them).

    Raises
    ------
    ValueError
        If a label or prediction is not one of ``classes`` (loaders check this earlier, naming the file).
    """
    if (
        predictions.classes is not None
        and predictions.y_true_codes is not None
        and predictions.y_pred_codes is not None
    ):
        # Any integer dtype: loaders keep int32 codes, and a copy of 10M codes is not free.
        return (
            tuple(predictions.classes),
            np.asarray(predictions.y_true_codes),
            np.asarray(predictions.y_pred_codes),
        )
    import pandas as pd

    names = tuple(str(c) for c in classes)
    out = []
    for what, values in (("y_true", predictions.y_true), ("y_pred", predictions.y_pred)):
        codes = np.asarray(
            pd.Categorical(np.asarray(values).astype(str), categories=names).codes, dtype=np.int64
        )
        if (codes < 0).any():
            bad = np.asarray(values)[codes < 0][0]
            raise ValueError(f"{what} value {bad!r} is not one of the classes {list(names)}")
        out.append(codes)
    return names, out[0], out[1]
