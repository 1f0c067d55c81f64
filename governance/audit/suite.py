"""Running the audits a spec lists: names and options checked up front, then one section each.

The pipeline calls :func:`check_audits` before it loads any data (an unknown audit or a typo in an
option exits 2 at once), :func:`preflight` once the data is loaded (checks that need the data,
before training), then :func:`run_one` per audit. An exception inside one audit becomes its ERROR
section and the others still run; bad input (:class:`InputError`) stops the run.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from governance._options import Options, parse_options
from governance.audit.base import AuditContext, ModelHandle, Predictions
from governance.audit.registry import audit_names, create_audit, options_model
from governance.errors import InputError
from governance.results import AuditSection, SectionStatus

if TYPE_CHECKING:
    from governance.data.bundle import DataBundle
    from governance.spec import Spec

__all__ = ["AuditSubject", "audit_options", "check_audits", "input_files", "listed", "preflight", "run_one"]

ERR_UNKNOWN_AUDIT = "unknown audit; expected one of {known}"
SKIP_NEEDS_MODEL = "needs a model; this run audits saved predictions only"
#: The audits that work from a counted decision log (engine duckdb or spark): the others need rows.
COUNTED_AUDITS = ("data_quality", "fairness", "performance")
SKIP_COUNTED = (
    "needs the rows in memory; this decision log was counted by an engine (spec engine: memory keeps them)"
)


@dataclass(frozen=True)
class AuditSubject:
    """What the audits look at: the data, the model (None for saved predictions) and its predictions."""

    bundle: DataBundle
    eval_predictions: Predictions
    train_predictions: Predictions | None = None
    handle: ModelHandle | None = None
    #: The privacy ledger (training.json) when the model was trained by governance.
    ledger: Mapping[str, Any] | None = None
    #: Eval predictions of related models, by role (the non-private twin of a DP model).
    companions: Mapping[str, Predictions] = field(default_factory=dict)
    #: A decision log counted beyond memory (governance.audit._engines.CountedLog), or None.
    counted: Any = None


def listed(spec: Spec) -> tuple[str, ...]:
    """The spec's audits, in the registry's order (data quality first)."""
    return tuple(name for name in audit_names() if name in spec.audits)


def _is_text(spec: Spec) -> bool:
    return str(spec.task) == "text_classification"


def audit_options(spec: Spec, name: str) -> Options:
    """The validated options of audit ``name`` (``audits.<name>`` of the spec).

    Raises
    ------
    InputError
        Naming the spec file and the option, e.g. ``audits.robustness.eps[1]``.
    """
    model = options_model(name, text=_is_text(spec))
    return parse_options(model, spec.audits.get(name), source=spec.source, where=f"audits.{name}")


def check_audits(spec: Spec) -> dict[str, Options]:
    """Check the spec's audit names and every audit's options; no data is read.

    Raises
    ------
    InputError
        For an unknown audit name or a bad option.
    """
    known = audit_names()
    unknown = sorted(set(spec.audits) - set(known))
    if unknown:
        raise InputError(spec.source, f"audits.{unknown[0]}", ERR_UNKNOWN_AUDIT.format(known=sorted(known)))
    return {name: audit_options(spec, name) for name in listed(spec)}


def preflight(spec: Spec, bundle: DataBundle) -> None:
    """Let every listed audit reject options that do not fit the data, before training and inference.

    Only InputError matters here; an audit whose module fails to import is left for
    :func:`run_one`, where it becomes that audit's ERROR section.
    """
    for name in listed(spec):
        try:
            audit = create_audit(name)
        except Exception:
            continue
        audit.preflight(spec, bundle, dict(spec.audits.get(name) or {}))


def run_one(name: str, spec: Spec, subject: AuditSubject) -> AuditSection:
    """Run one audit; an exception (other than bad input) becomes its ERROR section."""
    start = time.perf_counter()
    try:
        audit = create_audit(name)
        if audit.requires_model and subject.handle is None:
            return AuditSection(name=name, status=SectionStatus.SKIPPED, reason=SKIP_NEEDS_MODEL, seconds=0.0)
        context = AuditContext(
            spec=spec,
            data=subject.bundle,
            model=subject.handle,
            eval_predictions=subject.eval_predictions,
            train_predictions=subject.train_predictions,
            ledger=subject.ledger,
            device=subject.handle.device if subject.handle is not None else "cpu",
            seed=spec.seed,
            options=dict(spec.audits.get(name) or {}),
            companions=subject.companions,
            counted=subject.counted,
        )
        if subject.counted is not None and name not in COUNTED_AUDITS:
            return AuditSection(name=name, status=SectionStatus.SKIPPED, reason=SKIP_COUNTED, seconds=0.0)
        section = audit.run(context)
    except InputError:
        raise
    except Exception as exc:  # one broken audit must not take the others down
        return AuditSection(
            name=name,
            status=SectionStatus.ERROR,
            error=f"{exc.__class__.__name__}: {exc}",
            seconds=time.perf_counter() - start,
        )
    return replace(section, seconds=round(time.perf_counter() - start, 4))


def input_files(spec: Spec) -> dict[str, tuple[Path, ...]]:
    """Files named by the options of the spec's audits (e.g. the privacy audit's non-members)."""
    out: dict[str, tuple[Path, ...]] = {}
    for name in listed(spec):
        try:
            audit = create_audit(name)
        except Exception:  # its ERROR section says why; it names no file we could hash
            continue
        files = audit.input_files(spec, dict(spec.audits.get(name) or {}))
        if files:
            out[name] = files
    return out
