"""Where the DP noise comes from: OS entropy by default, the spec's seed only on request.

Anyone who can regenerate the Gaussian noise of a DP-SGD run can subtract it from the released
weights, and the guarantee is gone for them. The spec's ``seed`` is printed in ``training.json``,
``results.json`` and the report (it must be: it makes the split, the initialisation and the
Poisson batches reproducible, so audits can be rerun), so the noise must not be derived from it.

- ``os-entropy`` (default): the noise generator's state comes from ``secrets`` (the operating
  system's CSPRNG). Nothing derived from it is written, logged, checkpointed or returned. On a
  CPU the generator is PyTorch's Mersenne Twister, whose ``manual_seed`` keeps only 32 bits of
  the seed (brute-forceable); so its whole 19,937-bit state is filled from OS entropy instead.
  On CUDA the generator is Philox, whose seed is 64 bits.
- ``seeded`` (``train.privacy.reproducible_noise: true``): the noise comes from ``seed + 1``,
  bit-identical across reruns, for research only. The ledger says ``noise_source: seeded``,
  the report says the guarantee does not hold against anyone holding the seed, and the
  ``eu-ai-act-high-risk`` and ``nist-ai-rmf`` policy packs fail such a run.

What this does not do (stated in every ledger's ``privacy.scope``): the generator is not a
CSPRNG itself, and the Gaussian is sampled in floating point, the setting of Mironov's attack
on the least significant bits (Mironov 2012, "On significance of the least significant bits for
differential privacy", CCS) and of its Gaussian follow-up (Jin et al. 2022, "Are we there yet?
Timing and floating-point attacks on differential privacy systems", IEEE S&P). Those attacks
read one noisy value at full precision; a DP-SGD run releases only the final weights, after
thousands of noisy steps each rounded into float32 parameters, never a noisy gradient, which
is why we rely on the idealised Gaussian mechanism's accounting as the DP-SGD literature does.
It is a documented assumption, not a proof: see ``docs/PRIVACY.md``.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

__all__ = ["NOISE_SOURCES", "noise_generator", "noise_source"]

NOISE_SOURCES = ("os-entropy", "seeded")
#: CPU generator state (PyTorch's legacy layout): initial seed (8 bytes), left (4), seeded (4),
#: next (8), then the 624 Mersenne Twister words, one per 8 bytes (low 32 bits used).
_MT_WORDS = 624
_MT_OFFSET = 24
_MT_STRIDE = 8


def noise_source(reproducible: bool) -> str:
    """The ledger's ``privacy.noise_source`` for this setting."""
    return "seeded" if reproducible else "os-entropy"


def noise_generator(device: str, *, seed: int, reproducible: bool) -> torch.Generator:
    """The generator DP noise is drawn from.

    ``reproducible`` seeds it from ``seed + 1`` (the value round 1 used, so research reruns
    keep their numbers); otherwise its state comes from OS entropy and is never exposed.
    """
    import torch

    generator = torch.Generator(device=device)
    if reproducible:
        return generator.manual_seed(int(seed) + 1)
    generator.manual_seed(secrets.randbits(64))
    if generator.device.type == "cpu":
        _fill_cpu_state(generator)
    return generator


def _fill_cpu_state(generator: torch.Generator) -> None:
    """Replace the Mersenne Twister's 624 state words with OS entropy (manual_seed keeps 32 bits)."""
    import torch

    state = bytearray(generator.get_state().numpy().tobytes())
    words = secrets.token_bytes(4 * _MT_WORDS)
    for i in range(_MT_WORDS):
        at = _MT_OFFSET + i * _MT_STRIDE
        state[at : at + 4] = words[4 * i : 4 * i + 4]
        state[at + 4 : at + 8] = bytes(4)
    # "left" = 1 makes the next draw regenerate the whole block from these words.
    state[8:12] = (1).to_bytes(4, "little")
    generator.set_state(torch.frombuffer(state, dtype=torch.uint8).clone())
