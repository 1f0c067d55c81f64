"""Personal-data patterns in text: e-mail, phone, payment card (Luhn), IBAN (mod-97).

Each detector is a regular expression for candidates plus, where the format has one, its
checksum, so that an order number of 16 digits is not reported as a card. Detectors live in a
registry (name → function) so a deployment can add its own national ID formats.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = [
    "DETECTORS",
    "PiiMatch",
    "iban_valid",
    "luhn_valid",
    "register_detector",
    "scan_text",
    "scan_values",
]

_EMAIL = re.compile(r"\b[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}\b")
# International (+CC ...) or national numbers with separators, 9-15 digits in total.
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.\-]?)?(?:\(\d{1,4}\)[\s.\-]?)?\d{2,4}(?:[\s.\-]\d{2,4}){2,4}(?!\w)"
)
_PHONE_COMPACT = re.compile(r"(?<![\w+])\+\d{9,15}(?!\w)")
_CARD = re.compile(r"(?<!\d)(?:\d[ \-]?){12,18}\d(?!\d)")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")


def luhn_valid(number: str) -> bool:
    """The Luhn (mod 10) check used by payment card numbers.

    Examples
    --------
    >>> luhn_valid("4111 1111 1111 1111"), luhn_valid("4111 1111 1111 1112")
    (True, False)
    """
    digits = [int(c) for c in number if c.isdigit()]
    if len(digits) < 13:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """ISO 13616 IBAN check: move the first four characters to the end, letters → numbers, mod 97 == 1.

    Examples
    --------
    >>> iban_valid("GB82 WEST 1234 5698 7654 32"), iban_valid("GB82 WEST 1234 5698 7654 33")
    (True, False)
    """
    compact = iban.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", compact):
        return False
    rearranged = compact[4:] + compact[:4]
    numeric = "".join(str(int(c, 36)) for c in rearranged)
    return int(numeric) % 97 == 1


def _emails(text: str) -> list[str]:
    return _EMAIL.findall(text)


def _phones(text: str) -> list[str]:
    found = []
    for match in [*_PHONE.findall(text), *_PHONE_COMPACT.findall(text)]:
        digits = sum(c.isdigit() for c in match)
        # Card numbers and dates also look like digit groups: keep phone-sized, non-card ones.
        if 9 <= digits <= 15 and (match.startswith("+") or not luhn_valid(match)):
            found.append(match)
    return found


def _cards(text: str) -> list[str]:
    return [m for m in _CARD.findall(text) if 13 <= sum(c.isdigit() for c in m) <= 19 and luhn_valid(m)]


def _ibans(text: str) -> list[str]:
    return [m for m in _IBAN.findall(text.upper()) if iban_valid(m)]


#: detector name → function(text) returning the matched substrings.
DETECTORS: dict[str, Callable[[str], list[str]]] = {
    "email": _emails,
    "card_number": _cards,
    "iban": _ibans,
    "phone": _phones,
}


def register_detector(name: str, detector: Callable[[str], list[str]]) -> None:
    """Add a detector (raises on a duplicate name)."""
    if name in DETECTORS:
        raise ValueError(f"PII detector {name!r} is already registered")
    DETECTORS[name] = detector


@dataclass(frozen=True)
class PiiMatch:
    """How many values of a column matched one detector, with a masked example."""

    column: str
    kind: str
    count: int
    example: str


def _mask(value: str) -> str:
    # Never echo the personal data itself into reports: keep the shape, hide the content.
    return re.sub(r"[A-Za-z0-9]", "•", value[:-2]) + value[-2:] if len(value) > 4 else "••••"


def scan_text(text: str) -> dict[str, list[str]]:
    """Every detector's matches in one string.

    Examples
    --------
    >>> sorted(scan_text("mail jane@example.org or call +49 30 1234 5678"))
    ['email', 'phone']
    """
    out: dict[str, list[str]] = {}
    for name, detector in DETECTORS.items():
        matches = detector(text)
        if matches:
            out[name] = matches
    # A card number is also a long digit run: do not double-count it as a phone number.
    if "card_number" in out and "phone" in out:
        cards = {re.sub(r"\D", "", c) for c in out["card_number"]}
        phones = [p for p in out["phone"] if re.sub(r"\D", "", p) not in cards]
        if phones:
            out["phone"] = phones
        else:
            del out["phone"]
    return out


def scan_values(column: str, values: Iterable[object]) -> list[PiiMatch]:
    """Scan the values of one column; one :class:`PiiMatch` per detector that fired."""
    counts: dict[str, int] = {}
    examples: dict[str, str] = {}
    for value in values:
        if not isinstance(value, str) or not value:
            continue
        for kind, matches in scan_text(value).items():
            counts[kind] = counts.get(kind, 0) + 1
            examples.setdefault(kind, _mask(matches[0]))
    return [PiiMatch(column, kind, counts[kind], examples[kind]) for kind in sorted(counts)]
