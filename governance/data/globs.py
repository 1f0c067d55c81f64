"""File globs in a spec: ``model: {predictions: "logs/2026-*.parquet"}``, ``data: {eval: GLOB}``.

A decision log kept as one file per day or month is named by a pattern; the pattern is resolved
against the spec's folder (as every path in a spec is, see :func:`governance.spec.load_spec`) and
expands to its matching files, sorted by name, so the rows come in a stable order. Every matched
file is hashed into ``results.subject`` and ``manifest.json``.
"""

from __future__ import annotations

import glob
from os import PathLike
from pathlib import Path

__all__ = ["GLOB_SUFFIXES", "expand", "is_glob"]

#: A glob names files of one tabular format; the engines read these two out of core.
GLOB_SUFFIXES = (".parquet", ".pq", ".csv")
_MAGIC = ("*", "?", "[")

ERR_NO_MATCH = "the pattern {pattern!r} matches no file"
ERR_MIXED = "the pattern {pattern!r} matches files of different types ({suffixes}); expected one type"
ERR_SUFFIX = "the pattern {pattern!r} matches {name!r}; a pattern must name .parquet or .csv files"


def is_glob(path: str | PathLike[str] | None) -> bool:
    """True when ``path`` holds a glob character (``*``, ``?``, ``[``)."""
    return path is not None and any(ch in str(path) for ch in _MAGIC)


def expand(
    path: str | PathLike[str], *, source: str | PathLike[str] | None = None, field: str | None = None
) -> tuple[Path, ...]:
    """The files ``path`` names: itself when it is no pattern, else its matches, sorted by name.

    Raises
    ------
    InputError
        Naming the spec (``source``) and ``field`` when a pattern matches no file, matches files
        of different types, or matches a file that is neither Parquet nor CSV.
    """
    from governance.errors import InputError

    if not is_glob(path):
        return (Path(path),)
    pattern = str(path)
    matches = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
    if not matches:
        raise InputError(source, field, ERR_NO_MATCH.format(pattern=pattern))
    suffixes = sorted({p.suffix.lower() for p in matches})
    for p in matches:
        if p.suffix.lower() not in GLOB_SUFFIXES:
            raise InputError(source, field, ERR_SUFFIX.format(pattern=pattern, name=p.name))
    if len({".parquet" if s == ".pq" else s for s in suffixes}) > 1:
        raise InputError(source, field, ERR_MIXED.format(pattern=pattern, suffixes=", ".join(suffixes)))
    return tuple(matches)
