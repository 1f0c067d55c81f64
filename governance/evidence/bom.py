"""A CycloneDX 1.6 ML-BOM of an audit (``governance report RESULTS.json --format cyclonedx``).

cyclonedx-python-lib builds the BOM itself: the model as a ``machine-learning-model`` component
with its SHA-256, each data file as a ``data`` component with its licence, the tool, and the
dependencies between them. The library does not model ``modelCard`` or a component's ``data``
yet, so those are added to its serialised JSON, shaped by the 1.6 JSON schema (the tests validate
the result against it, strictly):

- ``modelParameters``: approach, task, the datasets (references to the data components);
- ``quantitativeAnalysis.performanceMetrics``: every performance metric, every metric per group
  (``slice`` = ``attribute=group``), the disparities with their bootstrap intervals;
- ``considerations``: intended use, findings as technical limitations, the privacy trade-off,
  one fairness assessment per attribute, and every policy outcome that is not a PASS as an
  ethical consideration (its waiver, if any, as the mitigation).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import PurePath
from typing import Any

__all__ = ["SPEC_VERSION", "build_bom"]

SPEC_VERSION = "1.6"
MODEL_REF = "model"
#: Per-group rates the fairness tables carry, reported per slice.
GROUP_METRICS = ("accuracy", "selection_rate", "true_positive_rate", "false_positive_rate", "precision")


def _num(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return f"{value:.6g}"


def _license(text: str | None) -> list[Any]:
    if not text:
        return []
    from cyclonedx.factory.license import LicenseFactory

    return [LicenseFactory().make_from_string(text)]


def _base_bom(results: Mapping[str, Any]) -> tuple[str, list[tuple[str, str, str]]]:
    """The BOM the library builds (JSON) and the data components' (ref, split, file name)."""
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6

    from governance import __version__

    run = results.get("run") or {}
    subject = results.get("subject") or {}
    name = str(run.get("spec_name") or "model")
    model = subject.get("model") if isinstance(subject.get("model"), Mapping) else None
    predictions = subject.get("predictions") if isinstance(subject.get("predictions"), Mapping) else None
    files: Mapping[str, str] = (model or {}).get("files") or {}
    weights = next((d for f, d in files.items() if f.endswith(".safetensors")), None)
    digest = weights or (next(iter(files.values()), None) if files else None)
    if digest is None and predictions is not None:
        digest = predictions.get("sha256")

    bom = Bom()
    component = Component(
        name=name,
        type=ComponentType.MACHINE_LEARNING_MODEL,
        bom_ref=MODEL_REF,
        description=run.get("intended_purpose") or None,
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=digest)] if digest else [],
        properties=[Property(name=f"governance:file:{f}", value=d) for f, d in sorted(files.items())]
        + ([Property(name="governance:predictions", value=str(predictions["sha256"]))] if predictions else [])
        + [Property(name="governance:task", value=str(run.get("task") or ""))],
    )
    bom.metadata.component = component
    bom.metadata.properties.add(Property(name="governance:version", value=__version__))
    tool = Component(name="governance", version=__version__, type=ComponentType.APPLICATION, bom_ref="tool")
    bom.metadata.tools.components.add(tool)
    data_refs: list[tuple[str, str, str]] = []
    data_components = []
    licence = subject.get("data_license")
    for split, entry in sorted((subject.get("data") or {}).items()):
        if not isinstance(entry, Mapping) or not entry.get("sha256"):
            continue
        ref = f"data-{split}"
        file_name = PurePath(str(entry.get("path") or split)).name
        data = Component(
            name=f"{name} {split} data ({file_name})",
            type=ComponentType.DATA,
            bom_ref=ref,
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=str(entry["sha256"]))],
            licenses=_license(licence),
            description=subject.get("data_source") or None,
        )
        bom.components.add(data)
        data_components.append(data)
        data_refs.append((ref, split, file_name))
    # The model was trained and evaluated on the data: its dependencies.
    bom.register_dependency(component, data_components)
    return JsonV1Dot6(bom).output_as_string(indent=None), data_refs


def _metrics(results: Mapping[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for mid, value in sorted((results.get("metrics") or {}).items()):
        if mid.startswith("performance.") and _num(value) is not None:
            out.append({"type": mid.removeprefix("performance."), "value": _num(value), "slice": "eval"})
    fairness = ((results.get("sections") or {}).get("fairness") or {}).get("tables") or {}
    for row in fairness.get("groups") or []:
        if not isinstance(row, Mapping) or row.get("empty"):
            continue
        where = f"{row.get('attribute')}={row.get('group')}"
        for metric in GROUP_METRICS:
            if _num(row.get(metric)) is not None:
                out.append({"type": metric, "value": _num(row[metric]), "slice": where})
    for row in fairness.get("disparities") or []:
        if not isinstance(row, Mapping) or _num(row.get("value")) is None:
            continue
        entry: dict[str, Any] = {
            "type": str(row.get("metric")),
            "value": _num(row["value"]),
            "slice": f"{row.get('attribute')}" + (f" (from {row['from']})" if row.get("from") else ""),
        }
        lo, hi = _num(row.get("ci_low")), _num(row.get("ci_high"))
        if lo is not None and hi is not None:
            entry["confidenceInterval"] = {"lowerBound": lo, "upperBound": hi}
        out.append(entry)
    return out


def _fairness(results: Mapping[str, Any], outcomes: list[Mapping[str, Any]]) -> list[dict[str, str]]:
    """One assessment per attribute: the group with the lowest selection rate, the disparities."""
    fairness = ((results.get("sections") or {}).get("fairness") or {}).get("tables") or {}
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in fairness.get("groups") or []:
        if isinstance(row, Mapping) and _num(row.get("selection_rate")) is not None:
            groups.setdefault(str(row.get("attribute")), []).append(row)
    disparities: dict[str, list[str]] = {}
    for row in fairness.get("disparities") or []:
        if isinstance(row, Mapping) and _num(row.get("value")) is not None:
            ci = (
                f" [{_num(row['ci_low'])}, {_num(row['ci_high'])}]"
                if _num(row.get("ci_low")) is not None and _num(row.get("ci_high")) is not None
                else ""
            )
            disparities.setdefault(str(row.get("attribute")), []).append(
                f"{row['metric']} {_num(row['value'])}{ci}"
            )
    out = []
    for attribute, rows in sorted(groups.items()):
        low = min(rows, key=lambda r: float(r["selection_rate"]))
        high = max(rows, key=lambda r: float(r["selection_rate"]))
        failing = [
            o["rule"]
            for o in outcomes
            if o.get("status") in ("FAIL", "ERROR") and f".{attribute}." in f".{o.get('metric', '')}."
        ]
        out.append(
            {
                "groupAtRisk": f"{attribute}={low.get('group')}",
                "benefits": f"selection rate {_num(high['selection_rate'])} for {attribute}={high.get('group')}",
                "harms": f"selection rate {_num(low['selection_rate'])}; "
                + ("; ".join(disparities.get(attribute, [])) or "no disparity measured"),
                "mitigationStrategy": (
                    f"policy rules failed: {', '.join(sorted(set(failing)))}; mitigation required before release"
                    if failing
                    else "none required by the policy evaluated"
                ),
            }
        )
    return out


def _considerations(results: Mapping[str, Any], check: Mapping[str, Any] | None) -> dict[str, Any]:
    run = results.get("run") or {}
    outcomes = list((check or {}).get("outcomes") or [])
    considerations: dict[str, Any] = {}
    if run.get("intended_purpose"):
        considerations["useCases"] = [str(run["intended_purpose"])]
    limits = [
        f"{f.get('severity')}: {f.get('message')}"
        for f in results.get("findings") or []
        if isinstance(f, Mapping)
    ]
    if limits:
        considerations["technicalLimitations"] = limits
    metrics = results.get("metrics") or {}
    if _num(metrics.get("privacy.epsilon")) is not None:
        considerations["performanceTradeoffs"] = [
            f"trained with differential privacy: ε = {_num(metrics['privacy.epsilon'])} at δ = "
            f"{_num(metrics.get('privacy.delta'))}; accuracy {_num(metrics.get('performance.accuracy'))}"
        ]
    ethical = []
    for o in outcomes:
        if o.get("status") == "PASS":
            continue
        waiver = o.get("waiver") or {}
        mitigation = (
            f"waived by {waiver.get('approver')} until {waiver.get('expires')}: {waiver.get('reason')}"
            if waiver
            else f"{o.get('status')} under a {o.get('severity')} rule; refs: {', '.join(o.get('refs') or []) or 'none'}"
        )
        ethical.append({"name": f"{o.get('rule')}: {o.get('message')}", "mitigationStrategy": mitigation})
    if ethical:
        considerations["ethicalConsiderations"] = ethical
    fairness = _fairness(results, outcomes)
    if fairness:
        considerations["fairnessAssessments"] = fairness
    return considerations


def build_bom(results: Any, check_report: Any = None) -> dict[str, Any]:
    """The ML-BOM of ``results`` (a :class:`~governance.results.Results` or its dict) as JSON data.

    ``check_report`` (a :class:`~governance.policy.outcome.CheckReport`) adds the policy's
    outcomes as considerations and the verdict as properties.
    """
    doc = results.to_dict() if hasattr(results, "to_dict") else dict(results)
    check = check_report.to_dict() if check_report is not None else None
    text, data_refs = _base_bom(doc)
    bom = json.loads(text)
    task = str((doc.get("run") or {}).get("task") or "")
    card: dict[str, Any] = {
        "bom-ref": "model-card",
        "modelParameters": {
            "approach": {"type": "supervised"},
            **({"task": task} if task else {}),
            "datasets": [{"ref": ref} for ref, _, _ in data_refs],
        },
        "quantitativeAnalysis": {"performanceMetrics": _metrics(doc)},
        "considerations": _considerations(doc, check),
    }
    if check is not None:
        card["properties"] = [
            {"name": "governance:policy", "value": f"{check['policy']['name']} {check['policy']['version']}"},
            {"name": "governance:policy:sha256", "value": str(check["policy"]["sha256"])},
            {"name": "governance:verdict", "value": "PASSED" if check["passed"] else "FAILED"},
        ]
    bom["metadata"]["component"]["modelCard"] = card
    sensitive = [str(s) for s in (doc.get("subject") or {}).get("sensitive") or []]
    for component in bom.get("components", []):
        ref = component.get("bom-ref")
        match = next(((split, name) for r, split, name in data_refs if r == ref), None)
        if match is None:
            continue
        component["data"] = [
            {
                "type": "dataset",
                "name": match[1],
                "classification": f"{match[0]} split",
                **({"sensitiveData": sensitive} if sensitive else {}),
            }
        ]
    return bom
