"""``check --baseline OLD``: a rule with ``max_regression`` fails when its metric worsens by more.

Which way is worse comes from the rule's op (``>=``/``>``: a drop; ``<=``/``<``: a rise). The
outcome's rule ID is ``<rule>.regression``; its value is how far the metric moved the wrong way and
its threshold the rule's ``max_regression``. It fails even when the absolute threshold still passes.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from typing import Any

from governance.policy.outcome import Outcome, Status
from governance.results import Severity

__all__ = ["regression_outcomes"]

_FAILED = {
    Severity.BLOCKING: Status.FAIL,
    Severity.MAJOR: Status.FAIL,
    Severity.MINOR: Status.WARN,
    Severity.INFO: Status.WARN,
}


def regression_outcomes(
    policy: Any, new_metrics: Mapping[str, Any], old_metrics: Mapping[str, Any], *, baseline: str
) -> list[Outcome]:
    """One outcome per (rule with ``max_regression``, metric it covers in both results)."""
    out: list[Outcome] = []
    for rule in policy.rules:
        if rule.max_regression is None or rule.higher_is_better is None:
            continue
        names = (
            sorted(m for m in new_metrics if fnmatch.fnmatchcase(m, rule.metric))
            if rule.is_glob
            else [rule.metric]
        )
        for metric in names:
            new, old = new_metrics.get(metric), old_metrics.get(metric)
            base = dict(
                rule_id=f"{rule.id}.regression",
                title=f"{rule.title} (no worse than the baseline by more than {rule.max_regression:g})",
                severity=rule.severity,
                metric=metric,
                op="<=",
                threshold=rule.max_regression,
                refs=rule.refs,
                rationale=rule.rationale,
            )
            if not isinstance(new, int | float) or not isinstance(old, int | float):
                out.append(
                    Outcome(
                        **base,
                        status=Status.SKIPPED,
                        value=None,
                        message=f"not in both results (baseline {baseline})",
                    )
                )
                continue
            worse = (old - new) if rule.higher_is_better else (new - old)
            ok = worse <= rule.max_regression + 1e-12
            out.append(
                Outcome(
                    **base,
                    status=Status.PASS if ok else _FAILED[rule.severity],
                    value=float(worse),
                    message=f"{old:.6g} → {new:.6g} ({'worse' if worse > 0 else 'no worse'} by {abs(worse):.6g}; "
                    f"allowed {rule.max_regression:g}; baseline {baseline})",
                )
            )
    return out
