"""Exceptions that the command line turns into exit codes.

Every user-facing problem is raised as an :class:`InputError` carrying the file, the field
and what was expected, so that the CLI can print exactly one line and exit 2.
"""

from __future__ import annotations

from os import PathLike

__all__ = ["AuditError", "GovernanceError", "InputError"]


class GovernanceError(Exception):
    """Base class of every error raised on purpose by governance."""


class InputError(GovernanceError):
    """Bad input: a file, a field in it, and what was expected instead.

    Parameters
    ----------
    source
        The file (or other input, e.g. ``"--fail-on"``) that is wrong; ``None`` if none applies.
    field
        The dotted path of the offending field inside ``source`` (``"rules[2].op"``), or ``None``.
    message
        What is wrong and what was expected, as one sentence without a trailing period.

    Examples
    --------
    >>> str(InputError("policy.yaml", "rules[0].op", "expected one of < <= > >= == !=, got '=>'"))
    "policy.yaml: rules[0].op: expected one of < <= > >= == !=, got '=>'"
    """

    def __init__(self, source: str | PathLike[str] | None, field: str | None, message: str) -> None:
        self.source = None if source is None else str(source)
        self.field = field
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [p for p in (self.source, self.field) if p]
        parts.append(self.message)
        return ": ".join(parts)


class AuditError(GovernanceError):
    """An audit could not complete; its section becomes ERROR and the others still run."""
