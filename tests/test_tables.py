"""Typed tables: every table an audit writes is declared, and the report reads only declared ones."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

import governance
from governance.results import Results
from governance.tables import (
    DETAILS,
    TABLES,
    EpochRecord,
    GroupRates,
    RocPoint,
    UndeclaredTableError,
    parse_rows,
    read,
    read_detail,
    read_ledger,
)

ROOT = Path(governance.__file__).parent
FIXTURE = Path(__file__).parent / "report" / "data" / "german_credit_results.json"
#: Module → the audit whose section it writes tables into.
WRITERS = {
    "audit/privacy.py": "privacy",
    "audit/attribution.py": "attribution",
    "audit/_text_attribution.py": "attribution",
    "audit/fairness.py": "fairness",
    "audit/_counterfactual.py": "fairness",
    "audit/robustness.py": "robustness",
    "audit/_text_robustness.py": "robustness",
    "audit/performance.py": "performance",
    "data/quality.py": "data_quality",
    "audit/privacy_cost.py": "privacy_cost",
    "audit/compression.py": "compression",
    "mitigation/section.py": "mitigation",
}


def _written_tables(source: str) -> set[str]:
    """Table names a module writes: ``tables["x"] = …``, ``tables={"x": …}``, ``tables[f"x_{split}"]``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Subscript) and getattr(target.value, "id", None) == "tables":
                    key = target.slice
                    if isinstance(key, ast.Constant):
                        names.add(str(key.value))
                    elif isinstance(key, ast.JoinedStr):
                        names |= {f"{key.values[0].value}{split}" for split in ("eval", "train")}  # type: ignore[attr-defined]
        if isinstance(node, ast.keyword) and node.arg == "tables" and isinstance(node.value, ast.Dict):
            names |= {str(k.value) for k in node.value.keys if isinstance(k, ast.Constant)}
    return names


@pytest.mark.parametrize(("module", "audit"), sorted(WRITERS.items()))
def test_every_table_an_audit_writes_is_declared(module: str, audit: str) -> None:
    written = _written_tables((ROOT / module).read_text(encoding="utf-8"))
    assert written, f"{module} writes no table the scan can see: update WRITERS or the scan"
    assert written <= set(TABLES[audit]), written - set(TABLES[audit])


def test_the_report_reads_tables_only_through_the_typed_readers() -> None:
    """No string lookups of tables in the report: a renamed table would silently read as missing."""
    for path in sorted((ROOT / "report").rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        assert not re.search(r"\.tables\.get\(|\.tables\[", source), path
        assert not re.search(r"\brows\(section", source), path


def test_every_table_the_report_asks_for_is_declared() -> None:
    """Each ``table(section, "name", Record)`` / ``read(…, "audit", "name", Record)`` in the report is declared."""
    asked = 0
    for path in sorted((ROOT / "report").rglob("*.py")):
        if path.name == "_data.py":  # the reader itself: passes its caller's names on
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or getattr(node.func, "id", None) not in ("table", "read"):
                continue
            consts = [a.value for a in node.args if isinstance(a, ast.Constant)]
            record = getattr(node.args[-1], "id", None)
            assert consts, (
                f"{path.name}:{node.lineno}: table names must be literal, so this test can check them"
            )
            name = consts[-1]
            asked += 1
            audits = [consts[0]] if len(consts) == 2 else list(TABLES)
            owners = [a for a in audits if name in TABLES[a] and TABLES[a][name].__name__ == record]
            assert owners, f"{path.name}: no audit declares a table {name!r} of {record}"
    assert asked >= 8


def test_the_fixture_tables_are_all_declared_and_parse() -> None:
    doc = json.loads(FIXTURE.read_text())
    for audit, section in doc["sections"].items():
        for name, rows in (section.get("tables") or {}).items():
            record = TABLES[audit].get(name)
            assert record is not None, f"{audit}.{name} is not declared"
            assert len(parse_rows(rows, record)) == len(rows), f"{audit}.{name}: rows do not parse"


def test_undeclared_reads_raise_instead_of_reading_as_missing() -> None:
    tables = {"mia_roc": [{"fpr": 0.0, "tpr": 0.0}]}
    with pytest.raises(UndeclaredTableError, match=r"privacy\.tables\.mia_roc"):
        read(tables, "privacy", "mia_roc", RocPoint)
    with pytest.raises(UndeclaredTableError):
        read({}, "fairness", "groups", RocPoint)  # declared, but as another record
    with pytest.raises(UndeclaredTableError):
        read_detail({}, "privacy", "mia_roc", RocPoint)
    with pytest.raises(UndeclaredTableError):
        read_ledger({}, "epochs_log", EpochRecord)
    assert ("privacy", "roc") in DETAILS


def test_rows_of_the_wrong_kind_are_skipped_not_crashed_on() -> None:
    rows = [
        {"attribute": "sex", "group": "f", "selection_rate": 0.5, "count": 10},
        {"attribute": "sex", "group": "m", "selection_rate": "high"},  # optional field wrong: dropped
        {"group": "x"},  # required field missing: row skipped
        "not a row",
        {"attribute": "sex", "group": "n", "selection_rate": float("nan")},
    ]
    parsed = parse_rows(rows, GroupRates)
    assert [(r.group, r.selection_rate) for r in parsed] == [("f", 0.5), ("m", None), ("n", None)]


def test_a_chart_asking_for_an_undeclared_table_fails_loudly(results: Results) -> None:
    from governance.report.charts import _REGISTRY, build_charts, register_chart
    from governance.report.charts._data import ok_section, table

    def renamed(res: Results) -> list:  # type: ignore[type-arg]
        table(ok_section(res, "privacy"), "mia_roc", RocPoint)
        return []

    register_chart("test_renamed", "privacy", renamed)
    try:
        with pytest.raises(UndeclaredTableError):
            build_charts(results, draw=False)
    finally:
        del _REGISTRY["test_renamed"]


@pytest.fixture
def results() -> Results:
    return Results.from_dict(json.loads(FIXTURE.read_text()))
