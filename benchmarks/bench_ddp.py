"""DP training of the benchmark MLP in 2 gloo processes beside 1 process (issue 17).

``run(smoke)`` returns:

* ``ddp.mlp.<run>_samples_per_s``: expected rows per second of the optimisation steps (steps ×
  batch size / the ledger's ``step_seconds``; rank 0's for 2 processes) for ``one_auto`` (one
  process, what ``governance train`` picks: the fused step), ``one_ghost`` (one process,
  Opacus ghost clipping: the engine 2 processes run, since the fused paths stay in one process)
  and ``two_ghost`` (2 gloo processes, Opacus' DistributedDPOptimizer); ``two_vs_one_*`` are
  the ratios. On CPU each rank has one thread, so 2 processes use 2 cores.
* ``ddp.mlp.epsilon_*``, ``sigma``, ``sample_rate``, ``steps``: the ledger of one process and of
  two for the same settings (σ calibrated for ε 3); ``epsilon_identical``: |Δε| ≤ 1e-12 and the
  same σ, q and steps.
* ``ddp.mlp.seeded_noise_max_weight_diff``: the largest weight difference between one process
  and two with the noise drawn from the seed (rank 0 draws what one process draws: equal
  weights also show that the noise is added once); ``noise_off_max_weight_diff``: the same with
  σ = 0 (a clipping-only ablation, no privacy; benchmark only). Target: both ≤ 1e-6.

Timings on a shared 2-core machine are noisy (other work competes for the same two cores the
two ranks need); the equalities are exact whatever the load.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from benchmarks.bench_training import _case

WORLD = 2
TARGET_EPSILON = 3.0
DELTA = 1e-5


def _trainer(case: dict[str, Any], mode: str, world: Any, *, seeded: bool, sigma: float | None) -> Any:
    import torch

    from governance.models.architectures import build_architecture
    from governance.train.trainer import PrivacySettings, Trainer

    xt, yt, xe, ye = case["data"]
    torch.manual_seed(0)
    model = build_architecture(case["arch"], xt.shape[1], int(yt.max()) + 1, case["options"])
    privacy = PrivacySettings(
        target_epsilon=TARGET_EPSILON, delta=DELTA, grad_sample_mode=mode, reproducible_noise=seeded
    )
    if sigma is not None:
        # σ = 0 is refused by PrivacySettings (no privacy); the trainer runs it as a clipping-only
        # ablation, which is what the noise-off comparison needs.
        object.__setattr__(privacy, "noise_multiplier", sigma)
    return Trainer(
        model=model,
        train_data=(xt, yt),
        eval_data=(xe, ye),
        privacy=privacy,
        epochs=case["epochs"],
        batch_size=case["batch_size"],
        lr=case["lr"],
        seed=0,
        num_threads=1,
        world=world,
    )


def _save(result: Any, folder: Path, name: str) -> None:
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in result.model.state_dict().items()}
    save_file(state, folder / f"{name}.safetensors")
    (folder / f"{name}.json").write_text(json.dumps(result.ledger))


def _rank(rank: int, port: int, folder: str, smoke: bool) -> None:
    """One of the 2 ranks: the seeded-noise run (timed) and the noise-off run."""
    import os

    import torch

    from governance.train.distributed import joined

    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE=str(WORLD),
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    case = _case("mlp", smoke)
    with joined("cpu") as world:
        for name, sigma in (("two_ghost", None), ("two_ghost_noise_off", 0.0)):
            result = _trainer(case, "auto", world, seeded=True, sigma=sigma).fit()
            if world is not None and world.is_main:
                _save(result, Path(folder), name)


def _samples_per_s(ledger: dict[str, Any]) -> float:
    return float(ledger["steps"]) * float(ledger["batch_size"]) / float(ledger["step_seconds"])


def _max_diff(folder: Path, a: str, b: str) -> float:
    from safetensors.torch import load_file

    x, y = load_file(folder / f"{a}.safetensors"), load_file(folder / f"{b}.safetensors")
    return max(float((x[k] - y[k]).abs().max()) for k in x)


def run(smoke: bool = False) -> dict[str, Any]:
    """One process (auto, ghost), then two gloo processes; see the module docstring."""
    import torch
    import torch.multiprocessing as mp

    from governance.train.distributed import free_port

    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    started = time.perf_counter()
    case = _case("mlp", smoke)
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ddp-") as tmp:
        folder = Path(tmp)
        runs = (
            ("one_auto", "auto", False, None),
            ("one_ghost", "ghost", True, None),
            ("one_ghost_noise_off", "ghost", True, 0.0),
        )
        for name, mode, seeded, sigma in runs:
            _save(_trainer(case, mode, None, seeded=seeded, sigma=sigma).fit(), folder, name)
        mp.start_processes(_rank, args=(free_port(), tmp, smoke), nprocs=WORLD, start_method="spawn")
        ledgers = {p.stem: json.loads(p.read_text()) for p in folder.glob("*.json")}
        one, ghost, two = ledgers["one_auto"], ledgers["one_ghost"], ledgers["two_ghost"]
        for name in ("one_auto", "one_ghost", "two_ghost"):
            figures[f"ddp.mlp.{name}_samples_per_s"] = round(_samples_per_s(ledgers[name]), 1)
            figures[f"ddp.mlp.{name}_engine"] = ledgers[name]["privacy"]["engine"]
        figures["ddp.mlp.two_vs_one_ghost"] = round(_samples_per_s(two) / _samples_per_s(ghost), 2)
        figures["ddp.mlp.two_vs_one_auto"] = round(_samples_per_s(two) / _samples_per_s(one), 2)
        figures["ddp.mlp.world_size"] = two["world_size"]
        figures["ddp.mlp.epsilon_one"] = one["privacy"]["epsilon"]
        figures["ddp.mlp.epsilon_two"] = two["privacy"]["epsilon"]
        for key in ("noise_multiplier", "sample_rate", "steps"):
            figures[f"ddp.mlp.{key}"] = two["privacy"][key]
        same = all(
            one["privacy"][k] == two["privacy"][k] == ghost["privacy"][k]
            for k in ("noise_multiplier", "sample_rate", "steps", "accountant_history")
        )
        figures["ddp.mlp.epsilon_identical"] = bool(
            same and abs(one["privacy"]["epsilon"] - two["privacy"]["epsilon"]) <= 1e-12
        )
        figures["ddp.mlp.seeded_noise_max_weight_diff"] = _max_diff(folder, "one_ghost", "two_ghost")
        figures["ddp.mlp.noise_off_max_weight_diff"] = _max_diff(
            folder, "one_ghost_noise_off", "two_ghost_noise_off"
        )
    figures["met"] = bool(
        figures["ddp.mlp.epsilon_identical"]
        and figures["ddp.mlp.seeded_noise_max_weight_diff"] <= 1e-6
        and figures["ddp.mlp.noise_off_max_weight_diff"] <= 1e-6
    )
    figures["seconds"] = round(time.perf_counter() - started, 1)
    return figures


if __name__ == "__main__":
    print(json.dumps(run(smoke="--smoke" in sys.argv), indent=2))
