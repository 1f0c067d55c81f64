"""The report's content as plain objects: what every format shows, computed once.

Templates only lay this out; no number or verdict is decided in a template, so the HTML,
Markdown and PDF reports cannot disagree.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from governance.policy.outcome import CheckReport, Outcome, Status
from governance.report._text import audit_title, fmt_number, humanize
from governance.report.annex import AnnexItem, SignOff, annex_iv, limitations, sign_off
from governance.report.charts import Chart, build_charts
from governance.report.tokens import TokenExampleView, token_examples
from governance.results import AUDIT_NAMES, AuditSection, Finding, Results, SectionStatus, Severity

__all__ = ["AuditView", "ReportContext", "TableView", "Verdict", "build_context", "run_id"]

#: Tables longer than this are folded (HTML <details>) with the first rows visible in text formats.
FOLD_ROWS = 12
MAX_ROWS = 60
#: Bookkeeping columns that repeat another column (``values`` restates ``group``) or flag what the
#: findings already say; results.json keeps them.
HIDDEN_COLUMNS = frozenset({"values", "empty"})
#: The headline numbers of the summary, in order, when present.
HEADLINE_METRICS: tuple[tuple[str, str], ...] = (
    ("performance.accuracy", "Accuracy (eval)"),
    ("performance.roc_auc", "ROC AUC"),
    ("fairness.worst.demographic_parity_ratio", "Worst selection-rate ratio"),
    ("fairness.worst.equalized_odds_difference", "Worst equalized-odds difference"),
    ("privacy.epsilon", "Privacy ε spent"),
    ("privacy.membership_inference.auc", "Membership-inference AUC"),
    ("attribution.sensitive_share", "Attribution share on sensitive attributes"),
)
_SEVERITY_ORDER = {s: i for i, s in enumerate(Severity)}


@dataclass(frozen=True)
class Verdict:
    """The one-line answer at the top: did the model pass the policy?"""

    label: str  # PASSED | FAILED | NOT EVALUATED
    css: str  # pass | fail | none
    sentence: str


@dataclass(frozen=True)
class TableView:
    name: str
    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    total_rows: int

    @property
    def folded(self) -> bool:
        return self.total_rows > FOLD_ROWS

    @property
    def truncated(self) -> int:
        return self.total_rows - len(self.rows)


@dataclass(frozen=True)
class AuditView:
    """One audit section as shown: its status, numbers, tables, charts and findings."""

    name: str
    title: str
    anchor: str
    status: str
    error: str | None
    reason: str | None
    seconds: float | None
    metrics: tuple[tuple[str, str], ...]
    tables: tuple[TableView, ...]
    charts: tuple[Chart, ...]
    findings: tuple[Finding, ...]
    #: Text models: token attributions as highlighted sentences.
    token_examples: tuple[TokenExampleView, ...] = ()


@dataclass(frozen=True)
class ReportContext:
    """Everything the templates need."""

    title: str
    spec_name: str
    run_id: str
    run: Mapping[str, Any]
    generated_at: str
    verdict: Verdict
    check: CheckReport | None
    blocking: tuple[Outcome, ...]
    waived: tuple[Outcome, ...]
    outcomes: tuple[Outcome, ...]
    headline: tuple[tuple[str, str, str], ...]
    audits: tuple[AuditView, ...]
    findings: tuple[Finding, ...]
    annex: tuple[AnnexItem, ...]
    limitations: tuple[str, ...]
    signoff: SignOff
    pdf: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def charts(self) -> tuple[Chart, ...]:
        return tuple(c for a in self.audits for c in a.charts)


def run_id(results: Results) -> str:
    """A short, stable identifier of a run: the runner's own id if it wrote one, else a content hash."""
    given = results.run.extra.get("run_id")
    if isinstance(given, str) and given:
        return given
    return results_sha256(results)[:12]


def results_sha256(results: Results) -> str:
    canonical = json.dumps(results.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def build_context(
    results: Results,
    check_report: CheckReport | None = None,
    *,
    draw_charts: bool = True,
    pdf: bool = False,
    now: datetime | None = None,
) -> ReportContext:
    """Assemble what the report shows from results and (optionally) the policy verdict.

    Parameters
    ----------
    results
        The audit results.
    check_report
        The policy engine's verdict, or None when no policy was evaluated.
    draw_charts
        Render charts to SVG; text formats pass False.
    pdf
        Lay out for print (the templates open folded tables and add running page headers).
    now
        The generation time shown in the sign-off block (for reproducible tests).
    """
    charts = build_charts(results, draw=draw_charts)
    audits = tuple(_audit_view(name, results, charts.get(name, [])) for name in _audit_order(results))
    outcomes = _sorted_outcomes(check_report.outcomes) if check_report else ()
    generated = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    spec_name = results.run.spec_name or "unnamed model"
    return ReportContext(
        title=f"Responsible-AI audit report: {spec_name}",
        spec_name=spec_name,
        run_id=run_id(results),
        run=results.run.to_dict(),
        generated_at=generated,
        verdict=_verdict(check_report),
        check=check_report,
        blocking=check_report.red if check_report else (),
        waived=check_report.waived if check_report else (),
        outcomes=outcomes,
        headline=tuple(
            (label, mid, fmt_number(results.metrics[mid]))
            for mid, label in HEADLINE_METRICS
            if mid in results.metrics
        ),
        audits=audits,
        findings=tuple(sorted(results.findings, key=lambda f: _SEVERITY_ORDER[f.severity])),
        annex=annex_iv(results, check_report, charts),
        limitations=limitations(results, check_report, charts),
        signoff=sign_off(results, check_report, generated=generated, results_sha256=results_sha256(results)),
        pdf=pdf,
    )


def _audit_order(results: Results) -> list[str]:
    known = [n for n in AUDIT_NAMES if n in results.sections]
    return known + [n for n in results.sections if n not in AUDIT_NAMES]


def _audit_view(name: str, results: Results, charts: list[Chart]) -> AuditView:
    section: AuditSection = results.sections[name]
    ok = section.status is SectionStatus.OK
    return AuditView(
        name=name,
        title=audit_title(name),
        anchor=f"audit-{re.sub(r'[^a-z0-9_-]', '-', name.lower())}",
        status=section.status.value,
        error=section.error,
        reason=section.reason,
        seconds=section.seconds,
        metrics=tuple((mid, fmt_number(v)) for mid, v in sorted(section.metrics.items())),
        tables=tuple(_table(n, rows) for n, rows in section.tables.items() if rows) if ok else (),
        # Charts of a section that did not complete would only repeat its error.
        charts=tuple(charts) if ok else (),
        findings=tuple(sorted(section.findings, key=lambda f: _SEVERITY_ORDER[f.severity])),
        token_examples=token_examples(section.details) if ok else (),
    )


def _table(name: str, rows: Sequence[Mapping[str, Any]]) -> TableView:
    good = [r for r in rows if isinstance(r, Mapping)]
    columns: list[str] = []
    for r in good:
        columns.extend(str(k) for k in r if str(k) not in columns and str(k) not in HIDDEN_COLUMNS)
    shown = good[:MAX_ROWS]
    return TableView(
        name=name,
        title=humanize(name),
        columns=tuple(columns),
        rows=tuple(tuple(_cell(r.get(c)) for c in columns) for r in shown),
        total_rows=len(good),
    )


def _cell(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, Mapping):
        return json.dumps(value, sort_keys=True)
    if value is None:
        return ""
    return fmt_number(value)


def _verdict(check: CheckReport | None) -> Verdict:
    if check is None:
        return Verdict(
            "NOT EVALUATED",
            "none",
            "No policy was evaluated for this report; pass --policy to see the verdict against a policy pack.",
        )
    name = f"{check.policy_name} {check.policy_version}".strip()
    if check.passed:
        waived = f", {len(check.waived)} under waiver" if check.waived else ""
        return Verdict("PASSED", "pass", f"The model meets every gating rule of policy {name}{waived}.")
    n = len(check.red)
    return Verdict(
        "FAILED",
        "fail",
        f"{n} gating rule{'s' if n != 1 else ''} of policy {name} failed; see the failures below.",
    )


_STATUS_ORDER = {
    Status.ERROR: 0,
    Status.FAIL: 1,
    Status.WARN: 2,
    Status.WAIVED: 3,
    Status.SKIPPED: 4,
    Status.PASS: 5,
}


def _sorted_outcomes(outcomes: Sequence[Outcome]) -> tuple[Outcome, ...]:
    return tuple(
        sorted(outcomes, key=lambda o: (_STATUS_ORDER[o.status], _SEVERITY_ORDER[o.severity], o.rule_id))
    )
