"""One escaping function per output format, for every string a user controls.

Group values, column names, policy titles, rule ids, waiver reasons and approvers, file paths and
error messages all come from files someone else wrote. Each output format passes them through
exactly one function here before they reach the page:

- :func:`md_text` for Markdown running text and table cells,
- :func:`md_code` for Markdown code spans,
- :func:`xml_text` for XML 1.0 text and attribute values (JUnit),
- :func:`plain_text` for terminal and log output.

HTML goes through Jinja's autoescape (markupsafe) instead. ``tests/report/test_escape.py`` feeds
random Unicode through each function and the formats that use them, and parses the result with
a real parser (markdown-it-py, ElementTree).
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["md_code", "md_text", "plain_text", "xml_text"]

# Every C0/C1 control character (tab, CR and LF included) and the Unicode line and paragraph
# separators. CommonMark ends a line at CR as well as LF: a CR inside a table cell or a code span
# starts a new block, where `<script>` is live HTML and `# x` a heading.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Lone surrogates (JSON can hold "\ud800") cannot be written as UTF-8 at all.
_SURROGATE = re.compile("[\ud800-\udfff]")

# Characters Markdown (CommonMark + GFM tables, strikethrough) reads as syntax anywhere in a line.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]{}#|!~])")
# ...and those that are syntax only at the start of a line (lists, setext underlines, breaks).
# (A marker needs a space or the line's end after it, so "-0.5" and "0.5" stay as they are.)
_MD_LINE_START = re.compile(r"^(\s*)([-+=])(?=[-+=\s]|$)")
_MD_ORDERED = re.compile(r"^(\s*\d{1,9})([.)])(?=\s|$)")
# What GitHub turns into links without any syntax: mentions, e-mail addresses, bare URLs and
# www. names. A zero-width space after the trigger keeps the text and drops the link.
_MD_AUTOLINK = re.compile(r"(@|:(?=//)|(?i:\bwww)(?=\.))")
_ZWSP = "\u200b"

# XML 1.0 allows tab, LF, CR and these ranges; anything else (other controls, lone surrogates,
# U+FFFE/U+FFFF) makes the document not well-formed.
_XML_FORBIDDEN = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# Terminal output: controls other than tab would move the cursor, recolour or rewrite the log.
_TERMINAL_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def _codepoint(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def md_text(value: Any) -> str:
    """A value as inert Markdown text: it renders as itself and adds no element of its own.

    Control characters become spaces (the value stays on its line), HTML-significant characters
    become entities, Markdown punctuation is backslash-escaped, and mentions and bare links are
    broken with a zero-width space.

    Examples
    --------
    >>> md_text("<script>alert(1)</script> | x_y")
    '&lt;script&gt;alert(1)&lt;/script&gt; \\\\| x\\\\_y'
    >>> md_text("a\\r# b")
    'a \\\\# b'
    """
    if value is None:
        return ""
    text = _SURROGATE.sub("\ufffd", _CONTROL.sub(" ", str(value))).strip()
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    text = _MD_LINE_START.sub(r"\1\\\2", text)
    text = _MD_ORDERED.sub(r"\1\\\2", text)
    return _MD_AUTOLINK.sub(lambda m: m.group() + _ZWSP, text)


def md_code(value: Any) -> str:
    """A value as one Markdown code span, safe inside a GFM table row.

    Inside a code span nothing is markup, so only what could end it matters: line endings
    (become spaces), backticks (become ``'``) and pipes (escaped, or the table row splits).

    Examples
    --------
    >>> md_code("fairness.sex\\r<b>x</b>")
    '`fairness.sex <b>x</b>`'
    """
    text = _SURROGATE.sub("\ufffd", _CONTROL.sub(" ", "" if value is None else str(value)))
    text = text.replace("`", "'").replace("|", "\\|")
    return f"`{text}`" if text.strip() else "` `"


def xml_text(value: Any) -> str:
    """A value that XML 1.0 can hold: characters it forbids are written as ``\\xNN``/``\\uNNNN``.

    ElementTree escapes ``<``, ``&`` and quotes itself; it does not refuse the characters XML 1.0
    forbids, so a control character in a policy title would make the JUnit file unreadable.

    Examples
    --------
    >>> xml_text("title\\x1b[31m\\x00")
    'title\\\\x1b[31m\\\\x00'
    """
    return _XML_FORBIDDEN.sub(_codepoint, "" if value is None else str(value))


def plain_text(value: Any) -> str:
    """A value for one line of terminal or log output: control characters shown, not obeyed.

    Examples
    --------
    >>> plain_text("ok\\x1b[2J\\nPASS")
    'ok\\\\x1b[2J\\\\x0aPASS'
    """
    return _TERMINAL_CONTROL.sub(_codepoint, "" if value is None else str(value))
