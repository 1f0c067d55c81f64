"""Tokenisation helpers: validate a text column, tokenise once, locate identity-term tokens.

Texts are tokenised up front (fixed ``max_length``, padded to the longest text of the call) so
that training steps never re-tokenise. The model derives its attention mask from the padding
id, so a batch is a single ``int64`` tensor of token ids: that is what Opacus' per-sample
machinery and the Trainer's batched datasets expect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from governance.errors import InputError

if TYPE_CHECKING:
    import pandas as pd
    import torch

__all__ = ["ERR_EMPTY_TEXT", "ERR_NOT_STRING", "Encoded", "check_texts", "encode_texts", "term_token_mask"]

ERR_NOT_STRING = "text column {column!r} holds a non-string value {value!r} (row {row}); expected text"
ERR_EMPTY_TEXT = "text column {column!r} holds an empty or missing text (row {row}); expected text"


def check_texts(frame: pd.DataFrame, column: str, source: Any) -> None:
    """Raise :class:`InputError` if ``column`` has a missing, empty or non-string value."""
    for row, value in enumerate(frame[column].tolist()):
        if value is None or (isinstance(value, float) and value != value):
            raise InputError(source, column, ERR_EMPTY_TEXT.format(column=column, row=row))
        if not isinstance(value, str):
            raise InputError(source, column, ERR_NOT_STRING.format(column=column, value=value, row=row))
        if not value.strip():
            raise InputError(source, column, ERR_EMPTY_TEXT.format(column=column, row=row))


@dataclass(frozen=True)
class Encoded:
    """Token ids ``(n, length)`` (int64, right-padded with ``pad_id``) and their offsets."""

    ids: torch.Tensor
    offsets: list[list[tuple[int, int]]]


def encode_texts(tokenizer: Any, texts: Sequence[str], max_length: int) -> Encoded:
    """Tokenise ``texts`` (truncated to ``max_length``, padded to the longest)."""
    import torch

    out = tokenizer(
        list(texts),
        padding="longest",
        truncation=True,
        max_length=max_length,
        return_offsets_mapping=True,
        return_tensors="np",
    )
    ids = torch.as_tensor(out["input_ids"], dtype=torch.long)
    offsets = [[(int(a), int(b)) for a, b in row] for row in out["offset_mapping"]]
    return Encoded(ids=ids, offsets=offsets)


def term_token_mask(
    offsets: list[list[tuple[int, int]]], spans: Sequence[Sequence[tuple[int, int]]]
) -> list[list[bool]]:
    """Per token, whether it overlaps one of its text's character ``spans`` (identity terms)."""
    mask: list[list[bool]] = []
    for row, row_spans in zip(offsets, spans):
        mask.append(
            [
                b > a and any(a < e and s < b for s, e in row_spans) for a, b in row
            ]  # special tokens are (0, 0)
        )
    return mask
