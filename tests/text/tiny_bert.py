"""A tiny randomly initialised BERT folder (config, safetensors, tokenizer) for fast text tests.

Built offline from a small word-level vocabulary: the real MiniLM forward is too slow on CPU for
most tests. The words are those of the shipped sentiment data, so texts tokenise to real ids.
"""

from __future__ import annotations

from pathlib import Path

from governance.text.identity import IDENTITY_TERMS, TEMPLATES

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
EXTRA = [
    "the",
    "food",
    "was",
    "great",
    "awful",
    "good",
    "bad",
    "kind",
    "rude",
    "i",
    "love",
    "hate",
    "it",
    "is",
    "and",
    "so",
    "very",
    "movie",
    "staff",
    "service",
    "terrible",
    "wonderful",
    "boring",
    "nice",
    "my",
    "our",
    "we",
    "a",
    "an",
    ",",
    ".",
]


def vocabulary() -> list[str]:
    words: set[str] = set(EXTRA)
    for template in TEMPLATES:
        words.update(template.text.replace("{term}", " ").replace(",", " , ").split())
    for terms in IDENTITY_TERMS.values():
        words.update(terms)
    return SPECIALS + sorted(words) + list("abcdefghijklmnopqrstuvwxyz")


def write_tiny_bert(folder: Path, *, seed: int = 0, tokenizer: bool = True, layers: int = 2) -> Path:
    """Write a tiny BertModel (hidden 32, ``layers`` layers) and its tokenizer into ``folder``."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = vocabulary()
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
        pad_token_id=0,
    )
    BertModel(config, add_pooling_layer=False).save_pretrained(folder, safe_serialization=True)
    if tokenizer:
        # transformers 5 takes the vocabulary itself (``vocab=``), not a file path.
        ids = {token: i for i, token in enumerate(vocab)}
        BertTokenizerFast(vocab=ids, do_lower_case=True).save_pretrained(folder)
    else:
        (folder / "vocab.txt").unlink()
    return folder
