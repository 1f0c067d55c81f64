"""``audits: {mitigation: {}}``: what threshold mitigation could do, inside an audit's report.

An audit that fails on fairness leaves the reviewer asking what can be done and at what cost. This
audit answers from the eval predictions the other audits already read: it runs the spec's
``mitigation`` block exactly as ``governance mitigate --method threshold`` does (same split, same
sweep, same pick, same before/after metrics) and reports it as a proposal. Nothing is deployed:
the audited model still decides, so the section carries no ``uses_sensitive_attribute`` metric
(the employment pack's race-norming rule reads that of a deployed rule only); ``governance
mitigate`` is what writes the rule beside the model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from governance.audit.base import Audit, AuditContext
from governance.errors import InputError

if TYPE_CHECKING:
    from governance.data.bundle import DataBundle
    from governance.results import AuditSection
    from governance.spec import Spec

__all__ = ["MitigationAudit"]

ERR_NO_BLOCK = (
    "the mitigation audit needs the spec's mitigation block: constraint, attribute (and optionally tol)"
)


class MitigationAudit(Audit):
    """Threshold mitigation of the spec's ``mitigation`` block, reported as a proposal."""

    name = "mitigation"
    requires_model = False

    def preflight(self, spec: Spec, data: DataBundle, options: Mapping[str, Any]) -> None:
        if spec.mitigation is None:
            raise InputError(spec.source, "audits.mitigation", ERR_NO_BLOCK)
        if spec.mitigation.attribute not in data.eval:
            raise InputError(spec.source, "mitigation.attribute", "column missing from the eval data")
        if len(data.classes) != 2:
            raise InputError(spec.source, "audits.mitigation", "threshold mitigation needs a binary task")

    def run(self, context: AuditContext) -> AuditSection:
        from governance.mitigation.run import mitigate_eval_predictions
        from governance.mitigation.section import mitigation_section

        m = context.spec.mitigation
        if m is None:
            raise InputError(context.spec.source, "audits.mitigation", ERR_NO_BLOCK)
        pred = context.eval_predictions
        if pred.y_score is None:
            raise ValueError("threshold mitigation needs the model's scores; these predictions have none")
        bundle = context.data
        outcome = mitigate_eval_predictions(m, pred, bundle, seed=context.seed)
        return mitigation_section(outcome, method="threshold", proposal=True)
