"""The package imports its dependencies only through their public API.

A name starting with an underscore (``captum.attr._utils``, ``sklearn.metrics._ranking``) is
private to its library and may change in any release without notice.
"""

from __future__ import annotations

import re
from pathlib import Path

import governance

DEPENDENCIES = ("captum", "opacus", "art", "fairlearn", "sklearn", "scipy", "matplotlib", "transformers")
_DEPS = "|".join(DEPENDENCIES)
PRIVATE = re.compile(
    rf"^\s*(?:from\s+(?P<from>(?:{_DEPS})(?:\.\w+)*)\s+import\s+(?P<names>[^#\n]+)"
    rf"|import\s+(?P<mod>(?:{_DEPS})(?:\.\w+)*))",
    re.M,
)


def private_imports(source: str) -> list[str]:
    """Imports in ``source`` that reach a private module or name of a dependency."""
    found = []
    for match in PRIVATE.finditer(source):
        module = match.group("from") or match.group("mod")
        names = [n.strip().split(" as ")[0] for n in (match.group("names") or "").strip("()").split(",")]
        if any(part.startswith("_") for part in module.split(".")) or any(n.startswith("_") for n in names):
            found.append(match.group(0).strip())
    return found


def test_the_pattern_catches_private_imports() -> None:
    assert private_imports("from captum.attr._utils.approximation_methods import x\n")
    assert private_imports("    import opacus._internal\n")
    assert private_imports("from sklearn.metrics import _ranking\n")
    assert private_imports("from art.attacks import evasion\nfrom fairlearn.metrics._x import y\n") == [
        "from fairlearn.metrics._x import y"
    ]
    assert not private_imports("from captum.attr import IntegratedGradients\nimport sklearn.metrics\n")


def test_no_module_of_the_package_imports_a_private_dependency_module() -> None:
    root = Path(governance.__file__).parent
    offenders = {
        str(path.relative_to(root)): hits
        for path in sorted(root.rglob("*.py"))
        if (hits := private_imports(path.read_text(encoding="utf-8")))
    }
    assert offenders == {}
