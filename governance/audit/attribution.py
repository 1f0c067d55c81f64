"""Attribution audit: which inputs drive the model, and how much of that is sensitive?

Integrated Gradients (Captum's definition, batched in :mod:`governance.audit._ig`) on a seeded
sample of the eval split. Attributions are taken for the logit of each example's *predicted*
class (option ``target``), so that they explain the decision the model made; the completeness
gap is measured on that same logit, where IG's axiom says
``sum(attributions) == f(x)[t] - f(baseline)[t]`` up to quadrature error.

Tabular attributions are summed over a category's one-hot columns back to the original feature
(IG is additive, so the sum is the attribution of the feature), then summarised as mean
absolute attribution overall and per sensitive group. ``attribution.sensitive_share`` is the
share of the total that falls on sensitive attributes that are model inputs and on their
proxies (declared in the spec, or detected by :mod:`governance.audit._proxies`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, get_args

import numpy as np
from pydantic import Field

from governance._options import Float, Int, Options, Str
from governance.audit._inputs import (
    encode,
    feature_groups,
    option_error,
    parse_audit_options,
    sample_frame,
    tabular_baseline,
)
from governance.audit._proxies import detect_proxies
from governance.audit.base import Audit
from governance.results import AuditSection, Finding, SectionStatus, Severity, metric_id

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from governance.audit.base import AuditContext, ModelHandle

__all__ = ["AttributionAudit", "AttributionOptions"]

NAME = "attribution"
Method = Literal["gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle"]
Engine = Literal["fast", "captum"]
METHODS: tuple[str, ...] = get_args(Method)
ENGINES: tuple[str, ...] = get_args(Engine)


class AttributionOptions(Options):
    """Options of the attribution audit (``audits.attribution`` in the spec).

    Defaults keep the German Credit audit within a few seconds; raise ``max_rows`` for tighter
    per-group figures.
    """

    #: Eval rows attributed (seeded sample); None = all.
    max_rows: Annotated[Int, Field(ge=1)] | None = 300
    n_steps: Annotated[Int, Field(ge=2)] = 50
    method: Method = "gausslegendre"
    #: "auto" (train mean for tabular, zeros for images), "mean" or "zeros".
    baseline: Literal["auto", "mean", "zeros"] = "auto"
    #: "predicted" or a class label (checked against the model's classes when the audit runs).
    target: Str = "predicted"
    #: "fast" (batched, Captum's maths) or "captum" (IntegratedGradients.attribute itself).
    engine: Engine = "fast"
    #: AUC at which a feature counts as a proxy of a sensitive attribute.
    proxy_threshold: Annotated[Float, Field(ge=0.5, le=1.0)] = 0.7
    top_k: Annotated[Int, Field(ge=1)] = 10
    infidelity_rows: Annotated[Int, Field(ge=0)] = 50
    infidelity_samples: Annotated[Int, Field(ge=1)] = 10
    #: Std of the Gaussian input perturbation for Captum's infidelity (encoded units).
    infidelity_sigma: Annotated[Float, Field(gt=0)] = 0.1
    #: Examples averaged into each class's heatmap (images).
    heatmap_examples: Annotated[Int, Field(ge=1)] = 8
    #: Single examples per class kept with their input for the report (images).
    heatmap_shown: Annotated[Int, Field(ge=0)] = 2


def _targets(handle: ModelHandle, logits: torch.Tensor, option: str, context: AuditContext) -> torch.Tensor:
    import torch

    if option == "predicted":
        return logits.argmax(dim=1)
    if option not in handle.classes:
        raise option_error(context, NAME, "target", f"expected 'predicted' or one of {list(handle.classes)}")
    return torch.full(
        (logits.shape[0],), handle.classes.index(option), dtype=torch.long, device=logits.device
    )


def _baseline(handle: ModelHandle, context: AuditContext, x: torch.Tensor, option: str) -> torch.Tensor:
    import torch

    if option == "zeros" or (option == "auto" and handle.kind != "tabular"):
        return torch.zeros_like(x)
    return tabular_baseline(handle, context.data.train, x)


def _attribute(
    module: torch.nn.Module,
    x: torch.Tensor,
    baseline: torch.Tensor,
    target: torch.Tensor,
    opts: AttributionOptions,
) -> torch.Tensor:
    if opts.engine == "captum":
        from captum.attr import IntegratedGradients

        out = IntegratedGradients(module).attribute(
            x, baseline, target=target, n_steps=opts.n_steps, method=opts.method
        )
        return out.detach()
    from governance.audit._ig import integrated_gradients

    return integrated_gradients(module, x, baseline, target, n_steps=opts.n_steps, method=opts.method)


def _infidelity(
    module: torch.nn.Module,
    x: torch.Tensor,
    attributions: torch.Tensor,
    target: torch.Tensor,
    mask: np.ndarray | None,
    opts: AttributionOptions,
    seed: int,
) -> float | None:
    """Captum's infidelity (normalised) under Gaussian perturbations of the movable inputs."""
    import torch
    from captum.metrics import infidelity

    k = min(opts.infidelity_rows, x.shape[0])
    if k == 0:
        return None
    generator = torch.Generator(device=x.device).manual_seed(seed)
    scale = torch.as_tensor(mask, device=x.device) if mask is not None else None

    def perturb(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        noise = torch.randn(inputs.shape, generator=generator, device=inputs.device) * opts.infidelity_sigma
        if scale is not None:
            noise = noise * scale
        return noise, inputs - noise

    with torch.no_grad():
        values = infidelity(
            module,
            perturb,
            x[:k],
            attributions[:k],
            target=target[:k],
            n_perturb_samples=opts.infidelity_samples,
            max_examples_per_batch=k,
            normalize=True,
        )
    return float(values.mean())


def _group_table(
    frame: pd.DataFrame, sensitive: tuple[str, ...], names: list[str], per_feature: np.ndarray
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for attr in sensitive:
        if attr not in frame.columns:
            continue
        groups = frame[attr].astype(str).to_numpy()
        for group in sorted(set(groups)):
            sel = groups == group
            imp = np.abs(per_feature[sel]).mean(axis=0)
            total = float(imp.sum()) or 1.0
            order = np.argsort(-imp, kind="stable")
            for rank, j in enumerate(order, start=1):
                rows.append(
                    {
                        "attribute": attr,
                        "group": group,
                        "n": int(sel.sum()),
                        "rank": rank,
                        "feature": names[j],
                        "mean_abs_attribution": float(imp[j]),
                        "share": float(imp[j]) / total,
                    }
                )
    return rows


def _as_images(values: np.ndarray, shape: tuple[int, ...] | None) -> np.ndarray:
    """(n, ...) → (n, H, W): reshaped to the image shape, channels summed (attributions add up)."""
    n = values.shape[0]
    if shape is not None and len(shape) == 3 and int(np.prod(shape)) == values[0].size:
        return values.reshape(n, *shape).sum(axis=1)
    if values.ndim == 4:  # (n, C, H, W) from a handle that encodes images already shaped
        return values.sum(axis=1)
    if values.ndim == 3:
        return values
    return values.reshape(n, 1, -1)  # unknown shape: one row of pixels


def _heatmaps(
    attributions: np.ndarray,
    inputs: np.ndarray,
    target: np.ndarray,
    classes: tuple[str, ...],
    shape: tuple[int, ...] | None,
    opts: AttributionOptions,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Per-class mean signed attribution maps, and a few single examples per class.

    Signed, not absolute: red (positive) pixels raise the predicted class's logit above the
    baseline's, blue ones lower it; for digits that separates the strokes that make a "3" from
    those that argue against it. Channels are summed (IG is additive). Classes are the
    *predicted* ones (the audit's ``target``). Values are rounded to 6 decimals for the JSON.
    """
    maps = _as_images(attributions, shape)
    pixels = _as_images(inputs, shape) / (shape[0] if shape is not None and len(shape) == 3 else 1)
    means: dict[str, Any] = {}
    examples: list[dict[str, Any]] = []
    for c, label in enumerate(classes):
        idx = np.flatnonzero(target == c)
        if len(idx) == 0:
            continue
        means[str(label)] = np.round(maps[idx[: opts.heatmap_examples]].mean(axis=0), 6).tolist()
        for i in idx[: opts.heatmap_shown]:
            examples.append(
                {
                    "class": str(label),
                    "row": int(i),
                    "input": np.round(pixels[i], 4).tolist(),
                    "attribution": np.round(maps[i], 6).tolist(),
                }
            )
    return means, examples


class AttributionAudit(Audit):
    """Integrated Gradients importance, sensitive share, proxies, completeness and infidelity."""

    name: ClassVar[str] = NAME

    def run(self, context: AuditContext) -> AuditSection:
        import torch

        if context.model is not None and context.model.kind == "text":
            from governance.audit._text_attribution import run_text_attribution

            return run_text_attribution(context)  # token-level audit, its own options
        started = time.perf_counter()
        opts = parse_audit_options(AttributionOptions, context, NAME)
        handle = context.model
        if handle is None:
            return AuditSection(NAME, status=SectionStatus.SKIPPED, reason="no model: predictions only")

        data = context.data
        frame = sample_frame(data.eval, opts.max_rows, context.seed)
        x = encode(handle, frame)
        module = handle.module
        module.eval()
        baseline = _baseline(handle, context, x, opts.baseline)
        with torch.no_grad():
            logits = module(x)
            base_logits = module(baseline)
        target = _targets(handle, logits, opts.target, context)
        attr = _attribute(module, x, baseline, target, opts)

        # Completeness on the target logit: sum(attr) vs f(x)[t] - f(b)[t].
        delta = (logits - base_logits).gather(1, target.view(-1, 1)).squeeze(1)
        gap = (attr.reshape(attr.shape[0], -1).sum(dim=1) - delta).abs()
        from governance.audit._inputs import perturbable_mask

        mask = perturbable_mask(handle, tuple(x.shape))
        infid = _infidelity(module, x, attr, target, mask, opts, context.seed)

        metrics: dict[str, float | None] = {
            metric_id(NAME, "completeness_gap"): float(gap.mean()),
            metric_id(NAME, "completeness_gap_max"): float(gap.max()) if len(gap) else None,
            metric_id(NAME, "completeness_gap_relative"): float(
                gap.mean() / delta.abs().mean().clamp_min(1e-12)
            ),
            metric_id(NAME, "infidelity"): infid,
            metric_id(NAME, "rows"): float(x.shape[0]),
        }
        tables: dict[str, list[dict[str, Any]]] = {}
        details: dict[str, Any] = {
            "method": f"integrated_gradients/{opts.method}",
            "n_steps": opts.n_steps,
            "target": opts.target,
            "baseline": opts.baseline
            if opts.baseline != "auto"
            else ("mean" if handle.kind == "tabular" else "zeros"),
            "completeness_on": "target-class logit",
            "engine": opts.engine,
        }
        findings: list[Finding] = []
        attr_np = attr.detach().cpu().numpy().reshape(attr.shape[0], -1)
        if handle.kind == "tabular":
            self._tabular(context, opts, frame, attr_np, metrics, tables, details, findings)
        else:
            metrics[metric_id(NAME, "sensitive_share")] = None
            details["sensitive_share_note"] = "sensitive attributes are not pixel inputs of an image model"
            shape = context.data.image_shape
            means, examples = _heatmaps(
                attr.detach().cpu().numpy(),
                x.detach().cpu().numpy(),
                target.cpu().numpy(),
                handle.classes,
                shape,
                opts,
            )
            details["heatmaps"] = means
            details["heatmap_examples"] = examples
            details["heatmap_info"] = {
                "image_shape": None if shape is None else list(shape),
                "value": "signed Integrated Gradients attribution to the predicted class, channels summed",
                "averaged_per_class": opts.heatmap_examples,
                "input_units": "pixel units (fraction of the brightest training pixel)",
            }
        return AuditSection(
            NAME,
            metrics=metrics,
            tables=tables,
            details=details,
            findings=tuple(findings),
            seconds=time.perf_counter() - started,
        )

    @staticmethod
    def _tabular(
        context: AuditContext,
        opts: AttributionOptions,
        frame: pd.DataFrame,
        attr_np: np.ndarray,
        metrics: dict[str, float | None],
        tables: dict[str, list[dict[str, Any]]],
        details: dict[str, Any],
        findings: list[Finding],
    ) -> None:
        assert context.model is not None
        data = context.data
        groups = feature_groups(context.model, attr_np.shape[1], data.features)
        names = list(groups)
        per_feature = np.stack([attr_np[:, list(cols)].sum(axis=1) for cols in groups.values()], axis=1)
        importance = np.abs(per_feature).mean(axis=0)
        total = float(importance.sum()) or 1.0

        reference = data.train if data.train is not None else data.eval
        proxies = detect_proxies(
            reference,
            [n for n in names if n in reference.columns],
            data.sensitive,
            data.proxies,
            threshold=opts.proxy_threshold,
            seed=context.seed,
        )
        sensitive_inputs = {n for n in names if n in data.sensitive}
        proxy_features = {p.feature for p in proxies if p.is_proxy and p.feature in groups}
        counted = sensitive_inputs | proxy_features
        index = {n: j for j, n in enumerate(names)}
        share = sum(float(importance[index[n]]) for n in counted) / total
        metrics[metric_id(NAME, "sensitive_share")] = share
        metrics[metric_id(NAME, "proxy_count")] = float(len(proxy_features))
        for attr in data.sensitive:
            mine = {p.feature for p in proxies if p.sensitive == attr and p.is_proxy and p.feature in groups}
            if attr in groups:
                mine.add(attr)
            metrics[metric_id(NAME, attr, "share")] = sum(float(importance[index[n]]) for n in mine) / total

        order = np.argsort(-importance, kind="stable")
        tables["importance"] = [
            {
                "rank": rank,
                "feature": names[j],
                "mean_abs_attribution": float(importance[j]),
                "share": float(importance[j]) / total,
                "sensitive": names[j] in sensitive_inputs,
                "proxy": names[j] in proxy_features,
            }
            for rank, j in enumerate(order, start=1)
        ]
        tables["importance_by_group"] = _group_table(frame, data.sensitive, names, per_feature)
        tables["proxies"] = [
            p.to_row() for p in sorted(proxies, key=lambda p: (p.sensitive, -np.nan_to_num(p.auc)))
        ]
        details["top_features"] = [names[j] for j in order[: opts.top_k]]
        details["top_features_by_group"] = {
            f"{row['attribute']}={row['group']}": [
                r["feature"]
                for r in tables["importance_by_group"]
                if r["attribute"] == row["attribute"]
                and r["group"] == row["group"]
                and r["rank"] <= opts.top_k
            ]
            for row in tables["importance_by_group"]
            if row["rank"] == 1
        }
        details["sensitive_features_counted"] = sorted(counted)
        for p in proxies:
            if p.is_proxy and not p.declared:
                findings.append(
                    Finding(
                        id=f"{NAME}.proxy.{p.sensitive}.{p.feature}",
                        severity=Severity.INFO,
                        message=(
                            f"feature {p.feature!r} predicts sensitive attribute {p.sensitive!r} "
                            f"(AUC {p.auc:.2f} >= {opts.proxy_threshold}); counted in attribution.sensitive_share"
                        ),
                        audit=NAME,
                    )
                )
