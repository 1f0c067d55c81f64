"""``governance report``: every format, the policy verdict in the report, exit codes, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from governance.cli import main
from governance.commands.report import FORMATS

RESULTS = Path(__file__).parents[1] / "report" / "data" / "german_credit_results.json"


@pytest.mark.parametrize("fmt", [f for f in FORMATS if f != "pdf"])
def test_each_format_writes_its_file(fmt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / f"report.{fmt}"
    assert main(["report", str(RESULTS), "--format", fmt, "--output", str(out)]) == 0
    assert out.stat().st_size > 1000
    assert f"wrote {out} ({fmt}," in capsys.readouterr().err


def test_policy_verdict_is_shown_and_a_failing_policy_still_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.json"
    code = main(
        ["report", str(RESULTS), "--policy", "eu-ai-act-high-risk", "--format", "json", "--output", str(out)]
    )
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc["verdict"] == "FAILED"
    assert doc["policy"]["policy"]["name"] == "eu-ai-act-high-risk"
    assert doc["policy"]["results"] == str(RESULTS)
    failed = {o["metric"] for o in doc["policy"]["outcomes"] if o["status"] == "FAIL"}
    assert "fairness.age_group.demographic_parity_ratio" in failed
    assert "FAILED" in capsys.readouterr().err


def test_waivers_are_applied_and_shown(tmp_path: Path) -> None:
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(
        "- rule: fair.equalized_odds\n  reason: Remediation RP-7 <b>tracked</b>\n"
        "  approver: Jo Reviewer\n  expires: 2099-12-31\n"
    )
    out = tmp_path / "report.html"
    args = ["report", str(RESULTS), "--policy", "eu-ai-act-high-risk", "--waivers", str(waivers)]
    assert main([*args, "--format", "html", "--output", str(out)]) == 0
    html = out.read_text()
    waiver_block = html.split('id="waivers"', 1)[1].split('id="audit-status"', 1)[0]
    assert "Remediation RP-7 &lt;b&gt;tracked&lt;/b&gt;" in waiver_block and "Jo Reviewer" in waiver_block


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["missing.json", "--format", "html"], "missing.json: file not found"),
        ([str(RESULTS), "--policy", "no-such-pack.yaml", "--format", "html"], "no-such-pack.yaml"),
        ([str(RESULTS), "--waivers", "w.yaml", "--format", "html"], "--waivers: waivers apply to a policy"),
        ([str(RESULTS), "--format", "docx"], "invalid choice: 'docx'"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(
    argv: list[str], needle: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.out"
    with pytest.raises(SystemExit) if "docx" in argv else _nullcontext() as exit_info:
        code = main(["report", *argv, "--output", str(out)])
    if exit_info is not None:
        code = int(exit_info.value.code)  # type: ignore[union-attr]
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert not out.exists()


def test_output_that_is_a_folder_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(RESULTS), "--format", "markdown", "--output", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_malformed_results_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "results.json"
    bad.write_text('{"schema_version": 1, "metrics": {"Not An Id": 1}}')
    assert main(["report", str(bad), "--format", "html", "--output", str(tmp_path / "r.html")]) == 2
    assert "metrics.Not An Id: not a metric ID" in capsys.readouterr().err


def test_help_does_not_import_the_renderers() -> None:
    code = (
        "import sys, governance.cli as c; p = c.build_parser(); "
        "heavy = [m for m in ('jinja2', 'matplotlib', 'weasyprint', 'governance.report.render') if m in sys.modules]; "
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


class _nullcontext:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
