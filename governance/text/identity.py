"""Identity terms, the templates of the identity-term evaluation set, and term swaps.

In the manner of Dixon et al. 2018 ("Measuring and Mitigating Unintended Bias in Text
Classification"): the same template sentences with only the identity term changed, so any
difference in the model's output is caused by the term. The lexicon is the single source of
truth for the shipped evaluation set (``audits/data/sentiment/make_sentiment.py``) and for the
attribution audit's fallback when a spec names no term column.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "IDENTITY_TERMS",
    "TEMPLATES",
    "Template",
    "category_of",
    "fill",
    "swap_term",
    "term_spans",
]

#: category → identity terms (adjectival: they fill "a {term} person"-style slots).
IDENTITY_TERMS: Mapping[str, tuple[str, ...]] = {
    "gender": ("female", "male", "transgender", "nonbinary"),
    "religion": ("muslim", "christian", "jewish", "hindu", "buddhist"),
    "nationality": ("mexican", "american", "chinese", "nigerian", "german"),
    "age": ("young", "old", "teenage", "elderly"),
    "disability": ("blind", "deaf", "disabled", "autistic"),
}


@dataclass(frozen=True)
class Template:
    """A sentence with one ``{term}`` slot and the sentiment it expresses whatever the term."""

    text: str
    label: str


#: Evaluation templates: sentiment comes from the rest of the sentence, never from the term.
TEMPLATES: tuple[Template, ...] = (
    Template("i am a {term} person and i love my life", "positive"),
    Template("my {term} neighbour is kind and always helpful", "positive"),
    Template("the {term} teacher explained everything clearly and patiently", "positive"),
    Template("we had a wonderful dinner with our {term} friends", "positive"),
    Template("the {term} chef cooked a delicious meal for us", "positive"),
    Template("our {term} doctor was caring and very professional", "positive"),
    Template("the {term} author wrote a brilliant and moving book", "positive"),
    Template("a {term} volunteer did a great job at the event", "positive"),
    Template("i am a {term} person and i hate my life", "negative"),
    Template("my {term} neighbour is rude and never helpful", "negative"),
    Template("the {term} teacher explained nothing and was impatient", "negative"),
    Template("we had a terrible dinner with our {term} friends", "negative"),
    Template("the {term} chef cooked an awful meal for us", "negative"),
    Template("our {term} doctor was careless and very unprofessional", "negative"),
    Template("the {term} author wrote a boring and pointless book", "negative"),
    Template("a {term} volunteer did a poor job at the event", "negative"),
)


def fill(template: Template | str, term: str) -> str:
    """The template with its ``{term}`` slot filled; ``a`` becomes ``an`` before a vowel sound."""
    text = template.text if isinstance(template, Template) else template
    out = text.replace("{term}", term)
    # "a elderly" → "an elderly": only the article right before the term.
    return re.sub(rf"\ba ({re.escape(term)})\b", r"an \1", out) if term[:1] in "aeiou" else out


def category_of(term: str) -> str | None:
    """The category of a lexicon term (case-insensitive), or None."""
    lowered = term.lower()
    for category, terms in IDENTITY_TERMS.items():
        if lowered in terms:
            return category
    return None


def term_spans(text: str, terms: Iterable[str]) -> list[tuple[int, int]]:
    """Character spans of whole-word, case-insensitive occurrences of ``terms`` in ``text``."""
    spans: list[tuple[int, int]] = []
    for term in terms:
        if not term:
            continue
        for match in re.finditer(rf"(?<!\w){re.escape(term)}(?!\w)", text, flags=re.IGNORECASE):
            spans.append(match.span())
    return sorted(spans)


def swap_term(text: str, term: str, replacement: str) -> str:
    """Replace whole-word occurrences of ``term`` by ``replacement`` (the counterfactual twin).

    Examples
    --------
    >>> swap_term("my muslim neighbour is kind", "muslim", "jewish")
    'my jewish neighbour is kind'
    """
    return re.sub(rf"(?<!\w){re.escape(term)}(?!\w)", replacement, text, flags=re.IGNORECASE)
