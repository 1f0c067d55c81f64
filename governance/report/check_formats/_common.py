"""Small helpers shared by the check formats."""

from __future__ import annotations

from governance.policy.outcome import Outcome


def value_text(outcome: Outcome) -> str:
    return "—" if outcome.value is None else f"{outcome.value:.4g}"


def expectation(outcome: Outcome) -> str:
    return f"{outcome.op} {outcome.threshold:.4g}"


def waiver_text(outcome: Outcome) -> str:
    w = outcome.waiver
    if w is None:
        return ""
    state = "EXPIRED" if w.expired else "valid"
    return f"waiver ({state}) approved by {w.approver}, expires {w.expires}: {w.reason}"


def refs_text(outcome: Outcome) -> str:
    """The refs, with "(threshold chosen by this pack)" wherever the regulation set no number."""
    refs = "; ".join(outcome.refs)
    note = outcome.threshold_note
    if not note:
        return refs
    return f"{refs} ({note})" if refs else note
