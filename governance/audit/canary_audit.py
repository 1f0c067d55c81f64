"""The canary part of the privacy audit (issue 18): the training ledger's canary scores turned into
Steinke et al.'s one-run ε lower bound, beside the claimed ε and the idealised figure for the same
setting; a blocking finding when the bound exceeds the claim.

The canaries themselves are inserted by the trainer (``governance.train.canaries``), which writes
their scores and, once the run is over, their inclusion bits into ``training.json``
(``privacy.canaries``); this module only reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from governance.errors import InputError
from governance.results import Finding, Severity, metric_id

if TYPE_CHECKING:
    from governance.spec import Spec

__all__ = ["canary_finding", "canary_row", "canary_section", "check_canary_spec"]

NAME = "privacy"
FIELD = "audits.privacy.canaries"


def check_canary_spec(spec: Spec) -> None:
    """Canaries audit a DP training run of this spec: refuse, before any training, a spec whose
    training they cannot go through."""
    where = spec.source or "spec"
    train = spec.train
    if train is None or train.privacy is None:
        raise InputError(where, FIELD, "canaries audit a DP training run; expected train.privacy")
    if train.max_physical_batch_size:
        raise InputError(
            where, FIELD, "canaries need whole logical batches; expected no train.max_physical_batch_size"
        )
    architecture = getattr(spec.model, "architecture", None)
    if architecture == "hf" or spec.task == "text_classification":
        raise InputError(where, FIELD, "canaries run in the tabular and image trainer; expected no hf model")
    if architecture == "cnn" and train.privacy.grad_sample_mode in ("auto", "fused"):
        raise InputError(
            where,
            FIELD,
            "canaries do not run through the fused-sequential CNN step yet; expected "
            "train.privacy.grad_sample_mode: fast, ghost or hooks",
        )


def canary_finding(claimed: float | None, bound: float, confidence: float) -> Finding | None:
    """Blocking when the canaries prove more privacy loss than the ledger claims."""
    if claimed is None or not bound > claimed:
        return None
    return Finding(
        id="privacy.canary_epsilon_exceeds_claim",
        severity=Severity.BLOCKING,
        message=(
            f"gradient canaries prove ε ≥ {bound:.3g} (confidence {confidence:.0%}) but the training "
            f"ledger claims ε = {claimed:.3g}: the DP implementation that trained this model is broken"
        ),
        audit=NAME,
    )


def canary_section(
    ledger_privacy: Mapping[str, Any], *, alpha: float
) -> tuple[dict[str, float | None], dict[str, Any], tuple[Finding, ...]]:
    """(metrics, details, findings) of the canary audit from the ledger's ``privacy`` block."""
    from governance.audit.canary_bound import one_run_bound, reference_bound

    canaries = ledger_privacy.get("canaries")
    if not canaries:
        finding = Finding(
            id="privacy.canaries_missing",
            severity=Severity.MAJOR,
            message=(
                "the spec asks for canaries but the model's training ledger has none: it was trained "
                "without them (train with this spec to audit the DP implementation)"
            ),
            audit=NAME,
        )
        return {}, {"requested": True, "present": False}, (finding,)
    claimed = ledger_privacy.get("epsilon")
    delta = float(ledger_privacy.get("delta") or 1e-5)
    bound = one_run_bound(canaries["scores"], canaries["included"], delta=delta, beta=alpha)
    count = int(canaries["count"])
    reference = None if claimed is None else reference_bound(float(claimed), delta, count, beta=alpha)
    release = bool(canaries.get("release_candidate", False))
    metrics: dict[str, float | None] = {
        metric_id(NAME, "canary", "epsilon_lower_bound"): bound.epsilon,
        metric_id(NAME, "canary", "count"): float(count),
        metric_id(NAME, "canary", "reference_bound"): reference,
        metric_id(NAME, "canary", "release_candidate"): 1.0 if release else 0.0,
    }
    details = {
        **bound.to_dict(),
        "claimed_epsilon": claimed,
        # What the game reaches for an honest mechanism at exactly the claimed (ε, δ) with this
        # many canaries: Steinke et al. 2023's idealised setting (their Fig. 2), simulated here.
        "reference_bound": reference,
        "reference": "Steinke, Nasr & Jagielski 2023, idealised Gaussian canaries at the claimed (ε, δ)",
        **{
            key: canaries.get(key)
            for key in (
                "kind",
                "gradient_norm",
                "layer",
                "engine",
                "sample_rate",
                "steps",
                "noise_multiplier",
                "rows_added",
                "batch_share",
                "release_candidate",
            )
        },
    }
    findings: list[Finding] = []
    exceeded = canary_finding(None if claimed is None else float(claimed), bound.epsilon, bound.confidence)
    if exceeded is not None:
        findings.append(exceeded)
    if not release:
        findings.append(
            Finding(
                id="privacy.canary_model_not_release_candidate",
                severity=Severity.MAJOR,
                message=(
                    "this model was trained with gradient canaries (the canary coordinates moved): it "
                    "audits the DP implementation and is not the release candidate "
                    "(audits.privacy.canaries.release_candidate: true says otherwise)"
                ),
                audit=NAME,
            )
        )
    return metrics, details, tuple(findings)


def canary_row(details: Mapping[str, Any]) -> dict[str, Any]:
    """The report's row: the bound beside the claimed ε and the idealised figure for the setting."""
    claimed = details.get("claimed_epsilon")
    bound = details.get("epsilon_lower_bound")
    return {
        "claimed ε": claimed,
        "canary ε lower bound": bound,
        "bound / claimed": None if not claimed or bound is None else bound / claimed,
        "idealised bound (Steinke et al. 2023)": details.get("reference_bound"),
        "canaries": details.get("canaries"),
        "guesses": details.get("guesses"),
        "correct": details.get("correct"),
        "confidence": details.get("confidence"),
        "engine": details.get("engine"),
        "batch share": details.get("batch_share"),
        "release candidate": details.get("release_candidate"),
    }
