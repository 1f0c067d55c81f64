"""The non-private twin of a DP spec: what the privacy-cost audit compares the private model with.

Same architecture, data, seed (so the same split, initialisation and batch order) and epochs as
the spec, with ``train.privacy`` removed and, optionally, another learning rate (a non-private run
often wants a smaller one than DP-SGD's, whose clipped, noised gradients are smaller).
"""

from __future__ import annotations

from os import PathLike
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from governance.data.bundle import DataBundle
    from governance.spec import Spec
    from governance.train.api import TrainOutcome

__all__ = ["train_twin", "twin_spec"]


def twin_spec(spec: Spec, lr: float | None = None) -> Spec:
    """``spec`` without privacy (and with ``lr`` when given); everything else unchanged."""
    if spec.train is None:
        raise ValueError("the spec does not train")
    update: dict[str, object] = {"privacy": None}
    if lr is not None:
        update["lr"] = lr
    return spec.model_copy(update={"train": spec.train.model_copy(update=update)})


def train_twin(
    spec: Spec,
    out_dir: str | PathLike[str],
    *,
    bundle: DataBundle,
    lr: float | None = None,
    device: str = "auto",
    force: bool = False,
    trust_code: bool = False,
) -> TrainOutcome:
    """Train the non-private twin of ``spec`` into ``out_dir`` (a model folder like any other).

    ``out_dir`` lies inside the audit run's staging folder, which that run's lock covers.
    """
    from governance.train.api import train

    return train(
        twin_spec(spec, lr),
        out_dir,
        bundle=bundle,
        force=force,
        device=device,
        progress=False,
        trust_code=trust_code,
        lock=False,
    )
