"""Same-process A/B of single DP steps in CPU time, for the step-level figures of
docs/PERFORMANCE.md (not a ``bench_*`` module: ``make bench`` does not run it).

On a shared machine the wall time of whole fits drifts by tens of percent over minutes; here the
two variants run the same Poisson batches in interleaved blocks of steps, timed with the thread's
CPU clock, and the median of the per-block ratios is reported.

``python -m benchmarks.step_ab canary``: the fused MLP step of ``bench_canaries``' task (50k × 32,
hidden [64, 32], batch 256, σ 0.6) with and without 1000 gradient canaries.
``python -m benchmarks.step_ab cnn``: the plain autograd step of the built-in CNN on digits
(batch 64) against the fused DP step.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

Step = Callable[[Any, Any], None]


def _batches(x: Any, y: Any, batch: int, steps: int) -> list[tuple[Any, Any]]:
    import torch

    from governance.train.sampling import PoissonBatchSampler

    sampler = PoissonBatchSampler(
        num_samples=len(x),
        sample_rate=batch / len(x),
        steps=steps,
        generator=torch.Generator().manual_seed(0),
    )
    return [(x.index_select(0, rows), y.index_select(0, rows)) for rows in sampler]


def paired(
    a: Step, b: Step, batches: list[tuple[Any, Any]], block: int = 25, warm: int = 50
) -> dict[str, float]:
    """Median CPU seconds per step of ``a`` and ``b`` and the median of their per-block ratios."""
    for x, y in batches[:warm]:
        a(x, y)
        b(x, y)
    per_a, per_b = [], []
    for start in range(warm, len(batches) - block + 1, block):
        chunk = batches[start : start + block]
        t0 = time.thread_time()
        for x, y in chunk:
            a(x, y)
        t1 = time.thread_time()
        for x, y in chunk:
            b(x, y)
        t2 = time.thread_time()
        per_a.append((t1 - t0) / block)
        per_b.append((t2 - t1) / block)
    return {
        "a_us": statistics.median(per_a) * 1e6,
        "b_us": statistics.median(per_b) * 1e6,
        "ratio": statistics.median(b / a for a, b in zip(per_a, per_b)),
        "blocks": len(per_a),
    }


def canary() -> dict[str, float]:
    import torch

    from benchmarks.bench_training import _synthetic
    from governance.canary_options import CanaryOptions
    from governance.models.architectures import build_architecture
    from governance.train.canaries import GradientCanaries
    from governance.train.clipping.linear import FusedMLPStep

    xt, yt, _, _ = _synthetic(50_000)
    x, y = torch.as_tensor(xt), torch.as_tensor(yt)
    rate = 256 / len(x)

    def make(with_canaries: bool) -> Step:
        torch.manual_seed(0)
        model = build_architecture("mlp", 32, 2, {"hidden": [64, 32]})
        optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
        step = FusedMLPStep(
            model, optimizer, noise_multiplier=0.6, max_grad_norm=1.0, expected_batch_size=256, generator=None
        )
        canaries = None
        if with_canaries:
            canaries = GradientCanaries(CanaryOptions(count=1000), max_grad_norm=1.0)
            canaries.bind(
                model, engine="fused-mlp", sample_rate=rate, expected_batch_size=256, noise_multiplier=0.6
            )
            step.canaries = canaries

        def run(xb: Any, yb: Any) -> None:
            optimizer.zero_grad(set_to_none=True)
            if canaries is not None:
                canaries.begin_step()
            step.criterion(step(xb), yb).backward()
            optimizer.step()
            if canaries is not None:
                canaries.end_step()

        return run

    return paired(make(False), make(True), _batches(x, y, 256, 1400))


def cnn() -> dict[str, float]:
    import torch
    import torch.nn.functional as F

    from benchmarks.bench_training import _digits
    from governance.models.architectures import build_architecture
    from governance.train.clipping.sequential import FusedSequentialStep

    xt, yt, _, _ = _digits()
    x, y = torch.as_tensor(xt), torch.as_tensor(yt)
    torch.manual_seed(0)
    plain_model = build_architecture("cnn", 64, 10, {"input_shape": [1, 8, 8]})
    plain_opt = torch.optim.SGD(plain_model.parameters(), lr=0.05)
    dp_model = build_architecture("cnn", 64, 10, {"input_shape": [1, 8, 8]})
    dp_opt = torch.optim.SGD(dp_model.parameters(), lr=0.05)
    step = FusedSequentialStep(
        dp_model, dp_opt, noise_multiplier=1.0, max_grad_norm=1.0, expected_batch_size=64, generator=None
    )

    def plain(xb: Any, yb: Any) -> None:
        plain_opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(plain_model(xb), yb)
        loss.backward()
        loss.item()
        plain_opt.step()

    def private(xb: Any, yb: Any) -> None:
        dp_opt.zero_grad(set_to_none=True)
        step.criterion(step(xb), yb).backward()
        dp_opt.step()

    return paired(plain, private, _batches(x, y, 64, 600), block=20, warm=40)


def main() -> None:
    import torch

    torch.set_num_threads(1)
    which = sys.argv[1] if len(sys.argv) > 1 else "canary"
    figures = {"canary": canary, "cnn": cnn}[which]()
    print(
        f"{which}: a {figures['a_us']:.0f} µs/step, b {figures['b_us']:.0f} µs/step, "
        f"b ÷ a {figures['ratio']:.3f} (median of {figures['blocks']} blocks, CPU time)"
    )


if __name__ == "__main__":
    main()
