"""`threshold_source`: who set a rule's number, required on every rule and said in every output.

Issue 19 item 4: the EU AI Act sets no numbers, so a rule citing it must not read as a legal
limit. Every format that shows refs says "threshold chosen by this pack" unless the regulation
itself fixes the number (EEOC's four-fifths).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from governance.cli import main
from governance.errors import InputError
from governance.policy.engine import check
from governance.policy.loader import builtin_pack_names, load_policy
from governance.policy.schema import ThresholdSource
from governance.report.check_formats import get_format

PACK_NOTE = "threshold chosen by this pack"

POLICY = """
name: sources
version: 1.0.0
rules:
  - id: law.four_fifths
    metric: fairness.*.demographic_parity_ratio
    op: ">="
    threshold: 0.8
    threshold_source: regulation
    severity: blocking
    refs: ["EEOC 29 CFR 1607.4(D)"]
  - id: ours.accuracy
    metric: performance.accuracy
    op: ">="
    threshold: 0.99
    threshold_source: pack
    severity: blocking
    refs: ["EU AI Act Art. 15(1)"]
  - id: iso.f1
    metric: performance.f1
    op: ">="
    threshold: 0.99
    threshold_source: standard
    severity: major
    refs: ["ISO/IEC 42001:2023 Annex A.6.2.4"]
"""

OLD_RULE = (
    "name: old\nrules:\n  - {id: legacy.rule, metric: performance.accuracy, op: '>=', threshold: 0.5}\n"
)


def test_every_builtin_rule_says_who_set_its_number():
    sources: dict[tuple[str, str], ThresholdSource] = {}
    for name in builtin_pack_names():
        for rule in load_policy(name).rules:
            assert isinstance(rule.threshold_source, ThresholdSource), (name, rule.id)
            sources[(name, rule.id)] = rule.threshold_source
    # The four-fifths rule is 29 CFR 1607.4(D)'s own number; the AI Act's rules are this pack's.
    assert sources[("employment-four-fifths", "fair.four_fifths")] is ThresholdSource.REGULATION
    for rule_id in (
        "priv.epsilon",
        "priv.membership_inference",
        "perf.accuracy",
        "fair.demographic_parity_ratio",
    ):
        assert sources[("eu-ai-act-high-risk", rule_id)] is ThresholdSource.PACK, rule_id
    assert all(s is ThresholdSource.PACK for (pack, _), s in sources.items() if pack == "nist-ai-rmf")


def test_each_builtin_yaml_rule_sets_the_field_itself():
    """Not inherited by default: every rule in every shipped file carries the line."""
    from governance.policy.loader import _packs_dir, read_yaml

    for path in _packs_dir().iterdir():
        if path.name.endswith(".yaml"):
            for raw in read_yaml(path, what="a policy pack")["rules"]:
                assert raw.get("threshold_source") in {"regulation", "standard", "pack"}, (
                    path.name,
                    raw["id"],
                )


def test_check_reads_a_rule_without_it_as_the_packs_own_number(write_file):
    """CONTRACT §7's example policy has no threshold_source: `check` must still evaluate it."""
    path = write_file("old.yaml", OLD_RULE)
    (rule,) = load_policy(path).rules
    assert rule.threshold_source.value == "pack" and not rule.threshold_source_declared


def test_policy_validate_exits_2_naming_file_and_rule(capsys, write_file):
    path = write_file("old.yaml", OLD_RULE)
    assert main(["policy", "validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{path}: rules[legacy.rule].threshold_source:" in err and "threshold_source: pack" in err


def test_an_unknown_source_names_the_choices(write_file):
    path = write_file(
        "bad.yaml", OLD_RULE.replace("threshold: 0.5}", "threshold: 0.5, threshold_source: law}")
    )
    with pytest.raises(
        InputError,
        match=r"rules\[legacy.rule\].threshold_source: expected one of regulation \| standard \| pack, got 'law'",
    ):
        load_policy(path)


@pytest.fixture
def report(write_file, write_results):
    results = write_results({"fairness.sex.demographic_parity_ratio": 0.5, "performance.f1": 0.5})
    return check(results, write_file("sources.yaml", POLICY))


def test_outcomes_carry_the_source(report):
    by_rule = {o.rule_id: o for o in report.outcomes}
    assert by_rule["law.four_fifths"].threshold_source is ThresholdSource.REGULATION
    assert by_rule["law.four_fifths"].threshold_note == ""
    assert by_rule["ours.accuracy"].threshold_note == PACK_NOTE
    assert (
        "standard" in by_rule["iso.f1"].threshold_note
        and "not by regulation" in by_rule["iso.f1"].threshold_note
    )
    doc = json.loads(get_format("json")(report))
    assert {o["rule"]: o["threshold_source"] for o in doc["outcomes"]} == {
        "law.four_fifths": "regulation",
        "ours.accuracy": "pack",
        "iso.f1": "standard",
    }


def test_text_markdown_and_junit_print_the_note_beside_the_refs(report):
    text = get_format("text")(report)
    assert f"refs: EU AI Act Art. 15(1) ({PACK_NOTE})" in text
    assert "refs: EEOC 29 CFR 1607.4(D)\n" in text  # the regulation's own number: no note

    markdown = get_format("markdown")(report)
    rows = {
        line.split("`")[1]: line for line in markdown.splitlines() if line.startswith("| ") and "`" in line
    }
    assert f"EU AI Act Art. 15(1) ({PACK_NOTE}) |" in rows["ours.accuracy"]
    assert PACK_NOTE not in rows["law.four_fifths"]

    suite = ET.fromstring(get_format("junit")(report))
    details = {case.get("name").split(" ")[0]: "".join(case.itertext()) for case in suite.iter("testcase")}
    assert f"refs: EU AI Act Art. 15(1) ({PACK_NOTE})" in details["ours.accuracy"]
    assert "refs: EEOC 29 CFR 1607.4(D)" in details["law.four_fifths"]
    assert PACK_NOTE not in details["law.four_fifths"]
