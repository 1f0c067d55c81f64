"""The compression audit: what int8 quantization and pruning cost, overall and for each group.

Models ship compressed, and compression does not cost every group alike (Hooker et al. 2020,
"Characterising Bias in Compressed Models": the rows a compressed model decides differently, the
compression-identified exemplars, concentrate in small groups). Each variant is built from the
audited model, run on the eval rows, saved, and timed; nothing is estimated:

- ``fp32``: the model as trained, the reference of every comparison;
- ``int8``: dynamic quantization of the Linear layers (int8 weights, activations quantized per
  batch) with torchao's ``Int8DynamicActivationInt8WeightConfig``; PyTorch's
  ``torch.ao.quantization.quantize_dynamic`` only where torchao cannot run (not installed, or it
  raises on the model); the section says which ran. Embeddings and normalisation layers stay fp32;
- ``prune_50``, ``prune_90``: global L1 magnitude pruning of the Linear and Conv2d weights
  (``torch.nn.utils.prune.global_unstructured``), made permanent.

Per variant: the size of its safetensors file as written (int8 weights as int8 plus scales,
pruned weights in CSR form where that is smaller than dense), the per-row latency at batch 1 and
batch 256 (p50 and p95 over timed calls after warm-up, at a fixed thread count), and the paired
comparison with fp32 on the same rows (:mod:`governance.audit.paired`): accuracy drop, worst
group's drop, disagreement rate and McNemar's test per group.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import Field

from governance._options import Float, Int, Options
from governance._options import parse_options as _parse
from governance.audit.base import Audit, AuditContext
from governance.errors import InputError
from governance.results import AuditSection, Finding, Severity

if TYPE_CHECKING:
    import torch
    from torch import nn

    from governance.data.bundle import DataBundle
    from governance.spec import Spec

__all__ = ["VARIANTS", "CompressionAudit", "CompressionOptions", "compress", "serialized_size"]

VariantName = Literal["fp32", "int8", "prune_50", "prune_90"]


class CompressionOptions(Options):
    """``audits.compression`` options."""

    #: Variants compared with fp32 (fp32 itself is always measured: it is the reference).
    variants: tuple[VariantName, ...] = ("int8", "prune_50", "prune_90")
    #: Batch sizes at which per-row latency is measured.
    latency_batches: tuple[Annotated[Int, Field(ge=1, le=1_000_000)], ...] = Field(
        default=(1, 256), min_length=1
    )
    #: Timed calls per batch size (after ``warmup`` untimed ones); large batches take fewer, at
    #: least 5 and about 2,048 rows' worth (see ``_calls``).
    latency_calls: Int = Field(default=50, ge=5, le=10_000)
    warmup: Int = Field(default=5, ge=0, le=1_000)
    #: Threads for every timed call (latency depends on it more than on anything else).
    threads: Int = Field(default=1, ge=1, le=256)
    #: Finding when a variant's worst-group accuracy drop exceeds this.
    max_worst_group_drop: Float = Field(default=0.02, ge=0.0, le=1.0)
    n_boot: Int = Field(default=1000, ge=0, le=100_000)


def parse_options(raw: Mapping[str, Any] | None, source: str | Path | None) -> CompressionOptions:
    return _parse(CompressionOptions, raw, source=source, where="audits.compression")


@dataclass(frozen=True)
class Variant:
    """A compressed copy of the model and how it was made."""

    name: str
    module: Any
    method: str


def _fp32(module: nn.Module) -> tuple[nn.Module, str]:
    import copy

    return copy.deepcopy(module).eval(), "the model as trained (fp32)"


def _int8(module: nn.Module) -> tuple[nn.Module, str]:
    import copy

    import torch
    from torch import nn

    model = copy.deepcopy(module).eval()
    # torchao logs a warning per CUDA kernel library it cannot load on a CPU-only machine.
    for name in ("torchao", "torch.utils._pytree"):  # and torchao's import trips torch's pytree deprecations
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        import torchao
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, quantize_

        quantize_(
            model,
            Int8DynamicActivationInt8WeightConfig(),
            filter_fn=lambda layer, _fqn: isinstance(layer, nn.Linear),
        )
        return model, f"torchao {torchao.__version__} Int8DynamicActivationInt8WeightConfig (Linear layers)"
    except Exception as exc:  # torchao missing or unable to handle this model: PyTorch's own path
        reason = f"{exc.__class__.__name__}: {exc}".splitlines()[0][:160]
        model = copy.deepcopy(module).eval()
        quantized = torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)
        return quantized, f"torch.ao.quantization.quantize_dynamic (Linear layers; torchao: {reason})"


def _pruned(amount: float) -> Callable[[nn.Module], tuple[nn.Module, str]]:
    def build(module: nn.Module) -> tuple[nn.Module, str]:
        import copy

        from torch import nn
        from torch.nn.utils import prune

        model = copy.deepcopy(module).eval()
        targets = [
            (layer, "weight")
            for layer in model.modules()
            if isinstance(layer, nn.Linear | nn.Conv2d) and layer.weight is not None
        ]
        if targets:
            prune.global_unstructured(targets, pruning_method=prune.L1Unstructured, amount=amount)
            for layer, name in targets:
                prune.remove(layer, name)
        return model, f"global L1 magnitude pruning of {amount:.0%} of the Linear/Conv2d weights"

    return build


#: Variant name → builder returning (compressed copy, what was done). fp32 is the reference.
VARIANTS: dict[str, Callable[[nn.Module], tuple[nn.Module, str]]] = {
    "fp32": _fp32,
    "int8": _int8,
    "prune_50": _pruned(0.5),
    "prune_90": _pruned(0.9),
}


def compress(module: nn.Module, name: str) -> Variant:
    """Build one variant of ``module`` (a copy; the module itself is left as it is)."""
    built, method = VARIANTS[name](module)
    return Variant(name=name, module=built, method=method)


def _storage_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors a deployment of ``module`` stores: quantized weights as their integer data and
    scales, pruned weights in CSR form where it is smaller than the dense tensor."""
    import torch

    out: dict[str, torch.Tensor] = {}
    for key, value in module.state_dict().items():
        if not isinstance(value, torch.Tensor):
            continue  # quantize_dynamic keeps dtypes and packing flags in the state dict
        names = getattr(value, "tensor_data_names", None)
        if names:  # a torchao tensor subclass: its plain component tensors
            for name in names:
                out[f"{key}.{name}"] = getattr(value, name).detach().contiguous()
            continue
        if value.is_quantized:
            out[f"{key}.int_repr"] = value.int_repr().contiguous()
            if value.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
                out[f"{key}.scales"] = value.q_per_channel_scales().float().contiguous()
                out[f"{key}.zero_points"] = value.q_per_channel_zero_points().to(torch.int32).contiguous()
            else:
                out[f"{key}.scale"] = torch.tensor([value.q_scale()], dtype=torch.float32)
            continue
        tensor = value.detach()
        if tensor.dim() >= 2 and tensor.is_floating_point():
            matrix = tensor.reshape(tensor.shape[0], -1)
            nnz = int(torch.count_nonzero(matrix))
            csr_bytes = nnz * (matrix.element_size() + 4) + (matrix.shape[0] + 1) * 4
            if csr_bytes < matrix.numel() * matrix.element_size():
                from scipy.sparse import csr_matrix

                csr = csr_matrix(matrix.cpu().numpy())
                out[f"{key}.csr_values"] = torch.from_numpy(csr.data.copy())
                out[f"{key}.csr_col_indices"] = torch.from_numpy(csr.indices.astype(np.int32))
                out[f"{key}.csr_crow_indices"] = torch.from_numpy(csr.indptr.astype(np.int32))
                out[f"{key}.csr_shape"] = torch.tensor(list(tensor.shape), dtype=torch.int64)
                continue
        out[key] = tensor.contiguous()
    # quantize_dynamic's packed Linear weights live outside state_dict() tensors
    for name, layer in module.named_modules():
        packed = getattr(layer, "_packed_params", None)
        if packed is not None and hasattr(packed, "_weight_bias"):
            weight, bias = packed._weight_bias()
            prefix = f"{name}." if name else ""
            out[f"{prefix}weight.int_repr"] = weight.int_repr().contiguous()
            if weight.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric):
                out[f"{prefix}weight.scales"] = weight.q_per_channel_scales().float().contiguous()
            else:
                out[f"{prefix}weight.scale"] = torch.tensor([weight.q_scale()], dtype=torch.float32)
            if bias is not None:
                out[f"{prefix}bias"] = bias.detach().contiguous()
    return out


def serialized_size(module: nn.Module, path: Path) -> int:
    """Write ``module`` as a deployment would store it (safetensors) and return the file's size."""
    from safetensors.torch import save_file

    save_file(_storage_tensors(module), str(path))
    return path.stat().st_size


@contextmanager
def _threads(n: int) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _latency_per_row_ms(
    module: nn.Module, inputs: torch.Tensor, batch: int, calls: int, warmup: int
) -> tuple[float, float]:
    """p50 and p95 of the per-row time (ms) of ``calls`` forward passes of ``batch`` rows."""
    import torch

    n = len(inputs)
    reps = -(-batch // max(n, 1))
    pool = inputs.repeat((reps,) + (1,) * (inputs.dim() - 1)) if reps > 1 else inputs
    times = []
    with torch.inference_mode():
        for i in range(warmup + calls):
            start = (i * batch) % max(len(pool) - batch + 1, 1)
            chunk = pool[start : start + batch]
            t0 = time.perf_counter()
            module(chunk)
            elapsed = time.perf_counter() - t0
            if i >= warmup:
                times.append(elapsed / batch * 1000.0)
    p50, p95 = np.percentile(np.asarray(times), [50, 95])
    return float(p50), float(p95)


def _calls(calls: int, batch: int) -> int:
    """Timed calls at ``batch`` rows: ``calls`` for small batches, fewer for large ones.

    Per-row latency of a large batch varies far less between calls than a single row's, and a
    transformer at batch 256 costs seconds a call: about 2,048 timed rows per batch size is
    enough for its p95, and never fewer than 5 calls.
    """
    return max(5, min(calls, 2048 // max(batch, 1)))


def _predict_codes(module: nn.Module, inputs: torch.Tensor, chunk: int = 4096) -> np.ndarray:
    import torch

    out = []
    with torch.inference_mode():
        for start in range(0, len(inputs), chunk):
            out.append(module(inputs[start : start + chunk]).argmax(dim=1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


class CompressionAudit(Audit):
    """Accuracy, size and latency of int8 and pruned variants, with the cost to each group."""

    name = "compression"

    def preflight(self, spec: Spec, data: DataBundle, options: Mapping[str, Any]) -> None:
        parsed = parse_options(options, spec.source)
        deployed = spec.deployment.variant if spec.deployment is not None else None
        if deployed not in (None, "fp32", *parsed.variants):
            raise InputError(
                spec.source,
                "deployment.variant",
                f"{deployed!r} is not among audits.compression.variants {list(parsed.variants)}",
            )

    def run(self, context: AuditContext) -> AuditSection:
        import tempfile

        from governance.audit._encode import class_codes, group_codes
        from governance.audit.paired import compare_codes

        options = parse_options(context.options, context.spec.source)
        handle = context.model
        if handle is None:
            raise InputError(context.spec.source, "audits.compression", "needs a model, not predictions")
        data = context.data
        classes = tuple(handle.classes)
        names, true_codes, _ = class_codes(context.eval_predictions, classes)
        groups = {attr: group_codes(data.eval[attr]) for attr in data.sensitive}
        positive = len(names) - 1 if len(names) == 2 else None
        inputs = handle.encode(data.eval)
        if hasattr(inputs, "to"):
            inputs = inputs.to("cpu")

        variant_rows: list[dict[str, Any]] = []
        group_rows: list[dict[str, Any]] = []
        metrics: dict[str, float] = {}
        findings: list[Finding] = []
        module = handle.module
        reference_codes: np.ndarray | None = None
        with tempfile.TemporaryDirectory(prefix="governance-compression-") as tmp, _threads(options.threads):
            module_cpu = _cpu_copy(module)
            for name in ("fp32", *[v for v in options.variants if v != "fp32"]):
                variant = compress(module_cpu, name)
                size = serialized_size(variant.module, Path(tmp) / f"{name}.safetensors")
                codes = _predict_codes(variant.module, inputs)
                latency = {
                    batch: _latency_per_row_ms(
                        variant.module, inputs, batch, _calls(options.latency_calls, batch), options.warmup
                    )
                    for batch in options.latency_batches
                }
                first = options.latency_batches[0]
                metrics[f"compression.{name}.size_bytes"] = float(size)
                metrics[f"compression.{name}.latency_ms_p50"] = latency[first][0]
                metrics[f"compression.{name}.latency_ms_p95"] = latency[first][1]
                for batch in options.latency_batches[1:]:
                    metrics[f"compression.{name}.batch{batch}.latency_ms_p50"] = latency[batch][0]
                    metrics[f"compression.{name}.batch{batch}.latency_ms_p95"] = latency[batch][1]
                row: dict[str, Any] = {
                    "variant": name,
                    "method": variant.method,
                    "size_bytes": size,
                    **{f"latency_ms_p50_batch{b}": lat[0] for b, lat in latency.items()},
                    **{f"latency_ms_p95_batch{b}": lat[1] for b, lat in latency.items()},
                }
                if reference_codes is None:
                    reference_codes = codes
                    row["accuracy"] = float((codes == true_codes).mean()) if len(codes) else None
                    variant_rows.append(row)
                    continue
                cmp = compare_codes(
                    true_codes,
                    reference_codes,
                    codes,
                    len(names),
                    groups,
                    positive=positive,
                    n_boot=options.n_boot,
                    seed=context.seed,
                )
                overall = cmp.metric("accuracy")
                worst = max((v for v in cmp.worst_group_drop.values()), key=lambda w: w[1], default=None)
                disagreement = next(g for g in cmp.groups if g.attribute == "overall").disagreement_rate
                metrics[f"compression.{name}.accuracy_drop"] = -overall.difference
                metrics[f"compression.{name}.disagreement_rate"] = disagreement
                if worst is not None:
                    metrics[f"compression.{name}.worst_group_accuracy_drop"] = worst[1]
                for attribute, (gap, _lo, _hi) in cmp.drop_gap.items():
                    metrics[f"compression.{name}.{attribute}.accuracy_drop_gap"] = gap
                row.update(
                    accuracy=overall.candidate,
                    accuracy_drop=-overall.difference,
                    accuracy_drop_ci_low=None if overall.ci_high is None else -overall.ci_high,
                    accuracy_drop_ci_high=None if overall.ci_low is None else -overall.ci_low,
                    worst_group=None if worst is None else worst[0],
                    worst_group_accuracy_drop=None if worst is None else worst[1],
                    disagreement_rate=disagreement,
                )
                variant_rows.append(row)
                agreement = {(g.attribute, g.group): g for g in cmp.groups}
                for m in cmp.metrics:
                    if m.metric != "accuracy":
                        continue
                    g = agreement[(m.attribute, m.group)]
                    group_rows.append(
                        {
                            "variant": name,
                            "attribute": m.attribute,
                            "group": m.group,
                            "rows": g.rows,
                            "accuracy_fp32": m.reference,
                            "accuracy": m.candidate,
                            "accuracy_drop": -m.difference,
                            "drop_ci_low": None if m.ci_high is None else -m.ci_high,
                            "drop_ci_high": None if m.ci_low is None else -m.ci_low,
                            "disagreement_rate": g.disagreement_rate,
                            "fp32_only_correct": g.reference_only_correct,
                            "variant_only_correct": g.candidate_only_correct,
                            "mcnemar_p": g.mcnemar_p,
                        }
                    )
                if worst is not None and worst[1] > options.max_worst_group_drop:
                    findings.append(
                        Finding(
                            id=f"compression.{name}.worst_group_drop",
                            severity=Severity.MINOR,
                            message=(
                                f"{name} costs group {worst[0]!r} {worst[1]:.3f} accuracy "
                                f"(> {options.max_worst_group_drop}); overall drop {-overall.difference:.3f}"
                            ),
                            audit="compression",
                        )
                    )
        deployed = context.spec.deployment.variant if context.spec.deployment is not None else None
        if deployed is not None:
            for key, value in list(metrics.items()):
                prefix = f"compression.{deployed}."
                if key.startswith(prefix):
                    metrics["compression.deployed." + key[len(prefix) :]] = value
        return AuditSection(
            name="compression",
            metrics=metrics,
            tables={"variants": variant_rows, "groups": group_rows},
            details={
                "threads": options.threads,
                "latency_calls": options.latency_calls,
                "warmup": options.warmup,
                "latency_batches": list(options.latency_batches),
                "reference": "fp32",
                "confidence": 0.95,
                "n_boot": options.n_boot,
                "deployed": deployed,
            },
            findings=tuple(findings),
        )


def _cpu_copy(module: nn.Module) -> nn.Module:
    """Quantized kernels run on the CPU: measure every variant there, on a copy."""
    import copy

    return copy.deepcopy(module).to("cpu").eval()
