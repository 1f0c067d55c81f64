"""Character-level perturbations for text robustness, behind a registry (name → function).

ART has no text attacks, so the robustness audit measures accuracy and prediction flips under
natural noise instead: typos, case changes, whitespace. Each perturbation takes the texts, a
rate and a numpy Generator and is deterministic for a given seed. ``rate`` is the probability
that each eligible character is changed, so the expected share of changed characters is
``rate`` (the tests check this).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from governance._registry import Registry

if TYPE_CHECKING:
    import numpy as np

__all__ = ["Perturbation", "create_perturbation", "perturb", "perturbation_names", "register_perturbation"]

Perturbation = Callable[[str, float, "np.random.Generator"], str]

_LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _typo(text: str, rate: float, rng: np.random.Generator) -> str:
    """Each letter, with probability ``rate``, is replaced by a different random letter."""
    chars = list(text)
    hits = rng.random(len(chars)) < rate
    picks = rng.integers(0, len(_LETTERS) - 1, size=len(chars))
    for i, ch in enumerate(chars):
        if hits[i] and ch.isalpha():
            others = _LETTERS.replace(ch.lower(), "")
            chars[i] = others[picks[i] % len(others)]
    return "".join(chars)


def _case(text: str, rate: float, rng: np.random.Generator) -> str:
    """Each letter, with probability ``rate``, has its case flipped."""
    chars = list(text)
    hits = rng.random(len(chars)) < rate
    return "".join(c.swapcase() if h and c.isalpha() else c for c, h in zip(chars, hits))


def _whitespace(text: str, rate: float, rng: np.random.Generator) -> str:
    """Each space, with probability ``rate``, is deleted (two words merge) or doubled, evenly."""
    chars = list(text)
    hits = rng.random(len(chars)) < rate
    drop = rng.random(len(chars)) < 0.5
    out = []
    for c, h, d in zip(chars, hits, drop):
        if h and c == " ":
            out.append("" if d else "  ")
        else:
            out.append(c)
    return "".join(out)


_PERTURBATIONS: Registry[Perturbation] = Registry(
    "perturbation",
    {"char_typo": _typo, "char_case": _case, "whitespace": _whitespace},
)


def register_perturbation(name: str, fn: Perturbation) -> None:
    """Register ``fn(text, rate, rng) -> text`` under ``name`` (raises on duplicates)."""
    _PERTURBATIONS.register(name, fn)


def perturbation_names() -> tuple[str, ...]:
    return _PERTURBATIONS.names()


def create_perturbation(name: str) -> Perturbation:
    """The perturbation registered under ``name``; raises ValueError on an unknown name."""
    return _PERTURBATIONS.get(name)


def perturb(texts: Sequence[str], name: str, rate: float, seed: int) -> list[str]:
    """Apply perturbation ``name`` at ``rate`` to every text, deterministically for ``seed``.

    Examples
    --------
    >>> perturb(["hello world"], "char_case", 0.0, seed=0)
    ['hello world']
    """
    import numpy as np

    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    fn = create_perturbation(name)
    rng = np.random.default_rng(seed)
    return [fn(t, rate, rng) for t in texts]
