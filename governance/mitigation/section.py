"""The mitigation outcome as a results section: metrics, tables, and what a reviewer must know."""

from __future__ import annotations

from dataclasses import asdict

from governance.mitigation.run import MitigationOutcome
from governance.results import AuditSection, Finding, Severity

__all__ = ["PRIVACY_NOTE", "mitigation_section"]

PRIVACY_NOTE = (
    "Post-processing reads the model's scores on eval rows only, never a training row: a model "
    "trained with differential privacy keeps exactly its guarantee (post-processing immunity); the "
    "calibration rows are not covered by it."
)

SENSITIVE_AT_DECISION = (
    "The decision rule reads {attribute!r} at decision time (per-group thresholds). In US employment "
    "selection this is race-norming, prohibited by 42 U.S.C. §2000e-2(l) for race, color, religion, "
    "sex or national origin."
)


SENSITIVE_IF_DEPLOYED = (
    "The proposed rule would read {attribute!r} at decision time (per-group thresholds) if deployed. In "
    "US employment selection this is race-norming, prohibited by 42 U.S.C. §2000e-2(l) for race, color, "
    "religion, sex or national origin."
)

PROPOSAL_NOTE = (
    "A proposal: the audited model still decides. `governance mitigate --method {method}` writes this "
    "rule beside the model (and its split file); this audit only shows what it would do."
)


def mitigation_section(
    outcome: MitigationOutcome, *, method: str = "threshold", proposal: bool = False
) -> AuditSection:
    """Metrics ``mitigation.<method>.<metric>`` (after) and ``mitigation.<method>.before.<metric>``.

    ``proposal``: the section of the ``mitigation`` audit, where nothing is deployed: no
    ``uses_sensitive_attribute`` metric (policies read it of a deployed rule) and no split file.
    """
    metrics: dict[str, float] = {}
    for change in outcome.changes:
        if change.after == change.after:  # NaN (an undefined ratio) stays out of the metrics
            metrics[f"mitigation.{method}.{change.metric}"] = change.after
        if change.before == change.before:
            metrics[f"mitigation.{method}.before.{change.metric}"] = change.before
    rule = outcome.rule
    if not proposal:
        metrics[f"mitigation.{method}.uses_sensitive_attribute"] = (
            1.0 if rule.uses_sensitive_attribute else 0.0
        )
    frontier = outcome.frontier
    metrics[f"mitigation.{method}.target_met"] = 1.0 if frontier.chosen is not None else 0.0
    changes = [asdict(c) for c in outcome.changes]
    points = [{**asdict(p), "chosen": i == frontier.chosen} for i, p in enumerate(frontier.points)]
    findings = []
    worse = [c.metric for c in outcome.changes if c.worse and not c.targeted]
    if worse:
        findings.append(
            Finding(
                id=f"mitigation.{method}.side_effects",
                severity=Severity.MINOR,
                message=f"mitigation made {len(worse)} untargeted metric(s) worse: {', '.join(worse[:6])}"
                + (" …" if len(worse) > 6 else ""),
                audit="mitigation",
            )
        )
    if frontier.chosen is None:
        findings.append(
            Finding(
                id=f"mitigation.{method}.infeasible",
                severity=Severity.MAJOR,
                message=frontier.reason,
                audit="mitigation",
            )
        )
    if rule.uses_sensitive_attribute:
        findings.append(
            Finding(
                id=f"mitigation.{method}.sensitive_at_decision_time",
                severity=Severity.INFO,
                message=(SENSITIVE_IF_DEPLOYED if proposal else SENSITIVE_AT_DECISION).format(
                    attribute=rule.attribute
                ),
                audit="mitigation",
            )
        )
    split = outcome.split
    return AuditSection(
        name="mitigation",
        metrics=metrics,
        tables={"changes": changes, "frontier": points},
        details={
            "method": method,
            "constraint": rule.constraint,
            "attribute": rule.attribute,
            "tol": rule.tol,
            "blend": rule.blend,
            "target": asdict(frontier.target),
            "chosen": frontier.chosen,
            "reason": frontier.reason,
            "uses_sensitive_attribute": rule.uses_sensitive_attribute,
            "calibration_rows": len(split.calibration),
            "held_out_rows": len(split.held_out),
            "calibration_share": split.share,
            "split_seed": split.seed,
            "split_file": None if proposal else "mitigation_split.csv",
            "deployed": not proposal,
            "privacy": PRIVACY_NOTE,
            "threshold_engine": outcome.engine,
            **({"note": PROPOSAL_NOTE.format(method=method)} if proposal else {}),
            "confidence": outcome.comparison.confidence,
            "n_boot": outcome.comparison.n_boot,
        },
        findings=tuple(findings),
    )
