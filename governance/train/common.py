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

__all__ = ["TrainOutcome", "checkpoint_dir_for", "gate", "gate_findings_item", "provenance", "trainable_rows"]

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


def gate_findings_item(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The data-quality gate's findings, written to training.json, read the train rows too.

    Findings that only describe the checks (what the PII scan covers) say nothing about the rows.
    """
    from governance.data.quality import DESCRIPTIVE_FINDINGS

    findings = [f for f in findings if f.get("id") not in DESCRIPTIVE_FINDINGS]
    if not findings:
        return []
    return [
        {
            "name": "data_quality_findings",
            "where": "training.json",
            "columns": [],
            "detail": "the data-quality gate's findings, computed over the train split too: "
            + "; ".join(sorted({str(f.get("id")) for f in findings})),
        }
    ]


def provenance(
    spec: Spec, bundle: DataBundle, findings: list[dict[str, Any]], *, force: bool
) -> dict[str, Any]:
    """What every training ledger records about the run's inputs (spec, data digests, licence, gate)."""
    from governance._io import sha256_file

    return {
        "spec": spec.name,
        "task": str(spec.task),
        "forced": force,
        "data_quality_findings": findings,
        "data": {k: {"path": str(p), "sha256": sha256_file(p)} for k, p in bundle.paths.items()},
        "source": bundle.source,
        "license": bundle.license,
    }
