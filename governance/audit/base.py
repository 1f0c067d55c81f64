"""The audit interface: an audit needs a model handle and a DataBundle, never the trainer.

The model-side types (:class:`ModelHandle`, :class:`Predictions`) live in :mod:`governance.models.base`
and are re-exported here for the audits.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from governance.models.base import ModelHandle, Predictions, TabularModelHandle

if TYPE_CHECKING:
    from pathlib import Path

    from governance.data.bundle import DataBundle
    from governance.results import AuditSection
    from governance.spec import Spec

__all__ = ["Audit", "AuditContext", "ModelHandle", "Predictions", "TabularModelHandle"]


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
    #: The spec's ``audits.<name>`` mapping as written; the audit reads it through its registered
    #: options model (``parse_audit_options``), which the pipeline has already validated.
    options: Mapping[str, Any] = field(default_factory=dict)
    #: Eval predictions of related models the pipeline prepared for this audit, by role
    #: (``non_private_twin`` for the privacy-cost audit). Same rows as ``eval_predictions``.
    companions: Mapping[str, Predictions] = field(default_factory=dict)
    #: A decision log counted by an engine beyond memory (governance.audit._engines.CountedLog):
    #: no rows, only the confusion counts per group; the audits that work from counts read it.
    counted: Any = None


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
        """Check the options against the data before any expensive work (training); raise InputError.

        The options themselves (types, ranges, unknown keys) are checked earlier, before any data is
        read, against the options model the audit registers (:mod:`governance.audit.registry`). The
        pipeline calls this for every listed audit right after loading the data, so that bad input
        exits 2 in a second rather than after training. The default checks nothing.
        """

    @abstractmethod
    def run(self, context: AuditContext) -> AuditSection: ...
