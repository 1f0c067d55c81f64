"""kill -9 at random points of ``train`` and ``audit`` never leaves a folder that ``audit --model``
or ``check`` accepts as complete while it is not (issue 12).

The harness (``_kill_harness.py``) forks the real command line from one warm process, kills each
run's process group at a random delay or just before a random filesystem operation, and
classifies what is left against the folders complete runs write. The default test runs 8 points
per command (about a minute); the ``slow`` one runs 60 per command.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _harness(work: Path, points: int, seed: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.bad_inputs._kill_harness",
            str(work),
            "--points",
            str(points),
            "--seed",
            str(seed),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=1800,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _assert_safe(report: dict, points: int) -> None:
    for command in ("train", "audit"):
        part = report[command]
        assert part["points"] == points
        assert sum(part["outcomes"].values()) == points
        assert part["violations"] == [], (command, part)
        assert part["accepted_incomplete"] == 0
        assert part["leftovers_after_next_run"] == [], (command, part)
        assert part["final_run_complete"], (command, part)
        assert part["errors"] == [], (command, part)
        # the points did kill runs (not only runs that had finished already)
        assert any(k.startswith("killed:") for k in part["outcomes"]), part["outcomes"]
    # two audits started at once into one --out: the folder is always one of them, never a mix
    assert report["concurrent"]["mixed"] == 0, report["concurrent"]
    assert all(k.startswith(("exits [0, 0]", "exits [0, 2]")) for k in report["concurrent"]["outcomes"])


@pytest.mark.skipif(
    sys.platform == "win32" or not hasattr(os, "fork"), reason="needs fork and process groups"
)
def test_kill_9_at_random_points_never_leaves_an_accepted_partial_folder(tmp_path: Path) -> None:
    report = _harness(tmp_path, points=8, seed=12)
    _assert_safe(report, 8)


@pytest.mark.slow
@pytest.mark.skipif(
    sys.platform == "win32" or not hasattr(os, "fork"), reason="needs fork and process groups"
)
def test_kill_9_at_60_random_points_per_command(tmp_path: Path) -> None:
    report = _harness(tmp_path, points=60, seed=2026)
    _assert_safe(report, 60)
