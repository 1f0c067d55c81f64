"""DP training of the benchmark MLP in 2 gloo processes beside 1 process (issue 17).

``run(smoke)`` returns:

* ``ddp.mlp.<run>_samples_per_s``: expected rows per second of the optimisation steps (steps ×
  batch size / the ledger's ``step_seconds``; rank 0's for 2 processes) for ``one``/``two`` (1
  or 2 processes with what ``governance train`` picks, the fused step, which runs across
  processes too) and ``one_ghost``/``two_ghost`` (Opacus ghost clipping; across processes its
  DistributedDPOptimizer); ``two_vs_one*`` are the ratios. On CPU each rank has one thread, so 2
  processes use 2 cores.
* ``ddp.mlp.epsilon_one``/``_two``, ``noise_multiplier``, ``sample_rate``, ``steps``: the ledgers
  of one process and of two for the same settings (σ calibrated for ε 3); ``epsilon_identical``:
  |Δε| ≤ 1e-12 and the same σ, q, steps and accountant history.
* ``ddp.mlp.seeded_noise_max_weight_diff`` (and ``_ghost``): the largest weight difference
  between one process and two with the noise drawn from the seed (rank 0 draws what one
  process draws, so equal weights also show that the noise is added once);
  ``noise_off_max_weight_diff``: the same with σ = 0 (a clipping-only ablation, no privacy;
  benchmark only). ``_f64``: the same runs in float64. Target: the float64 ones ≤ 1e-6.

  Why float64 is the judged comparison: two ranks sum the clipped gradients of their shares and
  then each other's, one process sums all rows at once; in float32 the two orders differ by
  ~1e-7 per step (the weights stay within ~3e-7 over hundreds of steps), but once some
  sample's ReLU input lies within that distance of 0 it switches off in one run and not in the
  other, and that sample's gradient (~1e-5 for one bias after 291 steps of this benchmark, a
  single discrete jump) separates the runs. That is a rounding event, not another mechanism:
  in float64 the orders differ by ~1e-16 and the weights agree to that.

Timings on a shared 2-core machine are noisy (other work competes for the two cores the two
ranks need, and every all-reduce waits for both ranks); the equalities are exact whatever the
load.
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


def _trainer(
    case: dict[str, Any], mode: str, world: Any, *, seeded: bool, sigma: float | None, double: bool = False
) -> Any:
    import torch

    from governance.models.architectures import build_architecture
    from governance.train.sampling import TensorRows
    from governance.train.trainer import PrivacySettings, Trainer

    xt, yt, xe, ye = case["data"]
    torch.manual_seed(0)
    model = build_architecture(case["arch"], xt.shape[1], int(yt.max()) + 1, case["options"])
    train: Any = (xt, yt)
    evaluation: Any = (xe, ye)
    if double:
        # float64 end to end: summing the rank shares in another order than one process moves
        # the sums by ~1e-16 instead of ~1e-7, too little to flip a ReLU (see the docstring).
        model = model.double()
        train = TensorRows(torch.from_numpy(xt).double(), torch.from_numpy(yt).long())
        evaluation = TensorRows(torch.from_numpy(xe).double(), torch.from_numpy(ye).long())
    privacy = PrivacySettings(
        target_epsilon=TARGET_EPSILON, delta=DELTA, grad_sample_mode=mode, reproducible_noise=seeded
    )
    if sigma is not None:
        # σ = 0 is refused by PrivacySettings (no privacy); the trainer runs it as a clipping-only
        # ablation, which is what the noise-off comparison needs.
        object.__setattr__(privacy, "noise_multiplier", sigma)
    return Trainer(
        model=model,
        train_data=train,
        eval_data=evaluation,
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
    """One of the 2 ranks: every 2-process run of :data:`RUNS`."""
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
        for name, mode, sigma, double in RUNS:
            result = _trainer(case, mode, world, seeded=True, sigma=sigma, double=double).fit()
            if world is not None and world.is_main:
                _save(result, Path(folder), f"two{name}")


#: (name suffix, grad_sample_mode, σ override, float64): each runs in one process and in two.
RUNS: tuple[tuple[str, str, float | None, bool], ...] = (
    ("", "auto", None, False),
    ("_noise_off", "auto", 0.0, False),
    ("_ghost", "ghost", None, False),
    ("_f64", "auto", None, True),
    ("_noise_off_f64", "auto", 0.0, True),
)


def _samples_per_s(ledger: dict[str, Any]) -> float:
    return float(ledger["steps"]) * float(ledger["batch_size"]) / float(ledger["step_seconds"])


def _max_diff(folder: Path, a: str, b: str) -> float:
    from safetensors.torch import load_file

    x, y = load_file(folder / f"{a}.safetensors"), load_file(folder / f"{b}.safetensors")
    return max(float((x[k] - y[k]).abs().max()) for k in x)


def run(smoke: bool = False) -> dict[str, Any]:
    """Every run of :data:`RUNS` in one process, then in two gloo processes."""
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
        for name, mode, sigma, double in RUNS:
            _save(
                _trainer(case, mode, None, seeded=True, sigma=sigma, double=double).fit(),
                folder,
                f"one{name}",
            )
        mp.start_processes(_rank, args=(free_port(), tmp, smoke), nprocs=WORLD, start_method="spawn")
        ledgers = {p.stem: json.loads(p.read_text()) for p in folder.glob("*.json")}
        one, two = ledgers["one"], ledgers["two"]
        for name in ("one", "two", "one_ghost", "two_ghost"):
            figures[f"ddp.mlp.{name}_samples_per_s"] = round(_samples_per_s(ledgers[name]), 1)
            figures[f"ddp.mlp.{name}_engine"] = ledgers[name]["privacy"]["engine"]
        figures["ddp.mlp.two_vs_one"] = round(_samples_per_s(two) / _samples_per_s(one), 2)
        figures["ddp.mlp.two_vs_one_ghost"] = round(
            _samples_per_s(ledgers["two_ghost"]) / _samples_per_s(ledgers["one_ghost"]), 2
        )
        figures["ddp.mlp.world_size"] = two["world_size"]
        figures["ddp.mlp.epsilon_one"] = one["privacy"]["epsilon"]
        figures["ddp.mlp.epsilon_two"] = two["privacy"]["epsilon"]
        for key in ("noise_multiplier", "sample_rate", "steps"):
            figures[f"ddp.mlp.{key}"] = two["privacy"][key]
        keys = ("noise_multiplier", "sample_rate", "steps", "accountant_history")
        same = all(
            ledgers[f"one{n}"]["privacy"][k] == ledgers[f"two{n}"]["privacy"][k]
            for n in ("", "_ghost")
            for k in keys
        )
        figures["ddp.mlp.epsilon_identical"] = bool(
            same
            and abs(one["privacy"]["epsilon"] - two["privacy"]["epsilon"]) <= 1e-12
            and ledgers["one_ghost"]["privacy"]["epsilon"] == ledgers["two_ghost"]["privacy"]["epsilon"]
        )
        figures["ddp.mlp.seeded_noise_max_weight_diff"] = _max_diff(folder, "one", "two")
        figures["ddp.mlp.seeded_noise_max_weight_diff_ghost"] = _max_diff(folder, "one_ghost", "two_ghost")
        figures["ddp.mlp.noise_off_max_weight_diff"] = _max_diff(folder, "one_noise_off", "two_noise_off")
        figures["ddp.mlp.seeded_noise_max_weight_diff_f64"] = _max_diff(folder, "one_f64", "two_f64")
        figures["ddp.mlp.noise_off_max_weight_diff_f64"] = _max_diff(
            folder, "one_noise_off_f64", "two_noise_off_f64"
        )
    figures["met"] = bool(
        figures["ddp.mlp.epsilon_identical"]
        and figures["ddp.mlp.seeded_noise_max_weight_diff_f64"] <= 1e-6
        and figures["ddp.mlp.noise_off_max_weight_diff_f64"] <= 1e-6
    )
    figures["seconds"] = round(time.perf_counter() - started, 1)
    return figures


if __name__ == "__main__":
    print(json.dumps(run(smoke="--smoke" in sys.argv), indent=2))
