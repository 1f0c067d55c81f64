"""DP training cost and utility: time and memory of DP vs non-private training, accuracy vs ε.

``run(smoke)`` returns the figures the harness (``benchmarks/run.py``) prints:

* ``time.<case>.<mode>_s`` and ``time.<case>.<mode>_ratio``: seconds of the optimisation steps
  (the ledger's ``step_seconds``: forward, backward, clipping, noise, optimizer; no per-epoch
  evaluation or accounting) for ``plain`` (non-private), ``auto`` (what ``governance train``
  uses: a fused hand-written step for both, FusedMLPStep for the MLP and FusedSequentialStep
  for the CNN; ``time.<case>.auto_grad_sample_mode`` says which path ran) and ``hooks`` (Opacus'
  default per-sample mode), same data, epochs and seed, DP at a fixed σ = 1. Best of
  ``repeats`` runs, the modes interleaved; ``_median_ratio`` is the ratio of the medians.
  Targets: ``auto`` ≤ 1.25× plain.
* ``memory.<case>.<mode>_mb`` and ``_ratio``: peak resident memory *added by training*,
  each mode in a fresh subprocess (``_process_mb``/``_process_ratio``: the whole process's
  peak, libraries included; the target is judged on the stricter added-by-training ratio). torch's CPU allocations bypass ``tracemalloc``, so we read
  the kernel's peak RSS (``VmHWM``) after resetting it (``/proc/self/clear_refs``) once data,
  model and every library (opacus included, for both modes) are loaded. Reported, not judged
  (issue 13 dropped the memory-ratio target: in a realistic run the libraries dominate the
  process's memory; the figures stay in the README).
* ``accuracy.<task>.eps_<ε>`` for ε ∈ {1, 3, 8} and ``non_private``; target: the synthetic
  task (sklearn ``make_classification``, 50k × 32) loses at most 2 accuracy points at ε = 3.
  One selection rule, applied identically to every setting of both tasks (see
  :func:`_select_and_evaluate`): a seeded 20 % validation split is held out of the *training*
  rows, every (lr, batch size) of the task's grid is trained on the rest, the setting with the
  best validation accuracy is kept (ties: the earlier grid entry), and that same model's
  accuracy on the eval set is reported. The eval set is never used for choosing.
  ``<key>_lr``/``<key>_batch`` record the choice. Caveat: the validation rows are part of the
  private training data, so choosing hyperparameters on them has a privacy cost of its own
  (Papernot & Steinke 2022) that the reported ε (one training run) does not include.

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
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MODES = ("plain", "auto", "hooks")
# Selection grids of the accuracy-vs-ε figures, the same for every ε and for non-private training.
# Large batches and large steps are where DP-SGD does well (the noise per example falls as 1/B;
# De et al. 2022): an earlier grid that stopped at lr 8 and batch 1024 had the private settings
# choose its corner. Non-private training picks from the same grid.
SYNTHETIC_GRID = tuple((lr, batch) for lr in (0.5, 2.0, 8.0, 32.0) for batch in (256, 4096))
SYNTHETIC_EPOCHS = 20
# The spec's lr (and a step below and above it) at its batch size; its epochs, optimizer, momentum.
GERMAN_LR_FACTORS = (0.3, 1.0, 3.0)
VALIDATION_FRACTION = 0.2


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

    from governance.models.architectures import build_architecture
    from governance.train.trainer import PrivacySettings, Trainer

    xt, yt, xe, ye = case["data"]
    torch.manual_seed(0)
    model = build_architecture(case["arch"], xt.shape[1], int(yt.max()) + 1, case["options"])
    privacy = None
    if mode != "plain":
        settings: dict[str, Any] = {"target_epsilon": 100.0, "noise_multiplier": 1.0, "delta": 1e-5}
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
    """Best of ``repeats`` fits per mode, the modes interleaved (plain, auto, hooks, plain, ...):
    on a shared machine the speed drifts by tens of percent over minutes, and running all of one
    mode's repeats before the next mode's would fold that drift into the ratio. The ratio of the
    medians is reported beside the ratio of the bests (``_median_ratio``)."""
    import statistics

    case = _case(case_name, smoke)
    out: dict[str, Any] = {}
    runs: dict[str, list[float]] = {mode: [] for mode in MODES}
    for _ in range(repeats):
        for mode in MODES:
            ledger = _trainer(case, mode).fit().ledger
            runs[mode].append(float(ledger["step_seconds"]))
            if mode != "plain":
                out[f"time.{case_name}.{mode}_grad_sample_mode"] = ledger["privacy"]["grad_sample_mode"]
    best = {mode: min(seconds) for mode, seconds in runs.items()}
    median = {mode: statistics.median(seconds) for mode, seconds in runs.items()}
    for mode in MODES:
        out[f"time.{case_name}.{mode}_s"] = round(best[mode], 3)
    for mode in MODES[1:]:
        out[f"time.{case_name}.{mode}_ratio"] = round(best[mode] / best["plain"], 2)
        out[f"time.{case_name}.{mode}_median_ratio"] = round(median[mode] / median["plain"], 2)
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


def _validation_split(x: Any, y: Any, seed: int = 0) -> tuple[Any, Any, Any, Any]:
    """Seeded split of the training rows: (fit x, fit y, validation x, validation y)."""
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(x))
    cut = len(x) - int(VALIDATION_FRACTION * len(x))
    fit, val = order[:cut], order[cut:]
    return x[fit], y[fit], x[val], y[val]


def _accuracy(model: Any, x: Any, y: Any) -> float:
    import torch

    model.eval()
    with torch.no_grad():
        pred = model(torch.as_tensor(x, dtype=torch.float32)).argmax(dim=1).numpy()
    return float((pred == y).mean())


def _select_and_evaluate(
    train: Callable[[float, int], tuple[Any, float]],
    grid: tuple[tuple[float, int], ...],
    evaluate: tuple[Any, Any],
) -> tuple[float, float, int, float | None]:
    """The selection rule of every accuracy figure: ``train(lr, batch)`` fits one ``(lr, batch)``
    of ``grid`` on the fit split and returns (result, validation accuracy); the best validation
    accuracy wins (first in grid order on ties); returns (eval accuracy of that same model, lr,
    batch, spent ε). No refit: the reported model is the one that was chosen."""
    x, y = evaluate[0], evaluate[1]
    best: tuple[float, Any, float, int] | None = None
    for lr, batch in grid:
        result, val_accuracy = train(lr, batch)
        if best is None or val_accuracy > best[0]:
            best = (val_accuracy, result, lr, batch)
    assert best is not None
    _, result, lr, batch = best
    return _accuracy(result.model, x, y), lr, batch, result.epsilon


def _accuracy_synthetic(smoke: bool, epsilons: tuple[float, ...]) -> dict[str, Any]:
    """Eval accuracy per ε of the MLP, settings chosen by :func:`_select_and_evaluate`."""
    case = _case("mlp", smoke)
    case["epochs"] = 2 if smoke else SYNTHETIC_EPOCHS
    xt, yt, xe, ye = case["data"]
    xf, yf, xv, yv = _validation_split(xt, yt)
    grid = SYNTHETIC_GRID[:1] if smoke else SYNTHETIC_GRID
    out: dict[str, Any] = {"accuracy.synthetic.epochs": case["epochs"]}
    for eps in (None, *epsilons):

        def train(lr: float, batch: int, eps: float | None = eps) -> tuple[Any, float]:
            setting = {**case, "data": (xf, yf, xv, yv), "lr": lr, "batch_size": batch}
            if eps is None:
                result = _trainer(setting, "plain").fit()
            else:
                result = _trainer(setting, "auto", target_epsilon=eps, noise_multiplier=None).fit()
            return result, _accuracy(result.model, xv, yv)

        accuracy, lr, batch, spent = _select_and_evaluate(train, grid, (xe, ye))
        key = "non_private" if eps is None else f"eps_{eps:g}"
        out[f"accuracy.synthetic.{key}"] = round(accuracy, 4)
        out[f"accuracy.synthetic.{key}_lr"] = lr
        out[f"accuracy.synthetic.{key}_batch"] = batch
        if eps is not None:
            out[f"accuracy.synthetic.{key}_spent"] = round(float(spent or 0.0), 3)
    return out


def _accuracy_german(epsilons: tuple[float, ...]) -> dict[str, Any]:
    """German Credit with the reference spec's model, epochs, batch size, optimizer and momentum;
    lr chosen from the spec's lr times ``GERMAN_LR_FACTORS`` by the same rule as the synthetic
    task (the spec's own settings come from benchmarks/tune_german_credit.py)."""
    import torch

    from governance.data.loading import load_bundle
    from governance.models.artifacts import build_module
    from governance.models.config import model_config
    from governance.models.preprocessing import preprocessor_for
    from governance.spec import load_spec
    from governance.train.trainer import PrivacySettings, Trainer

    spec = load_spec(REPO / "audits" / "german-credit.yaml")
    bundle = load_bundle(spec)
    assert bundle.train is not None and spec.train is not None
    train_spec = spec.train
    pre = preprocessor_for(bundle)
    index = {c: i for i, c in enumerate(bundle.classes)}
    xt, yt = pre.transform(bundle.train), bundle.train[bundle.label].map(index).to_numpy()
    xe, ye = pre.transform(bundle.eval), bundle.eval[bundle.label].map(index).to_numpy()
    xf, yf, xv, yv = _validation_split(xt, yt)
    out: dict[str, Any] = {"accuracy.german_credit.majority_class": round(float((ye == ye.max()).mean()), 4)}
    for eps in (None, *epsilons):

        def train(lr: float, batch: int, eps: float | None = eps) -> tuple[Any, float]:
            torch.manual_seed(spec.seed)
            model = build_module(model_config(spec, bundle, pre))
            privacy = None
            if eps is not None:
                privacy = PrivacySettings(target_epsilon=eps, delta=1e-5, max_grad_norm=1.0)
            result = Trainer(
                model=model,
                train_data=(xf, yf),
                eval_data=(xv, yv),
                privacy=privacy,
                epochs=train_spec.epochs,
                batch_size=batch,
                lr=lr,
                optimizer=train_spec.optimizer,
                momentum=train_spec.momentum,
                seed=spec.seed,
            ).fit()
            return result, _accuracy(result.model, xv, yv)

        grid = tuple((round(train_spec.lr * f, 6), train_spec.batch_size) for f in GERMAN_LR_FACTORS)
        accuracy, lr, _, _ = _select_and_evaluate(train, grid, (xe, ye))
        key = "non_private" if eps is None else f"eps_{eps:g}"
        out[f"accuracy.german_credit.{key}"] = round(accuracy, 4)
        out[f"accuracy.german_credit.{key}_lr"] = lr
    return out


def run(smoke: bool = False) -> dict[str, Any]:
    """Run the training benchmark; ``smoke`` uses tiny sizes (checks the code, not the targets)."""
    import torch

    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    started = time.perf_counter()
    figures: dict[str, Any] = {}
    repeats = 1 if smoke else 5
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
            figures["time.mlp.auto_ratio"] <= 1.25 and figures["time.cnn.auto_ratio"] <= 1.25 and drop <= 0.02
        )
    else:
        figures.update(_accuracy_synthetic(smoke, (3.0,)))
    figures["seconds"] = round(time.perf_counter() - started, 1)
    return figures


if __name__ == "__main__":
    print(json.dumps(run(smoke="--smoke" in sys.argv), indent=2))
