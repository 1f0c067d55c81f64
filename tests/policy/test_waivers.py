"""Waiver files: required fields and dates."""

from __future__ import annotations

import datetime as dt

import pytest

from governance.errors import InputError
from governance.policy.waivers import load_waivers

GOOD = """
waivers:
  - rule: fair.x
    reason: known issue, fix scheduled
    approver: Jane Doe
    expires: 2027-01-31
  - rule: fair.y
    metric: fairness.sex.demographic_parity_ratio
    reason: r
    approver: A
    expires: "2026-12-01"
"""


def test_load_waivers_reads_dates_quoted_or_not(write_file):
    waivers = load_waivers(write_file("w.yaml", GOOD))
    assert [w.expires for w in waivers] == [dt.date(2027, 1, 31), dt.date(2026, 12, 1)]
    assert waivers[1].metric == "fairness.sex.demographic_parity_ratio"
    assert not waivers[0].is_expired(dt.date(2027, 1, 31))  # valid through its expiry date
    assert waivers[0].is_expired(dt.date(2027, 2, 1))


def test_json_waivers(write_file):
    path = write_file("w.json", '[{"rule": "r", "reason": "x", "approver": "y", "expires": "2030-01-01"}]')
    assert load_waivers(path)[0].rule == "r"


@pytest.mark.parametrize(
    ("entry", "field", "message"),
    [
        ("- {rule: r, reason: x, approver: y}", "waivers[0].expires", "required field is missing"),
        (
            "- {rule: r, reason: x, approver: y, expires: 2026-13-01}",
            "waivers[0].expires",
            "expected a date YYYY-MM-DD",
        ),
        ("- {rule: r, reason: x, approver: y, expires: next week}", "waivers[0].expires", "got 'next week'"),
        ("- {rule: r, reason: x, approver: y, expires: 20270101}", "waivers[0].expires", "expected a date"),
        ("- {rule: r, reason: x, expires: 2027-01-01}", "waivers[0].approver", "required field is missing"),
        ("- {rule: r, reason: '  ', approver: y, expires: 2027-01-01}", "waivers[0].reason", "non-empty"),
        ("- {reason: x, approver: y, expires: 2027-01-01}", "waivers[0].rule", "required"),
        (
            "- {rule: r, reason: x, approver: y, expires: 2027-01-01, until: 1}",
            "waivers[0].until",
            "unknown field",
        ),
        ("waivers: 3", "waivers", "expected a list"),
    ],
)
def test_bad_waivers(write_file, entry, field, message):
    path = write_file("w.yaml", entry + "\n")
    with pytest.raises(InputError) as info:
        load_waivers(path)
    assert (info.value.source, info.value.field) == (str(path), field)
    assert message in info.value.message
