"""The privacy-cost audit: what differential privacy cost in accuracy, overall and for each group.

DP-SGD clips every example's gradient to the same norm, so the examples a model finds hard, and
the small groups they cluster in, lose more of their signal than the rest (Bagdasaryan et al.
2019, "Differential Privacy Has Disparate Impact on Model Accuracy"). The audit compares the
private model with its non-private twin: the same architecture, data, seed (so the same split,
initialisation and batch order) and epochs, trained without clipping or noise, at the spec's
learning rate or ``audits.privacy_cost.lr``. The pipeline trains the twin and hands this audit
its eval predictions (``AuditContext.companions["non_private_twin"]``); the audit never trains.

Both models are compared on the same eval rows with :mod:`governance.audit.paired`: the drop
(twin − private accuracy) of every group with a paired bootstrap interval, the worst group's drop
and, per attribute, the gap between its groups' drops.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import Field

from governance._options import Float, Int, Options
from governance._options import parse_options as _parse
from governance.audit.base import Audit, AuditContext
from governance.errors import InputError
from governance.results import AuditSection, Finding, Severity

if TYPE_CHECKING:
    from pathlib import Path

    from governance.data.bundle import DataBundle
    from governance.spec import Spec

__all__ = ["TWIN", "PrivacyCostAudit", "PrivacyCostOptions", "parse_options"]

#: The companion predictions this audit reads.
TWIN = "non_private_twin"

ERR_NOT_PRIVATE = "needs a spec that trains with differential privacy (train.privacy)"


class PrivacyCostOptions(Options):
    """``audits.privacy_cost`` options."""

    #: Learning rate of the non-private twin (default: the private run's).
    lr: Float | None = Field(default=None, gt=0)
    #: Finding when the worst group's accuracy drop exceeds this.
    max_worst_group_drop: Float = Field(default=0.05, ge=0.0, le=1.0)
    n_boot: Int = Field(default=1000, ge=0, le=100_000)


def parse_options(raw: Mapping[str, Any] | None, source: str | Path | None) -> PrivacyCostOptions:
    return _parse(PrivacyCostOptions, raw, source=source, where="audits.privacy_cost")


class PrivacyCostAudit(Audit):
    """Accuracy of the private model against its non-private twin, per group, paired."""

    name = "privacy_cost"

    def preflight(self, spec: Spec, data: DataBundle, options: Mapping[str, Any]) -> None:
        parse_options(options, spec.source)
        if spec.train is None or spec.train.privacy is None:
            raise InputError(spec.source, "audits.privacy_cost", ERR_NOT_PRIVATE)

    def run(self, context: AuditContext) -> AuditSection:
        from governance.audit._encode import class_codes, group_codes
        from governance.audit.paired import compare_codes

        options = parse_options(context.options, context.spec.source)
        twin = context.companions.get(TWIN)
        if twin is None:
            raise InputError(context.spec.source, "audits.privacy_cost", ERR_NOT_PRIVATE)
        classes = tuple(context.data.classes) or tuple(context.eval_predictions.classes or ())
        names, true_codes, private_codes = class_codes(context.eval_predictions, classes)
        _, twin_true, twin_codes = class_codes(twin, names)
        if len(twin_true) != len(true_codes) or (twin_true != true_codes).any():
            raise ValueError("the twin's predictions are not on the same eval rows")
        groups = {attr: group_codes(context.data.eval[attr]) for attr in context.data.sensitive}
        cmp = compare_codes(
            true_codes,
            twin_codes,
            private_codes,
            len(names),
            groups,
            positive=len(names) - 1 if len(names) == 2 else None,
            n_boot=options.n_boot,
            seed=context.seed,
        )
        overall = cmp.metric("accuracy")
        metrics: dict[str, float] = {
            "privacy_cost.accuracy_drop": -overall.difference,
            "privacy_cost.twin_accuracy": overall.reference,
            "privacy_cost.private_accuracy": overall.candidate,
            "privacy_cost.disagreement_rate": next(
                g.disagreement_rate for g in cmp.groups if g.attribute == "overall"
            ),
        }
        worst = max(cmp.worst_group_drop.items(), key=lambda item: item[1][1], default=None)
        if worst is not None:
            metrics["privacy_cost.worst_group_accuracy_drop"] = worst[1][1]
        for attribute, (gap, _lo, _hi) in cmp.drop_gap.items():
            metrics[f"privacy_cost.{attribute}.accuracy_drop_gap"] = gap
        agreement = {(g.attribute, g.group): g for g in cmp.groups}
        rows = []
        for m in cmp.metrics:
            if m.metric != "accuracy":
                continue
            g = agreement[(m.attribute, m.group)]
            rows.append(
                {
                    "attribute": m.attribute,
                    "group": m.group,
                    "rows": g.rows,
                    "accuracy_non_private": m.reference,
                    "accuracy_private": m.candidate,
                    "accuracy_drop": -m.difference,
                    "drop_ci_low": None if m.ci_high is None else -m.ci_high,
                    "drop_ci_high": None if m.ci_low is None else -m.ci_low,
                    "disagreement_rate": g.disagreement_rate,
                    "mcnemar_p": g.mcnemar_p,
                }
            )
        gaps = [
            {"attribute": attribute, "accuracy_drop_gap": gap, "ci_low": lo, "ci_high": hi}
            for attribute, (gap, lo, hi) in cmp.drop_gap.items()
        ]
        findings = []
        if worst is not None and worst[1][1] > options.max_worst_group_drop:
            attribute, (group, drop, lo, hi) = worst
            findings.append(
                Finding(
                    id="privacy_cost.disparate_impact",
                    severity=Severity.MINOR,
                    message=(
                        f"differential privacy costs group {attribute}={group!r} {drop:.3f} accuracy "
                        f"(> {options.max_worst_group_drop}; overall {-overall.difference:.3f})"
                        + (
                            ""
                            if lo is None or hi is None
                            else f"; 95% interval of the worst drop [{lo:.3f}, {hi:.3f}]"
                        )
                    ),
                    audit="privacy_cost",
                )
            )
        train = context.spec.train
        return AuditSection(
            name="privacy_cost",
            metrics=metrics,
            tables={"groups": rows, "gaps": gaps},
            details={
                "twin": "same architecture, data, seed and epochs, trained without clipping or noise",
                "twin_lr": options.lr if options.lr is not None else (train.lr if train else None),
                "epochs": train.epochs if train else None,
                "confidence": cmp.confidence,
                "n_boot": cmp.n_boot,
            },
            findings=tuple(findings),
        )
