"""``audits.privacy.canaries``: the options of the in-training canary audit (issue 18).

Shared by the trainer (:mod:`governance.train.canaries`, which inserts the canaries) and the
privacy audit (:mod:`governance.audit.privacy`, which turns their scores into an ε lower bound);
it lives here because ``train`` and ``audit`` never import each other.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field

from governance._options import Bool, Float, Int, Options

__all__ = ["CanaryOptions", "canary_options"]


class CanaryOptions(Options):
    """``audits.privacy.canaries: {count: 1000, kind: gradient}``."""

    #: Canaries; each is included in training with probability ½ (secret until scoring).
    count: Annotated[Int, Field(ge=20, le=100_000)] = 1000
    #: ``gradient``: Dirac gradient canaries (white box, one weight coordinate each).
    kind: Literal["gradient"] = "gradient"
    #: The canary's raw per-sample gradient norm, in units of ``max_grad_norm``: above 1, so that
    #: clipping has work to do and a run whose clipping is off shows it.
    gradient_norm: Annotated[Float, Field(gt=1, le=1000)] = 10.0
    #: A canary run's model is not the release candidate unless this says so (the canaries moved
    #: some weights; measure the cost and decide).
    release_candidate: Bool = False


def canary_options(audits: Mapping[str, Any] | None) -> CanaryOptions | None:
    """The spec's canary options (already validated by the privacy audit's preflight), or None."""
    privacy = (audits or {}).get("privacy") or {}
    raw = privacy.get("canaries") if isinstance(privacy, Mapping) else None
    if raw is None:
        return None
    return raw if isinstance(raw, CanaryOptions) else CanaryOptions.model_validate(raw)
