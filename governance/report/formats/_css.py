"""The report's stylesheet made cheaper for WeasyPrint: custom properties replaced by their values.

WeasyPrint resolves every ``var()`` again for each element it styles (a few thousand table
cells in a long report); with the values written in place every colour is the same and the
styles cost less (docs/PERFORMANCE.md).
"""

from __future__ import annotations

import re

__all__ = ["inline_root_properties"]

_STYLE = re.compile(r"(<style[^>]*>)(.*?)(</style>)", re.S | re.I)
_ROOT = re.compile(r":root\s*\{([^{}]*)\}")
_DEFINITION = re.compile(r"(--[A-Za-z0-9_-]+)\s*:\s*([^;{}]+?)\s*(?:;|$)")
_USE = re.compile(r"var\(\s*(--[A-Za-z0-9_-]+)\s*\)")


def inline_root_properties(html: str) -> str:
    """``html`` with each ``var(--x)`` of its first ``<style>`` replaced by the ``:root`` value of ``--x``.

    Only where that is sure to style the page the same: one ``:root`` rule defines every
    custom property the stylesheet uses, nothing else defines one, and every ``var()`` is a
    plain reference (no fallback). Anything else (a template of one's own, say) is left as it is.

    Examples
    --------
    >>> inline_root_properties("<style>:root { --ink: #111; } p { color: var(--ink); }</style>")
    '<style> p { color: #111; }</style>'
    >>> inline_root_properties("<style>p { color: var(--ink, red); }</style>")
    '<style>p { color: var(--ink, red); }</style>'
    """
    style = _STYLE.search(html)
    if style is None:
        return html
    css = style.group(2)
    roots = _ROOT.findall(css)
    if len(roots) != 1:
        return html
    values = dict(_DEFINITION.findall(roots[0]))
    rest = _ROOT.sub("", css, count=1)
    if "--" in _USE.sub("", rest) or not values:
        return html  # a definition outside :root, a var() with a fallback, or none at all
    if any(name not in values for name in _USE.findall(rest)):
        return html
    inlined = _USE.sub(lambda m: values[m.group(1)], rest)
    return html[: style.start(2)] + inlined + html[style.end(2) :]
