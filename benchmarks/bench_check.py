"""`governance check` start-up latency: the CI gate must answer in ≤ 0.3 s (median wall time).

Measured as a whole process, as CI runs it: interpreter start, imports, policy and results
parsing, evaluation and output. The results file carries a realistic number of metrics.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_SECONDS = 0.3


def _results(path: Path) -> None:
    metrics: dict[str, float] = {
        "performance.accuracy": 0.74,
        "performance.balanced_accuracy": 0.7,
        "performance.f1": 0.8,
    }
    attrs = ["sex", "age_group", "sex*age_group"]
    for attr in attrs:
        for name in (
            "demographic_parity_difference",
            "demographic_parity_ratio",
            "equalized_odds_difference",
            "equal_opportunity_difference",
            "accuracy_difference",
        ):
            metrics[f"fairness.{attr}.{name}"] = 0.85
    for name in (
        "demographic_parity_ratio",
        "equalized_odds_difference",
        "accuracy_difference",
        "demographic_parity_difference",
    ):
        metrics[f"fairness.worst.{name}"] = 0.85
    for attack in ("fgsm", "pgd"):
        for eps in ("0.05", "0.1", "0.2"):
            metrics[f"robustness.{attack}.eps_{eps}.accuracy"] = 0.7
            metrics[f"robustness.{attack}.eps_{eps}.accuracy_drop"] = 0.04
    metrics.update(
        {
            "privacy.epsilon": 2.9,
            "privacy.delta": 1e-5,
            "privacy.membership_inference.auc": 0.52,
            "privacy.membership_inference.tpr_at_fpr_0.001": 0.002,
            "attribution.sensitive_share": 0.05,
            "attribution.completeness_gap": 0.001,
            "data_quality.duplicate_rate": 0.0,
            "data_quality.missing_rate": 0.0,
            "data_quality.train_eval_overlap": 0.0,
            "data_quality.min_group_share": 0.05,
        }
    )
    doc = {
        "schema_version": 1,
        "run": {
            "tool_version": "bench",
            "spec_name": "bench",
            "seed": 0,
            "started_at": "",
            "finished_at": "",
        },
        "subject": {},
        "metrics": metrics,
        "sections": {},
        "findings": [],
    }
    path.write_text(json.dumps(doc))


def run(smoke: bool = False) -> dict[str, Any]:
    repeats = 5 if smoke else 21
    governance = Path(sys.executable).with_name("governance")
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results.json"
        _results(results)
        command = [
            str(governance),
            "check",
            str(results),
            "--policy",
            "eu-ai-act-high-risk",
            "--format",
            "junit",
            "--output",
            str(Path(tmp) / "junit.xml"),
        ]
        subprocess.run(command, capture_output=True, check=False)  # warm the page cache
        walls = []
        for _ in range(repeats):
            start = time.perf_counter()
            done = subprocess.run(command, capture_output=True, check=False)
            walls.append(time.perf_counter() - start)
            if done.returncode not in (0, 1):
                raise RuntimeError(done.stderr.decode())
        baseline = []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
            baseline.append(time.perf_counter() - start)
    median = statistics.median(walls)
    return {
        "check_median_s": round(median, 4),
        "check_p90_s": round(sorted(walls)[int(0.9 * (len(walls) - 1))], 4),
        "python_startup_median_s": round(statistics.median(baseline), 4),
        "target_s": TARGET_SECONDS,
        "ratio_to_target": round(median / TARGET_SECONDS, 3),
        "met": median <= TARGET_SECONDS,
    }


if __name__ == "__main__":
    print(json.dumps(run(smoke="--smoke" in sys.argv), indent=2))
