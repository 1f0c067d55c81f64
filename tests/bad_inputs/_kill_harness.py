"""kill -9 at random points of ``train`` and ``audit``; report what each kill left behind.

Run as ``python -m tests.bad_inputs._kill_harness WORKDIR --points N [--seed S]``; prints one JSON
object. One process imports governance once and forks a child per run (so a point costs the run,
not the imports); each child runs the real command line (``governance.cli.main``) in its own
process group, which the harness SIGKILLs after a random delay drawn over the run's whole length.

After every kill the harness classifies the target folder against reference folders written by
complete runs (``old``: the folder before the run, ``new``: the run's complete folder,
``absent``: nothing at the path yet, ``mixed``: anything else) and asks the command that would
accept it: ``audit --model`` for a model folder, ``check`` for an audit folder. A *violation* is a
``mixed`` folder, or an accepted folder that is not ``old`` or ``new``. Half of the points disable
the atomic exchange (``renameat2``), so the two-rename fallback and its recovery are killed too.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

MODEL_FILES = ("config.json", "model.safetensors", "preprocessing.json")
POLICY = """name: kill-test
version: 1.0.0
rules:
  - id: dq.duplicates
    title: duplicates are rare
    metric: data_quality.duplicate_rate
    op: "<="
    threshold: 1.0
    severity: blocking
"""


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


#: The last child's stderr (read when a run exits with an error before its kill).
LOG = Path(os.devnull)


#: Filesystem calls a run makes; a child killed "at operation k" SIGKILLs itself just before the
#: k-th of them, which lands kills exactly inside the write and swap windows that random delays
#: rarely hit (they are a small part of a run).
OPERATIONS = (
    ("os", "rename"),
    ("os", "replace"),
    ("os", "link"),
    ("os", "unlink"),
    ("os", "mkdir"),
    ("os", "chmod"),
    ("os", "fsync"),
    ("shutil", "rmtree"),
    ("shutil", "copytree"),
    ("tempfile", "mkdtemp"),
    ("pathlib.Path", "write_text"),
    ("safetensors.torch", "save_file"),
    ("governance._output_folder", "_exchange"),
)


def _count_operations(kill_at: int | None, count_file: Path | None) -> None:
    """Wrap every call in OPERATIONS with a counter (in the child only)."""
    import atexit
    import importlib
    import pathlib

    calls = [0]

    def wrap(fn: Any) -> Any:
        def counted(*args: Any, **kwargs: Any) -> Any:
            calls[0] += 1
            if kill_at is not None and calls[0] == kill_at:
                os.killpg(0, signal.SIGKILL)
            return fn(*args, **kwargs)

        return counted

    for owner, name in OPERATIONS:
        target: Any = pathlib.Path if owner == "pathlib.Path" else importlib.import_module(owner)
        setattr(target, name, wrap(getattr(target, name)))
    if count_file is not None:
        atexit.register(lambda: count_file.write_text(str(calls[0])))
        # os._exit skips atexit: the child writes the count itself (see _fork).
        globals()["_WRITE_COUNT"] = lambda: count_file.write_text(str(calls[0]))


def _fork(
    argv: list[str], *, fallback: bool = False, kill_at: int | None = None, count_file: Path | None = None
) -> int:
    """Run ``governance argv`` in a forked child (own process group); return its pid."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 99
        try:
            os.setpgid(0, 0)
            devnull = os.open(os.devnull, os.O_WRONLY)
            log = os.open(LOG, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(devnull, 1)
            os.dup2(log, 2)
            if fallback:
                import governance._output_folder as folders

                folders._exchange = lambda a, b: False  # type: ignore[assignment]
            if kill_at is not None or count_file is not None:
                _count_operations(kill_at, count_file)
            from governance.cli import main

            code = main(argv)
            if "_WRITE_COUNT" in globals():
                globals()["_WRITE_COUNT"]()
        except BaseException:
            code = 98
        finally:
            os._exit(code)
    return pid


def _run(
    argv: list[str], *, fallback: bool = False, kill_at: int | None = None, count_file: Path | None = None
) -> int:
    pid = _fork(argv, fallback=fallback, kill_at=kill_at, count_file=count_file)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def _run_killed(argv: list[str], delay: float, *, fallback: bool) -> str:
    """Run and SIGKILL the whole process group after ``delay`` seconds.

    Returns 'killed', 'finished' (exit 0 before the delay) or 'exitN' (an error before it).
    """
    pid = _fork(argv, fallback=fallback)
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            return "finished" if code == 0 else f"exit{code}"
        time.sleep(0.005)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return "killed"


def _adapt(span: float, ended: str, seconds: float, errors: list[str]) -> float:
    """Keep the delays spread over the whole run as the machine's load changes."""
    if ended == "finished":
        return max(span, 1.2 * seconds)
    if ended.startswith("exit"):
        lines = LOG.read_text(errors="replace").strip().splitlines() if LOG.is_file() else []
        errors.append(f"{ended}: {lines[-1] if lines else ''}")
    return span


# -- model folders ----------------------------------------------------------------------------------


def model_signature(folder: Path) -> dict[str, Any] | None:
    """What identifies a complete model folder: its files' hashes and the seed its ledger records."""
    if not folder.is_dir():
        return None
    names = sorted(p.name for p in folder.iterdir())
    sig: dict[str, Any] = {"names": names}
    for name in MODEL_FILES:
        sig[name] = _digest(folder / name) if (folder / name).is_file() else None
    try:
        ledger = json.loads((folder / "training.json").read_text())
        sig["seed"] = ledger.get("seed")
        sig["ledger_files"] = {k: v for k, v in ledger.get("files", {}).items()}
    except (OSError, ValueError):
        sig["seed"] = sig["ledger_files"] = None
    return sig


def classify_model(folder: Path, old: dict[str, Any], new: dict[str, Any]) -> str:
    sig = model_signature(folder)
    if sig is None:
        return "absent"
    if sig == old:
        return "old"
    if sig == new:
        return "new"
    return "mixed"


# -- audit folders ----------------------------------------------------------------------------------


def audit_signature(folder: Path) -> dict[str, Any] | None:
    """Which model a complete audit folder describes, and whether its manifest matches its files."""
    if not folder.is_dir():
        return None
    names = sorted(p.name for p in folder.iterdir())
    try:
        results = json.loads((folder / "results.json").read_text())
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return {"names": names, "complete": False}
    outputs_match = all(
        (folder / Path(e["path"]).name).is_file() and _digest(folder / Path(e["path"]).name) == e["sha256"]
        for e in manifest.get("outputs", {}).values()
    )
    weights = results.get("subject", {}).get("model", {}).get("files", {}).get("model.safetensors")
    manifest_weights = manifest.get("inputs", {}).get("model/model.safetensors", {}).get("sha256")
    return {
        "names": names,
        "complete": outputs_match and weights == manifest_weights and "report.html" in names,
        "weights": weights,
    }


def classify_audit(folder: Path, old: dict[str, Any], new: dict[str, Any]) -> str:
    sig = audit_signature(folder)
    if sig is None:
        return "absent"
    if sig == old:
        return "old"
    if sig == new:
        return "new"
    return "mixed"


# -- the harness ------------------------------------------------------------------------------------


def prepare(work: Path) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.data.helpers import spec_dict, write_spec, write_split

    write_split(work)
    specs = {
        "A": write_spec(work, spec_dict(seed=0), "a.yaml"),
        "B": write_spec(work, spec_dict(seed=1, train__epochs=3), "b.yaml"),
    }
    (work / "policy.yaml").write_text(POLICY)
    # Warm up in this process (imports), then time complete forked runs.
    import torch

    torch.set_num_threads(1)
    from governance.cli import main

    with open(os.devnull, "w") as sink:
        saved = sys.stderr
        sys.stderr = sink
        try:
            assert main(["train", str(specs["A"]), "--out", str(work / "warm"), "--no-progress"]) == 0
        finally:
            sys.stderr = saved
    refs: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for name, spec in specs.items():
        t0 = time.perf_counter()
        assert _run(["train", str(spec), "--out", str(work / f"ref{name}"), "--no-progress"]) == 0
        seconds[f"train{name}"] = time.perf_counter() - t0
        again = work / f"ref{name}-again"
        assert _run(["train", str(spec), "--out", str(again), "--no-progress"]) == 0
        refs[name] = model_signature(work / f"ref{name}")
        assert model_signature(again) == refs[name], "training is not deterministic: no reference"
    audits: dict[str, Any] = {}
    for name in specs:
        t0 = time.perf_counter()
        out = work / f"audit-ref{name}"
        argv = [
            "audit",
            str(specs["A"]),
            "--model",
            str(work / f"ref{name}"),
            "--out",
            str(out),
            "--no-progress",
        ]
        assert _run(argv) == 0
        seconds[f"audit{name}"] = time.perf_counter() - t0
        audits[name] = audit_signature(out)
        assert audits[name]["complete"], audits[name]
    return {"specs": specs, "refs": refs, "audits": audits, "seconds": seconds}


def _kill_loop(
    work: Path,
    points: int,
    rng: random.Random,
    *,
    target: Path,
    argv_for: Any,
    classify: Any,
    accepts: Any,
    refs: dict[str, Any],
    span: float,
    operations: int,
) -> dict[str, Any]:
    """``points`` runs from state to state, each killed at a random delay or a random operation."""
    state = "A"
    outcomes: Counter[str] = Counter()
    accepted_incomplete = 0
    violations: list[dict[str, Any]] = []
    errors: list[str] = []
    for i in range(points):
        other = "B" if state == "A" else "A"
        fallback = i % 4 >= 2  # half the points run the two-rename swap instead of the exchange
        argv = argv_for(other)
        if i % 2 == 0:
            how = f"delay {rng.uniform(0.0, span):.3f}s"
            t0 = time.perf_counter()
            ended = _run_killed(argv, float(how.split()[1][:-1]), fallback=fallback)
            span = _adapt(span, ended, time.perf_counter() - t0, errors)
        else:
            k = rng.randint(1, operations)
            how = f"operation {k}/{operations}"
            code = _run(argv, fallback=fallback, kill_at=k)
            ended = "killed" if code == -signal.SIGKILL else ("finished" if code == 0 else f"exit{code}")
            _adapt(span, ended, 0.0, errors)
        found = classify(target, refs[state], refs[other])
        accepted = accepts(target)
        outcomes[f"{ended}:{found}"] += 1
        if found == "mixed" or (accepted and found not in ("old", "new")):
            accepted_incomplete += int(accepted)
            violations.append({"point": i, "how": how, "found": found, "accepted": accepted})
        if found == "new":
            state = other
        elif found == "absent":
            # The next run on the folder puts the old one back before anything else.
            from governance._output_folder import OutputLock, recover

            with OutputLock(target):
                recover(target)
            if classify(target, refs[state], refs[other]) != "old":
                violations.append({"point": i, "how": how, "found": "absent and not recovered"})
                break
    # A last complete run: nothing left beside the folder, and the folder is that run's.
    other = "B" if state == "A" else "A"
    assert _run(argv_for(other)) == 0
    leftovers = sorted(p.name for p in work.iterdir() if p.name.startswith(f".{target.name}."))
    return {
        "points": points,
        "outcomes": dict(outcomes),
        "violations": violations,
        "accepted_incomplete": accepted_incomplete,
        "leftovers_after_next_run": leftovers,
        "final_run_complete": classify(target, refs[state], refs[other]) == "new",
        "delay_span_s": round(span, 2),
        "operations_per_run": operations,
        "errors": errors,
    }


def _operations(work: Path, argv: list[str]) -> int:
    count_file = work / "ops.count"
    assert _run(argv, count_file=count_file) == 0
    return int(count_file.read_text())


def kill_train(work: Path, setup: dict[str, Any], points: int, rng: random.Random) -> dict[str, Any]:
    specs = setup["specs"]
    target = work / "model"
    shutil.copytree(work / "refA", target)

    def argv_for(name: str) -> list[str]:
        return ["train", str(specs[name]), "--out", str(target), "--no-progress"]

    def accepts(folder: Path) -> bool:
        """``audit --model`` (the command that would use the folder) runs on it."""
        check_out = work / "check-audit"
        shutil.rmtree(check_out, ignore_errors=True)
        argv = ["audit", str(specs["A"]), "--model", str(folder), "--out", str(check_out), "--no-progress"]
        return _run(argv) == 0

    scratch = work / "ops-model"
    shutil.copytree(work / "refA", scratch)
    operations = _operations(work, ["train", str(specs["B"]), "--out", str(scratch), "--no-progress"])
    return _kill_loop(
        work,
        points,
        rng,
        target=target,
        argv_for=argv_for,
        classify=classify_model,
        accepts=accepts,
        refs=setup["refs"],
        span=1.2 * max(setup["seconds"]["trainA"], setup["seconds"]["trainB"]),
        operations=operations,
    )


def kill_audit(work: Path, setup: dict[str, Any], points: int, rng: random.Random) -> dict[str, Any]:
    specs = setup["specs"]
    target = work / "audit"
    shutil.copytree(work / "audit-refA", target)

    def argv_for(name: str) -> list[str]:
        return [
            "audit",
            str(specs["A"]),
            "--model",
            str(work / f"ref{name}"),
            "--out",
            str(target),
            "--no-progress",
        ]

    def accepts(folder: Path) -> bool:
        """``check`` (fails closed on a manifest that does not match) passes the results."""
        if not (folder / "results.json").is_file():
            return False
        return _run(["check", str(folder / "results.json"), "--policy", str(work / "policy.yaml")]) == 0

    scratch = work / "ops-audit"
    shutil.copytree(work / "audit-refA", scratch)
    argv = ["audit", str(specs["A"]), "--model", str(work / "refB"), "--out", str(scratch), "--no-progress"]
    return _kill_loop(
        work,
        points,
        rng,
        target=target,
        argv_for=argv_for,
        classify=classify_audit,
        accepts=accepts,
        refs=setup["audits"],
        span=1.2 * max(setup["seconds"]["auditA"], setup["seconds"]["auditB"]),
        operations=_operations(work, argv),
    )


def concurrent_audits(work: Path, setup: dict[str, Any], trials: int) -> dict[str, Any]:
    """Two audits into one --out at once: one waits for nobody, the other exits 2; never a mix."""
    specs, audits = setup["specs"], setup["audits"]
    target = work / "audit-concurrent"
    outcomes: Counter[str] = Counter()
    mixed = 0
    for _ in range(trials):
        pids = [
            _fork(
                [
                    "audit",
                    str(specs["A"]),
                    "--model",
                    str(work / f"ref{name}"),
                    "--out",
                    str(target),
                    "--no-progress",
                ]
            )
            for name in ("A", "B")
        ]
        codes = sorted(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids)
        found = classify_audit(target, audits["A"], audits["B"])
        outcomes[f"exits {codes}: {found}"] += 1
        mixed += int(found not in ("old", "new"))
    return {"trials": trials, "outcomes": dict(outcomes), "mixed": mixed}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("work", type=Path)
    parser.add_argument("--points", type=int, default=20, help="kill points for train and for audit each")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    global LOG
    LOG = args.work / "child.log"
    started = time.perf_counter()
    setup = prepare(args.work)
    rng = random.Random(args.seed)
    report = {
        "train": kill_train(args.work, setup, args.points, rng),
        "audit": kill_audit(args.work, setup, args.points, rng),
        "concurrent": concurrent_audits(args.work, setup, max(2, args.points // 4)),
        "reference_seconds": {k: round(v, 2) for k, v in setup["seconds"].items()},
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
