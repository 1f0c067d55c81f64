from __future__ import annotations

import pytest

from governance.data.pii import iban_valid, luhn_valid, scan_text, scan_values


def _luhn_reference(number: str) -> bool:
    # Independent formulation: double every second digit from the right via string ops.
    digits = number.replace(" ", "").replace("-", "")
    total = 0
    for i, ch in enumerate(digits[::-1]):
        n = int(ch) * (2 if i % 2 else 1)
        total += n // 10 + n % 10
    return total % 10 == 0


@pytest.mark.parametrize(
    "number",
    ["4111111111111111", "5500 0000 0000 0004", "3400-0000-0000-009", "4111111111111112", "1234567812345678"],
)
def test_luhn_matches_reference(number: str) -> None:
    assert luhn_valid(number) == _luhn_reference(number)


def test_iban_checksum() -> None:
    assert iban_valid("DE89 3704 0044 0532 0130 00")
    assert iban_valid("GB82WEST12345698765432")
    assert not iban_valid("DE89 3704 0044 0532 0130 01")
    assert not iban_valid("DE00 0000")


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("contact: jane.doe@example.co.uk", "email"),
        ("ring +44 20 7946 0958 today", "phone"),
        ("paid with 4111 1111 1111 1111", "card_number"),
        ("to DE89370400440532013000 please", "iban"),
    ],
)
def test_detects(text: str, kind: str) -> None:
    assert kind in scan_text(text)


@pytest.mark.parametrize("text", ["radio/TV", "order 4111 1111 1111 1112", "2023-01-15", "little", "42"])
def test_no_false_positive(text: str) -> None:
    assert scan_text(text) == {}


def test_scan_values_masks_examples() -> None:
    matches = scan_values("note", ["write to jane@example.org", "nothing here", None, "bob@example.com"])
    assert len(matches) == 1 and matches[0].kind == "email" and matches[0].count == 2
    assert "jane" not in matches[0].example
