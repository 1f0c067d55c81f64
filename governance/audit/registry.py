"""Audit registry: name → audit class, as Opacus registers its accountants.

Registration is by import path so that listing the audits (spec validation, ``--help``)
never imports torch, captum or ART.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from governance._registry import Registry

if TYPE_CHECKING:
    from governance.audit.base import Audit

__all__ = ["audit_names", "create_audit", "register_audit"]

# Ordered: the runner executes audits in this order, data quality first.
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
    },
)


def register_audit(name: str, audit: str | type[Audit]) -> None:
    """Register an audit class (or its ``module:Class`` path) under ``name``."""
    _AUDITS.register(name, audit)


def audit_names() -> tuple[str, ...]:
    return _AUDITS.names()


def create_audit(name: str) -> Audit:
    """Instantiate the audit registered under ``name``."""
    return _AUDITS.get(name)()
