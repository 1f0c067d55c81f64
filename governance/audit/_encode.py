"""Integer codes for labels and group values, without per-row Python.

The count-based audits work on integer codes; data loaded from Parquet arrives already
dictionary-encoded (pandas ``Categorical``), so taking its codes is free. Anything else is
factorised once here.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

# One name for a missing group in every path (see governance.data.bundle).
from governance.data.bundle import MISSING_GROUP

if TYPE_CHECKING:
    import pandas as pd
    from numpy.typing import NDArray

    from governance.audit.base import Predictions

__all__ = ["MISSING_GROUP", "CodedColumn", "CodedFrame", "class_codes", "group_codes"]


class CodedFrame:
    """Categorical columns held as integer codes; a pandas ``DataFrame`` only when one is needed.

    The predictions-only path (``governance audit`` over a decision log) reads the label and the
    sensitive columns as codes, and the fairness audit needs nothing else: importing pandas would
    cost more than loading and auditing a million rows. Indexing one column gives a
    :class:`CodedColumn`, which :func:`group_codes` reads without pandas; any other use (a list of
    columns, ``.columns``, ``.isna()``…) builds the ``DataFrame`` of categoricals once and hands
    the request to it, so audits written against pandas see a real frame.
    """

    def __init__(
        self,
        columns: Mapping[str, tuple[NDArray[np.integer], Sequence[str]]],
        n_rows: int,
        *,
        all_used: Collection[str] = (),
    ) -> None:
        self._coded = {name: (codes, tuple(names)) for name, (codes, names) in columns.items()}
        self._n_rows = n_rows
        #: Columns every one of whose names occurs (the loader counted them already).
        self.all_used = frozenset(all_used)
        self._frame: pd.DataFrame | None = None

    @property
    def frame(self) -> pd.DataFrame:
        """The pandas ``DataFrame`` (categorical columns), built on first use."""
        if self._frame is None:
            import pandas as pd

            self._frame = pd.DataFrame(
                {
                    name: pd.Categorical.from_codes(codes, categories=list(names))
                    for name, (codes, names) in self._coded.items()
                },
                copy=False,
            )
        return self._frame

    def coded(self, name: str) -> tuple[NDArray[np.integer], tuple[str, ...]]:
        """Codes (``-1`` never occurs) and category names of column ``name``."""
        return self._coded[name]

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str) and key in self._coded:
            return CodedColumn(self, key)
        return self.frame[key]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_coded", "_n_rows", "_frame", "all_used"):
            raise AttributeError(name)
        return getattr(self.frame, name)

    def __len__(self) -> int:
        return self._n_rows

    def __contains__(self, key: object) -> bool:
        return key in self._coded

    def __iter__(self) -> Iterator[str]:
        return iter(self._coded)


class CodedColumn:
    """One column of a :class:`CodedFrame`; behaves as its pandas ``Series`` when used as one."""

    def __init__(self, frame: CodedFrame, name: str) -> None:
        self._owner = frame
        self.name = name

    @property
    def coded(self) -> tuple[NDArray[np.integer], tuple[str, ...]]:
        return self._owner.coded(self.name)

    @property
    def series(self) -> pd.Series:
        return self._owner.frame[self.name]

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__") or attr in ("_owner", "name"):
            raise AttributeError(attr)
        return getattr(self.series, attr)

    def __len__(self) -> int:
        return len(self._owner)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.series)

    def __array__(self, dtype: Any = None, copy: Any = None) -> NDArray[Any]:
        return np.asarray(self.series, dtype=dtype)

    def __getitem__(self, key: Any) -> Any:
        return self.series[key]

    def __eq__(self, other: object) -> Any:
        return self.series == other

    def __ne__(self, other: object) -> Any:
        return self.series != other

    __hash__ = None  # type: ignore[assignment]


def group_codes(values: pd.Series | CodedColumn) -> tuple[NDArray[np.integer], tuple[str, ...]]:
    """Codes and group names (strings, as they appear in the data) of a sensitive column.

    Missing values become their own group, :data:`MISSING_GROUP`. Unused categories are dropped so
    that every returned group has at least one row.
    """
    if isinstance(values, CodedColumn):
        codes, coded_names = values.coded  # no pandas: see CodedFrame
        if values.name in values._owner.all_used:
            return np.asarray(codes), coded_names  # no pass over the rows to find empty groups
        return _drop_unused(np.asarray(codes), list(coded_names))
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
    return _drop_unused(codes, names)


def _drop_unused(codes: NDArray[np.integer], names: list[str]) -> tuple[NDArray[np.integer], tuple[str, ...]]:
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
