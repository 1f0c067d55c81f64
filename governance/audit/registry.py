"""Audit registry: name → audit class and its options model, as Opacus registers its accountants.

Registration is by import path so that listing the audits (``--help``, the pipeline's check of a
spec's audit names) never imports torch, captum or ART. Each audit registers the pydantic model of
its ``audits.<name>`` options (:class:`governance._options.Options`); audits whose options differ
for text models register that variant too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from governance._options import Options
from governance._registry import Registry

if TYPE_CHECKING:
    from governance.audit.base import Audit

__all__ = ["audit_names", "create_audit", "options_model", "register_audit"]

# Ordered: the pipeline executes audits in this order, data quality first.
_AUDITS: Registry[type[Audit]] = Registry(
    "audit",
    {
        "data_quality": "governance.audit.data_quality:DataQualityAudit",
        "performance": "governance.audit.performance:PerformanceAudit",
        "fairness": "governance.audit.fairness:FairnessAudit",
        "attribution": "governance.audit.attribution:AttributionAudit",
        "robustness": "governance.audit.robustness:RobustnessAudit",
        "privacy": "governance.audit.privacy:PrivacyAudit",
        "privacy_cost": "governance.audit.privacy_cost:PrivacyCostAudit",
        "compression": "governance.audit.compression:CompressionAudit",
        # What threshold mitigation could do for the spec's mitigation block (issue 16).
        "mitigation": "governance.mitigation.audit:MitigationAudit",
    },
)

_OPTIONS: Registry[type[Options]] = Registry(
    "audit options",
    {
        "data_quality": "governance.data.quality:QualityOptions",
        "performance": "governance.audit.performance:PerformanceOptions",
        "fairness": "governance.audit.fairness:FairnessOptions",
        "attribution": "governance.audit.attribution:AttributionOptions",
        "robustness": "governance.audit.robustness:RobustnessOptions",
        "privacy": "governance.audit.privacy:PrivacyOptions",
        "privacy_cost": "governance.audit.privacy_cost:PrivacyCostOptions",
        "compression": "governance.audit.compression:CompressionOptions",
        "mitigation": "governance._options:Options",
    },
)

#: Options of text models where they differ (character noise instead of L∞ attacks, token IG).
_TEXT_OPTIONS: Registry[type[Options]] = Registry(
    "text audit options",
    {
        "attribution": "governance.audit._text_attribution:TextAttributionOptions",
        "robustness": "governance.audit._text_robustness:TextRobustnessOptions",
    },
)


def register_audit(
    name: str,
    audit: str | type[Audit],
    options: str | type[Options] = Options,
    *,
    text_options: str | type[Options] | None = None,
) -> None:
    """Register an audit class (or its ``module:Class`` path) under ``name``, with its options model.

    ``options`` defaults to :class:`~governance._options.Options` itself: an audit that takes no
    options rejects any it is given.
    """
    _AUDITS.register(name, audit)
    _OPTIONS.register(name, options)
    if text_options is not None:
        _TEXT_OPTIONS.register(name, text_options)


def audit_names() -> tuple[str, ...]:
    return _AUDITS.names()


def create_audit(name: str) -> Audit:
    """Instantiate the audit registered under ``name``."""
    return _AUDITS.get(name)()


def options_model(name: str, *, text: bool = False) -> type[Options]:
    """The options model of the audit ``name`` (its text-model variant when ``text`` and one exists)."""
    if text and name in _TEXT_OPTIONS:
        return _TEXT_OPTIONS.get(name)
    return _OPTIONS.get(name)
