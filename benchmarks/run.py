"""The benchmark harness behind ``make bench``: ``python -m benchmarks.run [--smoke] [NAME ...]``.

Discovers ``benchmarks/bench_*.py``, calls each module's ``run(smoke: bool) -> dict`` (figures,
ratios and a ``met`` verdict), prints one table, and writes ``benchmarks/results.json`` (or
``results-smoke.json``). A benchmark that raises is reported as failed and the others still run;
the exit code is 1 if any benchmark failed or missed its target (``met`` false), else 0.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
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
        with own_history_store():
            figures = dict(module.run(smoke=smoke))
        status = "missed" if figures.get("met") is False else "ok"
    except Exception as exc:
        figures = {"error": f"{exc.__class__.__name__}: {exc}", "traceback": traceback.format_exc(limit=5)}
        status = "failed"
    return {"status": status, "seconds": round(time.perf_counter() - start, 2), "figures": figures}


@contextlib.contextmanager
def own_history_store() -> Iterator[None]:
    """A fresh, temporary history store for one benchmark (``$GOVERNANCE_STORE``, which the
    commands it runs inherit). Every audit records itself in the history store, and a DP run's ε
    joins its dataset's privacy budget: a benchmark must neither add to the user's store nor
    measure reports that carry whatever audits ran in this folder before."""
    saved = os.environ.get("GOVERNANCE_STORE")
    with tempfile.TemporaryDirectory(prefix="governance-bench-store-") as folder:
        os.environ["GOVERNANCE_STORE"] = str(Path(folder) / "history.sqlite")
        try:
            yield
        finally:
            if saved is None:
                os.environ.pop("GOVERNANCE_STORE", None)
            else:
                os.environ["GOVERNANCE_STORE"] = saved


def machine() -> dict[str, Any]:
    """What the figures were measured on (they move with the CPU: docs/PERFORMANCE.md)."""
    cpu = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": cpu,
        "cpus": os.cpu_count(),
    }


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
        "machine": machine(),
        "benchmarks": report,
    }
    output.write_text(json.dumps(doc, indent=2) + "\n")
    return 1 if any(e["status"] != "ok" for e in report.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
