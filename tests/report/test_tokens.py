"""Text token attributions shown as highlighted, escaped sentences in HTML and Markdown."""

from __future__ import annotations

from governance.report.render import render
from governance.report.tokens import token_examples
from governance.results import AuditSection, Results, RunInfo

EXAMPLE = {
    "row": 0,
    "text": "i am a <script>alert(1)</script> person",
    "predicted": "positive",
    "tokens": ["[CLS]", "i", "am", "<script>alert(1)</script>", "person", "[SEP]"],
    "attributions": [0.0, 0.1, -0.05, 0.4, 0.2, 0.0],
    "identity_token": [False, False, False, True, False, False],
}


def results() -> Results:
    run = RunInfo(
        tool_version="t", spec_name="text", seed=0, started_at="2026-01-01T00:00:00+00:00", finished_at=""
    )
    section = AuditSection(
        name="attribution",
        metrics={"attribution.sensitive_share": 0.5},
        details={"token_examples": [EXAMPLE, {"tokens": ["a"], "attributions": []}]},
    )
    return Results.from_sections(run, [section])


def test_views_scale_colour_to_the_largest_attribution_and_drop_special_tokens():
    (view,) = token_examples(results().sections["attribution"].details)  # the malformed one is left out
    assert [t.text for t in view.tokens] == ["i", "am", "<script>alert(1)</script>", "person"]
    strongest = view.tokens[2]
    assert strongest.identity and strongest.style == "background-color: rgba(213, 94, 0, 0.75)"
    assert (
        view.tokens[1].style == "background-color: rgba(0, 114, 178, 0.09)"
    )  # negative: blue, 0.05/0.4*0.75
    assert view.top[0] == ("<script>alert(1)</script>", 0.4)


def test_html_and_markdown_show_tokens_escaped():
    html = render(results(), "html").decode()
    assert 'class="tok tok-identity"' in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    markdown = render(results(), "markdown").decode()
    assert "**Token attributions**" in markdown and "+0.400" in markdown
    # Outside code spans the text is escaped; inside one, Markdown shows HTML as literal text.
    assert "i am a &lt;script&gt;alert(1)&lt;/script&gt; person" in markdown
    assert "(`<script>alert(1)</script>` +0.400" in markdown
