"""Technical documentation organised like Annex IV of the EU AI Act, known limitations and sign-off.

Everything is read defensively from ``results.run`` (which the runner fills from the spec and the
training ledger): a missing piece is stated as missing, because an honest gap is worth more to a
reviewer than a silently shorter document.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from governance import __version__
from governance.report._text import audit_title, fmt_number, humanize
from governance.results import Results, SectionStatus, Severity

if TYPE_CHECKING:
    from governance.policy.outcome import CheckReport

__all__ = ["AnnexItem", "SignOff", "annex_iv", "hashes", "limitations", "sign_off"]

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PRIVACY_FIELDS: tuple[tuple[str, str], ...] = (
    ("accountant", "Accountant"),
    ("epsilon", "ε spent"),
    ("delta", "δ"),
    ("target_epsilon", "Target ε"),
    ("noise_multiplier", "Noise multiplier"),
    ("sample_rate", "Sampling rate"),
    ("steps", "Steps"),
    ("max_grad_norm", "Per-sample clipping norm"),
    ("grad_sample_mode", "Per-sample gradient mode"),
)
_TRAINING_FIELDS: tuple[tuple[str, str], ...] = (
    ("epochs", "Epochs"),
    ("steps", "Optimizer steps"),
    ("batch_size", "Batch size"),
    ("rows", "Training rows"),
    ("seconds", "Training time (s)"),
)


@dataclass(frozen=True)
class AnnexItem:
    """One heading of the technical documentation."""

    number: str
    title: str
    anchor: str
    facts: tuple[tuple[str, str], ...] = ()
    metrics: tuple[tuple[str, str], ...] = ()
    columns: tuple[str, ...] = ()
    table: tuple[tuple[str, ...], ...] = ()
    see: tuple[tuple[str, str], ...] = ()  # (title, anchor) of sections with the detail
    note: str | None = None
    text: str | None = None
    items: tuple[str, ...] = ()
    more: int = 0  # metrics left out here; the audit section lists them


class ChartLike(Protocol):
    """What the Annex reads of a :class:`governance.report.charts.Chart` (the charts import the
    Annex's ledger reader, so the Annex names the chart's shape rather than importing it)."""

    @property
    def audit(self) -> str: ...

    @property
    def title(self) -> str: ...

    @property
    def note(self) -> str | None: ...


@dataclass(frozen=True)
class SignOff:
    generated_at: str
    tool_version: str
    results_tool_version: str
    run_started_at: str
    model_hashes: tuple[tuple[str, str], ...]
    data_hashes: tuple[tuple[str, str], ...]
    other_hashes: tuple[tuple[str, str], ...]
    policy: str | None
    policy_sha256: str | None
    results_sha256: str


def _extra(results: Results, *keys: str) -> Any:
    """The first of ``keys`` present in ``results.run`` extras."""
    for key in keys:
        value = results.run.extra.get(key)
        if value not in (None, "", {}, []):
            return value
    return None


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def ledger(results: Results) -> Mapping[str, Any]:
    """The training ledger: from ``run`` if the runner stored it, else ``training.json`` in the model folder.

    The file fallback is read at report time; it is used only when its weights hash matches the
    subject's, so a retrained model in the same folder is never described as the audited one.
    """
    found = _mapping(_extra(results, "training"))
    if found:
        return found
    return _ledger_file(results)


def _ledger_file(results: Results) -> Mapping[str, Any]:
    import hashlib
    import json
    from pathlib import Path

    model = _mapping(results.subject.get("model"))
    folder = model.get("path")
    if not isinstance(folder, str):
        return {}
    try:
        data = (Path(folder) / "training.json").read_bytes()
        raw = json.loads(data)
    except (OSError, ValueError):
        return {}
    if not isinstance(raw, Mapping):
        return {}
    files = _mapping(model.get("files"))
    recorded = files.get("training.json")
    if recorded is not None and hashlib.sha256(data).hexdigest() != recorded:
        return {}  # not the ledger of the audited model
    weights = raw.get("weights_sha256")
    if weights is not None and files and weights not in files.values():
        return {}
    return raw


def privacy_ledger(results: Results) -> Mapping[str, Any]:
    """The DP part of the training ledger (``run.training.privacy``)."""
    return _mapping(ledger(results).get("privacy"))


def hashes(subject: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Every SHA-256 in ``results.subject`` as (where, digest), whatever nesting the runner chose."""
    out: list[tuple[str, str]] = []
    for key, value in subject.items():
        where = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, str) and _SHA256.match(value.lower()):
            label = where.removesuffix(".sha256").removesuffix("_sha256").replace(".files.", " file ")
            path = subject.get("path") if key == "sha256" else None
            out.append((f"{label} ({path})" if isinstance(path, str) else label, value.lower()))
        elif isinstance(value, Mapping):
            out.extend(hashes(value, where))
    return out


#: Metrics listed per Annex IV item; the audit sections list all of them.
ANNEX_METRICS = 10


def _metrics(results: Results, prefix: str, check: CheckReport | None) -> tuple[tuple[str, str], ...]:
    """The item's key metrics: those the policy judged first, then the least qualified (overall) ones."""
    judged = {o.metric for o in check.outcomes} if check is not None else set()
    keys = [k for k in results.metrics if k.startswith(prefix)]
    keys.sort(key=lambda k: (k not in judged, k.count("."), k))
    return tuple((k, fmt_number(results.metrics[k])) for k in sorted(keys[:ANNEX_METRICS]))


def _more(results: Results, prefix: str) -> int:
    return max(0, sum(k.startswith(prefix) for k in results.metrics) - ANNEX_METRICS)


def _see(results: Results, name: str) -> tuple[tuple[str, str], ...]:
    if name not in results.sections:
        return ()
    return ((audit_title(name), f"audit-{name}"),)


def _missing_audit_note(results: Results, name: str) -> str | None:
    section = results.sections.get(name)
    if section is None:
        return f"The {audit_title(name).lower()} audit was not part of this run."
    if section.status is SectionStatus.ERROR:
        return (
            f"The {audit_title(name).lower()} audit failed: {section.error or 'no error message recorded'}."
        )
    if section.status is SectionStatus.SKIPPED:
        return f"The {audit_title(name).lower()} audit was skipped: {section.reason or 'no reason recorded'}."
    return None


def annex_iv(
    results: Results, check: CheckReport | None, charts: Mapping[str, Sequence[ChartLike]]
) -> tuple[AnnexItem, ...]:
    """The technical documentation, one item per Annex IV heading we can evidence."""
    run = results.run
    purpose = _extra(results, "intended_purpose", "purpose") or _purpose_from_spec(results)
    data = _mapping(_extra(results, "data", "dataset"))
    items = [
        AnnexItem(
            "1",
            "General description and intended purpose",
            "annex-purpose",
            facts=(
                ("Model / audit spec", run.spec_name or "not recorded"),
                ("Task", humanize(run.task) if run.task else "not recorded"),
                ("Audit run", f"{run.started_at or '?'} to {run.finished_at or '?'} on {run.device}"),
                ("Seed", str(run.seed)),
                ("Tool", f"governance {run.tool_version}"),
                (
                    "Libraries",
                    ", ".join(f"{k} {v}" for k, v in sorted(run.libraries.items())) or "not recorded",
                ),
            ),
            text=str(purpose) if purpose else None,
            note=None
            if purpose
            else "Intended purpose not stated: add `intended_purpose:` to the audit spec.",
        ),
        _data_item(results, data, check),
        _training_item(results),
        AnnexItem(
            "4",
            "Validation and testing: metrics",
            "annex-validation",
            metrics=_metrics(results, "performance.", check),
            more=_more(results, "performance."),
            see=_see(results, "performance"),
            note=_missing_audit_note(results, "performance"),
        ),
        AnnexItem(
            "5",
            "Accuracy under attack: robustness",
            "annex-robustness",
            metrics=_metrics(results, "robustness.", check),
            more=_more(results, "robustness."),
            see=_see(results, "robustness"),
            note=_missing_audit_note(results, "robustness"),
        ),
        AnnexItem(
            "6",
            "Bias examination: fairness",
            "annex-fairness",
            metrics=_metrics(results, "fairness.", check),
            more=_more(results, "fairness."),
            see=_see(results, "fairness"),
            note=_missing_audit_note(results, "fairness"),
        ),
        AnnexItem(
            "7",
            "Interpretability: explainability",
            "annex-explainability",
            metrics=_metrics(results, "attribution.", check),
            more=_more(results, "attribution."),
            see=_see(results, "attribution"),
            note=_missing_audit_note(results, "attribution"),
        ),
        AnnexItem(
            "8",
            "Privacy",
            "annex-privacy",
            metrics=_metrics(results, "privacy.", check),
            more=_more(results, "privacy."),
            see=_see(results, "privacy"),
            note=_missing_audit_note(results, "privacy"),
        ),
        _policy_item(check),
        AnnexItem(
            "10",
            "Known limitations",
            "annex-limitations",
            items=limitations(results, check, charts),
        ),
    ]
    return tuple(items)


def _purpose_from_spec(results: Results) -> str | None:
    """``intended_purpose`` from the audit spec the run names, when results.json does not carry it."""
    spec = results.run.extra.get("spec")
    if not isinstance(spec, str):
        return None
    try:
        from pathlib import Path

        import yaml

        raw = yaml.safe_load(Path(spec).read_text(encoding="utf-8"))
    except Exception:  # a moved or edited spec only costs the reviewer this one line
        return None
    value = raw.get("intended_purpose") if isinstance(raw, Mapping) else None
    return f"{value} (from the audit spec {spec}, read when the report was made)" if value else None


def _data_item(results: Results, data: Mapping[str, Any], check: CheckReport | None) -> AnnexItem:
    # The runner records the data facts in `subject`; older results kept them in run.data.
    subject = _mapping(results.subject)
    data = {
        "source": subject.get("data_source"),
        "license": subject.get("data_license"),
        "label": subject.get("label"),
        "sensitive": subject.get("sensitive"),
        "rows": subject.get("rows"),
        **{k: v for k, v in data.items() if v not in (None, "", [], {})},
    }
    facts = [
        ("Source", str(data.get("source") or "not recorded")),
        ("Licence", str(data.get("license") or data.get("licence") or "not recorded")),
    ]
    if data.get("label"):
        facts.append(("Label", str(data["label"])))
    sensitive = data.get("sensitive")
    if isinstance(sensitive, Sequence) and not isinstance(sensitive, str):
        facts.append(("Sensitive attributes", ", ".join(str(s) for s in sensitive) or "none declared"))
    counts = data.get("rows")
    if isinstance(counts, Mapping):
        facts.append(("Rows", ", ".join(f"{k} {fmt_number(v)}" for k, v in counts.items())))
    for where, digest in hashes(_mapping(results.subject)):
        if where.startswith("data"):
            facts.append((f"SHA-256 {where}", digest))
    columns: tuple[str, ...] = ()
    table: list[tuple[str, ...]] = []
    section = results.sections.get("data_quality")
    if section is not None:
        from governance.tables import GroupShare, read

        columns = ("attribute", "group", "split", "count", "share")
        for r in read(section.tables, "data_quality", "groups", GroupShare):
            table.append(
                (
                    r.attribute,
                    r.group,
                    r.split or "all",
                    fmt_number(r.rows),
                    f"{r.share * 100:.1f}%" if r.share is not None else "n/a",
                )
            )
    missing = [label.lower() for label, value in facts[:2] if value == "not recorded"]
    note = None
    if missing:
        note = f"Data {' and '.join(missing)} not recorded: add `data.source` / `data.license` to the audit spec."
    if not table:
        note = (
            note + " " if note else ""
        ) + "Group composition not recorded (the data-quality audit did not run)."
    return AnnexItem(
        "2",
        "Data: source, licence and group composition",
        "annex-data",
        facts=tuple(facts),
        metrics=_metrics(results, "data_quality.", check),
        more=_more(results, "data_quality."),
        columns=columns,
        table=tuple(table),
        see=_see(results, "data_quality"),
        note=note,
    )


def privacy_scope(results: Results) -> Mapping[str, Any]:
    """``privacy.scope``: the privacy section's (with the report's items), else the ledger's."""
    section = results.sections.get("privacy")
    found = _mapping(section.details.get("scope")) if section is not None else {}
    return found or _mapping(privacy_ledger(results).get("scope"))


def _scope_facts(results: Results, dp: Mapping[str, Any]) -> list[tuple[str, str]]:
    if not dp:
        return []
    scope = privacy_scope(results)
    source = str(dp.get("noise_source") or "seeded (the ledger predates noise_source)")
    facts = [("DP: noise source", source)]
    if source != "os-entropy":
        facts.append(
            (
                "DP: warning",
                "the noise was drawn from the published seed: the guarantee does not hold "
                "against anyone holding the seed",
            )
        )
    if not scope:
        facts.append(("DP: outside the guarantee", "not recorded (the ledger predates privacy.scope)"))
        return facts
    facts.append(("DP: guarantee covers", str(scope.get("covers", ""))))
    for key, label in (
        ("outside", "published outside the guarantee"),
        ("report", "in this report, outside the guarantee"),
    ):
        items = [_mapping(i) for i in scope.get(key) or []]
        named = "; ".join(
            f"{i.get('name')} ({i.get('where')}{': ' + ', '.join(i['columns']) if i.get('columns') else ''})"
            for i in items
        )
        facts.append((f"DP: {label}", named or "nothing"))
    return facts


def _training_item(results: Results) -> AnnexItem:
    led = ledger(results)
    dp = privacy_ledger(results)
    facts = [(label, fmt_number(led[key])) for key, label in _TRAINING_FIELDS if key in led]
    facts += [(f"DP: {label}", fmt_number(dp[key])) for key, label in _PRIVACY_FIELDS if key in dp]
    facts += _scope_facts(results, dp)
    for where, digest in hashes(_mapping(results.subject)):
        if where.startswith("model"):
            facts.append((f"SHA-256 {where}", digest))
    if not led and not dp:
        note = "No training ledger in the results: the model was trained outside governance, or the ledger was not recorded."
    elif not dp:
        note = "Trained without differential privacy: no privacy guarantee applies to the training rows."
    else:
        note = None
    return AnnexItem(
        "3",
        "Training: process and differential-privacy ledger",
        "annex-training",
        facts=tuple(facts),
        see=(("Privacy", "audit-privacy"),) if "privacy" in results.sections else (),
        note=note,
        text=(
            "Differentially private SGD: each example's gradient is clipped and Gaussian noise is added; the "
            "accountant converts the noise, sampling rate and steps into the (ε, δ) guarantee below."
            if dp
            else None
        ),
    )


def _policy_item(check: CheckReport | None) -> AnnexItem:
    if check is None:
        return AnnexItem(
            "9",
            "Policy outcomes",
            "annex-policy",
            note="No policy was evaluated for this report.",
        )
    counts = ", ".join(f"{n} {s.lower()}" for s, n in check.counts.items() if n) or "no rules"
    return AnnexItem(
        "9",
        "Policy outcomes",
        "annex-policy",
        facts=(
            ("Policy", f"{check.policy_name} {check.policy_version}"),
            ("Source", check.policy_source or "not recorded"),
            ("SHA-256 of policy", check.policy_sha256 or "not recorded"),
            ("Verdict", ("PASSED" if check.passed else "FAILED") + f" (--fail-on {check.fail_on.value})"),
            ("Outcomes", counts),
        ),
        see=(("Policy outcomes", "policy"),),
    )


def limitations(
    results: Results, check: CheckReport | None, charts: Mapping[str, Sequence[ChartLike]]
) -> tuple[str, ...]:
    """What this report cannot vouch for: derived from the run, then the standing caveats of each method."""
    out: list[str] = []
    for name in results.sections:
        note = _missing_audit_note(results, name)
        if note:
            out.append(note)
    from governance.results import AUDIT_NAMES

    not_run = [audit_title(n).lower() for n in AUDIT_NAMES if n not in results.sections]
    if not_run:
        out.append(f"Not audited in this run: {', '.join(not_run)}.")
    for f in results.findings:
        if f.severity in (Severity.BLOCKING, Severity.MAJOR):
            out.append(f"Finding ({f.severity.value}): {f.message}")
    omitted = [
        c for cs in charts.values() for c in cs if c.note and _missing_audit_note(results, c.audit) is None
    ]
    for c in omitted:
        out.append(f"Chart “{c.title}” could not be shown. {c.note}")
    if check is None:
        out.append("No policy was evaluated: this report states measurements, not a compliance verdict.")
    elif check.unused_waivers:
        out.append(
            f"Waivers that match no rule of the policy (check for typos): {', '.join(check.unused_waivers)}."
        )
    if "fairness" in results.sections:
        out.append(
            "Fairness is measured only for the declared sensitive attributes and their intersections; groups "
            "not recorded in the data cannot be assessed, and small groups have wide confidence intervals."
        )
    if "privacy" in results.sections:
        out.append(
            "The membership-inference attack is an empirical lower bound on leakage; the differential-privacy "
            "ε is the guarantee, and holds only for the training run the ledger describes."
        )
    dp = privacy_ledger(results)
    if dp:
        scope = privacy_scope(results)
        if dp.get("noise_source") != "os-entropy":
            out.append(
                "The differential-privacy noise was drawn from the published seed (reproducible_noise): "
                "anyone holding the seed can replay and subtract it, so the guarantee does not hold against them."
            )
        if scope:
            out.append(
                f"The guarantee covers {scope.get('covers')}. It does not cover what the run publishes about "
                "the training rows outside it (listed in the training ledger's privacy.scope). "
                f"Floating point: {scope.get('floating_point')}."
            )
    if "robustness" in results.sections:
        out.append(
            "Robustness is measured against the listed attacks and budgets only; stronger or adaptive attacks "
            "may lower accuracy further."
        )
    if "attribution" in results.sections:
        out.append(
            "Attributions describe how the model uses its inputs, not causal effects in the world; a low "
            "share on sensitive attributes does not rule out proxies that were not declared."
        )
    out.append("All metrics are estimates on the evaluation split and hold for data distributed like it.")
    return tuple(out)


def sign_off(results: Results, check: CheckReport | None, *, generated: str, results_sha256: str) -> SignOff:
    found = hashes(_mapping(results.subject))
    return SignOff(
        generated_at=generated,
        tool_version=__version__,
        results_tool_version=results.run.tool_version,
        run_started_at=results.run.started_at,
        model_hashes=tuple(h for h in found if h[0].startswith("model")),
        data_hashes=tuple(h for h in found if h[0].startswith("data")),
        other_hashes=tuple(h for h in found if not h[0].startswith(("model", "data"))),
        policy=f"{check.policy_name} {check.policy_version}" if check else None,
        policy_sha256=check.policy_sha256 if check else None,
        results_sha256=results_sha256,
    )
