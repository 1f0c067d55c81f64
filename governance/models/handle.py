"""Model handles: a trained module plus the preprocessing it was trained with.

:func:`load_handle` reads a folder written by ``governance train``; :func:`handle_from_spec`
builds one for a spec that brings its own weights (``factory:`` + ``weights:``). Both return a
:class:`TabularHandle`, which implements :class:`governance.models.base.ModelHandle`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any

from governance.models.artifacts import (
    CONFIG_FILE,
    PREPROCESSING_FILE,
    WEIGHTS_FILE,
    build_module,
    check_config,
    load_weights,
    read_config,
    verify_model_dir,
)
from governance.models.decision_rule import DecisionRule, load_decision_rule
from governance.models.preprocessing import Preprocessor

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import torch
    from torch import nn

    from governance.data.bundle import DataBundle
    from governance.spec import Spec

__all__ = ["TabularHandle", "handle_from_spec", "load_handle"]

#: Rows per forward pass in predict_proba (bounded memory on large eval sets).
_CHUNK = 8192


@dataclass(frozen=True, eq=False)
class TabularHandle:
    """A tabular or image classifier with its encoder.

    Attributes
    ----------
    kind
        ``"tabular"`` or ``"image"`` (image rows are flattened pixels; the module reshapes).
    classes
        Class labels in output order; for binary tasks ``classes[-1]`` is the positive class.
    feature_groups
        Original feature → encoded column indices (one index for a numeric feature, the
        one-hot block for a categorical one).
    numeric_columns, onehot_columns
        Encoded column indices of standardised numeric inputs and of one-hot inputs.
    """

    kind: str
    classes: tuple[str, ...]
    device: str
    preprocessor: Preprocessor
    _module: Any
    positive: str | None = None
    config: Mapping[str, Any] | None = None
    #: The per-group decision rule ``governance mitigate`` saved with the model, if any.
    decision_rule: DecisionRule | None = None

    @property
    def module(self) -> nn.Module:
        return self._module

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The encoded column names (``age``, ``sex=female`` …) in input order."""
        return self.preprocessor.encoded_names

    @property
    def feature_groups(self) -> dict[str, tuple[int, ...]]:
        return self.preprocessor.feature_groups

    @property
    def numeric_columns(self) -> tuple[int, ...]:
        return self.preprocessor.numeric_columns

    @property
    def onehot_columns(self) -> tuple[int, ...]:
        return self.preprocessor.onehot_columns

    def encode(self, frame: pd.DataFrame) -> torch.Tensor:
        """Encode raw rows into the model's float32 input tensor on ``device``."""
        import torch

        return torch.from_numpy(self.preprocessor.transform(frame)).to(self.device)

    def baseline(self, frame: pd.DataFrame | None = None) -> torch.Tensor:
        """The train mean in encoded space, one row per row of ``frame`` (or a single row)."""
        import torch

        row = torch.tensor(self.preprocessor.encoded_mean, dtype=torch.float32, device=self.device)
        n = 1 if frame is None else len(frame)
        return row.unsqueeze(0).expand(n, -1).clone()

    def predict_proba_tensor(self, inputs: torch.Tensor) -> torch.Tensor:
        """Class probabilities for already-encoded inputs (keeps the autograd graph)."""
        import torch

        return torch.softmax(self.module(inputs), dim=1)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Class probabilities, shape (n, len(classes)), float64."""
        import numpy as np
        import torch

        encoded = self.encode(frame)
        self.module.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(encoded), _CHUNK):
                out.append(torch.softmax(self.module(encoded[start : start + _CHUNK]), dim=1).cpu().numpy())
        if not out:
            return np.zeros((0, len(self.classes)))
        return np.concatenate(out).astype("float64")

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Predicted labels as strings."""
        import numpy as np

        proba = self.predict_proba(frame)
        if self.decision_rule is not None:
            return self.decision_rule.predict(proba[:, -1], frame[self.decision_rule.attribute].tolist())
        return np.asarray(self.classes, dtype=object)[proba.argmax(axis=1)]


def load_handle(
    model_dir: str | PathLike[str], device: str = "cpu", *, factory: str | None = None
) -> TabularHandle:
    """Load a model folder written by ``governance train`` as a :class:`TabularHandle`.

    The folder names no code that runs: its config must name a built-in architecture, or the
    user factory the caller trusts (``factory``, from a spec run with ``--trust-code``). Its files
    must be the ones its ledger records (one run wrote them all).

    Raises
    ------
    InputError
        If the folder names code, lacks a file, mixes files of different runs, or the weights
        do not fit the config.
    """
    import json

    from governance.errors import InputError
    from governance.models.device import resolve_device

    model_dir = Path(model_dir)
    device = resolve_device(device)
    config = read_config(model_dir)
    check_config(config, source=str(model_dir / CONFIG_FILE), factory=factory)
    verify_model_dir(model_dir)
    if config.get("kind") == "text":
        from governance.models.hf import load_text_handle

        return load_text_handle(model_dir, config, device)  # type: ignore[return-value]
    pre_path = model_dir / PREPROCESSING_FILE
    try:
        preprocessor = Preprocessor.from_dict(json.loads(pre_path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise InputError(
            pre_path, None, "file not found; expected the preprocessing written by `governance train`"
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(pre_path, None, f"not a valid preprocessing file ({exc})") from None
    module = build_module(config, source=str(model_dir / CONFIG_FILE), factory=factory)
    load_weights(module, model_dir / WEIGHTS_FILE)
    module.to(device).eval()
    classes = config.get("classes")
    if not isinstance(classes, list) or not classes:
        raise InputError(model_dir / CONFIG_FILE, "classes", "expected the list of class labels")
    return TabularHandle(
        kind=str(config.get("kind", "tabular")),
        classes=tuple(str(c) for c in classes),
        device=device,
        preprocessor=preprocessor,
        _module=module,
        positive=config.get("positive"),
        config=config,
        decision_rule=load_decision_rule(model_dir),
    )


def handle_from_spec(
    spec: Spec, bundle: DataBundle, device: str = "cpu", *, factory: str | None = None
) -> TabularHandle:
    """A handle for a spec that brings its own module (``factory:`` + ``weights:``).

    ``factory`` is the spec's factory when the caller trusts it (``--trust-code``). The preprocessing is fitted on the bundle's train split (eval when there is none), the same
    way ``governance train`` fits it.
    """
    from governance.errors import InputError
    from governance.models.config import model_config
    from governance.models.device import resolve_device
    from governance.models.preprocessing import preprocessor_for

    device = resolve_device(device)
    preprocessor = preprocessor_for(bundle, schema=spec.data.public_schema, source=spec.source)
    config = model_config(spec, bundle, preprocessor)
    module = build_module(config, source=str(spec.source), factory=factory, field_prefix="model.")
    if spec.model.weights is None:
        raise InputError(spec.source, "model.weights", "required to audit a model that is not trained here")
    load_weights(module, spec.model.weights)
    module.to(device).eval()
    return TabularHandle(
        kind=str(config["kind"]),
        classes=bundle.classes,
        device=device,
        preprocessor=preprocessor,
        _module=module,
        positive=bundle.positive,
        config=config,
    )


if TYPE_CHECKING:
    from governance.models.base import TabularModelHandle

    def _implements_protocol(handle: TabularHandle) -> TabularModelHandle:
        return handle  # mypy checks that TabularHandle implements the audits' protocol
