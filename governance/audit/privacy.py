"""Privacy audit: the accountant's (ε, δ) and what a membership-inference attacker achieves.

Members are rows of the train split, non-members rows of the eval split (or of the
``nonmembers`` file: held-out rows of the training distribution, for specs whose eval split comes
from elsewhere, e.g. an identity-term template set, where the attack would otherwise partly
detect the change of distribution), balanced by a seeded subsample of the larger side (and
capped at ``max_rows`` each). Each side is split in two
halves, seeded: the *attack* half trains ART's ``MembershipInferenceBlackBox`` and picks the
loss attack's threshold; every reported rate is measured on the other, *evaluation* half.

Two attacks:

* ``loss_threshold`` (Yeom et al. 2018): score = −cross-entropy of the true label; members are
  fit better, so they score higher.
* ``black_box``: ART's ``MembershipInferenceBlackBox`` on the predicted probabilities and the
  label, with a seeded random-forest attack model.

``privacy.membership_inference.*`` reports the stronger attack (by AUC) and every attack under
its own name, each attack's ε bound at confidence 1 − α on its own.
``privacy.empirical_epsilon_lower_bound`` is the largest ε any attack proves *jointly* at
confidence 1 − α: taking the maximum of k bounds that each hold with probability 1 − α holds only
with 1 − kα (90% for two attacks at α = 0.05), so for this maximum every attack's bound is
recomputed at α/k (Bonferroni; see :mod:`governance.audit._mia`). When it exceeds the ledger's ε, the private training is
broken and a blocking finding says so.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from governance._options import Float, Int, Options, Str
from governance.audit._inputs import class_indices, parse_audit_options, sample_frame
from governance.audit._mia import (
    EpsilonBound,
    bootstrap_ci,
    empirical_epsilon,
    mia_auc,
    roc_curve,
    tpr_at_fpr,
)
from governance.audit.base import Audit
from governance.canary_options import CanaryOptions
from governance.results import AuditSection, Finding, SectionStatus, Severity, metric_id

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    import pandas as pd

    from governance.audit.base import AuditContext
    from governance.data.bundle import DataBundle
    from governance.spec import Spec

__all__ = ["PrivacyAudit", "PrivacyOptions", "epsilon_finding", "load_nonmembers", "nonmember_path"]

NAME = "privacy"
FPR_TARGETS = (0.001, 0.01)
ROC_GRID = np.logspace(-3, 0, 25)


class PrivacyOptions(Options):
    """Options of the privacy audit (``audits.privacy`` in the spec)."""

    #: Members and non-members each (after balancing); None = all.
    max_rows: Annotated[Int, Field(ge=20)] | None = 2000
    #: "rf" | "gb" | "lr": ART's attack model type for the black-box attack.
    attack_model: Literal["rf", "gb", "lr"] = "rf"
    #: Bootstrap resamples for the AUC and TPR confidence intervals.
    n_boot: Annotated[Int, Field(ge=0)] = 200
    #: 1 − confidence of the intervals and of the empirical ε bound.
    alpha: Annotated[Float, Field(gt=0, lt=1)] = 0.05
    #: δ for the empirical ε bound when the ledger has none.
    delta: Annotated[Float, Field(gt=0, lt=1)] = 1e-5
    #: A table (CSV/Parquet/JSONL, relative to the spec) of rows drawn like the train split but
    #: never trained on; non-members come from it instead of the eval split.
    nonmembers: Str | None = None
    #: Issue 18: gradient canaries in the training run (governance.train.canaries), scored into
    #: Steinke et al.'s one-run ε lower bound (governance.audit.canary_bound).
    canaries: CanaryOptions | None = None


def nonmember_path(spec: Spec, options: Mapping[str, Any]) -> Path | None:
    """The ``nonmembers`` file of the spec's privacy options, resolved against the spec's folder."""
    from pathlib import Path

    value = options.get("nonmembers")
    if not isinstance(value, str) or not value:
        return None
    path = Path(value)
    if not path.is_absolute() and spec.source is not None:
        path = Path(spec.source).resolve().parent / path
    return path


def load_nonmembers(spec: Spec, data: DataBundle, options: Mapping[str, Any]) -> pd.DataFrame | None:
    """The ``nonmembers`` rows, checked: the label and every model input column present, labels
    the model knows, and no row that is also a train row (it would be a member)."""
    from governance.data.loading import _as_strings, _reject_non_finite, read_table
    from governance.errors import InputError

    path = nonmember_path(spec, options)
    if path is None:
        if options.get("nonmembers") is not None:
            raise InputError(spec.source or "spec", f"audits.{NAME}.nonmembers", "expected a file path")
        return None
    where = spec.source or path
    field = f"audits.{NAME}.nonmembers"
    try:
        frame = read_table(path)
    except InputError as exc:
        raise InputError(where, field, f"{path}: {exc.message}") from None
    inputs = (data.text,) if data.text else data.features
    missing = [c for c in (data.label, *inputs) if c and c not in frame.columns]
    if missing:
        raise InputError(
            where, field, f"{path} lacks column {missing[0]!r}; expected the train split's columns"
        )
    for column in (data.label, *(c for c in data.numeric if c in frame.columns)):
        try:
            _reject_non_finite(frame[column], path, column)
        except InputError as exc:
            raise InputError(where, field, f"{path}: {column}: {exc.message}") from None
    frame = frame.copy()
    frame[data.label] = _as_strings(frame[data.label])
    unknown = sorted(set(frame[data.label].dropna()) - set(data.classes))
    if unknown or frame[data.label].isna().any():
        bad = unknown[0] if unknown else "a missing value"
        raise InputError(
            where, field, f"{path}: label {bad!r} not in the model's labels {list(data.classes)}"
        )
    if data.train is not None:
        keys = [c for c in (*inputs, data.label) if c]
        seen = set(map(tuple, data.train[keys].astype(str).itertuples(index=False)))
        overlap = sum(tuple(row) in seen for row in frame[keys].astype(str).itertuples(index=False))
        if overlap:
            raise InputError(
                where, field, f"{path}: {overlap} rows are also train rows; non-members must be unseen"
            )
    return frame


def results_scope(
    ledger_privacy: Mapping[str, Any], context: AuditContext, *, mia_runs: bool
) -> dict[str, Any]:
    """The ledger's ``privacy.scope`` plus ``report``: the train-split figures these results show.

    ``outside`` (what the model folder publishes) comes from the ledger; a ledger that predates
    the scope gets one item saying so, since what it published is not recorded.
    """
    scope = dict(ledger_privacy.get("scope") or {})
    if "outside" not in scope:
        scope["outside"] = [
            {
                "name": "unrecorded",
                "where": "model folder",
                "columns": [],
                "detail": "the training ledger predates privacy.scope: what it published is not recorded",
            }
        ]
    report = []
    if "data_quality" in context.spec.audits and context.data.train is not None:
        report.append(
            {
                "name": "data_quality",
                "where": "results.json, report",
                "columns": [],
                "detail": "data-quality statistics of the train split (duplicate, missing and overlap "
                "rates, group shares, label-rate gaps, findings)",
            }
        )
    if mia_runs:
        report.append(
            {
                "name": "privacy.membership_inference",
                "where": "results.json, report",
                "columns": [],
                "detail": "membership-inference scores of a sample of train rows (AUC, TPR at low FPR, "
                "ROC, the empirical ε lower bound)",
            }
        )
    scope["report"] = report
    return scope


def epsilon_finding(claimed: float | None, empirical: float, alpha: float) -> Finding | None:
    """A blocking finding when an attack proves more privacy loss than the accountant claims."""
    if claimed is None or not empirical > claimed:
        return None
    return Finding(
        id="privacy.empirical_epsilon_exceeds_claim",
        severity=Severity.BLOCKING,
        message=(
            f"membership inference proves ε ≥ {empirical:.3g} (confidence {1 - alpha:.0%}) but the "
            f"training ledger claims ε = {claimed:.3g}: the private training is broken"
        ),
        audit=NAME,
    )


def _canary_tables(details: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    if "epsilon_lower_bound" not in details:
        return {}
    from governance.audit.canary_audit import canary_row

    return {"canaries": [canary_row(details)]}


def _epsilon_bound(
    m: np.ndarray,
    nm: np.ndarray,
    select: tuple[np.ndarray, np.ndarray] | None,
    delta: float,
    alpha: float,
    seed: int,
) -> EpsilonBound:
    """One attack's empirical ε lower bound at confidence 1 − ``alpha``."""
    if select is None:
        # No separate selection scores (the black-box attack model was fit on the attack
        # halves): split the evaluation scores, pick the threshold on one part, bound on the other.
        rng = np.random.default_rng(seed)
        pm, pn = rng.permutation(len(m)), rng.permutation(len(nm))
        hm, hn = len(m) // 2, len(nm) // 2
        return empirical_epsilon(m[pm[:hm]], nm[pn[:hn]], m[pm[hm:]], nm[pn[hn:]], delta=delta, alpha=alpha)
    return empirical_epsilon(select[0], select[1], m, nm, delta=delta, alpha=alpha)


def _attack_model(kind: str, seed: int) -> Any:
    if kind == "gb":
        from sklearn.ensemble import GradientBoostingClassifier

        return GradientBoostingClassifier(random_state=seed)
    if kind == "lr":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(max_iter=1000)
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(n_estimators=100, min_samples_leaf=5, random_state=seed, n_jobs=1)


def _black_box_scores(
    proba: dict[str, np.ndarray],
    labels: dict[str, np.ndarray],
    n_classes: int,
    opts: PrivacyOptions,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """ART's MembershipInferenceBlackBox: fit on the attack halves, member probabilities on the rest."""
    from art.attacks.inference.membership_inference import MembershipInferenceBlackBox
    from art.estimators.classification import BlackBoxClassifier

    def no_queries(x: np.ndarray) -> np.ndarray:  # predictions are passed in; never called
        raise RuntimeError("the membership attack must use the precomputed predictions")

    estimator = BlackBoxClassifier(no_queries, (n_classes,), n_classes)
    attack = MembershipInferenceBlackBox(
        estimator, input_type="prediction", attack_model_type=opts.attack_model
    )
    # ART builds its attack model unseeded; swap in a seeded one of the same type so that
    # results.json repeats. (Passing it as attack_model= trips ART's `if self.attack_model:`,
    # which calls len() on an unfitted sklearn ensemble.)
    attack.attack_model = _attack_model(opts.attack_model, seed)
    onehot = {k: np.eye(n_classes, dtype=np.float32)[v] for k, v in labels.items()}
    attack.fit(
        y=onehot["m_fit"],
        pred=proba["m_fit"],
        test_y=onehot["n_fit"],
        test_pred=proba["n_fit"],
    )

    def infer(part: str) -> np.ndarray:
        out = attack.infer(None, onehot[part], pred=proba[part], probabilities=True)
        return np.asarray(out, dtype=np.float64).reshape(len(proba[part]), -1)[:, -1]

    return infer("m_eval"), infer("n_eval")


class PrivacyAudit(Audit):
    """Ledger ε/δ, loss-threshold and ART black-box membership inference, empirical ε."""

    name: ClassVar[str] = NAME

    def preflight(self, spec: Spec, data: DataBundle, options: Mapping[str, Any]) -> None:
        load_nonmembers(spec, data, options)
        if options.get("canaries") is not None:
            from governance.audit.canary_audit import check_canary_spec

            check_canary_spec(spec)

    def input_files(self, spec: Spec, options: Mapping[str, Any]) -> tuple[Path, ...]:
        path = nonmember_path(spec, options)
        return () if path is None else (path,)

    def run(self, context: AuditContext) -> AuditSection:
        started = time.perf_counter()
        opts = parse_audit_options(PrivacyOptions, context, NAME)
        metrics: dict[str, float | None] = {}
        ledger_privacy = (context.ledger or {}).get("privacy") or {}
        claimed = ledger_privacy.get("epsilon")
        delta = float(ledger_privacy.get("delta") or opts.delta)
        handle, data = context.model, context.data
        mia_runs = handle is not None and data.train is not None
        scope = results_scope(ledger_privacy, context, mia_runs=mia_runs)
        if ledger_privacy:
            metrics[metric_id(NAME, "epsilon")] = None if claimed is None else float(claimed)
            metrics[metric_id(NAME, "delta")] = float(ledger_privacy["delta"])
            # A ledger without noise_source predates OS-entropy noise: its noise came from the seed.
            seeded = ledger_privacy.get("noise_source", "seeded") != "os-entropy"
            metrics[metric_id(NAME, "noise_seeded")] = 1.0 if seeded else 0.0
            metrics[metric_id(NAME, "scope", "outside_count")] = float(len(scope["outside"]))
            metrics[metric_id(NAME, "scope", "report_count")] = float(len(scope["report"]))
        canary_findings: tuple[Finding, ...] = ()
        canary_details: dict[str, Any] = {}
        if opts.canaries is not None:
            from governance.audit.canary_audit import canary_section

            canary_metrics, canary_details, canary_findings = canary_section(ledger_privacy, alpha=opts.alpha)
            metrics.update(canary_metrics)
        if handle is None or data.train is None:
            reason = "no model: predictions only" if handle is None else "no train split: no members to test"
            details = {"scope": scope} if ledger_privacy else {}
            if canary_details:
                details["canaries"] = canary_details
            return AuditSection(
                NAME,
                status=SectionStatus.SKIPPED,
                metrics=metrics,
                reason=reason,
                details=details,
                findings=canary_findings,
                tables=_canary_tables(canary_details),
            )

        held_out = load_nonmembers(context.spec, data, context.options)
        pool = data.eval if held_out is None else held_out
        n = min(len(data.train), len(pool), opts.max_rows or 10**12)
        members = sample_frame(data.train, n, context.seed)
        nonmembers = sample_frame(pool, n, context.seed + 1)
        proba, labels = self._halves(handle, members, nonmembers, data.label, context.seed)

        # Loss attack: score = log p(true label); its threshold is picked on the attack halves.
        def loss_score(part: str) -> np.ndarray:
            p = proba[part][np.arange(len(labels[part])), labels[part]]
            return np.log(np.clip(p.astype(np.float64), 1e-12, 1.0))

        scores: dict[str, tuple[np.ndarray, np.ndarray]] = {
            "loss_threshold": (loss_score("m_eval"), loss_score("n_eval")),
            "black_box": _black_box_scores(proba, labels, len(handle.classes), opts, context.seed),
        }
        selection = {"loss_threshold": (loss_score("m_fit"), loss_score("n_fit"))}

        rows: list[dict[str, Any]] = []
        roc: dict[str, list[dict[str, float]]] = {}
        joint: list[float] = []
        for attack, (m, nm) in scores.items():
            row = self._attack_row(attack, m, nm, selection.get(attack), delta, opts, context.seed)
            rows.append(row)
            bound = _epsilon_bound(
                m, nm, selection.get(attack), delta, opts.alpha / len(scores), context.seed
            )
            joint.append(bound.epsilon if math.isfinite(bound.epsilon) else math.inf)
            fpr, tpr, _ = roc_curve(m, nm)
            roc[attack] = [{"fpr": float(f), "tpr": float(tpr[fpr <= f + 1e-12].max())} for f in ROC_GRID]
            for key in ("auc", "tpr_at_fpr_0.001", "tpr_at_fpr_0.01", "epsilon_lower_bound"):
                metrics[metric_id(NAME, "membership_inference", attack, key)] = row[key]

        strongest = max(rows, key=lambda r: r["auc"])
        for key in ("auc", "auc_ci_low", "auc_ci_high", "tpr_at_fpr_0.001", "tpr_at_fpr_0.01"):
            metrics[metric_id(NAME, "membership_inference", key)] = strongest[key]
        eps_lb = max(joint)
        metrics[metric_id(NAME, "empirical_epsilon_lower_bound")] = eps_lb if math.isfinite(eps_lb) else None
        finding = epsilon_finding(None if claimed is None else float(claimed), eps_lb, opts.alpha)
        return AuditSection(
            NAME,
            metrics=metrics,
            tables={"membership_inference": rows, **_canary_tables(canary_details)},
            details={
                "strongest_attack": strongest["attack"],
                "roc": roc,
                "members": n,
                "nonmember_source": "eval split" if held_out is None else str(opts.nonmembers),
                "evaluated_per_side": len(scores["loss_threshold"][0]),
                "delta_for_bound": delta,
                "confidence": 1 - opts.alpha,
                # The headline bound is a maximum over the attacks: each at α/k (Bonferroni).
                "bound_confidence_per_attack": 1 - opts.alpha / len(scores),
                "accountant": ledger_privacy.get("accountant"),
                **({"scope": scope} if ledger_privacy else {}),
                **({"canaries": canary_details} if canary_details else {}),
            },
            findings=(() if finding is None else (finding,)) + canary_findings,
            seconds=time.perf_counter() - started,
        )

    @staticmethod
    def _halves(
        handle: Any, members: pd.DataFrame, nonmembers: pd.DataFrame, label: str, seed: int
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Predicted probabilities and label indices for the fit/eval halves of each side."""
        rng = np.random.default_rng(seed)
        proba: dict[str, np.ndarray] = {}
        labels: dict[str, np.ndarray] = {}
        for side, frame in (("m", members), ("n", nonmembers)):
            p = np.asarray(handle.predict_proba(frame), dtype=np.float32)
            y = class_indices(handle.classes, frame[label].tolist())
            order = rng.permutation(len(frame))
            half = len(frame) // 2
            for part, idx in (("fit", order[:half]), ("eval", order[half:])):
                proba[f"{side}_{part}"], labels[f"{side}_{part}"] = p[idx], y[idx]
        return proba, labels

    @staticmethod
    def _attack_row(
        attack: str,
        m: np.ndarray,
        nm: np.ndarray,
        select: tuple[np.ndarray, np.ndarray] | None,
        delta: float,
        opts: PrivacyOptions,
        seed: int,
    ) -> dict[str, Any]:
        auc = mia_auc(m, nm)
        row: dict[str, Any] = {"attack": attack, "members": len(m), "nonmembers": len(nm), "auc": auc}
        if opts.n_boot:
            row["auc_ci_low"], row["auc_ci_high"] = bootstrap_ci(
                m, nm, "auc", n_boot=opts.n_boot, level=1 - opts.alpha, seed=seed
            )
        else:
            row["auc_ci_low"] = row["auc_ci_high"] = None
        for target in FPR_TARGETS:
            key = f"tpr_at_fpr_{target:g}"
            row[key] = tpr_at_fpr(m, nm, target)
            if opts.n_boot:
                row[f"{key}_ci_low"], row[f"{key}_ci_high"] = bootstrap_ci(
                    m,
                    nm,
                    "tpr_at_fpr",
                    n_boot=opts.n_boot,
                    level=1 - opts.alpha,
                    seed=seed,
                    target_fpr=target,
                )
        bound = _epsilon_bound(m, nm, select, delta, opts.alpha, seed)
        row["epsilon_lower_bound"] = bound.epsilon if math.isfinite(bound.epsilon) else None
        row["threshold"] = bound.threshold
        row["false_positives"], row["false_negatives"] = bound.false_positives, bound.false_negatives
        return row
