"""``privacy.scope``: what a DP run's guarantee covers, and by name what the run publishes
about its private rows outside it.

The ε of DP-SGD bounds what the *released weights* reveal about any one training row. A run
also writes other things computed from those rows (preprocessing statistics, data-quality
figures of the train split, membership-inference scores): none of them is covered, so each is
named here rather than left for a reader to discover. ``outside`` lists what travels with the
model folder; the privacy audit adds ``report``: train-split figures its results and reports
show. The policy packs WARN while ``outside`` is not empty (metric ``privacy.scope.outside_count``).

Ways to empty ``outside``: declare the schema publicly (``data.schema``) instead of fitting the
preprocessing on the private rows; keep an eval split (the per-epoch loss and the attribution
baseline then come from it); a clean data-quality gate.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["COVERS", "FLOATING_POINT", "NOISE", "privacy_scope", "with_items"]

COVERS = (
    "the released model weights (model.safetensors) and anything computed from them alone, "
    "for one training row added or removed (Poisson subsampling)"
)
ASSUMES = (
    "the number of training rows is public (ledger rows and sample_rate); the add/remove "
    "neighbouring relation of Opacus' accountants treats it so",
    "the eval split is not private training data: the per-epoch eval loss and accuracy and the "
    "attribution baseline of a DP run come from it",
)
NOISE = {
    "os-entropy": (
        "the Gaussian noise generator's state comes from the operating system's entropy "
        "(secrets); it is never written, logged, checkpointed or returned, so the spec's seed, "
        "which is published, does not replay the noise"
    ),
    "seeded": (
        "reproducible_noise: the Gaussian noise is drawn from the spec's seed, which is "
        "published; the guarantee does not hold against anyone holding the seed (research reruns "
        "only; the policy packs treat this run as not private)"
    ),
}
FLOATING_POINT = (
    "the Gaussian noise is sampled in floating point (PyTorch, float32), the setting of "
    "Mironov's attack on the least significant bits (Mironov 2012, CCS) and of its Gaussian "
    "follow-up (Jin et al. 2022, IEEE S&P); those attacks read one noisy value at full "
    "precision, while this run releases only the final weights after every noisy step; the "
    "accounting is that of the idealised real-valued Gaussian mechanism, as in the DP-SGD "
    "literature, not of the floating-point implementation"
)


def privacy_scope(*, noise_source: str, outside: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The ledger's ``privacy.scope`` for a run whose noise came from ``noise_source``.

    Examples
    --------
    >>> privacy_scope(noise_source="os-entropy")["outside"]
    []
    """
    return {
        "covers": COVERS,
        "assumes": list(ASSUMES),
        "noise_source": noise_source,
        "noise": NOISE[noise_source],
        "floating_point": FLOATING_POINT,
        "outside": [dict(item) for item in outside],
    }


def with_items(scope: Mapping[str, Any], key: str, items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``scope`` with ``items`` appended to its ``key`` list (``outside`` or ``report``)."""
    out = dict(scope)
    out[key] = [*list(scope.get(key) or []), *(dict(item) for item in items)]
    return out
