"""The metric catalog: every metric ID an audit can emit, as data (patterns included).

``policy validate`` and ``check`` read it so that a rule naming a metric no audit emits (a typo
such as ``fairness.*.demographic_parity_ration``) is bad input, exit 2, whatever the rule's
``on_missing``: otherwise ``on_missing: skip`` would turn the typo into a silent pass.

A pattern is a metric ID whose ``<placeholders>`` stand for

- a name from :data:`CHOICES` (``<disparity>``, ``<attack>``…): one of a closed list, so a
  misspelled attack or metric is caught, or
- ``<attr>`` (a sensitive attribute or an ``a*b`` intersection, as the data names it),
  ``<number>`` (``0.1``, ``1e-05``) or ``<any>`` (one or more segments): free text.

The catalog covers the IDs of CONTRACT §4 and §9 (round 2) and those the audits add.
``tests/test_metrics_catalog.py`` runs the audits and checks that every ID they emit matches a
pattern here, and that the closed lists equal the audits' own registries.
Nothing here imports numpy, pandas or torch: ``governance check`` reads it on every CI run.
"""

from __future__ import annotations

import functools
import re

__all__ = [
    "CATALOG",
    "CHOICES",
    "audit_of",
    "catalog_audits",
    "catalog_lines",
    "is_known_metric",
    "register_metric_pattern",
    "suggest",
]

#: Closed lists a placeholder may stand for.
CHOICES: dict[str, tuple[str, ...]] = {
    # governance.audit._disparity.DISPARITIES
    "disparity": (
        "demographic_parity_difference",
        "demographic_parity_ratio",
        "equalized_odds_difference",
        "equal_opportunity_difference",
        "accuracy_difference",
    ),
    # governance.audit.performance.scores_from_confusion, plus roc_auc and rows
    "score": ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "rows"),
    "gap_score": ("accuracy", "balanced_accuracy", "f1"),
    # governance.audit._attacks registry (gradient attacks)
    "attack": ("fgsm", "pgd"),
    "robust": ("accuracy", "accuracy_drop", "worst_group_accuracy_drop"),
    # governance.text.perturb registry (text robustness)
    "perturbation": ("char_typo", "char_case", "whitespace"),
    "text_robust": ("accuracy", "accuracy_drop", "flip_rate", "worst_group_accuracy_drop"),
    # governance.audit.privacy: the membership-inference attacks and what each reports
    "mia_attack": ("loss_threshold", "black_box"),
    "mia_attack_metric": ("auc", "tpr_at_fpr_0.001", "tpr_at_fpr_0.01", "epsilon_lower_bound"),
    "mia_metric": ("auc", "auc_ci_low", "auc_ci_high", "tpr_at_fpr_0.001", "tpr_at_fpr_0.01"),
    # CONTRACT §9: compression variants and what each reports
    "variant": ("int8", "prune_50", "prune_90", "deployed"),
    "latency": ("latency_ms_p50", "latency_ms_p95"),
    "variant_metric": (
        "accuracy_drop",
        "worst_group_accuracy_drop",
        "disagreement_rate",
        "size_bytes",
        "latency_ms_p50",
        "latency_ms_p95",
    ),
    "fp32_metric": ("size_bytes", "latency_ms_p50", "latency_ms_p95"),
    "mitigation_method": ("threshold", "reweigh"),
}

#: Free placeholders: what they match (a regular expression over the metric-ID alphabet).
_FREE: dict[str, str] = {
    "attr": r"[a-z0-9_*\-.]+",
    "number": r"[0-9][0-9.e\-]*",
    "any": r"[a-z0-9_*\-.]+",
}

#: audit → the patterns of the IDs it can emit.
CATALOG: dict[str, list[str]] = {
    "data_quality": [
        "data_quality.duplicate_rate",
        "data_quality.missing_rate",
        "data_quality.train_eval_overlap",
        "data_quality.constant_columns",
        "data_quality.min_class_share",
        "data_quality.min_class_ratio",
        "data_quality.min_group_share",
        "data_quality.label_rate_gap.<attr>",
        "data_quality.pii_values",
        "data_quality.rows",
        "data_quality.log_span_days",
    ],
    "performance": [
        "performance.<score>",
        "performance.train.<score>",
        "performance.worst_class.recall",
        "performance.worst_class.f1",
        "performance.train_eval_gap.<gap_score>",
        # CONTRACT §9
        "performance.baseline.majority_accuracy",
        "performance.baseline.logistic_accuracy",
        "performance.lift_over_majority",
        "performance.lift_over_logistic",
    ],
    "fairness": [
        "fairness.<attr>.<disparity>",
        "fairness.<attr>.<disparity>.max_window",
        "fairness.worst.<disparity>",
        "fairness.counterfactual.flip_rate",
        "fairness.counterfactual.mean_abs_score_change",
        "fairness.counterfactual.pairs",
    ],
    "attribution": [
        "attribution.sensitive_share",
        "attribution.completeness_gap",
        "attribution.completeness_gap_max",
        "attribution.completeness_gap_relative",
        "attribution.infidelity",
        "attribution.rows",
        "attribution.proxy_count",
        "attribution.<attr>.share",
    ],
    "robustness": [
        "robustness.clean_accuracy",
        "robustness.<attack>.eps_<number>.<robust>",
        "robustness.gaussian_noise.sigma_<number>.<robust>",
        "robustness.<perturbation>.rate_<number>.<text_robust>",
        "robustness.hopskipjump.success_rate",
        "robustness.hopskipjump.median_l2",
    ],
    "privacy": [
        "privacy.epsilon",
        "privacy.delta",
        "privacy.membership_inference.<mia_metric>",
        "privacy.membership_inference.<mia_attack>.<mia_attack_metric>",
        "privacy.empirical_epsilon_lower_bound",
        # the certificate (issue 11): seeded noise, and what the run publishes outside the guarantee
        "privacy.noise_seeded",
        "privacy.scope.outside_count",
        "privacy.scope.report_count",
        # CONTRACT §9
        "privacy.canary.epsilon_lower_bound",
        "privacy.canary.count",
        # issue 18: the idealised bound for the claimed (ε, δ), and whether the canary model may ship
        "privacy.canary.reference_bound",
        "privacy.canary.release_candidate",
    ],
    # CONTRACT §9 (round 2)
    "privacy_cost": [
        "privacy_cost.accuracy_drop",
        "privacy_cost.worst_group_accuracy_drop",
        "privacy_cost.<attr>.accuracy_drop_gap",
        "privacy_cost.twin_accuracy",
        "privacy_cost.private_accuracy",
        "privacy_cost.disagreement_rate",
    ],
    "compression": [
        "compression.<variant>.<variant_metric>",
        "compression.<variant>.<attr>.accuracy_drop_gap",
        "compression.<variant>.batch<number>.<latency>",
        "compression.fp32.<fp32_metric>",
        "compression.fp32.batch<number>.<latency>",
    ],
    "mitigation": ["mitigation.<mitigation_method>.<any>"],
}

_PLACEHOLDER = re.compile(r"<([a-z0-9_]+)>")


def register_metric_pattern(pattern: str) -> None:
    """Add a pattern (e.g. a third-party audit's ``myaudit.<attr>.score``) to the catalog."""
    for name in _PLACEHOLDER.findall(pattern):
        if name not in CHOICES and name not in _FREE:
            raise ValueError(f"unknown placeholder <{name}> in {pattern!r}")
    audit = pattern.split(".", 1)[0]
    patterns = CATALOG.setdefault(audit, [])
    if pattern not in patterns:
        patterns.append(pattern)
    _compiled.cache_clear()
    _tokens.cache_clear()
    is_known_metric.cache_clear()


def catalog_audits() -> tuple[str, ...]:
    """The audits (first segments) the catalog knows, round-2 ones included."""
    return tuple(CATALOG)


def audit_of(metric: str) -> str:
    return metric.split(".", 1)[0]


def _regex(pattern: str) -> str:
    out, last = [], 0
    for match in _PLACEHOLDER.finditer(pattern):
        out.append(re.escape(pattern[last : match.start()]))
        name = match.group(1)
        if name in CHOICES:
            out.append("(?:" + "|".join(re.escape(c) for c in CHOICES[name]) + ")")
        else:
            out.append(_FREE[name])
        last = match.end()
    out.append(re.escape(pattern[last:]))
    return "".join(out)


@functools.cache
def _compiled(audit: str) -> re.Pattern[str] | None:
    patterns = CATALOG.get(audit)
    if not patterns:
        return None
    return re.compile("^(?:" + "|".join(_regex(p) for p in patterns) + ")$")


# -- glob rules: could the glob match any ID of a pattern? -----------------------------------------
# Both sides become token lists: a literal character, ANY (one character), STAR (any run) or a
# character class. Free placeholders are STAR; closed lists are expanded. Then a small dynamic
# programme decides whether some string matches both (the intersection is not empty).

_STAR = ("*",)
_ANY = ("?",)
Token = tuple[str, ...] | str


def _expand(pattern: str) -> list[str]:
    match = next((m for m in _PLACEHOLDER.finditer(pattern) if m.group(1) in CHOICES), None)
    if match is None:
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end() :]
    return [e for choice in CHOICES[match.group(1)] for e in _expand(head + choice + tail)]


@functools.cache
def _tokens(audit: str) -> tuple[tuple[Token, ...], ...]:
    out = []
    for pattern in CATALOG.get(audit, []):
        for expanded in _expand(pattern):
            tokens: list[Token] = []
            for part in re.split(r"(<[a-z0-9_]+>)", expanded):
                if _PLACEHOLDER.fullmatch(part):
                    tokens.append(_STAR)
                else:
                    tokens.extend(part)
            out.append(tuple(tokens))
    return tuple(out)


def _glob_tokens(glob: str) -> tuple[Token, ...]:
    tokens: list[Token] = []
    i = 0
    while i < len(glob):
        ch = glob[i]
        if ch == "*":
            tokens.append(_STAR)
        elif ch == "?":
            tokens.append(_ANY)
        elif ch == "[" and glob.find("]", i + 2) > 0:  # as fnmatch: "[]" opens a class holding "]"
            end = glob.find("]", i + 2)
            body = glob[i + 1 : end]
            negate = body.startswith("!")
            chars = _class_chars(body[1:] if negate else body)
            tokens.append(("!" if negate else "=", chars))
            i = end
        else:
            tokens.append(ch)
        i += 1
    return tuple(tokens)


def _class_chars(body: str) -> str:
    chars: list[str] = []
    i = 0
    while i < len(body):
        if i + 2 < len(body) and body[i + 1] == "-":
            chars.extend(chr(c) for c in range(ord(body[i]), ord(body[i + 2]) + 1))
            i += 3
        else:
            chars.append(body[i])
            i += 1
    return "".join(chars)


def _one(a: Token, b: Token) -> bool:
    """Can one character satisfy both single-character tokens?"""
    if a == _ANY or b == _ANY:
        return True
    if isinstance(a, tuple) and isinstance(b, tuple):
        return True  # two classes: assume they share a character (over-approximate)
    literal, other = (b, a) if isinstance(a, tuple) else (a, b)
    if isinstance(other, tuple) and isinstance(literal, str):
        kind, chars = other
        return (literal in chars) == (kind == "=")
    return literal == other


def _intersects(p: tuple[Token, ...], q: tuple[Token, ...]) -> bool:
    @functools.cache
    def go(i: int, j: int) -> bool:
        if i == len(p) and j == len(q):
            return True
        if i < len(p) and p[i] == _STAR:
            return go(i + 1, j) or (j < len(q) and go(i, j + 1))
        if j < len(q) and q[j] == _STAR:
            return go(i, j + 1) or (i < len(p) and go(i + 1, j))
        if i == len(p) or j == len(q):
            return False
        return _one(p[i], q[j]) and go(i + 1, j + 1)

    return go(0, 0)


def _is_glob(metric: str) -> bool:
    return any(ch in metric for ch in "*?[")


@functools.cache
def is_known_metric(metric: str) -> bool:
    """Can an audit emit ``metric`` (a metric ID, or a glob: some ID the glob matches)?

    Examples
    --------
    >>> is_known_metric("fairness.sex.demographic_parity_ratio")
    True
    >>> is_known_metric("fairness.*.demographic_parity_ration")
    False
    >>> is_known_metric("robustness.*.eps_0.1.accuracy_drop")
    True
    """
    audit = audit_of(metric)
    if not _is_glob(audit):
        if not _is_glob(metric):
            compiled = _compiled(audit)
            return compiled is not None and compiled.match(metric) is not None
        audits = [audit]
    else:
        audits = list(CATALOG)
    glob = _glob_tokens(metric)
    return any(_intersects(glob, tokens) for a in audits for tokens in _tokens(a))


def suggest(metric: str) -> str | None:
    """The closest catalog pattern, for a "did you mean" in the error line."""
    import difflib

    patterns = [p for patterns in CATALOG.values() for p in patterns]
    examples = {e: p for p in patterns for e in _expand(p)}
    close = difflib.get_close_matches(metric, list(examples), n=1, cutoff=0.6)
    return close[0] if close else None


def catalog_lines() -> list[str]:
    """The catalog as text, one pattern per line with its closed lists (for docs and --help)."""
    lines = []
    for audit, patterns in CATALOG.items():
        lines.append(f"{audit}:")
        lines.extend(f"  {p}" for p in patterns)
    lines.append("where:")
    lines.extend(f"  <{name}> = {' | '.join(values)}" for name, values in CHOICES.items())
    return lines
