"""The image path on CUDA: DP training overhead, PGD and IG against the raw passes they need.

``run(smoke)`` returns ``{"skipped": "no CUDA"}`` on a machine without a GPU (the harness then
reports it as run, with nothing measured). On CUDA, all on the digits CNN (the built-in ``cnn``,
GroupNorm, ~5.6k weights; the 8x8 digits in pixel units):

* ``dp.<mode>_s`` / ``dp.<mode>_ratio``: the ledger's ``step_seconds`` (forward, backward,
  clipping, noise, optimizer; CUDA-synchronised) of DP training at a fixed σ = 1 over the same
  epochs, batches and seed as non-private training, for ``auto`` (what ``governance train``
  picks: hooks for a Conv2d model) and ``ghost``. Best of ``repeats`` runs.
* ``pgd.ours_over_plain``: our PGD-10 (governance/audit/_attacks.py) against a plain torch loop
  doing the same 10 forward+backward passes, written here. Target ≤ 1.05x (as on CPU).
* ``ig.ours_over_raw``: our batched Integrated Gradients (50 steps) against one raw
  forward+backward over the n·steps path points, pre-built. Target ≤ 1.3x (as on CPU).

Each timing synchronises the device before the clock stops: CUDA kernels run asynchronously,
and an unsynchronised timer measures only the kernel launches.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

PGD_TARGET = 1.05
IG_TARGET = 1.3
DEVICE = "cuda"


def _best(fn: Callable[[], object], repeats: int) -> float:
    import torch

    fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def _digits() -> tuple[Any, Any, Any, Any]:
    """Digits in pixel units ([0, 1]), 75/25 split."""
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    cut = int(0.75 * len(x))
    return x[:cut], y[:cut], x[cut:], y[cut:]


def _cnn() -> Any:
    import torch

    from governance.models.architectures import build_architecture

    torch.manual_seed(0)
    return build_architecture("cnn", 64, 10, {"input_shape": [1, 8, 8]})


def _dp_overhead(smoke: bool) -> dict[str, Any]:
    from governance.train.trainer import PrivacySettings, Trainer

    xt, yt, xe, ye = _digits()
    epochs, repeats = (1, 1) if smoke else (5, 3)
    best: dict[str, float] = {}
    out: dict[str, Any] = {}
    for mode in ("plain", "auto", "ghost"):
        privacy = (
            None
            if mode == "plain"
            else PrivacySettings(
                target_epsilon=100.0, noise_multiplier=1.0, delta=1e-5, grad_sample_mode=mode
            )
        )
        runs = []
        for _ in range(repeats):
            trainer = Trainer(
                model=_cnn(),
                train_data=(xt, yt),
                eval_data=(xe, ye),
                privacy=privacy,
                epochs=epochs,
                batch_size=64,
                lr=0.5,
                seed=0,
                device=DEVICE,
            )
            ledger = trainer.fit().ledger
            runs.append(float(ledger["step_seconds"]))
            if privacy is not None:
                out[f"dp.{mode}_grad_sample_mode"] = ledger["privacy"]["grad_sample_mode"]
        best[mode] = min(runs)
        out[f"dp.{mode}_s"] = round(best[mode], 4)
    for mode in ("auto", "ghost"):
        out[f"dp.{mode}_ratio"] = round(best[mode] / best["plain"], 2)
    return out


def _pgd(smoke: bool) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    from governance.audit._attacks import AttackSetting, create_attack

    _, _, xe, ye = _digits()
    model = _cnn().to(DEVICE).eval()
    reps = 4 if smoke else 20  # 450 eval images repeated: a batch big enough to fill the GPU
    x = torch.as_tensor(xe, device=DEVICE).repeat(reps, 1)
    y = torch.as_tensor(ye, device=DEVICE).repeat(reps)
    eps, steps = 0.1, 10
    step = 2.5 * eps / steps

    def plain() -> torch.Tensor:
        adv = x.clone()
        for _ in range(steps):
            adv.requires_grad_(True)
            (grad,) = torch.autograd.grad(F.cross_entropy(model(adv), y, reduction="sum"), adv)
            with torch.no_grad():
                adv = x + ((adv + step * grad.sign()).clamp(0, 1) - x).clamp(-eps, eps)
        return adv

    pgd = create_attack("pgd")
    setting = AttackSetting(eps=eps, steps=steps, step_size=step, clip=(0.0, 1.0), batch_size=len(x))
    repeats = 3 if smoke else 10
    t_plain, t_ours = [], []
    for _ in range(3):
        t_plain.append(_best(plain, repeats))
        t_ours.append(_best(lambda: pgd(model, x, y, setting), repeats))
    plain_s, ours_s = min(t_plain), min(t_ours)
    # The same iterate: allow a handful of pixels to differ, because cuDNN may pick a
    # non-deterministic backward kernel and flip the sign of a near-zero gradient.
    differ = float(((pgd(model, x, y, setting) - plain()).abs() > 1e-5).float().mean())
    same = differ <= 1e-3
    return {
        "pgd.rows": len(x),
        "pgd.plain_loop_ms": plain_s * 1e3,
        "pgd.ours_ms": ours_s * 1e3,
        "pgd.ours_over_plain": ours_s / plain_s,
        "pgd.share_of_pixels_differing": differ,
        "pgd.target_ratio": PGD_TARGET,
        "_met": ours_s / plain_s <= PGD_TARGET and same,
    }


def _ig(smoke: bool) -> dict[str, Any]:
    import torch

    from governance.audit._ig import integrated_gradients

    _, _, xe, _ = _digits()
    model = _cnn().to(DEVICE).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    steps = 50
    x = torch.as_tensor(xe, device=DEVICE)[: 200 if smoke else 450]
    base = torch.zeros_like(x)
    target = model(x).argmax(1)
    path = torch.rand(len(x) * steps, x.shape[1], device=DEVICE)
    path_target = target.repeat(steps).view(-1, 1)

    def raw() -> None:
        inp = path.requires_grad_(True)
        torch.autograd.grad(model(inp).gather(1, path_target).sum(), inp)

    def ours() -> None:
        integrated_gradients(model, x, base, target, n_steps=steps)

    repeats = 3 if smoke else 10
    t_raw, t_ours = [], []
    for _ in range(3):
        t_raw.append(_best(raw, repeats))
        t_ours.append(_best(ours, repeats))
    raw_s, ours_s = min(t_raw), min(t_ours)
    return {
        "ig.rows": len(x),
        "ig.steps": steps,
        "ig.raw_forward_backward_ms": raw_s * 1e3,
        "ig.ours_ms": ours_s * 1e3,
        "ig.ours_over_raw": ours_s / raw_s,
        "ig.target_ratio": IG_TARGET,
        "_met": ours_s / raw_s <= IG_TARGET,
    }


def run(smoke: bool = False) -> dict[str, Any]:
    import torch

    if not torch.cuda.is_available():
        return {"skipped": "no CUDA"}
    out: dict[str, Any] = {"device": torch.cuda.get_device_name(0)}
    out.update(_dp_overhead(smoke))
    met = True
    for part in (_pgd(smoke), _ig(smoke)):
        met = met and bool(part.pop("_met"))
        out.update(part)
    out["met"] = met
    return out


if __name__ == "__main__":
    print(run(smoke=True))
