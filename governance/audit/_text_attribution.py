"""The attribution audit for text models: token attributions with Layer Integrated Gradients.

Attributions are taken on the embedding layer's output (Captum's LayerIntegratedGradients, or
the batched equivalent in :mod:`._layer_ig`) for the logit of each example's predicted class,
summed over the hidden dimension to one number per token.

Baseline: the input with every real token replaced by the tokenizer's ``[MASK]`` token
(``[UNK]`` if it has none); ``[CLS]``/``[SEP]`` and padding are kept. Keeping padding where it
is keeps the attention mask identical along the path, so ``f(baseline)`` in the completeness
check is the model at the path's start, and special tokens get exactly zero attribution.

Metrics: ``attribution.sensitive_share`` is the share of total |attribution| that falls on
identity-term tokens (the spec's ``term_column``, else any term of the identity lexicon in
:mod:`governance.text.identity`); ``attribution.completeness_gap`` is the mean
``|sum(attributions) - (f(x)[t] - f(baseline)[t])|``. A few examples go to ``details`` with
their tokens and attributions for the report's highlighted-token view.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

import numpy as np
from pydantic import Field

from governance._options import Int, Options, Str
from governance.audit._inputs import option_error, parse_audit_options, sample_frame
from governance.results import AuditSection, metric_id

if TYPE_CHECKING:
    import torch

    from governance.audit.base import AuditContext

__all__ = ["TextAttributionOptions", "run_text_attribution", "text_baseline"]

NAME = "attribution"
Method = Literal["gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle"]
METHODS: tuple[str, ...] = get_args(Method)


class TextAttributionOptions(Options):
    """``audits.attribution`` options for a text model."""

    #: Eval rows attributed (seeded sample); each costs ``n_steps`` forward+backward passes.
    max_rows: Annotated[Int, Field(ge=1)] | None = 32
    n_steps: Annotated[Int, Field(ge=2)] = 32
    method: Method = "gausslegendre"
    #: "predicted" or a class label.
    target: Str = "predicted"
    #: "fast" (batched, Captum's maths) or "captum" (LayerIntegratedGradients.attribute itself).
    engine: Literal["fast", "captum"] = "fast"
    #: Column holding each row's identity term (checked against the eval data when the audit runs);
    #: None = match the identity lexicon.
    term_column: Str | None = None
    #: Examples with tokens and attributions kept in ``details`` for the report.
    examples: Annotated[Int, Field(ge=0)] = 6


def text_baseline(ids: torch.Tensor, tokenizer: Any, pad_id: int) -> torch.Tensor:
    """Real tokens → ``[MASK]`` (or ``[UNK]``); special tokens and padding kept."""
    import torch

    fill = tokenizer.mask_token_id if tokenizer.mask_token_id is not None else tokenizer.unk_token_id
    special = torch.zeros_like(ids, dtype=torch.bool)
    for sid in tokenizer.all_special_ids:
        special |= ids == int(sid)
    special |= ids == pad_id
    return torch.where(special, ids, torch.full_like(ids, int(fill)))


def token_attributions(
    module: torch.nn.Module,
    layer: torch.nn.Module,
    ids: torch.Tensor,
    baseline: torch.Tensor,
    target: torch.Tensor,
    opts: TextAttributionOptions,
) -> torch.Tensor:
    """Attributions to ``layer``'s output, ``(n, length, hidden)``, by the chosen engine."""
    if opts.engine == "captum":
        from captum.attr import LayerIntegratedGradients

        out = LayerIntegratedGradients(module, layer).attribute(
            ids, baselines=baseline, target=target, n_steps=opts.n_steps, method=opts.method
        )
        return out.detach()
    from governance.audit._layer_ig import layer_integrated_gradients

    return layer_integrated_gradients(
        module, layer, ids, baseline, target, n_steps=opts.n_steps, method=opts.method
    )


def run_text_attribution(context: AuditContext) -> AuditSection:
    """The attribution section of a text model (see the module docstring)."""
    import torch

    from governance.text.identity import IDENTITY_TERMS, term_spans
    from governance.text.tokens import encode_texts, term_token_mask

    started = time.perf_counter()
    opts = parse_audit_options(TextAttributionOptions, context, NAME)
    if opts.term_column is not None and opts.term_column not in context.data.eval.columns:
        raise option_error(
            context, NAME, "term_column", f"expected a column of the eval data, got {opts.term_column!r}"
        )
    handle: Any = context.model
    frame = sample_frame(context.data.eval, opts.max_rows, context.seed)
    texts = handle.texts(frame)
    encoded = encode_texts(handle.tokenizer, texts, handle.max_length)
    ids = encoded.ids.to(handle.device)
    module = handle.module
    module.eval()
    baseline = text_baseline(ids, handle.tokenizer, handle.pad_id).to(handle.device)
    with torch.no_grad():
        logits = module(ids)
        base_logits = module(baseline)
    if opts.target == "predicted":
        target = logits.argmax(dim=1)
    elif opts.target in handle.classes:
        target = torch.full(
            (len(ids),), handle.classes.index(opts.target), dtype=torch.long, device=ids.device
        )
    else:
        raise option_error(context, NAME, "target", f"expected 'predicted' or one of {list(handle.classes)}")
    attr = token_attributions(module, handle.embedding_layer, ids, baseline, target, opts)
    per_token = attr.sum(dim=-1).detach().cpu().numpy().astype(np.float64)  # (n, length)

    delta = (logits - base_logits).gather(1, target.view(-1, 1)).squeeze(1).cpu().numpy()
    gap = np.abs(per_token.sum(axis=1) - delta)

    if opts.term_column is not None:
        terms = [[str(t)] if isinstance(t, str) and t else [] for t in frame[opts.term_column].tolist()]
        term_source = f"column {opts.term_column!r}"
    else:
        lexicon = [t for ts in IDENTITY_TERMS.values() for t in ts]
        terms = [lexicon] * len(texts)
        term_source = "identity lexicon (governance.text.identity)"
    spans = [term_spans(text, row_terms) for text, row_terms in zip(texts, terms)]
    on_term = np.asarray(term_token_mask(encoded.offsets, spans), dtype=bool)
    magnitude = np.abs(per_token)
    total = float(magnitude.sum())
    share = float(magnitude[on_term].sum()) / total if total > 0 else None

    metrics: dict[str, float | None] = {
        metric_id(NAME, "sensitive_share"): share,
        metric_id(NAME, "completeness_gap"): float(gap.mean()),
        metric_id(NAME, "completeness_gap_max"): float(gap.max()),
        metric_id(NAME, "completeness_gap_relative"): float(gap.mean() / max(np.abs(delta).mean(), 1e-12)),
        metric_id(NAME, "rows"): float(len(ids)),
    }
    row_share = np.where(
        magnitude.sum(axis=1) > 0,
        (magnitude * on_term).sum(axis=1) / np.maximum(magnitude.sum(axis=1), 1e-300),
        0.0,
    )
    group_rows: list[dict[str, Any]] = []
    for attr_name in context.data.sensitive:
        if attr_name not in frame.columns:
            continue
        groups = frame[attr_name].astype(str).to_numpy()
        for group in sorted(set(groups)):
            sel = groups == group
            group_rows.append(
                {
                    "attribute": attr_name,
                    "group": group,
                    "n": int(sel.sum()),
                    "sensitive_share": float(row_share[sel].mean()),
                    "mean_abs_attribution": float(magnitude[sel].sum(axis=1).mean()),
                }
            )
    tokens = handle.tokens(ids)
    examples = []
    for i in range(min(opts.examples, len(ids))):
        k = len(tokens[i])
        examples.append(
            {
                "row": int(frame.index[i]),
                "text": texts[i],
                "predicted": handle.classes[int(target[i])],
                "tokens": tokens[i],
                "attributions": [round(float(v), 6) for v in per_token[i, :k]],
                "identity_token": [bool(v) for v in on_term[i, :k]],
            }
        )
    details: dict[str, Any] = {
        "method": f"layer_integrated_gradients/{opts.method}",
        "layer": "embeddings",
        "n_steps": opts.n_steps,
        "target": opts.target,
        "baseline": "[MASK] for every real token; [CLS], [SEP] and padding kept",
        "completeness_on": "target-class logit",
        "engine": opts.engine,
        "sensitive_terms": term_source,
        "token_examples": examples,
    }
    return AuditSection(
        NAME,
        metrics=metrics,
        tables={"sensitive_share_by_group": group_rows},
        details=details,
        seconds=time.perf_counter() - started,
    )
