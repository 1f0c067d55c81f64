"""Robustness audit: accuracy under L∞ attacks, Gaussian noise and a black-box attack.

Units: ε and σ are in the model's encoded input units, which are standard deviations for
numeric tabular features (the trainer standardises them) and pixel units for images. One-hot
columns are never perturbed (see :func:`governance.audit._inputs.perturbable_mask`). Attacks
use the true labels (untargeted: raise the loss of the correct class).

Metrics, for each attack in ``attacks`` and ε in ``eps``:
``robustness.<attack>.eps_<eps>.accuracy``, ``.accuracy_drop`` (clean − adversarial) and
``.worst_group_accuracy_drop`` (the largest drop over the groups of every sensitive attribute);
``robustness.gaussian_noise.sigma_<s>.accuracy`` / ``.accuracy_drop`` (EU AI Act Art. 15(4));
``robustness.hopskipjump.success_rate`` and ``.median_l2`` (ART's black-box attack on a small
sample of correctly classified rows).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import AfterValidator, Field

from governance._options import Bool, Float, Int, Options, Str
from governance.audit._attacks import AttackSetting, attack_names, create_attack, rows_per_batch
from governance.audit._groups import accuracy_by_group
from governance.audit._inputs import (
    class_indices,
    encode,
    parse_audit_options,
    perturbable_mask,
    sample_frame,
)
from governance.audit.base import Audit
from governance.results import AuditSection, SectionStatus, metric_id

if TYPE_CHECKING:
    import torch

    from governance.audit.base import AuditContext

__all__ = ["RobustnessAudit", "RobustnessOptions"]

NAME = "robustness"
DEFAULT_EPS = {"tabular": (0.05, 0.1, 0.2), "image": (0.01, 0.03, 0.1)}
DEFAULT_SIGMA = {"tabular": (0.1, 0.3), "image": (0.05, 0.1)}


def _known_attack(name: str) -> str:
    known = attack_names()
    if name not in known:
        raise ValueError(f"unknown attack {name!r}; expected one of {sorted(known)}")
    return name


def _valid_clip(clip: tuple[float, ...] | None) -> tuple[float, ...] | None:
    if clip is not None and not (len(clip) == 2 and clip[0] < clip[1]):
        raise ValueError(f"expected [low, high], got {list(clip)!r}")
    return clip


Radius = Annotated[Float, Field(ge=0)]


class RobustnessOptions(Options):
    """Options of the robustness audit (``audits.robustness`` in the spec)."""

    attacks: tuple[Annotated[Str, AfterValidator(_known_attack)], ...] = ("fgsm", "pgd")
    #: L∞ radii; default by model kind (std units for tabular, pixel units for images).
    eps: tuple[Radius, ...] | None = None
    pgd_steps: Annotated[Int, Field(ge=1)] = 10
    #: PGD step = pgd_step_ratio · ε / pgd_steps (Madry et al.'s 2.5).
    pgd_step_ratio: Annotated[Float, Field(gt=0)] = 2.5
    random_init: Bool = False
    #: Gaussian-noise standard deviations; default by model kind.
    noise_sigma: tuple[Radius, ...] | None = None
    #: Eval rows attacked (seeded sample); None = all.
    max_rows: Annotated[Int, Field(ge=1)] | None = 1000
    #: Rows per forward/backward pass; None = sized to the input (whole tabular sample).
    batch_size: Annotated[Int, Field(ge=1)] | None = None
    #: "fast" (plain torch, ART's iterate) or "art" (ART's attack classes).
    engine: Literal["fast", "art"] = "fast"
    #: (low, high) valid input range; default [0, 1] for images, unbounded for tabular.
    clip: Annotated[tuple[Float, ...] | None, AfterValidator(_valid_clip)] = None
    hopskipjump_rows: Annotated[Int, Field(ge=0)] = 20
    hopskipjump_iterations: Annotated[Int, Field(ge=1)] = 3
    hopskipjump_max_eval: Int = 100
    #: Groups smaller than this are listed but not used for worst_group_accuracy_drop.
    min_group_size: Annotated[Int, Field(ge=1)] = 10


def _accuracy(module: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int) -> np.ndarray:
    """Per-row correctness (bool array) of ``module`` on ``x``."""
    import torch

    with torch.no_grad():
        hits = [module(x[s : s + batch]).argmax(1) == y[s : s + batch] for s in range(0, x.shape[0], batch)]
    return torch.cat(hits).cpu().numpy()


def _fmt(value: float) -> str:
    return f"{value:g}"


class RobustnessAudit(Audit):
    """FGSM/PGD over an ε grid, Gaussian noise, per-group drops and HopSkipJump."""

    name: ClassVar[str] = NAME

    def run(self, context: AuditContext) -> AuditSection:
        import torch

        if context.model is not None and context.model.kind == "text":
            from governance.audit._text_robustness import run_text_robustness

            return run_text_robustness(context)  # character-noise audit, its own options
        started = time.perf_counter()
        opts = parse_audit_options(RobustnessOptions, context, NAME)
        handle = context.model
        if handle is None:
            return AuditSection(NAME, status=SectionStatus.SKIPPED, reason="no model: predictions only")
        kind = "image" if handle.kind == "image" else "tabular"
        eps_grid = opts.eps if opts.eps is not None else DEFAULT_EPS[kind]
        sigmas = opts.noise_sigma if opts.noise_sigma is not None else DEFAULT_SIGMA[kind]
        clip = (
            (float(opts.clip[0]), float(opts.clip[1]))
            if opts.clip is not None
            else ((0.0, 1.0) if kind == "image" else None)
        )

        frame = sample_frame(context.data.eval, opts.max_rows, context.seed)
        x = encode(handle, frame)
        y = torch.as_tensor(
            class_indices(handle.classes, frame[context.data.label].tolist()), device=x.device
        )
        module = handle.module
        module.eval()
        batch = opts.batch_size or rows_per_batch(int(x[0].numel()))
        mask = perturbable_mask(handle, tuple(x.shape))
        clean = _accuracy(module, x, y, batch)
        clean_acc = float(clean.mean())

        metrics: dict[str, float | None] = {metric_id(NAME, "clean_accuracy"): clean_acc}
        curves: dict[str, list[dict[str, float]]] = {}
        group_rows: list[dict[str, Any]] = []

        def record(attack: str, qualifier: str, level: float, correct: np.ndarray) -> None:
            acc = float(correct.mean())
            metrics[metric_id(NAME, attack, qualifier, "accuracy")] = acc
            metrics[metric_id(NAME, attack, qualifier, "accuracy_drop")] = clean_acc - acc
            curves.setdefault(attack, []).append(
                {"level": level, "accuracy": acc, "accuracy_drop": clean_acc - acc}
            )
            rows = accuracy_by_group(frame, context.data.sensitive, clean, correct)
            for row in rows:
                group_rows.append({"perturbation": attack, "level": level, **row})
            eligible = [r["accuracy_drop"] for r in rows if r["n"] >= opts.min_group_size]
            metrics[metric_id(NAME, attack, qualifier, "worst_group_accuracy_drop")] = (
                max(eligible) if eligible else None
            )

        for name in opts.attacks:
            attack = create_attack(name, opts.engine)
            for eps in eps_grid:
                setting = AttackSetting(
                    eps=eps,
                    steps=opts.pgd_steps,
                    step_size=opts.pgd_step_ratio * eps / opts.pgd_steps,
                    mask=mask,
                    clip=clip,
                    random_init=opts.random_init,
                    seed=context.seed,
                    batch_size=batch,
                )
                adv = attack(module, x, y, setting)
                record(name, f"eps_{_fmt(eps)}", eps, _accuracy(module, adv, y, batch))

        generator = torch.Generator(device=x.device).manual_seed(context.seed)
        scale = None if mask is None else torch.as_tensor(mask, device=x.device)
        for sigma in sigmas:
            noise = torch.randn(x.shape, generator=generator, device=x.device) * sigma
            noisy = x + (noise if scale is None else noise * scale)
            if clip is not None:
                noisy = noisy.clamp(*clip)
            record("gaussian_noise", f"sigma_{_fmt(sigma)}", sigma, _accuracy(module, noisy, y, batch))

        details: dict[str, Any] = {
            "units": "standard deviations of numeric features" if kind == "tabular" else "pixel units",
            "norm": "linf",
            "engine": opts.engine,
            "rows": int(x.shape[0]),
            "pgd_steps": opts.pgd_steps,
            "curves": curves,
            "onehot_columns_frozen": mask is not None,
        }
        if opts.hopskipjump_rows > 0:
            hsj = self._hopskipjump(module, x, y, clean, mask, clip, opts, context.seed, len(handle.classes))
            metrics.update({metric_id(NAME, "hopskipjump", k): v for k, v in hsj.items() if k != "rows"})
            details["hopskipjump"] = hsj
        return AuditSection(
            NAME,
            metrics=metrics,
            tables={
                "accuracy": [
                    {"perturbation": attack, **point} for attack, points in curves.items() for point in points
                ],
                "accuracy_by_group": group_rows,
            },
            details=details,
            seconds=time.perf_counter() - started,
        )

    @staticmethod
    def _hopskipjump(
        module: torch.nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        clean: np.ndarray,
        mask: np.ndarray | None,
        clip: tuple[float, float] | None,
        opts: RobustnessOptions,
        seed: int,
        n_classes: int,
    ) -> dict[str, float | None]:
        """ART's HopSkipJump (L2, untargeted) on a few correctly classified rows; labels only."""
        import torch
        from art.attacks.evasion import HopSkipJump
        from art.estimators.classification import BlackBoxClassifier

        rows = np.flatnonzero(clean)[: opts.hopskipjump_rows]
        if len(rows) == 0:
            return {"success_rate": None, "median_l2": None, "rows": 0.0}
        x_np = x[rows].detach().cpu().numpy()
        low, high = clip if clip is not None else (float(x_np.min()), float(x_np.max()))

        def predict(batch: np.ndarray) -> np.ndarray:
            # Labels-only access, as a black-box attacker has; HopSkipJump hands over float64.
            with torch.no_grad():
                logits = module(torch.as_tensor(batch, dtype=x.dtype, device=x.device))
            return torch.nn.functional.one_hot(logits.argmax(1), n_classes).cpu().numpy().astype(np.float32)

        clf = BlackBoxClassifier(predict, tuple(x.shape[1:]), n_classes, clip_values=(low, high))
        attack = HopSkipJump(
            clf,
            targeted=False,
            norm=2,
            max_iter=opts.hopskipjump_iterations,
            max_eval=opts.hopskipjump_max_eval,
            init_eval=10,
            init_size=20,
            batch_size=256,
            verbose=False,
        )
        # ART draws HopSkipJump's starting points from an unseeded RandomState; we draw them
        # ourselves (seeded uniform noise in the valid range, one-hot columns kept) and hand
        # them over as x_adv_init. Rows with no adversarial start count as failures.
        rng = np.random.default_rng(seed)
        tries = 20
        cand = rng.uniform(low, high, size=(len(rows), tries, *x_np.shape[1:])).astype(np.float32)
        if mask is not None:
            cand = cand * mask + x_np[:, None] * (1 - mask)
        labels = y[rows].cpu().numpy()
        flips = (
            predict(cand.reshape(-1, *x_np.shape[1:])).argmax(1).reshape(len(rows), tries) != labels[:, None]
        )
        started = flips.any(axis=1)
        adv = x_np.copy()
        if started.any():
            init = cand[np.flatnonzero(started), flips[started].argmax(axis=1)]
            kwargs: dict[str, np.ndarray] = {"x_adv_init": init}
            if mask is not None:
                kwargs["mask"] = mask
            # The gradient estimates draw from numpy's global generator: seed it, then restore it.
            state = np.random.get_state()
            np.random.seed(seed)
            try:
                adv[started] = attack.generate(x_np[started], **kwargs)
            finally:
                np.random.set_state(state)
        success = (predict(adv).argmax(1) != labels) & started
        dist = np.linalg.norm((adv - x_np).reshape(len(rows), -1), axis=1)
        return {
            "success_rate": float(success.mean()),
            "median_l2": float(np.median(dist[success])) if success.any() else None,
            "rows": float(len(rows)),
        }
