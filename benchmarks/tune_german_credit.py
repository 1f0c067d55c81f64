"""Tune the German Credit reference training (audits/german-credit.yaml) on the train rows only.

Selection rule (issue 15: hyperparameters are chosen on the train rows, never on the eval split):

* The 700 train rows are cut into ``FOLDS`` stratified folds (sklearn ``StratifiedKFold``,
  ``random_state=0``). A configuration's validation accuracy is the mean, over the folds, of the
  accuracy on the held-out fold of a model trained on the other folds, exactly as
  ``governance.train.api.train`` trains (same preprocessing: the DP run's uses the spec's declared
  ``data.schema``; same model builder, seed and :class:`~governance.train.trainer.Trainer`).
* DP runs (ε = 3, δ = 1e-5, PRV accountant, Poisson sampling: the trainer's defaults) draw their
  noise from OS entropy, so a DP configuration's validation figure averages ``2 × FOLDS``
  noise draws (``DP_VALIDATION_DRAWS`` per fold) as well as ``FOLDS`` splits.
* The best validation accuracy wins (ties: the earlier grid entry). Only then is each chosen
  configuration trained on all 700 rows and scored on the 300 eval rows, once per configuration
  (DP: ``EVAL_REPEATS`` trainings with fresh noise, mean ± sd).

Three choices are made:

``non_private``
    The best non-private MLP over the whole grid (what the architecture can do on these features).
``dp``
    The best DP configuration over the grid: the reference spec's ``train`` section.
``twin``
    The privacy-cost audit's non-private twin shares the DP run's epochs, batch size, optimizer,
    momentum and hidden sizes and may only change ``lr`` (``audits.privacy_cost.lr``): the best
    non-private lr for the DP choice's other settings.

Caveat: the validation rows are part of the private training data, so choosing the DP
hyperparameters on them has a privacy cost of its own (Papernot & Steinke 2022) that the reported
ε (one training run) does not include.

Run: ``PYTHONPATH=$PWD .venv/bin/python benchmarks/tune_german_credit.py [--quick]``; prints
JSON (also written to ``--out``). 12-30 minutes on the shared 2-core machine, depending on its load.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import itertools
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "audits" / "german-credit.yaml"
FOLDS = 5
EVAL_REPEATS = 5
DP_VALIDATION_DRAWS = 2  # noise draws per fold for a DP configuration's validation accuracy
EPSILON, DELTA, MAX_GRAD_NORM = 3.0, 1e-5, 1.0

# (optimizer, momentum, lr) triples: SGD with momentum 0.9 and Adam, over a decade-spaced lr range.
NON_PRIVATE_OPTIMIZERS = tuple(
    [("sgd", 0.9, lr) for lr in (0.003, 0.01, 0.03, 0.1)] + [("adam", 0.0, lr) for lr in (0.001, 0.003, 0.01)]
)
# DP-SGD's clipped, noised gradients are smaller: the same optimizers at larger steps.
DP_OPTIMIZERS = tuple(
    [("sgd", 0.9, lr) for lr in (0.03, 0.1, 0.3, 1.0)] + [("adam", 0.0, lr) for lr in (0.003, 0.01, 0.03)]
)
HIDDEN = ((), (16,), (32, 16))
EPOCHS = (10, 30, 60)
BATCH = (32, 128)
TWIN_LRS = {"sgd": (0.003, 0.01, 0.03, 0.1, 0.3, 1.0), "adam": (0.001, 0.003, 0.01, 0.03)}


@dataclasses.dataclass(frozen=True)
class Config:
    optimizer: str
    momentum: float
    lr: float
    hidden: tuple[int, ...]
    epochs: int
    batch_size: int

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "hidden": list(self.hidden)}


def _grid(
    optimizers: tuple[tuple[str, float, float], ...],
    hiddens: tuple[tuple[int, ...], ...] = HIDDEN,
    epochs: tuple[int, ...] = EPOCHS,
    batches: tuple[int, ...] = BATCH,
) -> list[Config]:
    return [
        Config(opt, mom, lr, hidden, n, batch)
        for (opt, mom, lr), hidden, n, batch in itertools.product(optimizers, hiddens, epochs, batches)
    ]


def _fit_score(
    spec: Any, bundle: Any, fit_rows: Any, score_rows: Any, config: Config, private: bool
) -> float:
    """Train like ``governance.train.api.train`` on ``fit_rows``; accuracy on ``score_rows``."""
    import numpy as np
    import torch

    from governance.models.artifacts import build_module
    from governance.models.config import model_config
    from governance.models.preprocessing import preprocessor_for
    from governance.train.trainer import PrivacySettings, Trainer

    part = dataclasses.replace(bundle, train=fit_rows, eval=score_rows)
    preprocessor = preprocessor_for(part, schema=spec.data.public_schema, private=private)
    run_spec = spec.model_copy(
        update={"model": spec.model.model_copy(update={"options": {"hidden": list(config.hidden)}})}
    )
    torch.manual_seed(spec.seed)
    model = build_module(model_config(run_spec, part, preprocessor))
    index = {c: i for i, c in enumerate(bundle.classes)}
    privacy = None
    if private:
        sigma = _noise_multiplier(len(fit_rows), config.batch_size, config.epochs)
        privacy = PrivacySettings(
            target_epsilon=EPSILON,
            delta=DELTA,
            max_grad_norm=MAX_GRAD_NORM,
            accountant="prv",
            noise_multiplier=sigma,
        )
    trainer = Trainer(
        model=model,
        train_data=(preprocessor.transform(fit_rows), fit_rows[bundle.label].map(index).to_numpy()),
        privacy=privacy,
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        optimizer=config.optimizer,
        momentum=config.momentum,
        seed=spec.seed,
        num_threads=1,
    )
    trained = trainer.fit().model.eval()
    with torch.no_grad():
        logits = trained(torch.as_tensor(preprocessor.transform(score_rows), dtype=torch.float32))
    predicted = logits.argmax(dim=1).numpy()
    return float(np.mean(predicted == score_rows[bundle.label].map(index).to_numpy()))


@functools.cache
def _noise_multiplier(rows: int, batch_size: int, epochs: int) -> float:
    """σ for ε = 3 as the trainer calibrates it (sample rate 1 / batches per epoch), computed once
    per (rows, batch size, epochs): calibration is most of a small DP run's time."""
    from opacus.accountants.utils import get_noise_multiplier

    sample_rate = 1.0 / math.ceil(rows / batch_size)
    return float(
        get_noise_multiplier(
            target_epsilon=EPSILON,
            target_delta=DELTA,
            sample_rate=sample_rate,
            epochs=epochs,
            accountant="prv",
        )
    )


def _folds(bundle: Any) -> list[tuple[Any, Any]]:
    from sklearn.model_selection import StratifiedKFold

    rows = bundle.train.reset_index(drop=True)
    cut = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=0)
    return [(rows.iloc[a], rows.iloc[b]) for a, b in cut.split(rows, rows[bundle.label])]


def _search(
    spec: Any, bundle: Any, folds: list[Any], grid: list[Config], private: bool
) -> list[dict[str, Any]]:
    scored = []
    for i, config in enumerate(grid):
        draws = DP_VALIDATION_DRAWS if private else 1
        accs = [
            _fit_score(spec, bundle, fit, held, config, private) for fit, held in folds for _ in range(draws)
        ]
        scored.append(
            {**config.as_dict(), "validation": statistics.mean(accs), "validation_sd": statistics.stdev(accs)}
        )
        print(
            f"[{'dp' if private else 'np'} {i + 1}/{len(grid)}] {config} val={scored[-1]['validation']:.4f}",
            file=sys.stderr,
            flush=True,
        )
    return scored


def _best(scored: list[dict[str, Any]]) -> dict[str, Any]:
    return max(scored, key=lambda s: s["validation"])  # max keeps the first of equals


def _config(row: dict[str, Any]) -> Config:
    return Config(
        row["optimizer"], row["momentum"], row["lr"], tuple(row["hidden"]), row["epochs"], row["batch_size"]
    )


def _evaluate(spec: Any, bundle: Any, config: Config, private: bool) -> dict[str, Any]:
    """The chosen configuration trained on all train rows, scored once on the eval rows (DP: repeated)."""
    runs = EVAL_REPEATS if private else 1
    accs = [_fit_score(spec, bundle, bundle.train, bundle.eval, config, private) for _ in range(runs)]
    out: dict[str, Any] = {"eval_accuracy": statistics.mean(accs), "eval_runs": accs}
    if runs > 1:
        out["eval_sd"] = statistics.stdev(accs)
    return out


def _baselines(bundle: Any) -> dict[str, float]:
    """Majority class and the performance audit's logistic regression, on the eval split."""
    import numpy as np

    from governance.audit._baselines import logistic_predictions, majority_predictions

    names = tuple(bundle.classes)
    y = np.asarray([names.index(v) for v in bundle.eval[bundle.label].astype(str)])
    out = {"majority": float((majority_predictions(bundle, names, y).y_pred == y).mean())}
    logistic = logistic_predictions(bundle, names, seed=0)
    if logistic is not None:
        out["logistic"] = float((logistic.y_pred == y).mean())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tiny grid, to check the script runs")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    hiddens, epochs, batches = (((16,),), (5,), (64,)) if args.quick else (HIDDEN, EPOCHS, BATCH)

    from governance.data.loading import load_bundle
    from governance.spec import load_spec

    start = time.perf_counter()
    spec = load_spec(SPEC)
    bundle = load_bundle(spec)
    folds = _folds(bundle)
    np_grid = _grid(
        NON_PRIVATE_OPTIMIZERS[:2] if args.quick else NON_PRIVATE_OPTIMIZERS, hiddens, epochs, batches
    )
    dp_grid = _grid(DP_OPTIMIZERS[:2] if args.quick else DP_OPTIMIZERS, hiddens, epochs, batches)

    np_scored = _search(spec, bundle, folds, np_grid, private=False)
    dp_scored = _search(spec, bundle, folds, dp_grid, private=True)
    best_np, best_dp = _best(np_scored), _best(dp_scored)
    dp_config = _config(best_dp)
    twin_grid = [dataclasses.replace(dp_config, lr=lr) for lr in TWIN_LRS[dp_config.optimizer]]
    twin_scored = _search(spec, bundle, folds, twin_grid, private=False)
    best_twin = _best(twin_scored)

    report = {
        "folds": FOLDS,
        "grid": {
            "non_private_optimizers": NON_PRIVATE_OPTIMIZERS,
            "dp_optimizers": DP_OPTIMIZERS,
            "hidden": hiddens,
            "epochs": epochs,
            "batch_size": batches,
            "twin_lrs": TWIN_LRS,
        },
        "non_private": {**best_np, **_evaluate(spec, bundle, _config(best_np), private=False)},
        "dp": {**best_dp, **_evaluate(spec, bundle, dp_config, private=True)},
        "twin": {**best_twin, **_evaluate(spec, bundle, _config(best_twin), private=False)},
        "top_validation": {
            "non_private": sorted(np_scored, key=lambda s: -s["validation"])[:5],
            "dp": sorted(dp_scored, key=lambda s: -s["validation"])[:5],
            "twin": twin_scored,
        },
        "eval_baselines": _baselines(bundle),
        "seconds": round(time.perf_counter() - start, 1),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
