"""Policy loading: schema validation, extends, and every bad input naming file, rule and field."""

from __future__ import annotations

import pytest

from governance.errors import InputError
from governance.policy.loader import builtin_pack_names, load_policy

RULE = """
  - id: {id}
    metric: {metric}
    op: "{op}"
    threshold: {threshold}
    threshold_source: pack
"""


def policy_text(*rules: str, extends: str | None = None, name: str = "p") -> str:
    head = f"name: {name}\nversion: 1.0.0\n" + (f"extends: {extends}\n" if extends else "")
    return head + "rules:" + "".join(rules) if rules else head


def rule(id: str = "r1", metric: str = "performance.accuracy", op: str = ">=", threshold: str = "0.7") -> str:
    return RULE.format(id=id, metric=metric, op=op, threshold=threshold)


def test_builtin_packs_load_and_cite_their_regulation():
    names = builtin_pack_names()
    assert set(names) >= {"baseline", "eu-ai-act-high-risk", "nist-ai-rmf", "employment-four-fifths"}
    for name in names:
        policy = load_policy(name)
        assert policy.rules, name
        for r in policy.rules:
            assert r.refs, f"{name}:{r.id} cites nothing"
            assert r.rationale and len(r.rationale) > 40, f"{name}:{r.id} has no rationale"


def test_four_fifths_pack_cites_eeoc_and_ll144():
    policy = load_policy("employment-four-fifths")
    refs = " ".join(ref for r in policy.rules for ref in r.refs)
    assert "29 CFR 1607.4(D)" in refs
    assert "§5-301" in refs
    rule = policy.rule("fair.four_fifths")
    assert rule is not None and rule.op == ">=" and rule.threshold == 0.8 and rule.is_glob


def test_extends_overrides_by_id_in_place(write_file):
    write_file("parent.yaml", policy_text(rule("a", threshold="0.5"), rule("b"), name="parent"))
    child = write_file("child.yaml", policy_text(rule("a", threshold="0.9"), rule("c"), extends="parent"))
    policy = load_policy(child)
    assert [r.id for r in policy.rules] == ["a", "b", "c"]
    assert policy.rule("a").threshold == 0.9
    assert policy.rule("b").source.endswith("parent.yaml")


def test_extends_a_builtin_pack(write_file):
    child = write_file("mine.yaml", policy_text(rule("perf.accuracy", threshold="0.99"), extends="baseline"))
    policy = load_policy(child)
    base = load_policy("baseline")
    assert len(policy.rules) == len(base.rules)
    assert policy.rule("perf.accuracy").threshold == 0.99


def test_numeric_string_threshold_is_accepted(write_file):
    # PyYAML reads 1e-5 (without a dot) as a string.
    path = write_file("p.yaml", policy_text(rule(metric="privacy.delta", op="<=", threshold="1e-5")))
    assert load_policy(path).rules[0].threshold == 1e-5


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        (
            policy_text("\n  - id: r1\n    op: '>='\n    threshold: 1\n"),
            "rules[r1].metric",
            "required field is missing",
        ),
        (
            policy_text("\n  - id: r1\n    metric: performance.accuracy\n    threshold: 1\n"),
            "rules[r1].op",
            "required",
        ),
        (policy_text(rule(op="=>")), "rules[r1].op", "expected one of < <= > >= == !="),
        (policy_text(rule(threshold="high")), "rules[r1].threshold", "expected a number, got 'high'"),
        (policy_text(rule(threshold="true")), "rules[r1].threshold", "expected a number"),
        (policy_text(rule("dup"), rule("dup")), "rules[1].id", "duplicate rule id 'dup'"),
        (policy_text(rule(metric="perf.accuracy")), "rules[r1].metric", "whose audit is one of"),
        (policy_text(rule(metric="Performance.Accuracy")), "rules[r1].metric", "expected a metric ID"),
        (
            policy_text(rule() + "    severity: critical\n"),
            "rules[r1].severity",
            "blocking | major | minor | info",
        ),
        (policy_text(rule() + "    on_missing: ignore\n"), "rules[r1].on_missing", "fail | warn | skip"),
        (policy_text(rule() + "    treshold: 3\n"), "rules[r1].treshold", "unknown field"),
        (policy_text(rule() + "    refs: 3\n"), "rules[r1].refs", "list of citation strings"),
        ("version: 1\nrules: []\n", "name", "required field is missing"),
        ("name: x\nrules: {a: 1}\n", "rules", "expected a list of rules"),
        ("name: x\nrules: [1]\n", "rules[0]", "expected a mapping"),
        ("name: x\nrulez: []\n", "rulez", "unknown field"),
        ("name: [unclosed\n", "line 2", "not valid YAML"),
        ("- just\n- a list\n", None, "expected a mapping with name, version and rules"),
    ],
)
def test_bad_policy_names_file_and_field(write_file, text, field, message):
    path = write_file("bad.yaml", text)
    with pytest.raises(InputError) as info:
        load_policy(path)
    err = info.value
    assert err.source == str(path)
    assert err.field == field
    assert message in err.message
    assert "\n" not in str(err)


def test_missing_policy_file(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        load_policy(tmp_path / "nope.yaml")


def test_unknown_builtin_name_lists_the_packs():
    with pytest.raises(InputError, match="built-in packs: baseline"):
        load_policy("no-such-pack")


def test_extends_unknown_parent(write_file):
    path = write_file("child.yaml", policy_text(rule(), extends="ghost"))
    with pytest.raises(InputError) as info:
        load_policy(path)
    assert info.value.source == str(path) and info.value.field == "extends"
    assert "unknown policy pack 'ghost'" in info.value.message


def test_extends_cycle(write_file):
    write_file("a.yaml", policy_text(rule("x"), extends="b", name="a"))
    write_file("b.yaml", policy_text(rule("y"), extends="c", name="b"))
    c = write_file("c.yaml", policy_text(rule("z"), extends="a", name="c"))
    with pytest.raises(InputError) as info:
        load_policy(c)
    assert info.value.field == "extends"
    assert "extends cycle: c.yaml -> a.yaml -> b.yaml -> c.yaml" in info.value.message


def test_self_extension_is_a_cycle(write_file):
    path = write_file("self.yaml", policy_text(rule(), extends="self"))
    with pytest.raises(InputError, match="extends cycle"):
        load_policy(path)


def test_sha256_changes_with_parent(write_file):
    write_file("parent.yaml", policy_text(rule("a"), name="parent"))
    child = write_file("child.yaml", policy_text(rule("b"), extends="parent"))
    first = load_policy(child).sha256
    write_file("parent.yaml", policy_text(rule("a", threshold="0.1"), name="parent"))
    assert load_policy(child).sha256 != first
