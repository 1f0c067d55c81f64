"""The path quadrature of Integrated Gradients: where on the baseline→input path to take
gradients (``alphas`` in [0, 1]) and how to weight them.

The same rules, to the bit, as Captum's ``IntegratedGradients(method=...)``: Gauss–Legendre
nodes and weights from :func:`numpy.polynomial.legendre.leggauss` rescaled from [-1, 1] to
[0, 1], and the Riemann sums on an evenly spaced grid (``torch.linspace``, as Captum builds it).
Captum keeps these builders in a private module (``captum.attr._utils``), which may change in
any release; they are a few lines, so they live here. ``tests/audit/test_quadrature.py`` checks
them against ``IntegratedGradients.attribute`` (the public API) as the oracle.
"""

from __future__ import annotations

__all__ = ["METHODS", "path_quadrature"]

#: The quadrature rules Captum's IntegratedGradients accepts.
METHODS = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")


def path_quadrature(method: str, n_steps: int) -> tuple[list[float], list[float]]:
    """(alphas, weights) of ``n_steps`` points for ``method``; the weights sum to 1.

    Examples
    --------
    >>> alphas, weights = path_quadrature("riemann_trapezoid", 3)
    >>> alphas, weights
    ([0.0, 0.5, 1.0], [0.16666666666666666, 0.3333333333333333, 0.16666666666666666])
    >>> round(sum(path_quadrature("gausslegendre", 7)[1]), 12)
    1.0
    """
    if method == "gausslegendre":
        import numpy as np

        if n_steps < 1:
            raise ValueError("gausslegendre needs at least one step")
        nodes, weights = np.polynomial.legendre.leggauss(n_steps)
        return (0.5 * (1 + nodes)).tolist(), (0.5 * weights).tolist()
    if method not in METHODS:
        raise ValueError(f"unknown integration method {method!r}; expected one of {list(METHODS)}")
    if n_steps < 2:
        raise ValueError(f"{method} needs at least two steps")
    import torch

    rule = method.removeprefix("riemann_")
    step = [1 / n_steps] * n_steps
    if rule == "trapezoid":
        step[0] /= 2
        step[-1] /= 2
        grid = torch.linspace(0, 1, n_steps)
    elif rule == "left":
        grid = torch.linspace(0, 1 - 1 / n_steps, n_steps)
    elif rule == "middle":
        grid = torch.linspace(1 / (2 * n_steps), 1 - 1 / (2 * n_steps), n_steps)
    else:
        grid = torch.linspace(1 / n_steps, 1, n_steps)
    return grid.tolist(), step
