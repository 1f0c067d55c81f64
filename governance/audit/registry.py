"""Audit registry: name → audit class, as Opacus registers its accountants.

Registration is by import path so that listing the audits (spec validation, ``--help``)
never imports torch, captum or ART.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from governance.audit.base import Audit

__all__ = ["audit_names", "create_audit", "register_audit"]

ERR_DUPLICATE = "audit {name!r} is already registered"
ERR_UNKNOWN = "unknown audit {name!r}; expected one of {known}"

# Ordered: the runner executes audits in this order, data quality first.
_REGISTRY: dict[str, str | type[Audit]] = {
    "data_quality": "governance.audit.data_quality:DataQualityAudit",
    "performance": "governance.audit.performance:PerformanceAudit",
    "fairness": "governance.audit.fairness:FairnessAudit",
    "attribution": "governance.audit.attribution:AttributionAudit",
    "robustness": "governance.audit.robustness:RobustnessAudit",
    "privacy": "governance.audit.privacy:PrivacyAudit",
}


def register_audit(name: str, audit: str | type[Audit]) -> None:
    """Register an audit class (or its ``module:Class`` path) under ``name``."""
    if name in _REGISTRY:
        raise ValueError(ERR_DUPLICATE.format(name=name))
    _REGISTRY[name] = audit


def audit_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def create_audit(name: str) -> Audit:
    """Instantiate the audit registered under ``name``."""
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise ValueError(ERR_UNKNOWN.format(name=name, known=sorted(_REGISTRY))) from None
    if isinstance(target, str):
        module_name, _, attr = target.partition(":")
        target = getattr(importlib.import_module(module_name), attr)
        _REGISTRY[name] = target
    return target()
