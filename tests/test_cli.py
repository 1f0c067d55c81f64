"""The command line as a whole: version, help, and the promise not to import heavy stacks."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import governance
from governance.cli import main

HEAVY = (
    "torch",
    "transformers",
    "captum",
    "opacus",
    "art",
    "fairlearn",
    "sklearn",
    "matplotlib",
    "weasyprint",
)


def imported_after(code: str) -> set[str]:
    probe = f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def heavy_in(modules: set[str]) -> set[str]:
    return {name for name in HEAVY if name in modules}


def test_import_governance_is_light():
    assert heavy_in(imported_after("import governance")) == set()


def test_cli_help_and_check_do_not_import_heavy_stacks(write_results):
    results = write_results()
    code = (
        "from governance.cli import main\n"
        f"main(['check', {str(results)!r}, '--policy', 'baseline', '--output', {str(results) + '.txt'!r}])\n"
    )
    assert heavy_in(imported_after(code)) == set()
    help_code = "from governance.cli import build_parser\nbuild_parser().format_help()"
    assert heavy_in(imported_after(help_code)) == set()


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"governance {governance.__version__}"


def test_python_dash_m_works():
    out = subprocess.run(
        [sys.executable, "-m", "governance", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"governance {governance.__version__}"


def test_no_command_is_usage_error(capsys):
    assert main([]) == 2


def test_unknown_command_is_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2


def test_lazy_api():
    assert callable(governance.load_results) and callable(governance.check)
    with pytest.raises(AttributeError):
        governance.no_such_thing  # noqa: B018
