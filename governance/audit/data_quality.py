"""The ``data_quality`` audit: :func:`governance.data.quality.assess` behind the Audit interface."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from governance.audit.base import Audit

if TYPE_CHECKING:
    from governance.audit.base import AuditContext
    from governance.results import AuditSection

__all__ = ["DataQualityAudit"]


class DataQualityAudit(Audit):
    """Duplicates, missing values, leakage, constant columns, label balance, groups, PII."""

    name: ClassVar[str] = "data_quality"
    requires_model: ClassVar[bool] = False

    def run(self, context: AuditContext) -> AuditSection:
        from governance.data.quality import assess, quality_options

        source = None if context.spec.source is None else str(context.spec.source)
        options = quality_options(context.options, source=source)
        if context.counted is not None:
            from governance.audit._log_quality import assess_counted

            section = assess_counted(context.counted, context.spec)
        else:
            section = assess(context.data, options)
        from governance.audit._log_quality import with_log_span

        return with_log_span(section, context)
