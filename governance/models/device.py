"""Which torch device a model runs on: ``auto`` resolves to CUDA when present."""

from __future__ import annotations

from governance.errors import InputError

__all__ = ["resolve_device"]


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when available, else ``cpu``; others are checked."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device", None, f"{device!r} requested but CUDA is not available")
    return device
