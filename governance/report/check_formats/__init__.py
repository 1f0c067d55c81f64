"""Output formats of ``governance check``, behind one small interface and a registry.

Each format is a module with ``render(report: CheckReport) -> str``; the CLI's ``--format``
choices come from :func:`format_names`, so a new format needs no CLI change.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from governance.policy.outcome import CheckReport

__all__ = ["format_names", "get_format", "register_format"]

Renderer = Callable[["CheckReport"], str]

ERR_DUPLICATE = "check format {name!r} is already registered"
ERR_UNKNOWN = "unknown check format {name!r}; expected one of {known}"

_REGISTRY: dict[str, str | Renderer] = {
    "text": "governance.report.check_formats.text:render",
    "json": "governance.report.check_formats.json_format:render",
    "junit": "governance.report.check_formats.junit:render",
    "markdown": "governance.report.check_formats.markdown:render",
}


def register_format(name: str, renderer: str | Renderer) -> None:
    if name in _REGISTRY:
        raise ValueError(ERR_DUPLICATE.format(name=name))
    _REGISTRY[name] = renderer


def format_names() -> tuple[str, ...]:
    return tuple(_REGISTRY)


def get_format(name: str) -> Renderer:
    try:
        target = _REGISTRY[name]
    except KeyError:
        raise ValueError(ERR_UNKNOWN.format(name=name, known=sorted(_REGISTRY))) from None
    if isinstance(target, str):
        module_name, _, attr = target.partition(":")
        target = getattr(importlib.import_module(module_name), attr)
        _REGISTRY[name] = target
    return target
