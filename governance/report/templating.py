"""The Jinja2 environments: templates from the package (importlib.resources) or a user folder.

HTML is autoescaped by Jinja; Markdown gets the same guarantee through ``finalize``, which
escapes every ``{{ … }}`` value for Markdown unless the template marked it safe.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from markupsafe import Markup, escape

from governance.errors import InputError
from governance.report._text import fmt_number, humanize
from governance.report.escape import md_code as md_code_span
from governance.report.escape import md_text

if TYPE_CHECKING:
    import jinja2

__all__ = ["ZWSP", "breakable", "environment", "md_code", "md_escape", "package_templates"]


def package_templates() -> Any:
    """The shipped templates folder as an importlib.resources Traversable (works from a wheel too)."""
    return importlib.resources.files("governance") / "_data" / "templates"


def _package_loader() -> jinja2.BaseLoader:
    import jinja2

    class _ResourceLoader(jinja2.BaseLoader):
        """Reads templates through importlib.resources, so a zipped or installed package works."""

        def get_source(
            self, environment: jinja2.Environment, template: str
        ) -> tuple[str, str | None, Callable[[], bool]]:
            node = package_templates()
            for part in template.split("/"):
                node = node / part
            if not node.is_file():
                raise jinja2.TemplateNotFound(template)
            return node.read_text(encoding="utf-8"), None, lambda: True

    return _ResourceLoader()


def md_escape(value: Any) -> str:
    """Escape a value for Markdown text and table cells (:func:`governance.report.escape.md_text`).

    Examples
    --------
    >>> md_escape("<script>alert(1)</script> | x_y")
    '&lt;script&gt;alert(1)&lt;/script&gt; \\\\| x\\\\_y'
    """
    if isinstance(value, Markup):
        return str(value)
    return md_text(value)


def md_code(value: Any) -> Markup:
    """A code span (:func:`governance.report.escape.md_code`), marked safe for the template."""
    return Markup(md_code_span(value))


_BREAK_AFTER = re.compile(r"([._*\[\]/])")
#: Zero-width space: a line-break opportunity that draws nothing.
ZWSP = "\u200b"
#: Longest run of characters left without a break opportunity (a column fits ~20 at print size).
_MAX_RUN = 14


def breakable(value: Any) -> Markup:
    """Escaped text with a line-break opportunity (U+200B, a zero-width space) after each ``. _ * [ ] /``.

    Rule and metric IDs such as ``fair.demographic_parity_ratio`` have no spaces: without these
    a narrow table column lets them run under the next cell in print. WeasyPrint ignores break
    opportunities where ``overflow-wrap`` is ``anywhere``, so the places that use this filter keep
    it ``normal``; a run longer than :data:`_MAX_RUN` characters gets opportunities of its own so
    that nothing overflows then either. A character rather than ``<wbr>``: WeasyPrint draws
    ``<wbr>`` as this very character, but as an element of its own, with its own styles and box,
    and the PDF's tables hold about a thousand of them.

    Examples
    --------
    >>> str(breakable("fair.demographic_parity<b>")).replace(ZWSP, "|")
    'fair.|demographic_|parity&lt;b&gt;'
    >>> str(breakable("x" * 20)).replace(ZWSP, "|")
    'xxxxxxxxxxxxxx|xxxxxx'
    """
    parts = _BREAK_AFTER.split(str(value))
    out = Markup("")
    for i, part in enumerate(parts):
        runs = [part[k : k + _MAX_RUN] for k in range(0, len(part), _MAX_RUN)] or [""]
        out += Markup(ZWSP).join(escape(run) for run in runs)
        if i % 2 == 1:
            out += Markup(ZWSP)
    return out


def _breakable_in_print(context: Any, value: Any) -> Markup:
    # Only the PDF needs the break opportunities (a browser widens the column instead), and the
    # HTML file keeps every ID verbatim, so that searching its source for a rule ID finds it.
    return breakable(value) if context.get("pdf") else escape(value)


def _md_finalize(value: Any) -> Any:
    return md_escape(value)


def environment(kind: str, template_dir: Path | None = None) -> jinja2.Environment:
    """A Jinja environment for ``kind`` ("html" or "markdown"); ``template_dir`` templates win over ours.

    Environments are kept per (kind, folder) for the life of the process: Jinja caches compiled
    templates per environment, and compiling the report templates costs more than rendering
    them. A user template edited on disk is still picked up (Jinja checks its modification time).

    Raises
    ------
    InputError
        If ``template_dir`` is not a folder.
    """
    if template_dir is not None and not Path(template_dir).is_dir():
        raise InputError(
            template_dir, None, "not a folder; expected --template-dir to name a folder of templates"
        )
    folder = None if template_dir is None else str(Path(template_dir).resolve())
    return _environment(kind, folder)


@functools.lru_cache(maxsize=1)
def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Jinja's own per-user cache of compiled templates (in the temp folder), or None.

    Compiling the report templates costs ~0.1 s in every process that renders a report; loading
    the compiled code back costs a few milliseconds. Entries are keyed by template name (and
    file, for user templates) and checked against a checksum of the source, so an edited
    template is recompiled, never served stale. No usable cache folder: templates compile as
    before.
    """
    import jinja2

    try:
        return jinja2.FileSystemBytecodeCache()
    except (OSError, RuntimeError):  # RuntimeError: Jinja found the temp folder unsafe
        return None


@functools.lru_cache(maxsize=16)
def _environment(kind: str, template_dir: str | None) -> jinja2.Environment:
    import jinja2

    loaders: list[jinja2.BaseLoader] = []
    if template_dir is not None:
        loaders.append(jinja2.FileSystemLoader(template_dir))
    loaders.append(_package_loader())
    common: dict[str, Any] = {
        "loader": jinja2.ChoiceLoader(loaders),
        "bytecode_cache": _bytecode_cache(),
        "undefined": jinja2.StrictUndefined,
        "trim_blocks": True,
        "lstrip_blocks": True,
        "keep_trailing_newline": True,
    }
    if kind == "markdown":
        env = jinja2.Environment(autoescape=False, finalize=_md_finalize, **common)
        env.filters["code"] = md_code
        env.filters["e"] = md_escape
    else:
        env = jinja2.Environment(autoescape=True, **common)
        env.filters["code"] = lambda v: Markup("<code>") + escape(v) + Markup("</code>")
        env.filters["breakable"] = jinja2.pass_context(_breakable_in_print)
    env.filters["num"] = fmt_number
    env.filters["humanize"] = humanize
    return env
