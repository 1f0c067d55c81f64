"""Layer Integrated Gradients on a text model's embedding layer, batched like :mod:`._ig`.

Captum's :class:`~captum.attr.LayerIntegratedGradients` is the definition and stays the oracle
in the tests. It is slow for the same reasons as its IntegratedGradients (see :mod:`._ig`):
``compute_layer_gradients_and_eval`` asks autograd for the gradient of every scaled example
separately (``torch.unbind(outputs)``: ``n_steps x rows`` scalar roots) and builds the path as
a Python list that it concatenates. Here the path through the layer's output space is one
broadcast expression, and the gradient of the *summed* target logits is taken once: each row of
a batch only influences its own output in eval mode, so this is the per-row gradient Captum
computes. The quadrature is Captum's own (``approximation_parameters``).

How the layer output is replaced: a forward hook on ``layer`` returns the path tensor instead
of the layer's own output, for a forward pass over the input ids repeated ``n_steps`` times, so
everything downstream (attention mask from the ids, pooling) sees exactly what Captum's hook
gives it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["layer_integrated_gradients"]


def layer_integrated_gradients(
    module: torch.nn.Module,
    layer: torch.nn.Module,
    inputs: torch.Tensor,
    baselines: torch.Tensor,
    target: torch.Tensor,
    *,
    n_steps: int = 50,
    method: str = "gausslegendre",
    chunk_size: int | None = None,
) -> torch.Tensor:
    """LayerIG attributions of ``module``'s ``target`` logit to ``layer``'s output.

    Parameters
    ----------
    module
        The classifier (eval mode), taking ``inputs`` (token ids) and returning logits.
    layer
        A submodule whose output is attributed to, e.g. the embedding layer; its output must
        have the batch as first dimension.
    inputs, baselines
        Model inputs of the same shape ``(n, ...)`` (token ids for a text model).
    target
        Class index per example, ``(n,)`` int64.
    n_steps, method
        As in Captum.
    chunk_size
        Examples per forward/backward pass (each pass holds ``chunk_size * n_steps`` sequences);
        default: about 256 sequences per pass.

    Returns
    -------
    torch.Tensor
        Same shape as ``layer``'s output for ``inputs``, e.g. ``(n, length, hidden)``.
    """
    import torch

    from governance.audit._quadrature import path_quadrature

    alpha_list, weight_list = path_quadrature(method, n_steps)
    with torch.no_grad():
        x_out = _layer_output(module, layer, inputs)
        b_out = _layer_output(module, layer, baselines)
    n = inputs.shape[0]
    shape = tuple(x_out.shape[1:])
    view = (n_steps, 1) + (1,) * len(shape)
    alphas = torch.tensor(alpha_list, dtype=x_out.dtype, device=x_out.device).view(view)
    weights = torch.tensor(weight_list, dtype=x_out.dtype, device=x_out.device).view(view)
    per_chunk = chunk_size or max(1, 256 // n_steps)

    out = torch.empty_like(x_out)
    for start in range(0, n, per_chunk):
        stop = min(n, start + per_chunk)
        xo, bo = x_out[start:stop], b_out[start:stop]
        diff = xo - bo
        # (n_steps, m, ...) step-major, as Captum orders its expanded batch.
        path = (bo.unsqueeze(0) + alphas * diff.unsqueeze(0)).reshape(-1, *shape).requires_grad_(True)
        ids = inputs[start:stop].repeat(n_steps, *([1] * (inputs.dim() - 1)))
        handle = layer.register_forward_hook(lambda _m, _i, _o, p=path: p)
        try:
            with torch.enable_grad():
                logits = module(ids)
                t = target[start:stop].repeat(n_steps).view(-1, 1)
                (grad,) = torch.autograd.grad(logits.gather(1, t).sum(), path)
        finally:
            handle.remove()
        total = (grad.view(n_steps, stop - start, *shape) * weights).sum(dim=0)
        out[start:stop] = total * diff
    return out


class _Captured(Exception):
    """Raised by the capturing hook: the rest of the forward pass is not needed."""


def _layer_output(module: torch.nn.Module, layer: torch.nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """``layer``'s output when ``module`` runs on ``inputs``; the forward stops at ``layer``."""
    seen: list[torch.Tensor] = []

    def grab(_m: torch.nn.Module, _i: object, output: torch.Tensor) -> None:
        seen.append(output.detach())
        raise _Captured

    handle = layer.register_forward_hook(grab)
    try:
        module(inputs)
    except _Captured:
        pass
    finally:
        handle.remove()
    return seen[0]
