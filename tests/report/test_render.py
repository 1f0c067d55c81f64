"""HTML, Markdown and JSON reports from the fixture results: content, escaping, degradation."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from governance.errors import InputError
from governance.policy.outcome import CheckReport
from governance.report.charts import build_charts, chart_builders
from governance.report.formats import ERR_UNKNOWN, format_names, get_format, register_format
from governance.report.render import render, write_reports
from governance.results import Results

from .conftest import make_check_report

SECTION_HEADINGS = (
    "1 Summary",
    "2 Audit results",
    "Data quality",
    "Performance",
    "Fairness",
    "Explainability (attributions)",
    "Robustness",
    "Privacy",
    "3 Policy outcomes",
    "4 Technical documentation (EU AI Act Annex IV)",
    "4.1 General description and intended purpose",
    "4.2 Data: source, licence and group composition",
    "4.3 Training: process and differential-privacy ledger",
    "4.4 Validation and testing: metrics",
    "4.5 Accuracy under attack: robustness",
    "4.6 Bias examination: fairness",
    "4.7 Interpretability: explainability",
    "4.8 Privacy",
    "4.9 Policy outcomes",
    "4.10 Known limitations",
    "4.11 Sign-off",
)
#: Charts the full fixture must draw (one per attribute where the chart is per attribute).
EXPECTED_CHARTS = {
    "group_representation",
    "confusion_matrix",
    "group_rates-sex",
    "group_rates-age_group",
    "top_attributions",
    "group_attributions-sex",
    "group_attributions-age_group",
    "robust_accuracy",
    "epsilon_per_epoch",
    "membership_roc",
}


def html_of(results: Results, check: CheckReport | None = None) -> str:
    return render(results, "html", check_report=check).decode("utf-8")


@pytest.fixture(scope="module")
def full_html() -> str:
    """The fixture's HTML report with the failing verdict, rendered once (charts take seconds)."""
    from .conftest import RESULTS_FILE

    results = Results.from_dict(json.loads(RESULTS_FILE.read_text()))
    return html_of(results, make_check_report())


def headings(html: str) -> list[str]:
    found = re.findall(r"<h[23][^>]*>(.*?)</h[23]>", html, flags=re.S)
    return [re.sub(r"<[^>]+>", "", h).replace("OK", "").strip() for h in found]


# --- registry ----------------------------------------------------------------------------------


def test_format_registry_matches_cli_choices() -> None:
    from governance.commands.report import FORMATS

    assert set(format_names()) == set(FORMATS)


def test_unknown_format_raises_with_the_known_names(results: Results) -> None:
    with pytest.raises(ValueError, match="unknown report format 'docx'") as info:
        render(results, "docx")
    assert str(info.value) == ERR_UNKNOWN.format(name="docx", known=sorted(format_names()))


def test_duplicate_format_registration_raises() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_format("html", lambda job: b"", filename="x.html")
    assert get_format("html").filename == "report.html"


# --- HTML ---------------------------------------------------------------------------------------


def test_html_has_every_section_heading_in_order(full_html: str) -> None:
    found = headings(full_html)
    positions = []
    for want in SECTION_HEADINGS:
        matches = [i for i, h in enumerate(found) if h.endswith(want)]
        assert matches, f"heading {want!r} missing; found {found}"
        positions.append(matches[0])
    assert positions[:2] == sorted(positions[:2])
    assert found[0] == "1 Summary"


def test_html_draws_every_chart_as_accessible_inline_svg(results: Results) -> None:
    html = html_of(results)
    figures = re.findall(r'<figure id="chart-([^"]+)" class="chart">(.*?)</figure>', html, flags=re.S)
    assert {name for name, _ in figures} == EXPECTED_CHARTS
    for name, body in figures:
        assert re.search(r'<svg[^>]*role="img"[^>]*aria-labelledby="[^"]+"', body), name
        assert re.search(r"<title id=[^>]*>[^<]+</title>\s*<desc id=[^>]*>[^<]{40,}</desc>", body), name
        assert "<figcaption><strong>" in body, name
    assert 'class="omitted"' not in html


def test_html_is_self_contained(full_html: str) -> None:
    html = full_html
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//|data:)""", html, flags=re.I)
    assert "@import" not in html
    assert not re.search(r"url\((?!#)", html), "only same-document url(#id) references are allowed"
    assert "<image" not in html, "charts must be vector, not embedded rasters"
    assert "@font-face" not in html
    # Namespaces are not requests; every other URL would be.
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", html))
    assert urls <= {
        "http://www.w3.org/2000/svg",
        "http://www.w3.org/1999/xlink",
        "http://purl.org/dc/elements/1.1/",
        "http://creativecommons.org/ns#",
        "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    }, urls
    assert "Content-Security-Policy" in html


def test_html_summary_shows_verdict_blocking_failures_and_waivers(full_html: str) -> None:
    html = full_html
    summary = html.split('<section id="audits"', 1)[0]
    assert '<div class="verdict-label">FAILED</div>' in summary
    blocking = summary.split('id="blocking"', 1)[1].split('id="waivers"', 1)[0]
    assert "fair.age" in blocking and "rob.noise" in blocking  # the FAIL and the ERROR
    assert "fair.eo" not in blocking  # a minor WARN does not block
    assert "EEOC 29 CFR 1607.4(D)" in blocking
    waivers = summary.split('id="waivers"', 1)[1]
    assert "Remediation plan RP-12 in progress" in waivers and "Dana Approver" in waivers
    policy = html.split('<section id="policy"', 1)[1].split('<section id="annex"', 1)[0]
    for rule in ("perf.accuracy", "fair.sex", "fair.eo", "rob.noise", "fair.age"):
        assert rule in policy
    assert policy.index("rob.noise") < policy.index("fair.age") < policy.index("perf.accuracy")


def test_html_verdict_passed_and_not_evaluated(results: Results) -> None:
    assert '<div class="verdict-label">PASSED</div>' in html_of(results, make_check_report(passed=True))
    html = html_of(results)
    assert '<div class="verdict-label">NOT EVALUATED</div>' in html
    assert "No policy evaluated." in html


def test_html_shows_error_and_skipped_sections_and_omits_their_charts(results_dict: dict[str, Any]) -> None:
    results_dict["sections"]["robustness"].update(status="error", error="ART raised MemoryError on PGD")
    results_dict["sections"]["privacy"].update(
        status="skipped", reason="model trained without a held-out set"
    )
    html = html_of(Results.from_dict(results_dict))
    rob = html.split('id="audit-robustness"', 1)[1].split("</section>", 1)[0]
    assert "ERROR" in rob and "ART raised MemoryError on PGD" in rob and "<svg" not in rob
    priv = html.split('id="audit-privacy"', 1)[1].split("</section>", 1)[0]
    assert "SKIPPED" in priv and "model trained without a held-out set" in priv and "<svg" not in priv
    limits = html.split('id="annex-limitations"', 1)[1]
    assert "robustness audit failed: ART raised MemoryError on PGD" in limits


def test_chart_without_data_is_omitted_with_a_note(results_dict: dict[str, Any]) -> None:
    del results_dict["sections"]["robustness"]["tables"]["accuracy"]
    del results_dict["sections"]["performance"]["tables"]["confusion_matrix_eval"]
    html = html_of(Results.from_dict(results_dict))
    omitted = re.findall(r'<figure id="chart-([^"]+)" class="omitted">(.*?)</figure>', html, flags=re.S)
    assert {name for name, _ in omitted} == {"robust_accuracy", "confusion_matrix"}
    assert all("Not shown:" in body for _, body in omitted)
    assert "sections.robustness has no tables.accuracy" in html
    assert html.count('class="chart">') == len(EXPECTED_CHARTS) - 2


def test_results_without_sections_still_render(results_dict: dict[str, Any]) -> None:
    results_dict["sections"] = {}
    results_dict["run"] = {"tool_version": "0.1.0"}
    results_dict["subject"] = {}
    html = html_of(Results.from_dict(results_dict))
    assert "No audit sections in the results." in html
    assert "Intended purpose not stated" in html
    assert "not recorded" in html


def test_hostile_names_are_escaped_in_html(hostile_results: Results, check_report: CheckReport) -> None:
    html = html_of(hostile_results, check_report)
    assert "<script" not in html.lower()
    assert "<img" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # In the title, the header, the chart alt text (SVG <desc>) and the chart labels (SVG <text>).
    assert "<title>Responsible-AI audit report: &lt;script&gt;" in html
    svg_text = " ".join(re.findall(r"<svg.*?</svg>", html, flags=re.S))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in svg_text
    assert "&lt;img src=x onerror=alert(2)&gt;" in svg_text


def test_annex_reads_purpose_data_ledger_and_hashes(full_html: str, results: Results) -> None:
    html = full_html
    annex = html.split('<section id="annex"', 1)[1]
    assert "Not for use in real lending decisions" in annex
    assert "CC BY 4.0" in annex and "UCI Statlog" in annex
    assert "Noise multiplier" in annex and "1.12" in annex and "2.9871" in annex
    model_sha = results.subject["model"]["files"]["model.safetensors"]
    for digest in (model_sha, results.subject["data"]["train"]["sha256"]):
        assert annex.count(digest) >= 2  # the annex facts and the sign-off block
    assert "ab" * 32 in annex  # the policy's SHA-256
    assert "Approver (name, role)" in annex


def test_html_report_for_german_credit_is_under_2_mb(full_html: str) -> None:
    assert len(full_html.encode("utf-8")) < 2_000_000


def test_charts_are_reproducible_and_lean(results: Results) -> None:
    first = build_charts(results)
    second = build_charts(results)
    svgs = [c.svg for cs in first.values() for c in cs]
    assert svgs == [c.svg for cs in second.values() for c in cs]
    for svg in svgs:
        assert svg is not None
        assert "<?xml" not in svg and "<metadata>" not in svg
        assert not re.search(r'="[^"]*\d\.\d{3,}', svg), "coordinates must be rounded"
    assert set(chart_builders()) >= {"group_rates", "robust_accuracy", "membership_roc"}


# --- Markdown -----------------------------------------------------------------------------------


def test_markdown_has_the_same_sections_and_verdict(results: Results, check_report: CheckReport) -> None:
    md = render(results, "markdown", check_report=check_report).decode("utf-8")
    md_headings = [line.lstrip("#").strip() for line in md.splitlines() if line.startswith("#")]
    for want in SECTION_HEADINGS:
        assert any(want in h for h in md_headings), want
    assert "**Verdict: FAILED.**" in md
    assert "Remediation plan RP-12 in progress" in md
    assert "EEOC 29 CFR 1607.4(D)" in md
    assert "*Chart (in the HTML and PDF reports): Selection rate, TPR and FPR by sex.*" in md


def _cells(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


def test_markdown_escapes_hostile_names_and_keeps_tables_intact(
    hostile_results: Results, check_report: CheckReport
) -> None:
    md = render(hostile_results, "markdown", check_report=check_report).decode("utf-8")
    assert "<script" not in md and "<img" not in md
    assert "&lt;script&gt;alert(1)&lt;/script&gt; \\| f" in md
    table: list[str] = []
    for line in [*md.splitlines(), ""]:
        if line.startswith("|"):
            table.append(line)
            continue
        if table:
            assert len({_cells(row) for row in table}) == 1, table
            table = []


def test_markdown_section_error_shown(results_dict: dict[str, Any]) -> None:
    results_dict["sections"]["fairness"].update(status="error", error="fairlearn missing")
    md = render(Results.from_dict(results_dict), "markdown").decode("utf-8")
    assert "### 2.3 Fairness (ERROR)" in md
    assert "> **This audit could not complete.** fairlearn missing" in md


# --- JSON ---------------------------------------------------------------------------------------


def test_json_report_is_results_plus_outcomes(results: Results, check_report: CheckReport) -> None:
    doc = json.loads(render(results, "json", check_report=check_report))
    assert doc["results"] == results.to_dict()
    assert doc["verdict"] == "FAILED"
    assert doc["policy"] == check_report.to_dict()
    assert [o["rule"] for o in doc["policy"]["outcomes"]] == [o.rule_id for o in check_report.outcomes]
    assert re.fullmatch(r"[0-9a-f]{64}", doc["results_sha256"])
    no_policy = json.loads(render(results, "json"))
    assert no_policy["policy"] is None and no_policy["verdict"] is None


# --- write_reports and templates ----------------------------------------------------------------


def test_write_reports_writes_each_format_atomically(results: Results, tmp_path: Path) -> None:
    written = write_reports(results, tmp_path / "out", formats=("html", "markdown", "json"))
    assert {k: p.name for k, p in written.items()} == {
        "html": "report.html",
        "markdown": "report.md",
        "json": "report.json",
    }
    assert all(p.stat().st_size > 1000 for p in written.values())
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.html", "report.json", "report.md"]


def test_write_reports_with_an_unknown_format_writes_nothing(results: Results, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown report format"):
        write_reports(results, tmp_path, formats=("html", "docx"))
    assert list(tmp_path.iterdir()) == []


def test_template_dir_overrides_a_template(results: Results, tmp_path: Path) -> None:
    (tmp_path / "report.md.j2").write_text("custom {{ spec_name }} {{ verdict.label }}\n")
    out = render(results, "markdown", template_dir=tmp_path).decode()
    assert out == "custom german-credit NOT EVALUATED\n"
    # The HTML template is not overridden there, so the shipped one is used.
    assert "1 Summary" in render(results, "html", template_dir=tmp_path).decode()


def test_template_dir_must_be_a_folder(results: Results, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a folder"):
        render(results, "html", template_dir=tmp_path / "missing")


def test_element_ids_are_unique_and_every_reference_resolves(full_html: str) -> None:
    ids = re.findall(r'\sid="([^"]+)"', full_html)
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    assert duplicates == []
    refs = set(re.findall(r"url\(#([^)]+)\)", full_html)) | set(re.findall(r'href="#([^"]+)"', full_html))
    assert refs and refs <= set(ids), sorted(refs - set(ids))


def test_chart_text_has_no_raw_tex(results: Results) -> None:
    for charts in build_charts(results).values():
        for chart in charts:
            labels = re.findall(r"<text[^>]*>([^<]*)</text>", chart.svg or "")
            assert labels, chart.id
            assert not any("mathdefault" in t or "$" in t for t in labels), (chart.id, labels)
