"""The mitigation outcome as a results section: metrics, tables, and what a reviewer must know."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from governance.mitigation.run import MitigationOutcome
from governance.results import AuditSection, Finding, Severity

if TYPE_CHECKING:
    from governance.mitigation.reweigh import ReweighOutcome

__all__ = ["PRIVACY_NOTE", "mitigation_section", "reweigh_section"]

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
    findings = _side_effects(method, outcome.changes)
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


# -- reweighing (governance.mitigation.reweigh) ---------------------------------------------------

NO_SENSITIVE_AT_DECISION = (
    "Reweighing changes only how much each training row counts; the model decides from its input "
    "features alone and never reads {attribute!r} at decision time (no group-specific thresholds: "
    "not race-norming under 42 U.S.C. §2000e-2(l))."
)
SENSITIVE_AS_FEATURE = (
    "The model takes {attribute!r} as an input feature (data.features lists it): its decisions read "
    "the sensitive attribute whatever the training weights."
)
REWEIGH_PRIVACY = (
    "Each retrained model's DP guarantee is that of an unweighted run: the weights, divided by their "
    "maximum, multiply each clipped per-sample gradient (norm still at most C), so σ, the sample "
    "rate, the steps and ε are unchanged. Outside it: the weights are computed from the group × "
    "label counts of the train rows (listed in privacy.scope.outside), and the chosen model was "
    "selected among {runs} DP runs on the same rows, whose composition is sweep_epsilon."
)


def reweigh_section(
    outcome: ReweighOutcome,
    *,
    sensitive_is_feature: bool = False,
    sweep: list[dict[str, Any]] | None = None,
    sweep_epsilon: float | None = None,
    delta: float | None = None,
) -> AuditSection:
    """Metrics ``mitigation.reweigh.<metric>`` (after) and ``mitigation.reweigh.before.<metric>``,
    the frontier and before/after tables, the weight of each cell, and what a reviewer must know.

    ``sweep``: one row per trained model (strength, ε, seconds); ``sweep_epsilon``: the ε of all the
    sweep's DP runs composed (None for non-private training).
    """
    method = "reweigh"
    frontier = outcome.frontier
    attribute = outcome.weights.attribute
    metrics: dict[str, float] = {}
    for change in outcome.changes:
        if change.after == change.after:
            metrics[f"mitigation.{method}.{change.metric}"] = change.after
        if change.before == change.before:
            metrics[f"mitigation.{method}.before.{change.metric}"] = change.before
    metrics[f"mitigation.{method}.uses_sensitive_attribute"] = 1.0 if sensitive_is_feature else 0.0
    metrics[f"mitigation.{method}.target_met"] = 1.0 if frontier.chosen is not None else 0.0
    metrics[f"mitigation.{method}.strength"] = outcome.strength
    if sweep_epsilon is not None:
        metrics[f"mitigation.{method}.sweep_epsilon"] = sweep_epsilon
    findings = _side_effects(method, outcome.changes)
    if frontier.chosen is None:
        findings.append(
            Finding(
                id=f"mitigation.{method}.infeasible",
                severity=Severity.MAJOR,
                message=f"{frontier.reason}; the full Kamiran-Calders weights (strength 1) are deployed",
                audit="mitigation",
            )
        )
    findings.append(
        Finding(
            id=f"mitigation.{method}.decision_time",
            severity=Severity.INFO,
            message=(SENSITIVE_AS_FEATURE if sensitive_is_feature else NO_SENSITIVE_AT_DECISION).format(
                attribute=attribute
            ),
            audit="mitigation",
        )
    )
    runs = len(sweep or ())
    if sweep_epsilon is not None:
        findings.append(
            Finding(
                id=f"mitigation.{method}.sweep_privacy",
                severity=Severity.INFO,
                message=(
                    f"the chosen model was selected among {runs} DP runs on the same train rows: "
                    f"together they spend ε {sweep_epsilon:.3g} at δ {delta:g} (composed); each "
                    "model's own training.json gives its run's ε"
                ),
                audit="mitigation",
            )
        )
    changes = [asdict(c) for c in outcome.changes]
    points = [{**asdict(p), "chosen": i == frontier.chosen} for i, p in enumerate(frontier.points)]
    cells = [asdict(c) for c in outcome.weights.cells]
    return AuditSection(
        name="mitigation",
        metrics=metrics,
        tables={"changes": changes, "frontier": points, "weights": cells},
        details={
            "method": method,
            "constraint": outcome.constraint,
            "attribute": attribute,
            "label": outcome.weights.label,
            "strength": outcome.strength,
            "strengths": [p.value for p in frontier.points],
            "target": asdict(frontier.target),
            "chosen": frontier.chosen,
            "reason": frontier.reason,
            "uses_sensitive_attribute": sensitive_is_feature,
            "evaluated_on": "every eval row (each strength's model, and the before/after table)",
            "sweep": list(sweep or ()),
            "sweep_epsilon": sweep_epsilon,
            "privacy": REWEIGH_PRIVACY.format(runs=runs) if sweep_epsilon is not None else None,
            "confidence": outcome.comparison.confidence,
            "n_boot": outcome.comparison.n_boot,
        },
        findings=tuple(findings),
    )


def _side_effects(method: str, changes: Any) -> list[Finding]:
    """The MINOR finding listing the untargeted metrics the mitigation made worse (none if none)."""
    worse = [c.metric for c in changes if c.worse and not c.targeted]
    if not worse:
        return []
    listed = ", ".join(worse[:6]) + (" …" if len(worse) > 6 else "")
    return [
        Finding(
            id=f"mitigation.{method}.side_effects",
            severity=Severity.MINOR,
            message=f"mitigation made {len(worse)} untargeted metric(s) worse: {listed}",
            audit="mitigation",
        )
    ]
