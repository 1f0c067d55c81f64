"""Random Unicode through every output format, parsed back with a real parser.

Markdown is parsed with markdown-it-py (CommonMark with raw HTML on, GFM tables, strikethrough and
GitHub-style linkify); JUnit with ElementTree. The property: a user-controlled string adds no
structure of its own. The same document rendered with a harmless string and with the hostile one
has the same headings, table rows, lists, links, images and no HTML, and the string stays inside
its cell or code span.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from governance.policy.outcome import CheckReport, Outcome, Status, WaiverNote
from governance.report.check_formats import get_format
from governance.report.escape import md_code, md_text, plain_text, xml_text
from governance.results import Results, Severity

RESULTS_FILE = Path(__file__).parent / "data" / "german_credit_results.json"

# Strings that broke out before, or would on GitHub: CR inside a code span, raw HTML, headings,
# links, images, mentions, autolinks, table pipes, entities, list and quote markers.
HOSTILE = [
    "a\r<script>alert(1)</script>",
    "x`\r# Fake heading\r<img src=x onerror=alert(1)>",
    "[click](http://evil.example) ![i](http://evil.example/i.png)",
    "@octocat please approve",
    "http://evil.example www.evil.example mail@evil.example",
    "<http://evil.example>",
    "| injected | cells |\n| --- | --- |",
    "&lt;script&gt; &#60;b&#62;",
    "- item",
    "1. item",
    "> quote",
    "---",
    "    indented code",
    "~~strike~~ **bold** _em_",
    "\u2028# heading after a line separator",
    "\x00\x1b[31mred\x1b[0m\x7f",
    "\ud800 lone surrogate",
]

text_strategy = st.one_of(
    st.sampled_from(HOSTILE),
    st.text(max_size=60),
    st.lists(st.sampled_from([*HOSTILE, "`", "\r", "\n", "|", "<", "@", "://", "www.", "#"]), max_size=6).map(
        "".join
    ),
)

STRUCTURE = {
    "heading_open",
    "link_open",
    "image",
    "html_block",
    "html_inline",
    "table_open",
    "tr_open",
    "td_open",
    "th_open",
    "bullet_list_open",
    "ordered_list_open",
    "blockquote_open",
    "code_block",
    "fence",
    "hr",
    "s_open",
    "em_open",
    "strong_open",
    "code_inline",
}


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"linkify": True}).enable(["table", "strikethrough", "linkify"])
    # GitHub linkifies URLs with a scheme, www. names and e-mail addresses (not bare domains).
    md.linkify.set({"fuzzy_link": False, "fuzzy_email": True})
    return md


MD = _parser()


def structure(markdown: str) -> Counter[str]:
    counts: Counter[str] = Counter()

    def walk(tokens: list[Any]) -> None:
        for token in tokens:
            if token.type in STRUCTURE:
                counts[token.type] += 1
            if token.children:
                walk(token.children)

    walk(MD.parse(markdown))
    return counts


def inline_text(markdown: str) -> str:
    out: list[str] = []

    def walk(tokens: list[Any]) -> None:
        for token in tokens:
            if token.type in {"text", "code_inline"}:
                out.append(token.content)
            if token.children:
                walk(token.children)

    walk(MD.parse(markdown))
    return "".join(out)


def _visible(value: str) -> str:
    """What a reader should see: controls as spaces, lone surrogates replaced, no zero-width spaces."""
    out = []
    for ch in value:
        code = ord(ch)
        if code < 0x20 or 0x7F <= code <= 0x9F or ch in "\u2028\u2029":
            out.append(" ")
        elif 0xD800 <= code <= 0xDFFF:
            out.append("\ufffd")
        else:
            out.append(ch)
    return "".join(out)


# -- the escaping functions -------------------------------------------------------------------------


@given(text_strategy)
@settings(max_examples=300, deadline=None)
def test_md_text_in_a_table_cell_adds_no_structure(value: str) -> None:
    def page(v: str) -> str:
        return f"| Group | Rate |\n| --- | --- |\n| {v} | 0.5 |\n"

    assert structure(page(md_text(value))) == structure(page("x"))


@given(text_strategy)
@settings(max_examples=300, deadline=None)
def test_md_text_at_the_start_of_a_line_adds_no_structure(value: str) -> None:
    def page(v: str) -> str:
        return f"## Title\n\n{v}\n\nafter\n"

    escaped = md_text(value)
    assert structure(page(escaped)) == structure(page("x" if value.strip() else ""))
    # The reader sees the value itself (controls as spaces, whitespace runs aside).
    shown = inline_text(page(escaped)).replace("\u200b", "")
    assert " ".join(_visible(value).split()) in " ".join(shown.split())


@given(text_strategy)
@settings(max_examples=300, deadline=None)
def test_md_code_is_one_code_span_holding_the_value(value: str) -> None:
    def page(v: str) -> str:
        return f"| Metric | Value |\n| --- | --- |\n| {v} | 1 |\n"

    rendered = page(md_code(value))
    assert structure(rendered) == structure(page("`x`"))
    spans = [t for block in MD.parse(rendered) for t in (block.children or []) if t.type == "code_inline"]
    assert len(spans) == 1
    expected = _visible(value).replace("`", "'")
    # CommonMark strips one space from each end of a span that has both.
    if expected.startswith(" ") and expected.endswith(" ") and expected.strip():
        expected = expected[1:-1]
    assert spans[0].content == (expected if expected.strip() else " ")


@given(st.text(max_size=80))
@settings(max_examples=300, deadline=None)
def test_xml_text_is_always_well_formed(value: str) -> None:
    element = ET.Element("testcase", {"name": xml_text(value)})
    element.text = xml_text(value)
    document = ET.tostring(element, encoding="unicode")
    parsed = ET.fromstring(document.encode("utf-8"))
    assert parsed.get("name") is not None


def test_plain_text_shows_control_characters_instead_of_obeying_them() -> None:
    assert plain_text("ok\x1b[2J\nPASS\tx") == "ok\\x1b[2J\\x0aPASS\tx"


def test_cr_in_a_code_span_no_longer_breaks_out() -> None:
    """The case of issue 12: a CR in a group value made a live <script> and a fake heading."""
    value = "x\r<script>alert(1)</script>\r# Fake"
    page = f"| Group |\n| --- |\n| {md_code(value)} |\n"
    html = MD.render(page)
    assert "<script>" not in html and "<h1>" not in html


# -- governance check --format markdown / junit -------------------------------------------------------


def _report(title: str, reason: str, approver: str, ref: str, rule_id: str, metric: str) -> CheckReport:
    waiver = WaiverNote(rule=rule_id, reason=reason, approver=approver, expires="2030-01-01", expired=False)
    outcomes = (
        Outcome(
            rule_id, title, Status.FAIL, Severity.MAJOR, metric, ">=", 0.8, 0.5, f"failed: {title}", (ref,)
        ),
        Outcome(
            rule_id,
            title,
            Status.WAIVED,
            Severity.MAJOR,
            metric,
            "<=",
            0.1,
            0.2,
            reason,
            (ref, ref),
            title,
            waiver,
        ),
        Outcome(rule_id, title, Status.ERROR, Severity.BLOCKING, metric, "<", 1, None, f"error: {reason}"),
        Outcome(rule_id, title, Status.SKIPPED, Severity.MINOR, metric, "<", 1, None, f"skipped: {approver}"),
        Outcome(rule_id, title, Status.PASS, Severity.INFO, metric, "<", 1, 0.2, "ok"),
    )
    return CheckReport(
        policy_name=title,
        policy_version=approver,
        policy_source=ref,
        policy_sha256="0" * 64,
        results_source=reason,
        outcomes=outcomes,
        unused_waivers=(f"{rule_id} ({reason})",),
    )


report_args = st.tuples(*(text_strategy for _ in range(6)))


@given(report_args)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_check_markdown_adds_no_structure(args: tuple[str, ...]) -> None:
    render = get_format("markdown")
    hostile = render(_report(*args))
    benign = render(_report("t", "r", "a", "ref", "rule", "fairness.sex.demographic_parity_ratio"))
    assert structure(hostile) == structure(benign)


@given(report_args)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_check_junit_is_well_formed_and_keeps_every_outcome(args: tuple[str, ...]) -> None:
    document = get_format("junit")(_report(*args))
    root = ET.fromstring(document.encode("utf-8"))
    cases = root.findall("testcase")
    assert len(cases) == 5
    assert root.get("failures") == "1" and root.get("errors") == "1" and root.get("skipped") == "1"
    title = args[0]
    failure = cases[0].find("failure")
    assert failure is not None
    # The title survives, with the characters XML forbids written out, never dropped silently
    # (an XML parser reads a CR in text as a line feed).
    expected = xml_text(title).replace("\r\n", "\n").replace("\r", "\n")
    assert expected in (failure.text or "")


def test_junit_with_control_characters_in_title_and_waiver_parses() -> None:
    """The case of issue 12: a control character in a policy title or waiver made invalid XML."""
    document = get_format("junit")(_report("ti\x01tle\x0b", "rea\x1fson", "ap\x00prover", "r", "id", "m"))
    root = ET.fromstring(document.encode("utf-8"))
    assert "ti\\x01tle\\x0b" in ET.tostring(root, encoding="unicode")


@given(report_args)
@settings(max_examples=80, deadline=None)
def test_check_text_has_no_control_characters(args: tuple[str, ...]) -> None:
    text = get_format("text")(_report(*args))
    assert not any((ord(c) < 0x20 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F for c in text)


# -- the Markdown report (templates/report.md.j2) --------------------------------------------------


def _results_with(value: str) -> Results:
    raw = json.loads(RESULTS_FILE.read_text(encoding="utf-8"))
    raw["run"]["spec_name"] = value
    raw["run"]["intended_purpose"] = value
    fairness = raw["sections"]["fairness"]
    for row in fairness["tables"]["groups"][:2]:
        row["group"] = value
    # Finding ids carry group values (data_quality.group_share.<attr>.<group>) and show as code spans.
    finding = {"id": f"data_quality.group_share.sex.{value}", "severity": "major", "message": value}
    raw["findings"].append(finding)
    raw["sections"]["data_quality"]["findings"].append(finding)
    return Results.from_dict(raw, source=str(RESULTS_FILE))


@pytest.fixture(scope="module")
def benign_structure() -> Counter[str]:
    from governance.report.render import render

    return structure(render(_results_with("plain group"), "markdown").decode("utf-8"))


@given(value=st.sampled_from(HOSTILE) | st.text(min_size=1, max_size=40))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_markdown_report_user_strings_add_no_structure(value: str, benign_structure: Counter[str]) -> None:
    from governance.report.render import render

    document = render(_results_with(value), "markdown").decode("utf-8")
    assert structure(document) == benign_structure
