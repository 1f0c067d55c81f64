"""ReportWorker: the reports a forked worker writes equal write_reports's; any failure falls back."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from governance.errors import InputError
from governance.report import render
from governance.report.render import ReportWorker, write_reports
from governance.results import Results

from .conftest import make_check_report


def _stable(html: str) -> str:
    # The sign-off block shows the minute the report was generated.
    return re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", "<time>", html)


def test_worker_writes_what_write_reports_writes(
    results: Results, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    check = make_check_report()
    worker = ReportWorker.start(("html", "markdown"))
    assert worker is not None

    def no_fallback(*args: object, **kwargs: object) -> None:
        raise AssertionError("the worker did not deliver; the parent rendered instead")

    # The forked worker keeps the real function; only this process's fallback is replaced.
    monkeypatch.setattr(render, "write_reports", no_fallback)
    worker.submit(results, tmp_path / "w", check_report=check)
    written = worker.write(results, tmp_path / "w", check_report=check)
    here = write_reports(results, tmp_path / "p", check_report=check, formats=("html", "markdown"))
    assert set(written) == set(here) == {"html", "markdown"}
    for fmt in written:
        assert written[fmt].parent == tmp_path / "w"
        assert _stable(written[fmt].read_text()) == _stable(here[fmt].read_text())
    assert "<svg" in written["html"].read_text()


def test_a_dead_worker_falls_back_to_rendering_here(results: Results, tmp_path: Path) -> None:
    worker = ReportWorker.start(("html",))
    assert worker is not None
    process = worker._process
    assert process is not None
    process.kill()
    process.join()
    written = worker.write(results, tmp_path, check_report=None)
    assert written["html"].read_text().count("<svg") >= 3


def test_bad_template_dir_raises_the_real_error(results: Results, tmp_path: Path) -> None:
    worker = ReportWorker.start(("html",), template_dir=tmp_path / "missing")
    assert worker is not None
    with pytest.raises(InputError, match="not a folder"):
        worker.write(results, tmp_path / "out", check_report=None)
    assert not (tmp_path / "out" / "report.html").exists()


def test_closing_an_unused_worker_ends_it() -> None:
    worker = ReportWorker.start(("html",))
    assert worker is not None
    process = worker._process
    assert process is not None
    worker.close()
    assert not process.is_alive()
    worker.close()  # idempotent


def test_no_formats_no_worker() -> None:
    assert ReportWorker.start(()) is None


def test_an_edited_user_template_is_recompiled_not_served_from_the_cache(tmp_path: Path) -> None:
    from governance.report.templating import environment

    folder = tmp_path / "templates"
    folder.mkdir()
    template = folder / "report.md.j2"
    template.write_text("first {{ spec_name }}\n")
    assert environment("markdown", folder).get_template("report.md.j2").render(spec_name="x") == "first x\n"
    # A fresh environment (another process) with the same file edited: the checksum differs.
    from governance.report import templating

    templating._environment.cache_clear()
    template.write_text("second {{ spec_name }}\n")
    assert environment("markdown", folder).get_template("report.md.j2").render(spec_name="x") == "second x\n"
