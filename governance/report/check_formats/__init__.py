"""Output formats of ``governance check``, behind one small interface and a registry.

Each format is a module with ``render(report: CheckReport) -> str``; the CLI's ``--format``
choices come from :func:`format_names`, so a new format needs no CLI change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from governance._registry import Registry

if TYPE_CHECKING:
    from governance.policy.outcome import CheckReport

__all__ = ["format_names", "get_format", "register_format"]

Renderer = Callable[["CheckReport"], str]

_FORMATS: Registry[Renderer] = Registry(
    "check format",
    {
        "text": "governance.report.check_formats.text:render",
        "json": "governance.report.check_formats.json_format:render",
        "junit": "governance.report.check_formats.junit:render",
        "markdown": "governance.report.check_formats.markdown:render",
    },
)


def register_format(name: str, renderer: str | Renderer) -> None:
    _FORMATS.register(name, renderer)


def format_names() -> tuple[str, ...]:
    return _FORMATS.names()


def get_format(name: str) -> Renderer:
    return _FORMATS.get(name)
