"""The robustness audit for text models: accuracy and prediction flips under character noise.

ART has no text attacks, so text robustness is measured under natural perturbations from the
registry in :mod:`governance.text.perturb` (typos, case flips, whitespace) at several rates.
For each perturbation ``p`` and rate ``r``:
``robustness.<p>.rate_<r>.accuracy``, ``.accuracy_drop`` (clean − perturbed) and ``.flip_rate``
(share of rows whose predicted class changed), plus ``.worst_group_accuracy_drop`` over the
groups of every sensitive attribute. Each (perturbation, rate) draws from its own generator
seeded from the spec's seed, so results repeat.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import AfterValidator, Field

from governance._options import Float, Int, Options, Str
from governance.audit._inputs import class_indices, parse_audit_options, sample_frame
from governance.results import AuditSection, metric_id

if TYPE_CHECKING:
    from governance.audit.base import AuditContext

__all__ = ["TextRobustnessOptions", "run_text_robustness"]

NAME = "robustness"


def _known_perturbation(name: str) -> str:
    from governance.text.perturb import perturbation_names

    known = perturbation_names()
    if name not in known:
        raise ValueError(f"unknown perturbation {name!r}; expected one of {sorted(known)}")
    return name


class TextRobustnessOptions(Options):
    """``audits.robustness`` options for a text model."""

    perturbations: tuple[Annotated[Str, AfterValidator(_known_perturbation)], ...] = (
        "char_typo",
        "char_case",
        "whitespace",
    )
    #: Probability that each eligible character is changed.
    rates: tuple[Annotated[Float, Field(ge=0.0, le=1.0)], ...] = (0.05, 0.1, 0.2)
    #: Eval rows perturbed (seeded sample); None = all.
    max_rows: Annotated[Int, Field(ge=1)] | None = 300
    #: Groups smaller than this are listed but not used for worst_group_accuracy_drop.
    min_group_size: Annotated[Int, Field(ge=1)] = 10
    #: Perturbed examples kept in ``details`` per perturbation (highest rate).
    examples: Int = 3


def run_text_robustness(context: AuditContext) -> AuditSection:
    """The robustness section of a text model (see the module docstring)."""
    from governance.audit._groups import accuracy_by_group
    from governance.text.perturb import perturb

    started = time.perf_counter()
    opts = parse_audit_options(TextRobustnessOptions, context, NAME)
    handle: Any = context.model
    frame = sample_frame(context.data.eval, opts.max_rows, context.seed)
    texts = handle.texts(frame)
    y = class_indices(handle.classes, frame[context.data.label].tolist())
    clean_pred = handle.predict_proba_texts(texts).argmax(axis=1)
    clean = clean_pred == y
    clean_acc = float(clean.mean())

    metrics: dict[str, float | None] = {metric_id(NAME, "clean_accuracy"): clean_acc}
    curves: dict[str, list[dict[str, float]]] = {}
    group_rows: list[dict[str, Any]] = []
    examples: dict[str, list[dict[str, str]]] = {}
    for p_index, name in enumerate(opts.perturbations):
        for r_index, rate in enumerate(opts.rates):
            seed = context.seed * 1_000_003 + p_index * 1009 + r_index
            noisy = perturb(texts, name, rate, seed)
            pred = handle.predict_proba_texts(noisy).argmax(axis=1)
            correct = pred == y
            acc = float(correct.mean())
            flips = float((pred != clean_pred).mean())
            q = f"rate_{rate:g}"
            metrics[metric_id(NAME, name, q, "accuracy")] = acc
            metrics[metric_id(NAME, name, q, "accuracy_drop")] = clean_acc - acc
            metrics[metric_id(NAME, name, q, "flip_rate")] = flips
            curves.setdefault(name, []).append(
                {"level": rate, "accuracy": acc, "accuracy_drop": clean_acc - acc, "flip_rate": flips}
            )
            rows = accuracy_by_group(frame, context.data.sensitive, clean, correct)
            group_rows += [{"perturbation": name, "level": rate, **row} for row in rows]
            eligible = [r["accuracy_drop"] for r in rows if r["n"] >= opts.min_group_size]
            metrics[metric_id(NAME, name, q, "worst_group_accuracy_drop")] = (
                max(eligible) if eligible else None
            )
            if r_index == len(opts.rates) - 1:
                examples[name] = [
                    {"original": a, "perturbed": b} for a, b in list(zip(texts, noisy))[: opts.examples]
                ]
    return AuditSection(
        NAME,
        metrics=metrics,
        tables={
            "accuracy": [{"perturbation": p, **point} for p, points in curves.items() for point in points],
            "accuracy_by_group": group_rows,
        },
        details={
            "units": "rate: probability that each eligible character is changed",
            "norm": "character edits",
            "rows": len(texts),
            "curves": curves,
            "perturbations": list(opts.perturbations),
            "examples": examples,
            "note": "ART has no text attacks; natural character noise instead of adversarial search",
        },
        seconds=time.perf_counter() - started,
    )
