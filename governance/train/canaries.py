"""Dirac gradient canaries inside a DP training run (issue 18; Steinke, Nasr & Jagielski 2023).

``m`` canaries, each included with probability ½ from an OS-entropy generator whose state is
never written (the inclusion bits are revealed only in the ledger, after the run is scored). A
canary is one extra *row* of the batch: Poisson-sampled each step with the rows' sample rate, with
a per-sample gradient that is zero everywhere but one weight coordinate ``(l, k)`` of the model's
largest trainable ``Linear`` (its *canary layer*), where its raw norm is ``gradient_norm × C``.

It goes through the clipping and noise code of whichever engine trains the model:

- the fast paths (``fused-mlp``, ``fast``) get it as layer records, like a real row: input
  ``a = A·e_k`` and output gradient ``g = (z/A)·e_l`` on the canary layer (split evenly over the
  calls and tokens in which that layer sees a row), zeros on every other layer. The engine's own
  code computes its norm ``‖a‖²‖g‖²``, its clipping factor and its clipped ``g aᵀ``, in the same
  tensors as the real rows, then adds the one noise draw. (The bias of the canary layer gets
  ``z/A``: ``A`` is large, so the canary is Dirac up to 1/A.) The fused MLP step leaves out the
  zero records (they add nothing to a norm or a sum); its own norm and factor code computes the
  canary rows' clipping factors once per block of steps (:attr:`GradientCanaries.row_factors`: a
  canary's norm does not change between steps), its :func:`add_linear_clipped` adds their clipped
  sum into the noise buffer, and it hands over its canary-layer update between the canary rows'
  clipped sum and the real rows' (:meth:`GradientCanaries.read_update`).
- Opacus' hooks get it as extra rows of every parameter's ``grad_sample``, the same vectors;
  Opacus' ``clip_and_accumulate`` and ``add_noise`` do the rest.
- Opacus' ghost clipping gets its norm appended to the per-parameter norms its own
  ``get_clipping_coef`` reads; its clipped vector is added to the clipped sum before Opacus adds
  the noise.

Score of canary ``i``: built from the canary-aligned component of each noisy update,
``x_t = ĝ_t[j_i] − r_t[j_i]``, where ``ĝ_t`` is the privatised gradient the optimizer applies and
``r_t`` the real rows' clipped contribution to that coordinate, as the engine computed it (the
fused MLP step reads the update before adding ``r_t``, the other engines subtract it after) (the
auditor owns the run and the data, so subtracting it is post-processing: it depends on canary
``i`` only through earlier noisy updates). What is left is the noise plus canary ``i``'s clipped
contribution. Full batch (q = 1): the score is ``Σ_t x_t``, and the scores of an honest run are
the paper's idealised Gaussian game. Subsampled (q < 1): ``Σ_t`` of the per-step log-likelihood
ratio of ``x_t`` under "in" (the mixture ``(1−q)·N(0, σ²) + q·N(1, σ²)`` in units of C/B) against
"out" (``N(0, σ²)``), a fixed function of the released updates with public q and σ, which never
uses the secret steps in which the canary was drawn (:meth:`GradientCanaries.end_step`).

A correct engine contributes exactly ``C`` per sampled step whatever ``gradient_norm`` is; an
engine that forgets to clip contributes ``gradient_norm × C``, one that computes the norm wrongly
(a reused module, a sequence-first input read as batch-first) more than ``C``: the bound
(:mod:`governance.audit.canary_bound`) then exceeds the claimed ε.

The canaries change the model: the canary coordinates drift by the canary rows' clipped
gradients. The ledger says the model is not the release candidate unless the spec says so.
"""

from __future__ import annotations

import math
import secrets
from typing import TYPE_CHECKING, Any

from governance.canary_options import CanaryOptions

if TYPE_CHECKING:
    from collections.abc import Callable

    import torch
    from torch import nn

__all__ = ["CANARY_ENGINES", "CanaryError", "GradientCanaries"]

#: Engines the canaries run through (fused-sequential: its layer ops keep their own state; not yet).
CANARY_ENGINES = ("fused-mlp", "fast", "opacus-hooks", "opacus-ghost")
#: The canary row's input activation on its layer: the bias gets 1/A of the weight coordinate's
#: gradient, so the canary is Dirac to 1/A.
INPUT_SCALE = 100.0
#: Steps whose canary sampling is drawn at once.
SAMPLING_BLOCK = 128


class CanaryError(ValueError):
    """This run cannot carry the canaries asked for (the spec's ``audits.privacy.canaries``)."""


class GradientCanaries:
    """The canaries of one run: secret inclusion, per-step sampling, injection, scores."""

    def __init__(self, options: CanaryOptions, *, max_grad_norm: float) -> None:
        import numpy as np

        self.options = options
        self.count = int(options.count)
        self.max_grad_norm = float(max_grad_norm)
        self.raw_norm = float(options.gradient_norm) * self.max_grad_norm
        # OS entropy: neither the inclusion bits nor the per-step draws can be replayed from
        # anything written; the bits are published only once the run is scored (ledger()).
        self._rng = np.random.Generator(np.random.PCG64(secrets.randbits(128)))
        self._included = self._rng.random(self.count) < 0.5
        self.layer: nn.Linear | None = None
        self.layer_name = ""
        self.engine = ""
        self.sample_rate = 0.0
        self.expected_batch_size = 1
        self.steps = 0
        self.rows_added = 0
        self._rows_l: Any = None  # canary i's output row l_i, input column k_i (torch, long)
        self._cols_k: Any = None
        self._flat: Any = None  # l_i * d_in + k_i
        self._active: Any = None  # indices of the canaries in this step's batch
        self._k = 0  # how many
        #: Σ_t (ĝ_t − r_t) over the canary layer's weight: the scores are read off it at the end
        #: (one in-place add per step instead of a gather).
        self._acc: Any = None
        self._ghost_coef: Any = None
        #: The engine's clipping factors for canary rows given as 2-D records ``(a, g)`` (set by
        #: the fused MLP step: its own norm and factor code, run once per block of steps; a
        #: canary's norm is the same at every step).
        self.row_factors: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None

    # -- set-up -------------------------------------------------------------------------------

    def bind(
        self,
        model: nn.Module,
        *,
        engine: str,
        sample_rate: float,
        expected_batch_size: int,
        noise_multiplier: float,
    ) -> None:
        """Choose the canary layer (the largest trainable Linear) and the canaries' coordinates."""
        import numpy as np
        import torch
        from torch import nn

        if engine not in CANARY_ENGINES:
            raise CanaryError(
                f"gradient canaries run through the engines {', '.join(CANARY_ENGINES)}; "
                f"this model trains on {engine!r}"
            )
        linears = [
            (name, m) for name, m in model.named_modules() if type(m) is nn.Linear and m.weight.requires_grad
        ]
        if not linears:
            raise CanaryError("gradient canaries need a trainable nn.Linear layer in the model")
        name, layer = max(linears, key=lambda item: item[1].weight.numel())
        if layer.weight.numel() < self.count:
            raise CanaryError(
                f"{self.count} canaries need as many weights in one Linear layer; the largest "
                f"({name}) has {layer.weight.numel()}"
            )
        out_f, in_f = layer.weight.shape
        flat = self._rng.choice(out_f * in_f, size=self.count, replace=False)
        device = layer.weight.device
        self.layer, self.layer_name, self.engine = layer, name, engine
        self.sample_rate = float(sample_rate)
        self.expected_batch_size = max(1, int(expected_batch_size))
        self._flat = torch.as_tensor(flat, dtype=torch.long, device=device)
        self._rows_l = self._flat // in_f
        self._cols_k = self._flat % in_f
        self._acc = torch.zeros_like(layer.weight, memory_format=torch.contiguous_format)
        self._update_read = False
        self._update_flat: Any = None
        self._weight = layer.weight
        self._xs = torch.empty((SAMPLING_BLOCK, self.count), dtype=layer.weight.dtype, device=device)
        self._xs_rows = list(self._xs.unbind(0))
        self._xs_at = 0
        self._scores = torch.zeros(self.count, dtype=torch.float64, device=device)
        self.noise_multiplier = float(noise_multiplier)
        if 0 < self.sample_rate < 1:
            sigma2 = self.noise_multiplier**2
            self._llr_scale = self.expected_batch_size / self.max_grad_norm / sigma2
            self._llr_shift = math.log(self.sample_rate) - 0.5 / sigma2
            self._log_out = torch.tensor(math.log1p(-self.sample_rate), dtype=self._xs.dtype, device=device)
        # Only included canaries can be drawn; the draws have their own generator, seeded from
        # the same OS-entropy source.
        self._pool = torch.as_tensor(np.flatnonzero(self._included)).to(device)
        self._sampler = torch.Generator().manual_seed(int(self._rng.integers(2**62)))
        self._block: list[Any] = []  # the next steps' active canaries, last step first
        self._rows_2d: Any = None
        self._fused_rows: Any = None
        self._real_2d: Any = None
        self._zero_rows: dict[Any, Any] = {}

    # -- per step -----------------------------------------------------------------------------

    def begin_step(self) -> None:
        """Poisson-sample this step's canaries (only included ones can be drawn). The draws come
        a block of steps at a time: one step's own draw would cost more than a small model's step."""

        if not self._block:
            self._block = self._next_block()
        self._active, self._k, self._rows_2d, self._fused_rows = self._block.pop()
        self._ghost_coef = None
        self.rows_added += self._k

    def _next_block(self) -> list[Any]:
        """The next :data:`SAMPLING_BLOCK` steps' canaries, last step first: for each, the active
        canaries, how many, their canary-layer rows as 2-D records ``(a, g)`` and, where the engine
        set :attr:`row_factors`, ``(a, g, c)`` with the engine's clipping factors ``c``."""
        per_step, drawn = self._draw_block()
        active = self._pool[drawn]
        # The canary layer's rows of 2-D records (an MLP's), made for the whole block at once.
        weight = self.layer.weight  # type: ignore[union-attr]
        a_rows = weight.new_zeros((len(active), weight.shape[1]))
        a_rows.scatter_(1, self._cols_k[active].unsqueeze(1), INPUT_SCALE)
        g_rows = weight.new_zeros((len(active), weight.shape[0]))
        g_rows.scatter_(1, self._rows_l[active].unsqueeze(1), self.raw_norm / INPUT_SCALE)
        a_steps, g_steps = a_rows.split(per_step), g_rows.split(per_step)
        if self.row_factors is not None:
            factors = self.row_factors(a_rows, g_rows).split(per_step)
            fused: list[Any] = [(a, g, c) if len(c) else None for a, g, c in zip(a_steps, g_steps, factors)]
        else:
            fused = [None] * len(per_step)
        block = list(zip(active.split(per_step), per_step, zip(a_steps, g_steps), fused))
        block.reverse()
        return block

    def _draw_block(self) -> tuple[list[int], torch.Tensor]:
        """Poisson sampling of the included canaries over the next :data:`SAMPLING_BLOCK` steps,
        as the rows' sampler draws it (:class:`governance.train.sampling.PoissonBatchSampler`):
        ``k ~ Binomial(pool, q)`` per step and a uniform ``k``-subset. Returns (k per step, the
        drawn positions in the pool, step by step)."""
        import torch

        from governance.train.sampling import uniform_subsets

        pool = int(self._pool.numel())
        if pool == 0:
            return [0] * SAMPLING_BLOCK, torch.zeros(0, dtype=torch.long)
        sizes = torch.binomial(
            torch.full((SAMPLING_BLOCK,), float(pool), dtype=torch.float64),
            torch.full((SAMPLING_BLOCK,), min(self.sample_rate, 1.0), dtype=torch.float64),
            generator=self._sampler,
        ).long()
        return sizes.tolist(), torch.cat(uniform_subsets(pool, sizes, self._sampler))

    @property
    def active(self) -> int:
        """How many canaries this step's batch holds."""
        return self._k

    @property
    def fused_rows(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """This step's canary rows with the engine's clipping factors, ``(a, g, c)`` (None when
        the step has none or the engine set no :attr:`row_factors`)."""
        return self._fused_rows

    @property
    def rows_2d(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This step's canary rows on the canary layer as 2-D records ``(a, g)``: row ``i`` holds
        ``a = A·e_k``, ``g = (z/A)·e_l`` (the fused MLP step's records)."""
        return self._rows_2d

    def read_update(self, weight_update: torch.Tensor) -> None:
        """The fused MLP step's canary-layer update once it holds this step's noise and the
        canary rows' clipped sum, before the real rows' clipped sum ``r_t`` is added: ``ĝ_t − r_t``
        for the score (:meth:`end_step`), taken at the canary coordinates."""
        import torch

        held = self._update_flat
        if held is None or held[0] is not weight_update:  # the step reuses its noise buffer
            held = self._update_flat = (weight_update, weight_update.view(-1))
        torch.index_select(held[1], 0, self._flat, out=self._xs_rows[self._xs_at])
        self._update_read = True

    def extend_records(
        self, layers: list[Any], inputs: list[torch.Tensor], grads: list[torch.Tensor], n_real: int
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The fast paths' layer records with this step's canary rows appended along the batch
        dimension (the dimension of size ``n_real``, the first where several are): zeros on
        every layer but the canary layer, where each canary row holds ``a = A·e_k``,
        ``g = z/(A·calls·tokens)·e_l`` in each call and token."""
        import torch

        k = self.active
        self._real_2d = None
        if not k:
            return inputs, grads
        calls = sum(1 for layer in layers if layer is self.layer)
        new_inputs, new_grads = [], []
        for layer, a, g in zip(layers, inputs, grads):
            if a.dim() == 2 and a.shape[0] == n_real and calls == 1:
                # The common case (an MLP's records), in as few operations as possible.
                if layer is self.layer:
                    a_rows, g_rows = self._rows_2d
                    self._real_2d = (a, g)  # the real rows' record, for note_clipped
                else:
                    a_rows, g_rows = self._zeros(k, a), self._zeros(k, g)
                new_inputs.append(torch.cat([a, a_rows]))
                new_grads.append(torch.cat([g, g_rows]))
                continue
            dim = _batch_dim(a, n_real)
            a_rows = a.new_zeros(_with(a.shape, dim, k))
            g_rows = g.new_zeros(_with(g.shape, dim, k))
            if layer is self.layer:
                a_c, g_c = a_rows.movedim(dim, 0), g_rows.movedim(dim, 0)  # views: (k, ..., d)
                tokens = max(1, a_c[0].numel() // a_c.shape[-1])
                share = self.raw_norm / (INPUT_SCALE * calls * tokens)
                idx = torch.arange(k, device=a.device)
                a_c[idx, ..., self._cols_k[self._active]] = INPUT_SCALE
                g_c[idx, ..., self._rows_l[self._active]] = share
            new_inputs.append(torch.cat([a, a_rows], dim=dim))
            new_grads.append(torch.cat([g, g_rows], dim=dim))
        return new_inputs, new_grads

    def _zeros(self, k: int, like: torch.Tensor) -> torch.Tensor:
        """k zero rows for a 2-D record like ``like`` (read only, so kept between steps)."""
        key = (k, like.shape[1], like.dtype, like.device)
        zeros = self._zero_rows.get(key)
        if zeros is None:
            zeros = self._zero_rows[key] = like.new_zeros((k, like.shape[1]))
        return zeros

    def note_clipped(
        self,
        layers: list[Any],
        inputs: list[torch.Tensor],
        grads: list[torch.Tensor],
        coef: torch.Tensor,
        n_real: int,
    ) -> None:
        """r_t from the fast paths: the real rows' clipped ``Σ_i c_i g_i a_iᵀ`` of the canary layer,
        with the engine's own factors ``coef`` and its own (batch-first) view of the records
        (``reshape(batch, -1, d)``, as the engine reads them), taken off the score accumulator."""
        batch = int(coef.shape[0])
        real_coef: Any = None
        acc = self._acc
        for layer, a, g in zip(layers, inputs, grads):
            if layer is not self.layer:
                continue
            # acc −= the real rows' clipped weight gradient Σ_i c_i Σ_t g_it a_itᵀ.
            if a.dim() == 2:  # batch first, the canary rows last: the real rows are the first n
                if self._real_2d is not None:  # kept by extend_records: no slicing
                    a, g = self._real_2d
                else:
                    a, g = a[:n_real], g[:n_real]
                acc.addmm_(g.t(), a * coef[:n_real, None], alpha=-1)
                continue
            if real_coef is None:
                real_coef = coef.detach().clone()
                real_coef[n_real:] = 0
            d, p = a.shape[-1], g.shape[-1]
            g3 = g.reshape(batch, -1, p) * real_coef.view(-1, 1, 1)
            acc.addmm_(g3.reshape(-1, p).t(), a.reshape(-1, d), alpha=-1)

    def before_step(self, optimizer: Any, model: Any) -> None:
        """Opacus engines: add the canary rows before ``optimizer.step()`` clips and noises."""
        if self.engine == "opacus-hooks":
            self._extend_grad_samples(optimizer)
        elif self.engine == "opacus-ghost":
            self._add_ghost_canaries()

    def end_step(self) -> None:
        """Add each canary's aligned component of the applied (noisy) gradient to its score."""
        import torch

        self.steps += 1
        if self._update_read:  # the fused MLP step read ĝ_t − r_t (read_update)
            self._update_read = False
        else:  # the other engines took −r_t off the accumulator (note_clipped, Opacus' paths)
            grad = self._weight.grad
            if grad is None:
                return
            # x_t: this step's canary-aligned component (units of the gradient; C/B is one
            # clipped canary): noise, plus C/B when the canary was in the batch.
            self._acc.add_(grad)
            torch.index_select(self._acc.view(-1), 0, self._flat, out=self._xs_rows[self._xs_at])
            self._acc.zero_()
        self._xs_at += 1  # kept for a block of steps
        if self._xs_at == len(self._xs_rows):
            self._score_block()

    def _score_block(self) -> None:
        """Fold the kept steps' x_t into the scores."""
        import torch

        xs = self._xs[: self._xs_at]
        self._xs_at = 0
        if not len(xs):
            return
        if self.sample_rate >= 1.0:
            # The log-likelihood ratio below is affine in x: the plain sum ranks alike.
            self._scores.add_(xs.sum(dim=0), alpha=self.expected_batch_size / self.max_grad_norm)
            return
        # log[(1 − q)·N(x; 0, σ²) + q·N(x; 1, σ²)] − log N(x; 0, σ²) in units of C/B: the per-step
        # log-likelihood ratio of "in" to "out" under the subsampled Gaussian. A fixed function of
        # the released update (q and σ are public), so the score stays post-processing; its sum over
        # the steps is the optimal test of a canary that is in a q share of the batches, where the
        # plain sum drowns its few sampled steps in every step's noise.
        llr = xs.mul(self._llr_scale).add_(self._llr_shift)  # (x − ½)/σ² + log q
        self._scores.add_(torch.logaddexp(llr, self._log_out).sum(dim=0))

    # -- Opacus ----------------------------------------------------------------------------

    def _canary_vectors(self, p: torch.Tensor, rows: int) -> torch.Tensor:
        """The canary rows' per-sample gradients for parameter ``p``: ``(rows, *p.shape)``."""
        import torch

        layer = self.layer
        assert layer is not None
        out = p.new_zeros((rows, *p.shape))
        if not rows:
            return out
        idx = torch.arange(rows, device=p.device)
        active = self._active
        if p is layer.weight:
            out[idx, self._rows_l[active], self._cols_k[active]] = self.raw_norm
        elif p is layer.bias:
            out[idx, self._rows_l[active]] = self.raw_norm / INPUT_SCALE
        return out

    def _extend_grad_samples(self, optimizer: Any) -> None:
        """Opacus hooks: r_t from the real rows' ``grad_sample`` (Opacus' clipping factor), then
        the canary rows appended to every ``grad_sample`` for Opacus to clip and noise."""
        import torch

        layer = self.layer
        assert layer is not None
        params = optimizer.params
        samples = [p.grad_sample for p in params]
        if not samples or any(sample is None for sample in samples):
            return  # nothing was sampled for Opacus to clip (its step skips too)
        n = int(samples[0].shape[0])
        if n:
            norms = torch.stack([s.reshape(n, -1).norm(2, dim=-1) for s in samples], dim=1).norm(2, dim=1)
            factor = (self.max_grad_norm / (norms + 1e-6)).clamp(max=1.0)
            by_param = {id(p): sample for p, sample in zip(params, samples)}
            weight = by_param[id(layer.weight)]
            self._acc.sub_(torch.einsum("i,i...", factor, weight), alpha=1.0 / self.expected_batch_size)
        k = self.active
        if not k:
            return
        for p in params:
            p.grad_sample = torch.cat([p.grad_sample, self._canary_vectors(p, k)], dim=0)

    def wrap_ghost(self, dp_model: Any) -> None:
        """Opacus ghost clipping: its ``get_clipping_coef`` computes the canaries' factors too
        (their norms appended to the per-parameter norms it reads); the real rows' go on."""
        import torch

        original = dp_model.get_clipping_coef
        canaries = self

        def get_clipping_coef() -> torch.Tensor:
            k = canaries.active
            if not k:
                return original()
            params = dp_model.trainable_parameters
            saved = [p._norm_sample for p in params]
            try:
                for p in params:
                    vectors = canaries._canary_vectors(p, k).reshape(k, -1)
                    p._norm_sample = torch.cat([p._norm_sample, vectors.norm(2, dim=1).to(p._norm_sample)])
                coef = original()
            finally:
                for p, s in zip(params, saved):
                    p._norm_sample = s
            canaries._ghost_coef = coef[-k:]
            return coef[:-k]

        dp_model.get_clipping_coef = get_clipping_coef

    def _add_ghost_canaries(self) -> None:
        """After ghost clipping's second backward: ``p.grad`` is the real rows' clipped sum (r_t
        at the canary coordinates); add the canaries' clipped vectors before Opacus' noise."""
        import torch

        layer = self.layer
        assert layer is not None
        if layer.weight.grad is not None:
            self._acc.sub_(layer.weight.grad, alpha=1.0 / self.expected_batch_size)
        k = self.active
        if not k or self._ghost_coef is None:
            return
        with torch.no_grad():
            for p in (layer.weight, layer.bias):
                if p is None or p.grad is None:
                    continue
                vectors = self._canary_vectors(p, k)
                p.grad += torch.einsum("i,i...", self._ghost_coef.to(p.dtype), vectors)

    # -- the end ---------------------------------------------------------------------------

    def scores(self) -> list[float]:
        """Σ_t x_t for full-batch runs (one clipped canary step adds 1); Σ_t of the per-step
        log-likelihood ratio when the canaries are subsampled (:meth:`end_step`)."""
        self._score_block()
        return [float(s) for s in self._scores.cpu()]

    def ledger(self, *, noise_multiplier: float, steps: int) -> dict[str, Any]:
        """``privacy.canaries`` of training.json: the set-up, the scores and, now that the run is
        over, the inclusion bits (the audit turns them into the bound)."""
        included = [bool(b) for b in self._included]
        expected_rows = self.count * 0.5 * self.sample_rate
        return {
            "kind": self.options.kind,
            "count": self.count,
            "gradient_norm": self.options.gradient_norm,
            "layer": self.layer_name,
            "engine": self.engine,
            "sample_rate": self.sample_rate,
            "noise_multiplier": noise_multiplier,
            "steps": steps,
            "rows_added": self.rows_added,
            # The share of each batch the canaries take (the "fixed share of rows").
            "batch_share": expected_rows / (expected_rows + self.expected_batch_size),
            "release_candidate": bool(self.options.release_candidate),
            # Public from the start (only the inclusion bits are secret): flat indices into the
            # canary layer's weight, so anyone can recompute the scores from the updates.
            "coordinates": [int(j) for j in self._flat.cpu()],
            "included": included,
            "score": "sum" if self.sample_rate >= 1.0 else "subsampled-gaussian-llr",
            "scores": self.scores(),
        }


def _batch_dim(t: torch.Tensor, rows: int) -> int:
    """The dimension of ``t`` that holds the batch: the first of size ``rows``."""
    for d, size in enumerate(t.shape):
        if size == rows:
            return d
    raise ValueError(f"no dimension of size {rows} (the batch) in a record of shape {tuple(t.shape)}")


def _with(shape: Any, dim: int, size: int) -> tuple[int, ...]:
    out = list(shape)
    out[dim] = size
    return tuple(out)
