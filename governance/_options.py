"""Options as pydantic models: one style for every audit's ``audits.<name>`` mapping.

Each audit declares its options as a subclass of :class:`Options` (unknown keys are an error) and
registers it with the audit registry; :func:`parse_options` turns the spec's mapping into that model
or raises one :class:`~governance.errors.InputError` naming the spec file and the field, e.g.
``audits.robustness.eps[1]``. The pipeline parses every listed audit's options before it loads any
data or trains, so a typo exits 2 at once.

Field types are strict where a YAML value could silently change meaning: a whole number is not a
bool, a string is not a number; a number where a float is expected and a list where a tuple is
expected are accepted.
"""

from __future__ import annotations

from collections.abc import Mapping
from os import PathLike
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, ValidationError

from governance.errors import InputError

__all__ = ["Bool", "Float", "Int", "Label", "Options", "Str", "options_error", "parse_options"]

#: A whole number (a bool or a float is rejected).
Int = Annotated[int, Strict()]
#: A number (an int is accepted; a bool or a string is rejected; inf and NaN are rejected).
Float = Annotated[float, Strict(), Field(allow_inf_nan=False)]
Bool = Annotated[bool, Strict()]
Str = Annotated[str, Strict()]


def _as_label(value: Any) -> Any:
    # YAML reads `positive_label: 1` as an int; class labels are compared as strings.
    return str(value) if isinstance(value, int | float) else value


#: A class label: a string, or a number read from YAML (compared as its string).
Label = Annotated[str, BeforeValidator(_as_label), Strict()]

ERR_UNKNOWN = "unknown option; expected one of {known}"

_EXPECTED = {
    "int_type": "expected an integer",
    "float_type": "expected a number",
    "bool_type": "expected true or false",
    "string_type": "expected a string",
    "tuple_type": "expected a list",
    "list_type": "expected a list",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "finite_number": "expected a finite number",
}

OptionsT = TypeVar("OptionsT", bound="Options")


class Options(BaseModel):
    """Base of every audit's options: frozen, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _field(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _message(err: Mapping[str, Any], model: type[BaseModel]) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        owner: Any = model
        for part in err["loc"][:-1]:
            if isinstance(part, str):
                nested = owner.model_fields.get(part)
                annotation = getattr(nested, "annotation", None)
                owner = (
                    annotation
                    if isinstance(annotation, type) and issubclass(annotation, BaseModel)
                    else owner
                )
        return ERR_UNKNOWN.format(known=sorted(owner.model_fields))
    got = err.get("input")
    if kind == "missing":
        return "required option is missing"
    if kind in _EXPECTED:
        return f"{_EXPECTED[kind]}, got {got!r}"
    if kind in ("value_error", "assertion_error"):
        return str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    msg = str(err["msg"])
    return f"{msg[0].lower()}{msg[1:]}, got {got!r}" if msg else f"invalid value {got!r}"


def options_error(source: str | PathLike[str] | None, where: str, field: str, message: str) -> InputError:
    """The :class:`InputError` for one option, e.g. field ``audits.robustness.eps[1]``."""
    return InputError(source, f"{where}.{field}" if field else where, message)


def parse_options(
    model: type[OptionsT], raw: Mapping[str, Any] | None, *, source: str | PathLike[str] | None, where: str
) -> OptionsT:
    """Validate ``raw`` (the spec's ``audits.<name>`` mapping) into ``model``.

    Parameters
    ----------
    model
        The options model (a subclass of :class:`Options`).
    raw
        The mapping from the spec; None means all defaults.
    source
        The spec file, for the error.
    where
        The spec path of the mapping, e.g. ``audits.robustness``.

    Raises
    ------
    InputError
        For the first problem, naming ``where`` + the field.
    """
    if raw is not None and not isinstance(raw, Mapping):
        raise InputError(source, where, f"expected a mapping of options, got {raw!r}")
    try:
        return model.model_validate(dict(raw or {}))
    except ValidationError as exc:
        err = exc.errors()[0]
        raise options_error(source, where, _field(tuple(err["loc"])), _message(err, model)) from None
