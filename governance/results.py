"""The ``results.json`` schema (CONTRACT §4) as typed, frozen objects.

Results are plain data: audits produce :class:`AuditSection` objects, the runner merges them
into :class:`Results`, and the policy engine and the reports read them back. Nothing here
imports torch, so ``governance check`` stays fast.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from os import PathLike
from pathlib import Path
from typing import Any

from governance._io import atomic_write_json
from governance.errors import InputError

__all__ = [
    "AUDIT_NAMES",
    "SCHEMA_VERSION",
    "AuditSection",
    "Finding",
    "Results",
    "RunInfo",
    "SectionStatus",
    "Severity",
    "load_results",
    "metric_id",
    "non_finite_paths",
    "save_results",
]

SCHEMA_VERSION = 1

#: The audits whose names may start a metric ID.
AUDIT_NAMES: tuple[str, ...] = (
    "data_quality",
    "performance",
    "fairness",
    "attribution",
    "robustness",
    "privacy",
    "privacy_cost",
    "compression",
    "mitigation",
)

# Lowercase, dot-separated; qualifiers may hold digits, '_', '-', '*' (intersections) and the
# dots of numbers such as eps_0.1, which is why a qualifier is not a single word.
_METRIC_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_*\-]+)+$")
_PART_CLEAN = re.compile(r"[^a-z0-9_*\-.]+")

ERR_SCHEMA_VERSION = "schema_version {found!r} is not supported; this governance reads schema_version {want}"
ERR_NOT_OBJECT = "expected a JSON object"


class Severity(StrEnum):
    """How much a finding or a failed rule matters."""

    BLOCKING = "blocking"
    MAJOR = "major"
    MINOR = "minor"
    INFO = "info"


class SectionStatus(StrEnum):
    """How an audit ended."""

    OK = "ok"
    ERROR = "error"
    SKIPPED = "skipped"


def metric_id(*parts: object) -> str:
    """Build a metric ID from its parts, normalising each to the lowercase ID alphabet.

    Examples
    --------
    >>> metric_id("fairness", "Age Group", "demographic_parity_ratio")
    'fairness.age_group.demographic_parity_ratio'
    >>> metric_id("robustness", "fgsm", "eps_0.1", "accuracy")
    'robustness.fgsm.eps_0.1.accuracy'
    """
    cleaned = [_PART_CLEAN.sub("_", str(p).strip().lower()).strip("_") for p in parts]
    mid = ".".join(cleaned)
    if not _METRIC_ID.match(mid):
        raise ValueError(f"not a valid metric ID: {mid!r}")
    return mid


def is_metric_id(text: str) -> bool:
    return bool(_METRIC_ID.match(text))


@dataclass(frozen=True)
class Finding:
    """One observation an audit or the data-quality gate wants a human to read."""

    id: str
    severity: Severity
    message: str
    audit: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "severity": self.severity.value, "message": self.message}
        if self.audit is not None:
            out["audit"] = self.audit
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, source: str, where: str) -> Finding:
        try:
            severity = Severity(raw["severity"])
        except (KeyError, ValueError):
            raise InputError(
                source, f"{where}.severity", f"expected one of {[s.value for s in Severity]}"
            ) from None
        for key in ("id", "message"):
            if not isinstance(raw.get(key), str):
                raise InputError(source, f"{where}.{key}", "expected a string")
        return cls(id=raw["id"], severity=severity, message=raw["message"], audit=raw.get("audit"))


@dataclass(frozen=True)
class AuditSection:
    """What one audit returns: flat metrics, detailed tables for reports, findings.

    ``tables`` maps a table name to a list of rows (plain JSON-able dicts); ``details`` holds
    anything else a report draws (curves, heatmaps) as JSON-able values.
    """

    name: str
    status: SectionStatus = SectionStatus.OK
    metrics: Mapping[str, float | None] = field(default_factory=dict)
    tables: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    details: Mapping[str, Any] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()
    error: str | None = None
    reason: str | None = None
    seconds: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status.value,
            "seconds": self.seconds,
            "error": self.error,
            "reason": self.reason,
            "metrics": {k: _json_number(v) for k, v in self.metrics.items()},
            "tables": {k: [_jsonable(dict(r)) for r in rows] for k, rows in self.tables.items()},
            "details": _jsonable(dict(self.details)),
            "findings": [f.to_dict() for f in self.findings],
        }

    @classmethod
    def from_dict(cls, name: str, raw: Mapping[str, Any], *, source: str) -> AuditSection:
        where = f"sections.{name}"
        if not isinstance(raw, Mapping):
            raise InputError(source, where, ERR_NOT_OBJECT)
        try:
            status = SectionStatus(raw.get("status", "ok"))
        except ValueError:
            raise InputError(
                source, f"{where}.status", f"expected one of {[s.value for s in SectionStatus]}"
            ) from None
        return cls(
            name=name,
            status=status,
            metrics=_read_metrics(raw.get("metrics", {}), source=source, where=f"{where}.metrics"),
            tables=dict(raw.get("tables") or {}),
            details=dict(raw.get("details") or {}),
            findings=tuple(
                Finding.from_dict(f, source=source, where=f"{where}.findings[{i}]")
                for i, f in enumerate(raw.get("findings") or [])
            ),
            error=raw.get("error"),
            reason=raw.get("reason"),
            seconds=raw.get("seconds"),
        )


@dataclass(frozen=True)
class RunInfo:
    """Provenance of a run: what produced the results, when, and where."""

    tool_version: str
    spec_name: str
    seed: int
    started_at: str
    finished_at: str
    device: str = "cpu"
    task: str | None = None
    libraries: Mapping[str, str] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool_version": self.tool_version,
            "spec_name": self.spec_name,
            "seed": self.seed,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "device": self.device,
            "task": self.task,
            "libraries": dict(self.libraries),
            **_jsonable(dict(self.extra)),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], *, source: str) -> RunInfo:
        if not isinstance(raw, Mapping):
            raise InputError(source, "run", ERR_NOT_OBJECT)
        known = {
            "tool_version",
            "spec_name",
            "seed",
            "started_at",
            "finished_at",
            "device",
            "task",
            "libraries",
        }
        return cls(
            tool_version=str(raw.get("tool_version", "unknown")),
            spec_name=str(raw.get("spec_name", "")),
            seed=int(raw.get("seed", 0) or 0),
            started_at=str(raw.get("started_at", "")),
            finished_at=str(raw.get("finished_at", "")),
            device=str(raw.get("device", "cpu")),
            task=raw.get("task"),
            libraries=dict(raw.get("libraries") or {}),
            extra={k: v for k, v in raw.items() if k not in known},
        )


@dataclass(frozen=True)
class Results:
    """Everything one audit run measured (the content of ``results.json``).

    ``metrics`` is the flat map from metric ID to number that policies read; it is the union
    of the sections' metrics. ``subject`` holds the SHA-256 of the model weights and every data
    file used.
    """

    run: RunInfo
    subject: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, float | None] = field(default_factory=dict)
    sections: Mapping[str, AuditSection] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()
    schema_version: int = SCHEMA_VERSION
    #: Where the file this was read from held NaN or ±Infinity (JSON has neither; governance
    #: never writes them): ``check`` fails closed on them. Empty for results built in memory.
    non_finite: tuple[str, ...] = ()

    @classmethod
    def from_sections(
        cls,
        run: RunInfo,
        sections: Sequence[AuditSection],
        *,
        subject: Mapping[str, Any] | None = None,
        findings: Sequence[Finding] = (),
    ) -> Results:
        """Merge audit sections into one Results; a metric ID emitted twice is a bug, not data."""
        metrics: dict[str, float | None] = {}
        all_findings: list[Finding] = list(findings)
        for section in sections:
            for key, value in section.metrics.items():
                if key in metrics:
                    raise ValueError(f"metric {key!r} emitted by more than one audit")
                metrics[key] = value
            all_findings.extend(section.findings)
        return cls(
            run=run,
            subject=dict(subject or {}),
            metrics=metrics,
            sections={s.name: s for s in sections},
            findings=tuple(all_findings),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "run": self.run.to_dict(),
            "subject": _jsonable(dict(self.subject)),
            "metrics": {k: _json_number(v) for k, v in sorted(self.metrics.items())},
            "sections": {name: s.to_dict() for name, s in self.sections.items()},
            "findings": [f.to_dict() for f in self.findings],
        }

    @classmethod
    def from_dict(cls, raw: Any, *, source: str = "<results>") -> Results:
        if not isinstance(raw, Mapping):
            raise InputError(source, None, "expected a JSON object with schema_version, run and metrics")
        version = raw.get("schema_version")
        if version is None:
            raise InputError(
                source, "schema_version", "missing; expected schema_version 1 (a governance results file)"
            )
        if version != SCHEMA_VERSION:
            raise InputError(
                source, "schema_version", ERR_SCHEMA_VERSION.format(found=version, want=SCHEMA_VERSION)
            )
        if "metrics" not in raw:
            raise InputError(source, "metrics", "missing; expected an object from metric ID to number")
        sections_raw = raw.get("sections") or {}
        if not isinstance(sections_raw, Mapping):
            raise InputError(source, "sections", ERR_NOT_OBJECT)
        return cls(
            non_finite=tuple(non_finite_paths(raw)),
            run=RunInfo.from_dict(raw.get("run") or {}, source=source),
            subject=dict(raw.get("subject") or {}),
            metrics=_read_metrics(raw["metrics"], source=source, where="metrics"),
            sections={n: AuditSection.from_dict(n, s, source=source) for n, s in sections_raw.items()},
            findings=tuple(
                Finding.from_dict(f, source=source, where=f"findings[{i}]")
                for i, f in enumerate(raw.get("findings") or [])
            ),
        )


def load_results(path: str | PathLike[str]) -> Results:
    """Read and validate a ``results.json``.

    Raises
    ------
    InputError
        If the file is missing, is not JSON, or is not of schema_version 1.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(
            source, None, "file not found; expected a results.json written by `governance audit`"
        ) from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise InputError(source, None, f"cannot read file ({exc.__class__.__name__})") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            source, f"line {exc.lineno} column {exc.colno}", f"not valid JSON ({exc.msg})"
        ) from None
    return Results.from_dict(raw, source=source)


def non_finite_paths(raw: Any, where: str = "") -> list[str]:
    """The dotted paths of every NaN or ±inf number in a parsed JSON value.

    Examples
    --------
    >>> non_finite_paths({"metrics": {"a.b": float("nan")}, "t": [1.0, float("-inf")]})
    ['metrics.a.b', 't[1]']
    """
    if isinstance(raw, float):
        return [] if math.isfinite(raw) else [where]
    found: list[str] = []
    if isinstance(raw, Mapping):
        for key, value in raw.items():
            found += non_finite_paths(value, f"{where}.{key}" if where else str(key))
    elif isinstance(raw, list | tuple):
        for index, value in enumerate(raw):
            found += non_finite_paths(value, f"{where}[{index}]")
    return found


def save_results(results: Results, path: str | PathLike[str]) -> None:
    """Write ``results.json`` atomically."""
    atomic_write_json(path, results.to_dict())


def _read_metrics(raw: Any, *, source: str, where: str) -> dict[str, float | None]:
    if not isinstance(raw, Mapping):
        raise InputError(source, where, "expected an object from metric ID to number")
    out: dict[str, float | None] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not is_metric_id(key):
            raise InputError(
                source,
                f"{where}.{key}",
                "not a metric ID; expected lowercase dot-separated <audit>.<qualifiers>.<metric>",
            )
        if value is None:
            out[key] = None
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise InputError(
                source, f"{where}.{key}", f"expected a number or null, got {type(value).__name__}"
            )
        else:
            out[key] = float(value)
    return out


def _json_number(value: float | None) -> float | None:
    # JSON has no NaN/inf; an undefined metric (0/0 ratio, one-class AUC) is written as null.
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _jsonable(obj: Any) -> Any:
    """Make numpy scalars, tuples, enums and non-finite floats JSON-safe, recursively."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, Enum):
        return obj.value
    if isinstance(obj, bool) or obj is None or isinstance(obj, str | int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    item = getattr(obj, "item", None)  # numpy scalar
    if callable(item):
        return _jsonable(item())
    tolist = getattr(obj, "tolist", None)  # numpy array
    if callable(tolist):
        return _jsonable(tolist())
    if isinstance(obj, PathLike):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in results.json")
