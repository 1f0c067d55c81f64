"""The performance audit: accuracy, balanced accuracy, precision, recall, F1, ROC AUC, confusion matrix.

All but ROC AUC come from the confusion matrix (one ``np.bincount``), with scikit-learn's
conventions, which stay the oracle in tests/audit/test_performance.py:

- binary tasks score the positive class (``positive_label``, default the last class); multiclass
  tasks macro-average over the classes that occur in ``y_true`` or ``y_pred`` (scikit-learn's
  ``labels=None``);
- a ratio with an empty denominator is 0 (``zero_division`` default);
- balanced accuracy averages recall over the classes present in ``y_true``.

ROC AUC is the Mann–Whitney statistic with ties counted half, computed from one sort; it is
``None`` when ``y_true`` has a single class (undefined), as scikit-learn raises there.
The audit runs on the eval split and, when there are train predictions, on train too; a train
accuracy above eval accuracy by more than ``max_gap`` is a finding (overfitting, and a
membership-inference risk).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
from pydantic import Field

from governance._options import Bool, Float, Label, Options, parse_options
from governance.audit._encode import class_codes
from governance.audit.base import Audit, AuditContext, Predictions
from governance.errors import InputError
from governance.results import AuditSection, Finding, Severity

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from governance.data.bundle import DataBundle
    from governance.spec import Spec

__all__ = [
    "PerformanceAudit",
    "PerformanceOptions",
    "confusion_matrix",
    "per_class_scores",
    "roc_auc",
    "scores_from_confusion",
]

DEFAULT_MAX_GAP = 0.1
WHERE = "audits.performance"


class PerformanceOptions(Options):
    """Options of the performance audit (``audits.performance`` in the spec)."""

    #: The positive class for binary scores (default: the last class).
    positive_label: Label | None = None
    #: A per-class recall gap above this is a finding.
    max_gap: Annotated[Float, Field(ge=0, le=1)] = DEFAULT_MAX_GAP
    #: Compare the model with the majority class and a logistic regression on the same split.
    baselines: Bool = True


def confusion_matrix(
    true_codes: NDArray[np.integer], pred_codes: NDArray[np.integer], k: int
) -> NDArray[np.int64]:
    """``(k, k)`` counts indexed ``[true, pred]``."""
    flat = np.bincount(true_codes.astype(np.int64) * k + pred_codes, minlength=k * k)
    return flat.reshape(k, k).astype(np.int64)


def _div(num: NDArray[np.float64], den: NDArray[np.float64]) -> NDArray[np.float64]:
    out = np.zeros(np.broadcast(num, den).shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def scores_from_confusion(cm: NDArray[np.integer], pos: int | None) -> dict[str, float]:
    """Accuracy, balanced accuracy, precision, recall, F1 from a confusion matrix.

    ``pos`` is the positive class index (binary); ``None`` means macro averages (multiclass).
    """
    c = cm.astype(np.float64)
    n = c.sum()
    tp = np.diag(c)
    actual = c.sum(axis=1)
    predicted = c.sum(axis=0)
    precision = _div(tp, predicted)
    recall = _div(tp, actual)
    f1 = _div(2 * tp, actual + predicted)
    present_true = actual > 0
    balanced = float(np.mean(recall[present_true])) if present_true.any() else float("nan")
    if pos is not None:
        chosen = {"precision": precision[pos], "recall": recall[pos], "f1": f1[pos]}
    else:
        present = present_true | (predicted > 0)
        chosen = {
            "precision": precision[present].mean(),
            "recall": recall[present].mean(),
            "f1": f1[present].mean(),
        }
    return {
        "accuracy": float(tp.sum() / n) if n else float("nan"),
        "balanced_accuracy": balanced,
        **{k: float(v) for k, v in chosen.items()},
    }


def per_class_scores(cm: NDArray[np.integer], names: tuple[str, ...]) -> list[dict[str, Any]]:
    """One row per class: precision, recall, F1 and support (true rows), as scikit-learn's
    ``precision_recall_fscore_support(average=None, zero_division=0)`` gives them."""
    c = cm.astype(np.float64)
    tp = np.diag(c)
    actual = c.sum(axis=1)
    predicted = c.sum(axis=0)
    precision = _div(tp, predicted)
    recall = _div(tp, actual)
    f1 = _div(2 * tp, actual + predicted)
    return [
        {
            "class": names[i],
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(actual[i]),
            "predicted": int(predicted[i]),
        }
        for i in range(len(names))
    ]


def roc_auc(y_positive: NDArray[np.bool_], scores: NDArray[np.floating]) -> float | None:
    """Area under the ROC curve of ``scores`` for the positive rows; None when one class only.

    Mann–Whitney: the share of (positive, negative) pairs ranked correctly, ties counting half.
    Equal to scikit-learn's ``roc_auc_score`` to 1e-15 (``tests/audit/test_performance.py``), and
    kept ours for one reason: the predictions-only audit runs on the core install, which has no
    scikit-learn, and never imports it (``tests/audit/test_runner.py::
    test_predictions_only_never_imports_torch``); importing it would also cost the 10M-row
    fairness benchmark about a second of its 5 s.
    """
    n_pos = int(y_positive.sum())
    n_neg = y_positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    _, inverse = np.unique(scores, return_inverse=True)
    pos_at = np.bincount(inverse, weights=y_positive.astype(np.float64))
    neg_at = np.bincount(inverse) - pos_at
    neg_below = np.cumsum(neg_at) - neg_at
    return float(np.sum(pos_at * (neg_below + 0.5 * neg_at)) / (n_pos * n_neg))


def _auc(pred: Predictions, true_codes: NDArray[np.integer], k: int) -> float | None:
    if pred.proba is not None and k > 2:
        per_class = [roc_auc(true_codes == c, pred.proba[:, c]) for c in range(k)]
        defined = [a for a in per_class if a is not None]
        return float(np.mean(defined)) if defined else None
    if pred.y_score is not None and k == 2:
        # y_score is the probability of the last class (the model's positive output).
        return roc_auc(true_codes == 1, np.asarray(pred.y_score, dtype=np.float64))
    return None


class PerformanceAudit(Audit):
    """Predictive performance on eval (and train, for the generalisation gap)."""

    name = "performance"
    requires_model = False

    def preflight(self, spec: Spec, data: DataBundle, options: Mapping[str, Any]) -> None:
        source = None if spec.source is None else str(spec.source)
        pos_label = parse_options(PerformanceOptions, options, source=source, where=WHERE).positive_label
        if data.classes:
            _positive(tuple(data.classes), pos_label, source)

    def run(self, context: AuditContext) -> AuditSection:
        source = None if context.spec.source is None else str(context.spec.source)
        opts = parse_options(PerformanceOptions, context.options, source=source, where=WHERE)
        pos_label, max_gap = opts.positive_label, opts.max_gap
        classes = tuple(context.data.classes) or tuple(context.eval_predictions.classes or ())
        if context.counted is not None:
            return _counted_section(context.counted.joint, pos_label, source)
        metrics: dict[str, float | None] = {}
        tables: dict[str, list[dict[str, Any]]] = {}
        splits = [("eval", context.eval_predictions), ("train", context.train_predictions)]
        per_split: dict[str, dict[str, float | None]] = {}
        pos: int | None = None
        for split, pred in splits:
            if pred is None:
                continue
            names, true_codes, pred_codes = class_codes(pred, classes)
            k = len(names)
            pos = _positive(names, pos_label, source)
            cm = confusion_matrix(true_codes, pred_codes, k)
            values: dict[str, float | None] = {
                m: _finite(v) for m, v in scores_from_confusion(cm, pos).items()
            }
            values["roc_auc"] = _auc(pred, true_codes, k)
            values["rows"] = float(len(true_codes))
            per_split[split] = values
            prefix = "performance" if split == "eval" else "performance.train"
            for m, v in values.items():
                if m == "roc_auc" and v is None and pred.y_score is None and pred.proba is None:
                    continue  # no scores: AUC is absent, not undefined
                metrics[f"{prefix}.{m}"] = v
            if split == "eval":
                # Per-class rows: an aggregate can hide one class the model fails (a digit, a
                # rare outcome); the worst class recall is the number a policy can hold.
                tables["per_class"] = per_class_scores(cm, names)
                present = [r for r in tables["per_class"] if r["support"] > 0]
                if k > 2 and present:
                    metrics["performance.worst_class.recall"] = min(r["recall"] for r in present)
                    metrics["performance.worst_class.f1"] = min(r["f1"] for r in present)
            tables[f"confusion_matrix_{split}"] = [
                {"true": names[i], "pred": names[j], "count": int(cm[i, j])}
                for i in range(k)
                for j in range(k)
            ]
        findings: list[Finding] = []
        if "train" in per_split:
            for m in ("accuracy", "balanced_accuracy", "f1"):
                tr, ev = per_split["train"][m], per_split["eval"][m]
                if tr is not None and ev is not None:
                    metrics[f"performance.train_eval_gap.{m}"] = tr - ev
            gap = metrics.get("performance.train_eval_gap.accuracy")
            if gap is not None and gap > max_gap:
                findings.append(
                    Finding(
                        id="performance.train_eval_gap",
                        severity=Severity.MINOR,
                        message=(
                            f"train accuracy exceeds eval accuracy by {gap:.3f} (> {max_gap}): the model may "
                            "overfit, which also raises membership-inference risk"
                        ),
                        audit="performance",
                    )
                )
        if opts.baselines:
            from governance.audit._baselines import assess_baselines

            names, true_codes, pred_codes = class_codes(context.eval_predictions, classes)
            assessed = assess_baselines(
                context.data, names, true_codes, pred_codes, _positive(names, pos_label, source), context.seed
            )
            metrics.update(assessed.metrics)
            tables["baselines"] = assessed.rows
            findings.extend(assessed.findings)
        tables["splits"] = [{"split": s, **v} for s, v in per_split.items()]
        return AuditSection(
            name="performance",
            metrics=metrics,
            tables=tables,
            details={
                "classes": list(classes),
                "positive_label": None if pos is None else classes[pos],
                "average": "binary" if pos is not None else "macro",
                "max_gap": max_gap,
            },
            findings=tuple(findings),
        )


def _finite(value: float) -> float | None:
    return value if np.isfinite(value) else None


def _counted_section(joint: Any, pos_label: str | None, source: str | None) -> AuditSection:
    """The performance section of a decision log counted by an engine (issue 17): every score from
    the confusion matrix, the joint counts summed over the groups. ROC AUC and the baselines need
    the rows and are left out (``details.not_computed`` says so)."""
    names = tuple(joint.classes)
    n_attr = len(joint.attributes)
    cm = np.asarray(joint.counts.sum(axis=tuple(range(n_attr))), dtype=np.int64)
    k = len(names)
    pos = _positive(names, pos_label, source)
    values: dict[str, float | None] = {m: _finite(v) for m, v in scores_from_confusion(cm, pos).items()}
    values["rows"] = float(cm.sum())
    metrics: dict[str, float | None] = {f"performance.{m}": v for m, v in values.items()}
    per_class = per_class_scores(cm, names)
    present = [r for r in per_class if r["support"] > 0]
    if k > 2 and present:
        metrics["performance.worst_class.recall"] = min(r["recall"] for r in present)
        metrics["performance.worst_class.f1"] = min(r["f1"] for r in present)
    tables: dict[str, list[dict[str, Any]]] = {
        "per_class": per_class,
        "confusion_matrix_eval": [
            {"true": names[i], "pred": names[j], "count": int(cm[i, j])} for i in range(k) for j in range(k)
        ],
        "splits": [{"split": "eval", **values}],
    }
    return AuditSection(
        name="performance",
        metrics=metrics,
        tables=tables,
        details={
            "classes": list(names),
            "positive_label": None if pos is None else names[pos],
            "average": "binary" if pos is not None else "macro",
            "not_computed": ["roc_auc", "baselines"],
            "why_not": "the decision log was counted by an engine; these need the rows in memory",
        },
    )


def _positive(classes: tuple[str, ...], label: str | None, source: str | None) -> int | None:
    if label is not None:
        if label not in classes:
            raise InputError(
                source,
                "audits.performance.positive_label",
                f"{label!r} is not one of the classes {list(classes)}",
            )
        return classes.index(label)
    return len(classes) - 1 if len(classes) <= 2 else None
