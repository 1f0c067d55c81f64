"""The one registry mechanism behind audits, formats and attacks."""

from __future__ import annotations

import pytest

from governance._registry import Registry
from governance.audit.registry import audit_names, create_audit, register_audit


def test_lazy_entries_import_on_first_use():
    reg: Registry[object] = Registry("thing", {"dumps": "json:dumps"})
    import json

    assert reg.get("dumps") is json.dumps
    assert "dumps" in reg and list(reg) == ["dumps"] and len(reg) == 1


def test_duplicates_and_unknown_names_raise():
    reg: Registry[int] = Registry("number", {"one": 1})
    with pytest.raises(ValueError, match="number 'one' is already registered"):
        reg.register("one", 2)
    with pytest.raises(ValueError, match=r"unknown number 'two'; expected one of \['one'\]"):
        reg.get("two")


def test_audit_registry_order_and_errors():
    assert audit_names() == (
        "data_quality",
        "performance",
        "fairness",
        "attribution",
        "robustness",
        "privacy",
        "privacy_cost",
        "compression",
        "mitigation",
    )
    with pytest.raises(ValueError, match="audit 'fairness' is already registered"):
        register_audit("fairness", "x:y")
    with pytest.raises(ValueError, match="unknown audit 'nope'"):
        create_audit("nope")
