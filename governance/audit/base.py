"""The audit interface: an audit needs a model handle and a DataBundle, never the trainer."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np
    import pandas as pd

    from governance.data.bundle import DataBundle
    from governance.results import AuditSection
    from governance.spec import Spec

__all__ = ["Audit", "AuditContext", "ModelHandle", "Predictions", "TabularModelHandle"]


class ModelHandle(Protocol):
    """A trained model together with the preprocessing it was trained with.

    Implemented by ``governance.train.handle``; audits use only this surface.
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
    """What ``governance.train.handle.TabularHandle`` adds for attribution and robustness.

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


@dataclass(frozen=True)
class AuditContext:
    """Everything an audit may read."""

    spec: Spec
    data: DataBundle
    model: ModelHandle | None
    eval_predictions: Predictions
    train_predictions: Predictions | None = None
    #: The privacy ledger (training.json) when the model was trained by governance.
    ledger: Mapping[str, Any] | None = None
    device: str = "cpu"
    seed: int = 0
    options: Mapping[str, Any] = field(default_factory=dict)
    #: Eval predictions of related models the pipeline prepared for this audit, by role
    #: (``non_private_twin`` for the privacy-cost audit). Same rows as ``eval_predictions``.
    companions: Mapping[str, Predictions] = field(default_factory=dict)


class Audit(ABC):
    """One audit. Subclasses set ``name`` and implement :meth:`run`.

    An exception raised by ``run`` becomes an ERROR section; the other audits still run.
    Raise :class:`governance.errors.InputError` for bad options so the CLI can exit 2.
    """

    name: ClassVar[str]
    #: False for audits that work from predictions alone (performance, fairness, data quality).
    requires_model: ClassVar[bool] = True

    def input_files(self, spec: Spec, options: Mapping[str, Any]) -> tuple[Path, ...]:
        """Files this audit's options name (hashed into manifest.json with the spec's own inputs)."""
        return ()

    def preflight(self, spec: Spec, data: DataBundle, options: Mapping[str, Any]) -> None:  # noqa: B027
        """Check options and data before any expensive work (training); raise InputError.

        The runner calls it for every listed audit right after loading the data, so that bad input
        exits 2 in a second rather than after training. The default checks nothing.
        """

    @abstractmethod
    def run(self, context: AuditContext) -> AuditSection: ...
