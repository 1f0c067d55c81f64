"""One registry mechanism for audits, attacks, output formats and the like (as Opacus registers
its accountants): ``register`` raises on a duplicate name, ``get`` on an unknown one.

Entries may be given as ``"module:attribute"`` strings and are imported on first use, so listing
the names (CLI choices, spec validation, ``--help``) never imports torch, Captum or WeasyPrint.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar, cast

__all__ = ["Registry"]

T = TypeVar("T")

ERR_DUPLICATE = "{kind} {name!r} is already registered"
ERR_UNKNOWN = "unknown {kind} {name!r}; expected one of {known}"


class Registry(Generic[T]):
    """Name → object, in registration order.

    Examples
    --------
    >>> formats = Registry[str]("output format", {"text": "builtins:str"})
    >>> formats.names()
    ('text',)
    >>> formats.get("yaml")
    Traceback (most recent call last):
    ...
    ValueError: unknown output format 'yaml'; expected one of ['text']
    """

    def __init__(self, kind: str, entries: Mapping[str, T | str] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, T | str] = {}
        for name, target in (entries or {}).items():
            self.register(name, target)

    def register(self, name: str, target: T | str) -> None:
        """Add ``target`` (or its ``"module:attribute"`` path) under ``name``."""
        if name in self._entries:
            raise ValueError(ERR_DUPLICATE.format(kind=self.kind, name=name))
        self._entries[name] = target

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def get(self, name: str) -> T:
        """The object registered under ``name``, imported on first use."""
        try:
            target = self._entries[name]
        except KeyError:
            known = sorted(self._entries)
            raise ValueError(ERR_UNKNOWN.format(kind=self.kind, name=name, known=known)) from None
        if isinstance(target, str):
            module_name, _, attribute = target.partition(":")
            target = cast(T, getattr(importlib.import_module(module_name), attribute))
            self._entries[name] = target
        return target

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
