"""``config.json`` of a model folder: what rebuilds the module (architecture or factory, options, classes)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from governance.data.bundle import DataBundle
    from governance.models.preprocessing import Preprocessor
    from governance.spec import Spec

__all__ = ["model_config"]


def model_config(spec: Spec, bundle: DataBundle, preprocessor: Preprocessor) -> dict[str, Any]:
    """The JSON config that rebuilds the module (``config.json``)."""
    options = dict(spec.model.options)
    options.pop("input_shape", None) if spec.model.architecture != "cnn" else None
    if spec.model.architecture == "cnn" and bundle.image_shape is not None:
        options.setdefault("input_shape", list(bundle.image_shape))
    kind = "image" if spec.task == "image_classification" or spec.model.architecture == "cnn" else "tabular"
    return {
        "format_version": 1,
        "task": str(spec.task),
        "kind": kind,
        "label": bundle.label,
        "classes": list(bundle.classes),
        "positive": bundle.positive,
        "features": list(bundle.features),
        "n_inputs": preprocessor.n_encoded,
        "n_classes": len(bundle.classes),
        "architecture": spec.model.architecture,
        "factory": spec.model.factory,
        "options": options,
        "module_fixes": [],
    }
