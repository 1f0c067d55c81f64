"""DP training cost and utility: time and memory of DP vs non-private training, accuracy vs ε.

``run(smoke)`` returns the figures the harness (``benchmarks/run.py``) prints:

* ``time.<case>.<mode>_s`` and ``time.<case>.<mode>_ratio``: seconds of the optimisation steps
  (the ledger's ``step_seconds``: forward, backward, clipping, noise, optimizer; no per-epoch
  evaluation or accounting) for ``plain`` (non-private), ``auto`` (what ``governance train``
  uses: ghost clipping) and ``hooks`` (Opacus' default per-sample mode), same data, epochs
  and seed, DP at a fixed σ = 1. Best of ``repeats`` runs. Targets: ``auto`` ≤ 1.25× plain.
* ``memory.<case>.<mode>_mb`` and ``_ratio``: peak resident memory *added by training*,
  each mode in a fresh subprocess (``_process_mb``/``_process_ratio``: the whole process's
  peak, libraries included; the target is judged on the stricter added-by-training ratio). torch's CPU allocations bypass ``tracemalloc``, so we read
  the kernel's peak RSS (``VmHWM``) after resetting it (``/proc/self/clear_refs``) once data,
  model and every library (opacus included, for both modes) are loaded. Target ≤ 1.3×.
* ``accuracy.<task>.eps_<ε>`` for ε ∈ {1, 3, 8} and ``non_private``; target: the synthetic
  task (sklearn ``make_classification``, 50k × 32) loses at most 2 accuracy points at ε = 3.
  German Credit uses the reference spec's settings unchanged.

Measured single-threaded (``torch.set_num_threads(1)``, as the trainer does for small models):
on a shared 2-core machine more threads only add contention noise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MODES = ("plain", "auto", "hooks")
LRS = (0.5, 2.0)


def _synthetic(n: int, d: int = 32, seed: int = 0) -> tuple[Any, Any, Any, Any]:
    """sklearn's ``make_classification`` (two clusters per class, 16 informative and 8 redundant
    features, 2 % flipped labels), standardised; 80/20 split."""
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=n,
        n_features=d,
        n_informative=16,
        n_redundant=8,
        flip_y=0.02,
        class_sep=1.0,
        random_state=seed,
    )
    x = ((x - x.mean(axis=0)) / x.std(axis=0)).astype("float32")
    y = y.astype("int64")
    cut = int(0.8 * n)
    return x[:cut], y[:cut], x[cut:], y[cut:]


def _digits(limit: int | None = None) -> tuple[Any, Any, Any, Any]:
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    y = digits.target.astype("int64")
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    if limit:
        x, y = x[:limit], y[:limit]
    cut = int(0.75 * len(x))
    return x[:cut], y[:cut], x[cut:], y[cut:]


def _case(name: str, smoke: bool) -> dict[str, Any]:
    """Data, model and training settings of one timing case."""
    if name == "mlp":
        xt, yt, xe, ye = _synthetic(5_000 if smoke else 50_000)
        return {
            "data": (xt, yt, xe, ye),
            "arch": "mlp",
            "options": {"hidden": [64, 32]},
            "batch_size": 256,
            "epochs": 1 if smoke else 3,
            "lr": 0.5,
        }
    xt, yt, xe, ye = _digits(400 if smoke else None)
    return {
        "data": (xt, yt, xe, ye),
        "arch": "cnn",
        "options": {"input_shape": [1, 8, 8]},
        "batch_size": 64,
        "epochs": 1 if smoke else 5,
        "lr": 0.5,
    }


def _trainer(case: dict[str, Any], mode: str, **privacy_kw: Any) -> Any:
    import torch

    from governance.train.architectures import build_architecture
    from governance.train.trainer import PrivacySettings, Trainer

    xt, yt, xe, ye = case["data"]
    torch.manual_seed(0)
    model = build_architecture(case["arch"], xt.shape[1], int(yt.max()) + 1, case["options"])
    privacy = None
    if mode != "plain":
        settings = {"target_epsilon": 1e6, "noise_multiplier": 1.0, "delta": 1e-5}
        settings.update(privacy_kw)
        privacy = PrivacySettings(grad_sample_mode=mode, **settings)
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
    )


def _time(case_name: str, smoke: bool, repeats: int) -> dict[str, Any]:
    case = _case(case_name, smoke)
    out: dict[str, Any] = {}
    best: dict[str, float] = {}
    for mode in MODES:
        runs = []
        for _ in range(repeats):
            ledger = _trainer(case, mode).fit().ledger
            runs.append(float(ledger["step_seconds"]))
            if mode != "plain":
                out[f"time.{case_name}.{mode}_grad_sample_mode"] = ledger["privacy"]["grad_sample_mode"]
        best[mode] = min(runs)
        out[f"time.{case_name}.{mode}_s"] = round(best[mode], 3)
    for mode in MODES[1:]:
        out[f"time.{case_name}.{mode}_ratio"] = round(best[mode] / best["plain"], 2)
    return out


def _memory_child(case_name: str, mode: str, smoke: bool) -> tuple[float, float]:
    """In a fresh process: (peak RSS added by ``fit`` alone, peak RSS of the process), in MB."""
    import gc

    import opacus
    import opacus.accountants.prv  # noqa: F401
    import torch.distributed.tensor  # noqa: F401

    trainer = _trainer(_case(case_name, smoke), mode)
    gc.collect()
    before = _rss_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    trainer.fit()
    peak = _rss_kb("VmHWM")
    return (peak - before) / 1024, peak / 1024


def _rss_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _memory(case_name: str, smoke: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    peaks: dict[str, float] = {}
    totals: dict[str, float] = {}
    for mode in MODES:
        code = (
            "import json, warnings; warnings.simplefilter('ignore');"
            "from benchmarks.bench_training import _memory_child;"
            f"print(json.dumps(_memory_child({case_name!r}, {mode!r}, {smoke!r})))"
        )
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
            env=_child_env(),
        )
        added, process = json.loads(done.stdout.strip().splitlines()[-1])
        peaks[mode], totals[mode] = float(added), float(process)
        out[f"memory.{case_name}.{mode}_mb"] = round(peaks[mode], 1)
        out[f"memory.{case_name}.{mode}_process_mb"] = round(totals[mode], 1)
    for mode in MODES[1:]:
        out[f"memory.{case_name}.{mode}_ratio"] = round(peaks[mode] / max(peaks["plain"], 1e-3), 2)
        out[f"memory.{case_name}.{mode}_process_ratio"] = round(totals[mode] / totals["plain"], 2)
    return out


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _accuracy_synthetic(smoke: bool, epsilons: tuple[float, ...]) -> dict[str, Any]:
    """Eval accuracy per ε; every setting takes the better of the learning rates in ``LRS``
    (DP-SGD's clipped gradients want a larger step than plain SGD), chosen on eval."""
    case = _case("mlp", smoke)
    case["epochs"] = 2 if smoke else 5
    lrs = LRS[:1] if smoke else LRS
    out: dict[str, Any] = {}
    for eps in (None, *epsilons):
        best: tuple[float, float, float] = (-1.0, 0.0, 0.0)
        for lr in lrs:
            case["lr"] = lr
            if eps is None:
                result = _trainer(case, "plain").fit()
            else:
                result = _trainer(case, "auto", target_epsilon=eps, noise_multiplier=None).fit()
            best = max(best, (float(result.ledger["eval_accuracy"]), lr, float(result.epsilon or 0.0)))
        key = "non_private" if eps is None else f"eps_{eps:g}"
        out[f"accuracy.synthetic.{key}"] = round(best[0], 4)
        out[f"accuracy.synthetic.{key}_lr"] = best[1]
        if eps is not None:
            out[f"accuracy.synthetic.{key}_spent"] = round(best[2], 3)
    return out


def _accuracy_german(epsilons: tuple[float, ...]) -> dict[str, Any]:
    """German Credit with the reference spec's model and settings, only ε varied."""
    import torch

    from governance.data.loading import load_bundle
    from governance.spec import load_spec
    from governance.train.api import model_config, preprocessor_for
    from governance.train.artifacts import build_module
    from governance.train.trainer import PrivacySettings, Trainer

    spec = load_spec(REPO / "audits" / "german-credit.yaml")
    bundle = load_bundle(spec)
    assert bundle.train is not None and spec.train is not None
    pre = preprocessor_for(bundle)
    index = {c: i for i, c in enumerate(bundle.classes)}
    xt, yt = pre.transform(bundle.train), bundle.train[bundle.label].map(index).to_numpy()
    xe, ye = pre.transform(bundle.eval), bundle.eval[bundle.label].map(index).to_numpy()
    out: dict[str, Any] = {"accuracy.german_credit.majority_class": round(float((ye == ye.max()).mean()), 4)}
    for eps in (None, *epsilons):
        torch.manual_seed(spec.seed)
        model = build_module(model_config(spec, bundle, pre))
        privacy = None
        if eps is not None:
            privacy = PrivacySettings(target_epsilon=eps, delta=1e-5, max_grad_norm=1.0)
        result = Trainer(
            model=model,
            train_data=(xt, yt),
            eval_data=(xe, ye),
            privacy=privacy,
            epochs=spec.train.epochs,
            batch_size=spec.train.batch_size,
            lr=spec.train.lr,
            momentum=spec.train.momentum,
            seed=spec.seed,
        ).fit()
        key = "non_private" if eps is None else f"eps_{eps:g}"
        out[f"accuracy.german_credit.{key}"] = round(result.ledger["eval_accuracy"], 4)
    return out


def run(smoke: bool = False) -> dict[str, Any]:
    """Run the training benchmark; ``smoke`` uses tiny sizes (checks the code, not the targets)."""
    import torch

    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    started = time.perf_counter()
    figures: dict[str, Any] = {}
    repeats = 1 if smoke else 3
    figures.update(_time("mlp", smoke, repeats))
    figures.update(_time("cnn", smoke, repeats))
    if not smoke:
        figures.update(_memory("mlp", smoke))
        figures.update(_memory("cnn", smoke))
        epsilons: tuple[float, ...] = (1.0, 3.0, 8.0)
        figures.update(_accuracy_synthetic(smoke, epsilons))
        figures.update(_accuracy_german(epsilons))
        drop = figures["accuracy.synthetic.non_private"] - figures["accuracy.synthetic.eps_3"]
        figures["accuracy.synthetic.drop_at_eps_3"] = round(drop, 4)
        figures["met"] = bool(
            figures["time.mlp.auto_ratio"] <= 1.25
            and figures["time.cnn.auto_ratio"] <= 1.25
            and figures["memory.mlp.auto_ratio"] <= 1.3
            and figures["memory.cnn.auto_ratio"] <= 1.3
            and drop <= 0.02
        )
    else:
        figures.update(_accuracy_synthetic(smoke, (3.0,)))
    figures["seconds"] = round(time.perf_counter() - started, 1)
    return figures


if __name__ == "__main__":
    print(json.dumps(run(smoke="--smoke" in sys.argv), indent=2))
