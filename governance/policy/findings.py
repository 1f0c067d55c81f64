"""Blocking findings of the audits as policy outcomes: the gate sees what the audits found.

A finding is an audit's own verdict that needs no threshold: the privacy audit's "membership
inference proves ε ≥ …, the private training is broken", a data-quality gate passed with
``--force``. Every finding of severity ``blocking`` in ``results.findings`` becomes an implicit
rule of every policy, with the id ``finding.<finding id>`` (e.g.
``finding.privacy.empirical_epsilon_exceeds_claim``) and outcome FAIL carrying the finding's
message. It is waivable like any rule: a waiver whose ``rule`` is that id accepts it until the
waiver's expiry, with the approver and reason shown in every output.
"""

from __future__ import annotations

from governance.policy.schema import OnMissing, Rule
from governance.results import Finding, Results, Severity

__all__ = ["FINDING_PREFIX", "blocking_findings", "finding_rule", "is_finding_rule"]

#: Rule ids of findings are ``finding.<finding id>``; waivers name them the same way.
FINDING_PREFIX = "finding."
_RATIONALE = (
    "An audit reported this finding as blocking: it stops the release until it is fixed, or "
    "until a reviewer accepts it with a waiver (rule: finding.<finding id>, approver, expiry)."
)


def is_finding_rule(rule_id: str) -> bool:
    return rule_id.startswith(FINDING_PREFIX)


def blocking_findings(results: Results) -> tuple[Finding, ...]:
    """The blocking findings of ``results``, each id once (the first message wins)."""
    seen: dict[str, Finding] = {}
    for finding in results.findings:
        if finding.severity is Severity.BLOCKING and finding.id not in seen:
            seen[finding.id] = finding
    return tuple(seen.values())


def finding_rule(finding_id: str, *, audit: str | None = None) -> Rule:
    """The implicit rule a blocking finding stands for (its metric is the rule id itself)."""
    rule_id = f"{FINDING_PREFIX}{finding_id}"
    where = f" ({audit} audit)" if audit else ""
    return Rule(
        id=rule_id,
        title=f"No blocking finding {finding_id}{where}",
        metric=rule_id,
        op="==",
        threshold=0.0,
        severity=Severity.BLOCKING,
        on_missing=OnMissing.SKIP,
        refs=(),
        rationale=_RATIONALE,
        source="results.findings",
    )
