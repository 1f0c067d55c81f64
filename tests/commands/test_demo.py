"""`governance demo`: the reference run a newcomer starts with, end to end."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from governance.cli import main


@pytest.mark.slow
def test_demo_writes_every_format_and_exits_0_whatever_the_verdict(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--no-progress"]) == 0
    summary = capsys.readouterr().out
    for name in (
        "results.json",
        "report.html",
        "report.md",
        "report.pdf",
        "report.json",
        "junit.xml",
        "manifest.json",
    ):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    assert (out / "model" / "training.json").is_file()

    results = json.loads((out / "results.json").read_text())
    metrics = results["metrics"]
    ledger = json.loads((out / "model" / "training.json").read_text())
    # DP at the spec's target: the spent ε is what the ledger says and never above the target.
    assert metrics["privacy.epsilon"] == pytest.approx(ledger["privacy"]["epsilon"])
    assert 0 < metrics["privacy.epsilon"] <= 3.0
    assert {s["status"] for s in results["sections"].values()} == {"ok"}
    for prefix in ("data_quality.", "performance.", "fairness.", "attribution.", "robustness.", "privacy."):
        assert any(m.startswith(prefix) for m in metrics), prefix

    report = json.loads((out / "report.json").read_text())
    verdict = "PASSED" if report["policy"]["passed"] else "FAILED"
    assert f"policy eu-ai-act-high-risk 1.0.0: {verdict}" in summary
    assert str(out / "report.html") in summary
    suite = ET.parse(out / "junit.xml").getroot()
    assert int(suite.get("tests")) == len(report["policy"]["outcomes"])
    assert (out / "report.html").stat().st_size < 2 * 1024 * 1024
    assert (out / "report.pdf").read_bytes().startswith(b"%PDF")
    # Issue 16: the mitigation section shows the frontier and a pick that reaches the pack's 0.8, or
    # says plainly that none does; the HTML report draws the frontier.
    mitigation = results["sections"]["mitigation"]
    assert len(mitigation["tables"]["frontier"]) >= 9
    chosen = [p for p in mitigation["tables"]["frontier"] if p["chosen"]]
    reason = mitigation["details"]["reason"]
    assert (chosen and chosen[0]["target_value"] >= 0.8) or reason.startswith("infeasible at this accuracy")
    assert "The frontier of mitigation settings" in (out / "report.html").read_text()
    # Issue 19: the PDF reviewers file has no text drawn over other text, on any page.
    from tests.report._pdf_boxes import overlapping_glyphs

    overlaps = overlapping_glyphs(out / "report.pdf")
    assert not overlaps, "\n".join(str(o) for o in overlaps[:20])


def test_demo_bad_output_folder_exits_2(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["demo", "--out", str(blocker / "sub"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert (
        err.strip()
        == f"governance demo: error: --out: {blocker / 'sub'}: cannot create output folder: {blocker} is a file"
    )
    assert not (tmp_path / "out").exists()
