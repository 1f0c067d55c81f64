"""Personal data in text: formats a pattern can find *and check*, each reported as its own type.

What the scan covers (:data:`SCOPE`), and how each candidate is validated before it counts:

``email``
    RFC 5322 dot-atom syntax: local part of at most 64 characters without leading, trailing or
    doubled dots; a domain of at least two labels (letters, digits, inner hyphens, at most 63
    characters each) under an alphabetic top-level domain; 254 characters in all.
``card_number``
    13 to 19 digits whose Luhn (mod 10) check holds and whose leading digits belong to a card
    issuer (Visa, Mastercard, American Express, Discover, JCB, Diners Club, UnionPay, Maestro),
    with the length that issuer uses.
``iban``
    ISO 13616: a known country code, that country's IBAN length, and the mod-97 check.
``us_ssn``
    AAA-GG-SSSS with dashes or spaces, under the Social Security Administration's rules: the
    area is not 000, 666 or 900-999, the group not 00, the serial not 0000.
``ip_address``
    IPv4 (four octets of 0-255) and IPv6 addresses, parsed by :mod:`ipaddress`.
``phone``
    Numbers that Google's libphonenumber (the ``phonenumbers`` package) finds *valid* and
    grouped the way their country writes them: any country in international form (+CC …), and
    national forms of :data:`PHONE_REGIONS`.
    Timestamps, dates, IP addresses and invoice numbers are not valid numbers anywhere.

What it does not cover (:data:`NOT_COVERED`): names of people, street addresses, dates of
birth, national identifiers other than the US SSN (and SSNs written without separators), and
anything that needs language understanding. Those need a named-entity model or a review of the
columns by a person; the data-quality section says so in its own words.

Why not Microsoft Presidio (presidio-analyzer 2.2, tried offline): its default
``AnalyzerEngine`` downloads a spaCy model and fails without a network. A no-NLP configuration
does work offline (a ``SpacyNlpEngine`` subclass holding ``spacy.blank("en")`` plus the
pattern recognizers found the card, IBAN, SSN, phone and IP above), but it subclasses an
internal class, imports spaCy (~5 s here, a large dependency tree) for no named-entity gain
(names and addresses need the model it cannot download), and its e-mail recognizer asks
``tldextract`` for the public-suffix list over the network. governance downloads nothing at run
time, so it keeps these validated patterns and uses ``phonenumbers`` (Presidio's own phone
backend) directly. Detectors live in a registry (name → function) so a deployment can add its
own national ID formats.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = [
    "DETECTORS",
    "LABELS",
    "NOT_COVERED",
    "PHONE_REGIONS",
    "SCOPE",
    "PiiMatch",
    "card_issuer",
    "email_valid",
    "iban_valid",
    "luhn_valid",
    "register_detector",
    "scan_text",
    "scan_values",
    "scope_sentence",
    "ssn_valid",
]

#: Regions whose *national* phone formats are recognised (international +CC numbers always are).
PHONE_REGIONS: tuple[str, ...] = ("US", "GB", "DE", "FR")

#: What each detector checks, in words for reports (issue 19: say what the scan covers).
SCOPE: dict[str, str] = {
    "email": "e-mail addresses (RFC 5322 syntax)",
    "card_number": "payment card numbers (Luhn check and issuer prefix)",
    "iban": "IBANs (country, length and mod-97 check)",
    "us_ssn": "US Social Security numbers written with separators (SSA area, group and serial rules)",
    "ip_address": "IPv4 and IPv6 addresses",
    "phone": "phone numbers that libphonenumber finds valid and grouped as their country writes them "
    "(international form, and national form for " + ", ".join(PHONE_REGIONS) + ")",
}
#: How a finding names each type ("values that look like …").
LABELS: dict[str, str] = {
    "email": "e-mail addresses",
    "card_number": "payment card numbers",
    "iban": "IBANs",
    "us_ssn": "US Social Security numbers",
    "ip_address": "IP addresses",
    "phone": "phone numbers",
}
#: What the scan does not find: said beside every scan so a clean result is not over-read.
NOT_COVERED: tuple[str, ...] = (
    "names of people",
    "street addresses",
    "dates of birth",
    "national identifiers other than the US SSN",
    "identifiers without a checkable format",
)

# Candidates are deliberately loose; the validators below decide.
_EMAIL_CANDIDATE = re.compile(r"[^\s@<>()\[\]{},;:\"|\\]+@[^\s@<>()\[\]{},;:\"|\\]+")
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-]+)*")
_DOMAIN_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?")
_CARD = re.compile(r"(?<![\d\-])(?:\d[ \-]?){12,18}\d(?![\d\-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b")
_SSN = re.compile(r"(?<![\w\-])(\d{3})([\- ])(\d{2})\2(\d{4})(?![\w\-])")
_IPV4 = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?!\w|\.\d)")
_DIGIT_RUN = re.compile(r"[+(]?\d[\d ().\-/]*\d")
_MIN_PHONE_DIGITS = 6
_IPV6 = re.compile(r"(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")

# ISO 13616 registry (SWIFT IBAN registry): country code → IBAN length.
_IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22,
    "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28, "TL": 23,
    "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip

# Issuer identification: (brand, prefixes as (low, high) ranges of the leading digits, lengths).
_ISSUERS: tuple[tuple[str, tuple[tuple[str, str], ...], frozenset[int]], ...] = (
    ("Visa", (("4", "4"),), frozenset({13, 16, 19})),
    ("Mastercard", (("51", "55"), ("2221", "2720")), frozenset({16})),
    ("American Express", (("34", "34"), ("37", "37")), frozenset({15})),
    ("Discover", (("6011", "6011"), ("644", "649"), ("65", "65")), frozenset({16, 19})),
    ("JCB", (("3528", "3589"),), frozenset({16, 17, 18, 19})),
    ("Diners Club", (("300", "305"), ("36", "36"), ("38", "39")), frozenset({14, 16, 19})),
    ("UnionPay", (("62", "62"),), frozenset({16, 17, 18, 19})),
    ("Maestro", (("50", "50"), ("56", "58"), ("6304", "6304"), ("67", "67")), frozenset(range(12, 20))),
)


def luhn_valid(number: str) -> bool:
    """The Luhn (mod 10) check used by payment card numbers.

    Examples
    --------
    >>> luhn_valid("4111 1111 1111 1111"), luhn_valid("4111 1111 1111 1112")
    (True, False)
    """
    digits = [int(c) for c in number if c.isdigit()]
    if len(digits) < 12:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def card_issuer(number: str) -> str | None:
    """The card brand whose issuer prefix and length fit ``number`` (digits only count), or None.

    Examples
    --------
    >>> card_issuer("4111 1111 1111 1111"), card_issuer("3782 822463 10005"), card_issuer("9111111111111111")
    ('Visa', 'American Express', None)
    """
    digits = "".join(c for c in number if c.isdigit())
    for brand, ranges, lengths in _ISSUERS:
        if len(digits) not in lengths:
            continue
        for low, high in ranges:
            if low <= digits[: len(low)] <= high:
                return brand
    return None


def iban_valid(iban: str) -> bool:
    """ISO 13616 IBAN check: known country, its length, and mod 97 == 1 after moving the first four
    characters to the end and reading letters as numbers (A = 10 … Z = 35).

    Examples
    --------
    >>> iban_valid("GB82 WEST 1234 5698 7654 32"), iban_valid("GB82 WEST 1234 5698 7654 33")
    (True, False)
    """
    compact = iban.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", compact):
        return False
    if _IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    rearranged = compact[4:] + compact[:4]
    numeric = "".join(str(int(c, 36)) for c in rearranged)
    return int(numeric) % 97 == 1


def ssn_valid(area: str, group: str, serial: str) -> bool:
    """The Social Security Administration's rules for an SSN's three parts.

    Examples
    --------
    >>> ssn_valid("536", "22", "1234"), ssn_valid("666", "22", "1234"), ssn_valid("536", "00", "1234")
    (True, False, False)
    """
    return not (area in {"000", "666"} or area >= "900" or group == "00" or serial == "0000")


def email_valid(address: str) -> bool:
    """RFC 5322 dot-atom syntax with a DNS-shaped domain (nothing is looked up).

    Examples
    --------
    >>> email_valid("jane.doe@example.co.uk"), email_valid("jane..doe@example.com"), email_valid("a@b")
    (True, False, False)
    """
    if len(address) > 254 or address.count("@") != 1:
        return False
    local, domain = address.split("@")
    if not 1 <= len(local) <= 64 or not _EMAIL_LOCAL.fullmatch(local):
        return False
    labels = domain.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.fullmatch(label) for label in labels):
        return False
    tld = labels[-1]
    return (tld.isalpha() and len(tld) >= 2) or tld.lower().startswith("xn--")


def _emails(text: str) -> list[str]:
    found = []
    for candidate in _EMAIL_CANDIDATE.findall(text):
        # A sentence's full stop and quotes around the address are not part of it.
        candidate = candidate.lstrip("'").rstrip(".'")
        if email_valid(candidate):
            found.append(candidate)
    return found


def _cards(text: str) -> list[str]:
    return [m for m in _CARD.findall(text) if luhn_valid(m) and card_issuer(m) is not None]


def _ibans(text: str) -> list[str]:
    return [m for m in _IBAN.findall(text.upper()) if iban_valid(m)]


def _ssns(text: str) -> list[str]:
    return [m.group(0) for m in _SSN.finditer(text) if ssn_valid(m.group(1), m.group(3), m.group(4))]


def _ip_addresses(text: str) -> list[str]:
    found = []
    for candidate in [*_IPV4.findall(text), *_IPV6.findall(text)]:
        if candidate.count(":") >= 2 and not any(c.isalnum() for c in candidate):
            continue  # "::" or ":::" alone is punctuation, not an address
        try:
            ipaddress.ip_address(candidate)
        except ValueError:
            continue
        found.append(candidate)
    return found


def _phones(text: str) -> list[str]:
    # Cheap gate first: libphonenumber costs ~0.5 ms a pass, and most values have no digit run.
    if not any(sum(c.isdigit() for c in run) >= _MIN_PHONE_DIGITS for run in _DIGIT_RUN.findall(text)):
        return []
    import phonenumbers

    # STRICT_GROUPING: the digit groups must be grouped as that country writes its numbers, so
    # "2019 2019 10" (a valid US number if read as 201-920-1910) is not reported.
    leniency = phonenumbers.Leniency.STRICT_GROUPING
    found: dict[tuple[int, int], str] = {}
    for region in PHONE_REGIONS:  # every region's matcher also finds international +CC numbers
        for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=leniency):
            found.setdefault((match.start, match.end), match.raw_string)
    return [found[span] for span in sorted(found)]


#: detector name → function(text) returning the matched substrings. Earlier detectors win where
#: two claim the same digits (a card number is not also reported as a phone number).
DETECTORS: dict[str, Callable[[str], list[str]]] = {
    "email": _emails,
    "card_number": _cards,
    "iban": _ibans,
    "us_ssn": _ssns,
    "ip_address": _ip_addresses,
    "phone": _phones,
}


def register_detector(name: str, detector: Callable[[str], list[str]], *, scope: str | None = None) -> None:
    """Add a detector (raises on a duplicate name); ``scope`` says in words what it finds."""
    if name in DETECTORS:
        raise ValueError(f"PII detector {name!r} is already registered")
    DETECTORS[name] = detector
    SCOPE[name] = scope or name.replace("_", " ")
    LABELS.setdefault(name, name.replace("_", " "))


def scope_sentence(columns: Iterable[str]) -> str:
    """What a scan of ``columns`` looked for and what it cannot see, in one sentence for reports."""
    names = ", ".join(repr(c) for c in columns) or "no columns"
    return (
        f"The personal-data scan of {names} looks for {'; '.join(SCOPE.values())}. "
        f"It does not find {', '.join(NOT_COVERED)}: a clean scan does not show that the data "
        "holds no personal data, so review those columns by hand."
    )


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


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def scan_text(text: str) -> dict[str, list[str]]:
    """Every detector's matches in one string, each match under one type only.

    Examples
    --------
    >>> sorted(scan_text("mail jane@example.org or call +49 30 1234 5678"))
    ['email', 'phone']
    >>> scan_text("logged at 2024-01-15 12:30:45 from 10.0.0.1")
    {'ip_address': ['10.0.0.1']}
    """
    out: dict[str, list[str]] = {}
    claimed: list[str] = []  # digit strings an earlier detector already reported
    for name, detector in DETECTORS.items():
        matches = [
            m
            for m in detector(text)
            if not (_digits(m) and any(_digits(m) in earlier for earlier in claimed))
        ]
        if matches:
            out[name] = matches
            claimed += [_digits(m) for m in matches if _digits(m)]
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
