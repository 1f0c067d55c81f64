"""PGD-10 (L∞): our attack vs a plain torch loop doing the same 10 forward+backward passes, and ART.

Target (issue 4): ≤ 1.05x the plain loop. The plain loop below is written here, independent of
governance/audit/_attacks.py. ART's ``ProjectedGradientDescentPyTorch`` is timed with the whole
sample as one batch and with its default batch of 32.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

TARGET_RATIO = 1.05


def _best(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def run(smoke: bool = False) -> dict[str, Any]:
    import torch
    import torch.nn.functional as F

    from governance.audit._attacks import AttackSetting, art_pgd, create_attack

    torch.manual_seed(0)
    d, hidden = 61, 64
    n = 1000 if smoke else 5000
    repeats = 3 if smoke else 15
    eps, steps = 0.1, 10
    step = 2.5 * eps / steps
    model = torch.nn.Sequential(
        torch.nn.Linear(d, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, 2),
    ).eval()
    x = torch.randn(n, d)
    y = torch.randint(0, 2, (n,))

    def plain() -> torch.Tensor:
        adv = x.clone()
        for _ in range(steps):
            adv.requires_grad_(True)
            (grad,) = torch.autograd.grad(F.cross_entropy(model(adv), y), adv)
            with torch.no_grad():
                adv = x + (adv + step * grad.sign() - x).clamp(-eps, eps)
        return adv

    pgd = create_attack("pgd")
    setting = AttackSetting(eps=eps, steps=steps, step_size=step, batch_size=n)

    def ours() -> torch.Tensor:
        return pgd(model, x, y, setting)

    def art_full() -> torch.Tensor:
        return art_pgd(model, x, y, setting)

    t_plain, t_ours, t_art = [], [], []
    for _ in range(3):
        t_plain.append(_best(plain, repeats))
        t_ours.append(_best(ours, repeats))
        t_art.append(_best(art_full, 1 if smoke else 3))
    # ART's default batch of 32 takes seconds; timed in the full run only.
    art32 = (
        None
        if smoke
        else _best(lambda: art_pgd(model, x, y, AttackSetting(eps, steps, step, batch_size=32)), 1)
    )
    plain_s, ours_s, art_s = min(t_plain), min(t_ours), min(t_art)
    same = float((ours() - art_full()).abs().max()) <= 1e-5
    return {
        "rows": n,
        "steps": steps,
        "plain_loop_ms": plain_s * 1e3,
        "ours_ms": ours_s * 1e3,
        "art_full_batch_ms": art_s * 1e3,
        "art_batch_32_ms": None if art32 is None else art32 * 1e3,
        "ours_over_plain": ours_s / plain_s,
        "art_full_batch_over_plain": art_s / plain_s,
        "art_batch_32_over_plain": None if art32 is None else art32 / plain_s,
        "target_ratio": TARGET_RATIO,
        "same_examples_as_art": same,
        "met": ours_s / plain_s <= TARGET_RATIO and same,
    }


if __name__ == "__main__":
    print(run(smoke=True))
