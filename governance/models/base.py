"""What an audit sees of a model: the handle protocols and the predictions computed once per split.

``governance.models.handle`` and ``governance.models.hf`` implement :class:`ModelHandle`; the audits
use only this surface, so they never need the trainer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["ModelHandle", "Predictions", "TabularModelHandle"]


class ModelHandle(Protocol):
    """A trained model together with the preprocessing it was trained with.

    Implemented by :mod:`governance.models.handle` and :mod:`governance.models.hf`; audits use only
    this surface.
    """

    # Read-only properties, so that frozen dataclasses implement the protocol.
    @property
    def kind(self) -> str:  # "tabular" | "image" | "text"
        ...

    @property
    def classes(self) -> tuple[str, ...]:  # class labels in output order, as strings
        ...

    @property
    def device(self) -> str: ...

    @property
    def module(self) -> Any:  # torch.nn.Module
        ...

    def encode(self, frame: pd.DataFrame) -> Any:  # torch.Tensor of model inputs
        ...

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:  # (n, n_classes)
        ...


class TabularModelHandle(ModelHandle, Protocol):
    """What ``governance.models.handle.TabularHandle`` adds for attribution and robustness.

    Encoded inputs are the numeric features, standardised with the train mean and std (so a
    perturbation of ε encoded units is ε standard deviations), then one one-hot block per
    categorical feature. Robustness attacks perturb only ``numeric_columns``, never
    ``onehot_columns`` (a perturbed one-hot row is an impossible input).
    """

    @property
    def feature_groups(self) -> dict[str, tuple[int, ...]]:  # original feature -> encoded columns
        ...

    @property
    def numeric_columns(self) -> tuple[int, ...]:  # encoded indices of standardised numerics
        ...

    @property
    def onehot_columns(self) -> tuple[int, ...]:  # encoded indices of one-hot categoricals
        ...

    @property
    def feature_names(self) -> tuple[str, ...]:  # encoded column names ("age", "sex=female")
        ...

    def baseline(self, frame: pd.DataFrame | None = None) -> Any:  # train mean, one row per row of frame
        ...


@dataclass(frozen=True)
class Predictions:
    """Model outputs on one split, computed once and shared by every audit.

    ``y_true`` and ``y_pred`` are class labels as strings; ``y_score`` is the probability of the
    positive class for binary tasks (None when only hard decisions exist); ``proba`` the full
    (n, n_classes) matrix when a model produced it.
    """

    y_true: np.ndarray
    y_pred: np.ndarray
    y_score: np.ndarray | None = None
    proba: np.ndarray | None = None
    #: Optional integer encoding, ``y_true == np.asarray(classes)[y_true_codes]`` (same for y_pred).
    #: Loaders that read dictionary-encoded data set it so that audits over millions of rows never
    #: hash strings again; audits must not rely on it being present.
    classes: tuple[str, ...] | None = None
    y_true_codes: np.ndarray | None = None
    y_pred_codes: np.ndarray | None = None
