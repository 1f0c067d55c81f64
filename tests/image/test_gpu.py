"""The image path on CUDA (``make test-gpu``): training, every model audit, CPU vs CUDA numbers.

Marked ``gpu``: skipped unless ``torch.cuda.is_available()`` (tests/conftest.py). The CPU and the
GPU compute in different orders (and cuDNN picks its own kernels), so numbers are compared
within tolerances, never for equality; the privacy accounting, which is pure arithmetic on
(σ, q, steps), must agree exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from governance.audit.attribution import AttributionAudit
from governance.audit.performance import PerformanceAudit
from governance.audit.privacy import PrivacyAudit
from governance.audit.robustness import RobustnessAudit
from governance.cli import main
from tests.image.conftest import context_factory
from tests.image.helpers import DIGITS_SPEC, write_spec

pytestmark = pytest.mark.gpu

ATTRIBUTION = {"max_rows": 60, "n_steps": 32, "infidelity_rows": 0}
ROBUSTNESS = {"eps": [0.03, 0.1], "max_rows": 200, "hopskipjump_rows": 0}


@pytest.fixture(scope="module")
def cuda_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The digits CNN trained with DP on CUDA (2 epochs)."""
    from governance.spec import load_spec
    from governance.train.api import train

    directory = tmp_path_factory.mktemp("digits-cuda")
    spec_path = write_spec(directory, DIGITS_SPEC)
    outcome = train(load_spec(spec_path), directory / "model", device="cuda", progress=False)
    return spec_path, outcome.model_dir


def test_dp_training_runs_on_cuda_and_accounts_like_cpu(
    cuda_model: tuple[Path, Path], digits_model: tuple[Path, Path]
) -> None:
    from governance.models.artifacts import load_model, read_ledger

    gpu, cpu = read_ledger(cuda_model[1]), read_ledger(digits_model[1])
    assert gpu["device"].startswith("cuda") and cpu["device"] == "cpu"
    # Same spec, same data, same seed: the same σ, sample rate and steps, hence the same ε.
    for key in ("noise_multiplier", "sample_rate", "steps", "epsilon"):
        assert gpu["privacy"][key] == pytest.approx(cpu["privacy"][key], rel=1e-12), key
    assert gpu["privacy"]["epsilon"] <= DIGITS_SPEC["train"]["privacy"]["target_epsilon"]
    # The noise is drawn on each device's own generator, so the weights differ; utility must not.
    assert abs(gpu["eval_accuracy"] - cpu["eval_accuracy"]) < 0.15
    module = load_model(cuda_model[1])  # weights were moved to the CPU before saving
    assert all(p.device.type == "cpu" for p in module.parameters())


@pytest.fixture(scope="module")
def both(cuda_model: tuple[Path, Path]) -> tuple[Any, Any]:
    """Contexts over the same weights on CUDA and on the CPU."""
    return context_factory(*cuda_model, device="cuda"), context_factory(*cuda_model, device="cpu")


def test_handle_and_predictions_on_cuda_match_cpu(both: tuple[Any, Any]) -> None:
    gpu, cpu = (make() for make in both)
    assert gpu.model.device.startswith("cuda")
    assert next(gpu.model.module.parameters()).device.type == "cuda"
    np.testing.assert_allclose(gpu.eval_predictions.proba, cpu.eval_predictions.proba, atol=1e-4)
    g = PerformanceAudit().run(gpu).metrics
    c = PerformanceAudit().run(cpu).metrics
    assert g["performance.accuracy"] == pytest.approx(c["performance.accuracy"], abs=2 / 450)


def test_integrated_gradients_on_cuda_match_cpu(both: tuple[Any, Any]) -> None:
    gpu = AttributionAudit().run(both[0](ATTRIBUTION))
    cpu = AttributionAudit().run(both[1](ATTRIBUTION))
    assert gpu.metrics["attribution.completeness_gap"] == pytest.approx(
        cpu.metrics["attribution.completeness_gap"], abs=5e-3
    )
    assert gpu.details["heatmaps"].keys() == cpu.details["heatmaps"].keys()
    for label, grid in gpu.details["heatmaps"].items():
        np.testing.assert_allclose(grid, cpu.details["heatmaps"][label], atol=2e-3, err_msg=label)


def test_pgd_on_cuda_matches_cpu(both: tuple[Any, Any]) -> None:
    gpu = RobustnessAudit().run(both[0](ROBUSTNESS))
    cpu = RobustnessAudit().run(both[1](ROBUSTNESS))
    assert gpu.details["units"] == "pixel units"
    for key, value in cpu.metrics.items():
        if key.endswith(".accuracy") and value is not None:
            # A sign flip of a near-zero gradient can change a handful of the 200 images.
            assert gpu.metrics[key] == pytest.approx(value, abs=0.03), key


def test_membership_inference_on_cuda_matches_cpu(both: tuple[Any, Any]) -> None:
    gpu = PrivacyAudit().run(both[0]())
    cpu = PrivacyAudit().run(both[1]())
    assert gpu.metrics["privacy.epsilon"] == cpu.metrics["privacy.epsilon"]
    assert gpu.metrics["privacy.membership_inference.auc"] == pytest.approx(
        cpu.metrics["privacy.membership_inference.auc"], abs=0.01
    )


def test_governance_audit_device_cuda_end_to_end(tmp_path: Path) -> None:
    spec = dict(DIGITS_SPEC, audits={a: {} for a in ("performance", "fairness", "privacy")})
    spec["audits"]["attribution"] = ATTRIBUTION
    spec["audits"]["robustness"] = ROBUSTNESS
    path = write_spec(tmp_path, spec)
    assert main(["audit", str(path), "--out", str(tmp_path / "out"), "--device", "cuda"]) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["run"]["device"].startswith("cuda")
    statuses = {name: s["status"] for name, s in results["sections"].items()}
    assert statuses == {
        "performance": "ok",
        "fairness": "skipped",
        "attribution": "ok",
        "robustness": "ok",
        "privacy": "ok",
    }
