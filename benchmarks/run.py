"""The benchmark harness behind ``make bench``: ``python -m benchmarks.run [--smoke] [NAME ...]``.

Discovers ``benchmarks/bench_*.py``, calls each module's ``run(smoke: bool) -> dict`` (figures,
ratios and a ``met`` verdict), prints one table, and writes ``benchmarks/results.json`` (or
``results-smoke.json``). A benchmark that raises is reported as failed and the others still run;
the exit code is 1 if any benchmark failed or missed its target (``met`` false), else 0.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def discover() -> list[str]:
    """Names of the benchmark modules (``bench_check`` …), sorted."""
    return sorted(p.stem for p in HERE.glob("bench_*.py"))


def run_one(name: str, smoke: bool) -> dict[str, Any]:
    """Run one benchmark module; an exception becomes ``{"error": ...}``, never a crash."""
    start = time.perf_counter()
    try:
        module = importlib.import_module(f"benchmarks.{name}")
        figures = dict(module.run(smoke=smoke))
        status = "missed" if figures.get("met") is False else "ok"
    except Exception as exc:
        figures = {"error": f"{exc.__class__.__name__}: {exc}", "traceback": traceback.format_exc(limit=5)}
        status = "failed"
    return {"status": status, "seconds": round(time.perf_counter() - start, 2), "figures": figures}


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def render(report: dict[str, dict[str, Any]]) -> str:
    """A plain-text table: one block per benchmark, one line per figure."""
    lines = []
    for name, entry in report.items():
        lines.append(f"{name}  [{entry['status']}, {entry['seconds']} s]")
        for key, value in entry["figures"].items():
            if key == "traceback":
                continue
            lines.append(f"    {key:<32} {_format(value)}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument(
        "--smoke", action="store_true", help="small sizes: checks the harness, not the targets"
    )
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all), e.g. bench_fairness")
    parser.add_argument("--output", type=Path, default=None, help="where to write the JSON results")
    args = parser.parse_args(argv)
    names = args.names or discover()
    unknown = sorted(set(names) - set(discover()))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; expected some of {discover()}")
    report = {}
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        report[name] = run_one(name, args.smoke)
    print(render(report))
    output = args.output or HERE / ("results-smoke.json" if args.smoke else "results.json")
    doc = {
        "smoke": args.smoke,
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.processor(),
        },
        "benchmarks": report,
    }
    output.write_text(json.dumps(doc, indent=2) + "\n")
    return 1 if any(e["status"] != "ok" for e in report.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
