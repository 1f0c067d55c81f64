"""The package's import graph: every module imports on its own, and no two modules import in a circle.

``make lint`` runs the import-linter contracts in pyproject.toml (which layers may import which);
these tests catch what a contract cannot see: a module that fails when it is the first one
imported (a circle that only bites in one import order, an import-time error).
"""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import governance

ROOT = Path(__file__).resolve().parents[1]

#: Each module is imported in a child forked from a parent that has imported no governance module
#: (only these third-party packages, to keep the run short): the child sees the module alone.
_CHILD = r"""
import importlib, json, os, sys, traceback
import numpy, pandas, pydantic, yaml  # noqa: F401  (third-party only: no governance module yet)
assert not any(m == "governance" or m.startswith("governance.") for m in sys.modules)
failures = {}
for name in json.loads(sys.argv[1]):
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        try:
            importlib.import_module(name)
            message = ""
        except BaseException:
            message = traceback.format_exc(limit=-3)
        os.write(write, message.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        message = pipe.read()
    os.waitpid(pid, 0)
    if message:
        failures[name] = message
print(json.dumps(failures))
"""


def _modules() -> list[str]:
    names = ["governance"]
    for info in pkgutil.walk_packages(governance.__path__, prefix="governance."):
        names.append(info.name)
    return sorted(names)


#: ``python -m governance`` runs the CLI when imported; it is a script, not a module to import.
_SCRIPTS = ("governance.__main__",)


def test_walks_every_module() -> None:
    names = _modules()
    files = [p for p in (ROOT / "governance").rglob("*.py") if "_data" not in p.parts]
    assert len(names) == len(files)
    assert "governance.pipeline" in names and "governance.models.handle" in names


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_every_module_imports_alone() -> None:
    names = [n for n in _modules() if n not in _SCRIPTS]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(names)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    failures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert failures == {}, "\n".join(f"{name}:\n{tb}" for name, tb in failures.items())


def test_no_import_circles() -> None:
    """No module reaches itself through imports (TYPE_CHECKING imports included)."""
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("governance", cache_dir=None)
    cycles = []
    for module in sorted(graph.modules):
        for imported in graph.find_modules_directly_imported_by(module):
            if graph.chain_exists(imported=module, importer=imported):
                chain = graph.find_shortest_chain(importer=imported, imported=module)
                cycles.append(" -> ".join((module, *(chain or ()))))
    assert cycles == []
