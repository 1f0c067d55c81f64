"""Load policy packs from YAML, resolving ``extends`` with override by rule id.

A policy reference is a path to a YAML file or the name of a built-in pack (``baseline``,
``eu-ai-act-high-risk``, ...). ``extends`` names are looked up next to the extending file
first, then among the built-in packs.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from importlib import resources
from importlib.resources.abc import Traversable
from os import PathLike
from pathlib import Path
from typing import Any

from governance.errors import InputError
from governance.policy.schema import Policy, Rule, parse_rule

__all__ = ["builtin_pack_names", "load_policy", "read_yaml"]

_POLICY_FIELDS = frozenset({"name", "version", "extends", "rules", "description"})


def builtin_pack_names() -> tuple[str, ...]:
    """The policy packs shipped inside the package."""
    return tuple(
        sorted(p.name.removesuffix(".yaml") for p in _packs_dir().iterdir() if p.name.endswith(".yaml"))
    )


def load_policy(ref: str | PathLike[str] | Policy) -> Policy:
    """Load a policy pack by path or built-in name, with every ``extends`` resolved.

    Parameters
    ----------
    ref
        A YAML file, or the name of a built-in pack such as ``"eu-ai-act-high-risk"``.

    Raises
    ------
    InputError
        Naming the file, the rule id and the field for every schema problem, an unknown
        parent, or an ``extends`` cycle.

    Examples
    --------
    >>> policy = load_policy("employment-four-fifths")
    >>> policy.rule("fair.four_fifths").op
    '>='
    """
    if isinstance(ref, Policy):
        return ref
    return _load(_locate(ref, relative_to=None, referrer=None), chain=())


def read_yaml(location: Path | Traversable, *, what: str) -> Any:
    """Parse a YAML file; every failure becomes one :class:`InputError` line."""
    import yaml

    source = str(location)
    try:
        text = location.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(source, None, f"file not found; expected {what}") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError, OSError) as exc:
        raise InputError(source, None, f"cannot read file ({exc.__class__.__name__})") from None
    try:
        return yaml.load(text, Loader=_loader())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(source, where, f"not valid YAML ({problem})") from None


@functools.cache
def _loader() -> type:
    """A safe YAML loader (the C one when available, to keep `check` fast) that leaves dates as
    strings, so that a bad date is reported by the field that holds it, not as a YAML error."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    timestamp = "tag:yaml.org,2002:timestamp"
    resolvers = {
        first: [(tag, regexp) for tag, regexp in entries if tag != timestamp]
        for first, entries in base.yaml_implicit_resolvers.items()
    }
    return type("GovernanceLoader", (base,), {"yaml_implicit_resolvers": resolvers})


def _packs_dir() -> Traversable:
    return resources.files("governance") / "_data" / "policies"


def _locate(
    ref: str | PathLike[str], *, relative_to: Path | None, referrer: str | None
) -> Path | Traversable:
    text = str(ref)
    candidates: list[Path] = []
    path = Path(text)
    if relative_to is not None and not path.is_absolute():
        candidates += [relative_to / path, relative_to / f"{text}.yaml"]
    candidates.append(path)
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    if "/" not in text and "\\" not in text:
        builtin = _packs_dir() / f"{text.removesuffix('.yaml')}.yaml"
        if builtin.is_file():
            return builtin
    known = ", ".join(builtin_pack_names())
    if referrer is not None:
        raise InputError(
            referrer,
            "extends",
            f"unknown policy pack {text!r}; expected a file next to it or one of: {known}",
        )
    if path.suffix in {".yaml", ".yml"} or "/" in text:
        raise InputError(
            text, None, f"file not found; expected a policy YAML file or a built-in pack ({known})"
        )
    raise InputError(text, None, f"no such file or built-in policy pack; built-in packs: {known}")


def _load(location: Path | Traversable, *, chain: tuple[str, ...]) -> Policy:
    source = str(location)
    key = str(Path(source).resolve()) if isinstance(location, Path) else source
    if key in chain:
        cycle = " -> ".join([*(Path(c).name for c in chain), Path(key).name])
        raise InputError(source, "extends", f"extends cycle: {cycle}")
    raw = read_yaml(location, what="a policy pack (YAML)")
    if not isinstance(raw, Mapping):
        raise InputError(source, None, "expected a mapping with name, version and rules")
    unknown = sorted(set(raw) - _POLICY_FIELDS)
    if unknown:
        raise InputError(source, unknown[0], f"unknown field; expected one of {sorted(_POLICY_FIELDS)}")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise InputError(source, "name", "required field is missing" if name is None else "expected a string")
    version = str(raw.get("version", "0"))

    extends_raw = raw.get("extends") or []
    extends = [extends_raw] if isinstance(extends_raw, str) else extends_raw
    if not isinstance(extends, list) or not all(isinstance(e, str) for e in extends):
        raise InputError(source, "extends", "expected a policy name or a list of them")

    rules_raw = raw.get("rules")
    if rules_raw is None and not extends:
        raise InputError(source, "rules", "required field is missing")
    if rules_raw is not None and not isinstance(rules_raw, list):
        raise InputError(source, "rules", "expected a list of rules")

    own: list[Rule] = []
    seen: dict[str, int] = {}
    for index, rule_raw in enumerate(rules_raw or []):
        rule = parse_rule(rule_raw, source=source, where=f"rules[{index}]")
        if rule.id in seen:
            raise InputError(
                source,
                f"rules[{index}].id",
                f"duplicate rule id {rule.id!r} (first at rules[{seen[rule.id]}])",
            )
        seen[rule.id] = index
        own.append(rule)

    digest = hashlib.sha256()
    merged: dict[str, Rule] = {}
    folder = Path(source).parent if isinstance(location, Path) else None
    for parent_ref in extends:
        parent = _load(_locate(parent_ref, relative_to=folder, referrer=source), chain=(*chain, key))
        digest.update(parent.sha256.encode())
        merged.update({r.id: r for r in parent.rules})  # a later parent overrides an earlier one
    for rule in own:
        merged[rule.id] = rule  # override in place keeps the parent's order
    digest.update(location.read_bytes())

    description = raw.get("description")
    return Policy(
        name=name,
        version=version,
        rules=tuple(merged.values()),
        source=source,
        sha256=digest.hexdigest(),
        extends=tuple(extends),
        description=None if description is None else " ".join(str(description).split()),
    )
