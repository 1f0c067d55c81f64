"""The IG path quadrature: Captum's rules to the bit, checked through Captum's public API."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import IntegratedGradients

from governance.audit._ig import integrated_gradients
from governance.audit._quadrature import METHODS, path_quadrature


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("n_steps", [2, 7, 32])
def test_integrated_gradients_equals_captum_public_api(method: str, n_steps: int) -> None:
    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()
    x = torch.randn(6, 5, dtype=torch.float64)
    base = torch.zeros_like(x)
    target = torch.tensor([0, 1, 2, 0, 1, 2])
    ours = integrated_gradients(module, x, base, target, n_steps=n_steps, method=method)
    theirs = IntegratedGradients(module).attribute(
        x, base, target=target, n_steps=n_steps, method=method, internal_batch_size=len(x) * n_steps
    )
    # Captum casts the step weights to float32 before weighting the gradients; hence float32 tolerances.
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-7)


def test_gauss_legendre_weights_come_from_numpy_and_integrate_polynomials_exactly() -> None:
    alphas, weights = path_quadrature("gausslegendre", 5)
    nodes, w = np.polynomial.legendre.leggauss(5)
    assert alphas == (0.5 * (1 + nodes)).tolist() and weights == (0.5 * w).tolist()
    # An n-point Gauss rule integrates polynomials of degree 2n - 1 exactly: ∫₀¹ t⁹ dt = 1/10.
    assert sum(wk * a**9 for a, wk in zip(alphas, weights)) == pytest.approx(0.1, abs=1e-15)


@pytest.mark.parametrize(("method", "steps"), [("riemann_left", 1), ("gausslegendre", 0), ("simpson", 10)])
def test_bad_quadrature_requests_raise(method: str, steps: int) -> None:
    with pytest.raises(ValueError, match=method):
        path_quadrature(method, steps)
