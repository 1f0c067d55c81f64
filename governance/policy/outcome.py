"""What the policy engine decides: one :class:`Outcome` per rule (per metric for globs)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from governance.policy.schema import ThresholdSource
from governance.results import Severity

__all__ = ["FINITE_RULE_ID", "CheckReport", "FailOn", "Outcome", "Status", "WaiverNote"]

#: The outcome ``check`` adds, ERROR and blocking, when the results hold NaN or ±Infinity anywhere.
FINITE_RULE_ID = "governance.results_finite"


class Status(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    WARN = "WARN"
    WAIVED = "WAIVED"
    SKIPPED = "SKIPPED"
    ERROR = "ERROR"


class FailOn(StrEnum):
    """Which outcomes turn the gate red (``--fail-on``)."""

    FAIL = "fail"
    WARN = "warn"


# Severities that can fail the gate under each --fail-on; info never does.
_GATING: dict[FailOn, frozenset[Severity]] = {
    FailOn.FAIL: frozenset({Severity.BLOCKING, Severity.MAJOR}),
    FailOn.WARN: frozenset({Severity.BLOCKING, Severity.MAJOR, Severity.MINOR}),
}
_RED: dict[FailOn, frozenset[Status]] = {
    FailOn.FAIL: frozenset({Status.FAIL, Status.ERROR}),
    FailOn.WARN: frozenset({Status.FAIL, Status.ERROR, Status.WARN}),
}


@dataclass(frozen=True)
class WaiverNote:
    """The waiver that applied to (or expired on) an outcome, shown in every output format."""

    rule: str
    reason: str
    approver: str
    expires: str  # ISO date
    expired: bool
    metric: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "metric": self.metric,
            "reason": self.reason,
            "approver": self.approver,
            "expires": self.expires,
            "expired": self.expired,
        }


@dataclass(frozen=True)
class Outcome:
    """The verdict on one rule, or on one metric a glob rule expanded to."""

    rule_id: str
    title: str
    status: Status
    severity: Severity
    metric: str
    op: str
    threshold: float
    value: float | None
    message: str
    refs: tuple[str, ...] = ()
    rationale: str | None = None
    waiver: WaiverNote | None = None
    #: Who set ``threshold``: reports say "threshold chosen by this pack" unless a regulation did.
    threshold_source: ThresholdSource = ThresholdSource.PACK

    @property
    def threshold_note(self) -> str:
        """The words printed beside the refs: "threshold chosen by this pack", or "" for a regulation."""
        return self.threshold_source.note

    def is_red(self, fail_on: FailOn) -> bool:
        """Does this outcome fail the gate under ``fail_on``?"""
        return self.status in _RED[fail_on] and self.severity in _GATING[fail_on]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule_id,
            "title": self.title,
            "status": self.status.value,
            "severity": self.severity.value,
            "metric": self.metric,
            "op": self.op,
            "threshold": self.threshold,
            "value": self.value,
            "message": self.message,
            "refs": list(self.refs),
            "threshold_source": self.threshold_source.value,
            "rationale": self.rationale,
            "waiver": None if self.waiver is None else self.waiver.to_dict(),
        }


@dataclass(frozen=True)
class CheckReport:
    """Everything ``governance check`` says: the policy, each outcome, and the verdict."""

    policy_name: str
    policy_version: str
    policy_source: str
    policy_sha256: str
    results_source: str
    outcomes: tuple[Outcome, ...]
    fail_on: FailOn = FailOn.FAIL
    #: Waivers that named no rule of the policy (probably a typo); they waive nothing.
    unused_waivers: tuple[str, ...] = ()
    evaluated_on: str = ""
    spec_name: str = ""
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        tally = Counter(o.status.value for o in self.outcomes)
        object.__setattr__(self, "counts", {s.value: tally.get(s.value, 0) for s in Status})

    @property
    def red(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.is_red(self.fail_on))

    @property
    def passed(self) -> bool:
        return not self.red

    @property
    def waived(self) -> tuple[Outcome, ...]:
        return tuple(o for o in self.outcomes if o.waiver is not None)

    def summary_line(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        parts = ", ".join(f"{n} {s.lower()}" for s, n in self.counts.items() if n)
        line = f"policy {self.policy_name} {self.policy_version}: {verdict} ({parts or 'no rules'})"
        broken = next((o for o in self.outcomes if o.rule_id == FINITE_RULE_ID), None)
        if broken is not None:
            # Name the file and the field, as every bad-input line does.
            line += f"; {self.results_source}: {broken.metric}: {broken.message}"
        return line

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": {
                "name": self.policy_name,
                "version": self.policy_version,
                "source": self.policy_source,
                "sha256": self.policy_sha256,
            },
            "results": self.results_source,
            "spec_name": self.spec_name,
            "evaluated_on": self.evaluated_on,
            "fail_on": self.fail_on.value,
            "passed": self.passed,
            "counts": dict(self.counts),
            "outcomes": [o.to_dict() for o in self.outcomes],
            "unused_waivers": list(self.unused_waivers),
        }
