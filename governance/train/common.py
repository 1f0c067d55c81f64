"""What every architecture's training path shares: the outcome, the data-quality gate, the rows.

:func:`governance.train.api.train` (tabular and image models) and
:func:`governance.train.text.train_hf` (Hugging Face text models) both use these.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from governance.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from governance.data.bundle import DataBundle
    from governance.spec import Spec

__all__ = ["TrainOutcome", "checkpoint_dir_for", "gate", "trainable_rows"]

ERR_NO_TRAIN_DATA = "required to train: a training file"
ERR_DELTA = "delta {delta} must be below 1/rows = {limit:.3g} (the training file has {rows} rows)"
ERR_BLOCKED = "data-quality gate: {message} [{id}]; fix the data or rerun with --force"


@dataclass(frozen=True)
class TrainOutcome:
    """Where the model folder is and the ledger written into it."""

    model_dir: Path
    ledger: dict[str, Any]


def checkpoint_dir_for(out_dir: Path) -> Path:
    """Checkpoints live beside ``--out`` (never inside it), so a failed run leaves ``--out`` clean."""
    return out_dir.parent / f".{out_dir.name}.checkpoint"


def trainable_rows(spec: Spec, bundle: DataBundle) -> pd.DataFrame:
    """The training frame, after checking it exists and that δ < 1/rows.

    Shared by every architecture's training path: a δ at or above 1/rows would admit a mechanism
    that publishes one whole record, so it is bad input whatever the model.
    """
    if bundle.train is None:
        raise InputError(spec.source, "data.train", ERR_NO_TRAIN_DATA)
    rows = len(bundle.train)
    privacy_spec = spec.train.privacy if spec.train is not None else None
    if privacy_spec is not None and privacy_spec.delta >= 1.0 / rows:
        raise InputError(
            spec.source,
            "train.privacy.delta",
            ERR_DELTA.format(delta=privacy_spec.delta, limit=1.0 / rows, rows=rows),
        )
    return bundle.train


def gate(spec: Spec, bundle: DataBundle, force: bool) -> list[dict[str, Any]]:
    from governance.data.quality import assess, blocking_findings, quality_options

    source = str(spec.source) if spec.source is not None else None
    options = quality_options(spec.audits.get("data_quality"), source=source)
    section = assess(bundle, options)
    blocking = blocking_findings(section)
    if blocking and not force:
        first = blocking[0]
        raise InputError(source, "data", ERR_BLOCKED.format(message=first.message, id=first.id))
    return [f.to_dict() for f in section.findings]
