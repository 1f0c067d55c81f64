"""Audits: one module per audit, each ``run(context) -> AuditSection``, behind a registry."""

from governance.audit.registry import audit_names, create_audit, options_model, register_audit

__all__ = ["audit_names", "create_audit", "options_model", "register_audit"]
