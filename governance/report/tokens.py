"""Token attributions of text models shown as highlighted text (issue 6).

HTML spans rather than a chart: the reader must be able to read the sentence, select it, and
have a screen reader speak it, which an image of text would not allow. The colour scale is the
report's colour-blind-safe diverging pair (Okabe–Ito blue for evidence against the predicted
class, vermillion for evidence for it), its strength the token's share of the example's largest
absolute attribution.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_EXAMPLES", "TokenExampleView", "TokenView", "token_examples"]

MAX_EXAMPLES = 8
_FOR = (213, 94, 0)  # Okabe–Ito vermillion
_AGAINST = (0, 114, 178)  # Okabe–Ito blue
_SPECIAL = frozenset({"[CLS]", "[SEP]", "[PAD]", "<s>", "</s>", "<pad>"})


@dataclass(frozen=True)
class TokenView:
    text: str
    attribution: float
    style: str  # an inline background colour: the report stays one self-contained file
    identity: bool


@dataclass(frozen=True)
class TokenExampleView:
    text: str
    predicted: str
    tokens: tuple[TokenView, ...]
    #: The tokens with the largest |attribution|, for the Markdown report and the alt text.
    top: tuple[tuple[str, float], ...]


def token_examples(details: Mapping[str, Any]) -> tuple[TokenExampleView, ...]:
    """Views of ``details["token_examples"]`` as the text attribution audit writes them; () if absent."""
    raw = details.get("token_examples")
    if not isinstance(raw, Sequence):
        return ()
    views = []
    for example in list(raw)[:MAX_EXAMPLES]:
        view = _example(example)
        if view is not None:
            views.append(view)
    return tuple(views)


def _example(example: Any) -> TokenExampleView | None:
    if not isinstance(example, Mapping):
        return None
    tokens, scores = example.get("tokens"), example.get("attributions")
    if not isinstance(tokens, Sequence) or not isinstance(scores, Sequence) or len(tokens) != len(scores):
        return None
    identity = example.get("identity_token")
    flags = (
        list(identity)
        if isinstance(identity, Sequence) and len(identity) == len(tokens)
        else [False] * len(tokens)
    )
    kept = [
        (str(t), float(s or 0.0), bool(f)) for t, s, f in zip(tokens, scores, flags) if str(t) not in _SPECIAL
    ]
    scale = max((abs(s) for _, s, _ in kept), default=0.0) or 1.0
    views = tuple(TokenView(text=t, attribution=s, style=_style(s / scale), identity=f) for t, s, f in kept)
    top = tuple(sorted(((t, s) for t, s, _ in kept), key=lambda ts: -abs(ts[1]))[:3])
    return TokenExampleView(
        text=str(example.get("text", " ".join(t for t, _, _ in kept))),
        predicted=str(example.get("predicted", "")),
        tokens=views,
        top=top,
    )


def _style(strength: float) -> str:
    red, green, blue = _FOR if strength >= 0 else _AGAINST
    alpha = round(min(abs(strength), 1.0) * 0.75, 2)  # ≤ 0.75 keeps black text readable
    return f"background-color: rgba({red}, {green}, {blue}, {alpha})"
