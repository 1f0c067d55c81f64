"""Typed audit options: a frozen dataclass per audit, parsed from the spec with field-named errors."""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from governance.audit._inputs import option_error

if TYPE_CHECKING:
    from governance.audit.base import AuditContext

__all__ = ["parse_options"]

T = TypeVar("T")


def _coerce(value: Any, kind: Any, where: str, context: AuditContext, audit: str) -> Any:
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], where, context, audit)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise option_error(context, audit, where, f"expected a list, got {value!r}")
        return tuple(_coerce(v, args[0], f"{where}[{i}]", context, audit) for i, v in enumerate(value))
    if kind is bool:
        if not isinstance(value, bool):
            raise option_error(context, audit, where, f"expected true or false, got {value!r}")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise option_error(context, audit, where, f"expected an integer, got {value!r}")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise option_error(context, audit, where, f"expected a number, got {value!r}")
        return float(value)
    if kind is str:
        if not isinstance(value, str):
            raise option_error(context, audit, where, f"expected a string, got {value!r}")
        return value
    return value


def parse_options(cls: type[T], raw: Mapping[str, Any], context: AuditContext, audit: str) -> T:
    """Build the options dataclass ``cls`` from the spec's mapping, rejecting unknown keys.

    Errors name the spec file and the field, e.g. ``audits.robustness.eps[1]``.
    """
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, value in (raw or {}).items():
        if key not in names:
            raise option_error(context, audit, str(key), f"unknown option; expected one of {sorted(names)}")
        values[key] = _coerce(value, hints[key], key, context, audit)
    return cls(**values)
