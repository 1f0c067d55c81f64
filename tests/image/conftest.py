"""One small DP-trained digits CNN per test process, shared by the image audit tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.image.helpers import DIGITS_SPEC, write_spec


@pytest.fixture(scope="session")
def digits_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(spec path, model folder) of the digits CNN trained with DP for 2 epochs (a few seconds)."""
    from governance.spec import load_spec
    from governance.train.api import train

    directory = tmp_path_factory.mktemp("digits")
    spec_path = write_spec(directory, DIGITS_SPEC)
    outcome = train(load_spec(spec_path), directory / "model", device="cpu", progress=False)
    return spec_path, outcome.model_dir


@pytest.fixture(scope="session")
def digits_context(digits_model: tuple[Path, Path]) -> Any:
    """A factory ``(audit options) -> AuditContext`` over the trained digits model, on the CPU."""
    return context_factory(*digits_model, device="cpu")


def context_factory(spec_path: Path, model_dir: Path, *, device: str) -> Any:
    """``(audit options) -> AuditContext`` over a trained model loaded on ``device``."""
    from governance.audit.base import AuditContext
    from governance.data.loading import load_bundle
    from governance.models.artifacts import read_ledger
    from governance.models.handle import load_handle
    from governance.models.predict import predict
    from governance.spec import load_spec

    spec = load_spec(spec_path)
    bundle = load_bundle(spec)
    handle = load_handle(model_dir, device)
    assert bundle.train is not None
    eval_pred = predict(handle, bundle.eval, bundle.label)
    train_pred = predict(handle, bundle.train, bundle.label)

    def make(options: dict[str, Any] | None = None) -> AuditContext:
        return AuditContext(
            spec=spec,
            data=bundle,
            model=handle,
            eval_predictions=eval_pred,
            train_predictions=train_pred,
            ledger=read_ledger(model_dir),
            device=handle.device,
            seed=0,
            options=options or {},
        )

    return make
