"""Report fixtures: a realistic German Credit results.json (every section) and a hand-made verdict.

The results file is written by hand, not by the audits, so the report tests run on their own
and pin the table layouts the charts read.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from governance.policy.outcome import CheckReport, Outcome, Status, WaiverNote
from governance.results import Results, Severity

DATA = Path(__file__).parent / "data"
RESULTS_FILE = DATA / "german_credit_results.json"
HOSTILE = "<script>alert(1)</script>"


@pytest.fixture
def results_dict() -> dict[str, Any]:
    raw: dict[str, Any] = json.loads(RESULTS_FILE.read_text())
    return raw


@pytest.fixture
def results(results_dict: dict[str, Any]) -> Results:
    return Results.from_dict(results_dict, source=str(RESULTS_FILE))


def make_check_report(*, passed: bool = False) -> CheckReport:
    """A verdict with one of each interesting outcome: blocking FAIL, WAIVED, WARN, ERROR, PASS."""
    refs = ("EU AI Act Art. 10(2)(f)", "EEOC 29 CFR 1607.4(D)")
    outcomes = [
        Outcome(
            "perf.accuracy",
            "Accuracy is at least 0.65",
            Status.PASS,
            Severity.BLOCKING,
            "performance.accuracy",
            ">=",
            0.65,
            0.745,
            "0.745 >= 0.65",
            ("EU AI Act Art. 15(1)",),
        ),
        Outcome(
            "fair.sex",
            "Selection-rate ratio by sex is at least 0.8",
            Status.WAIVED,
            Severity.BLOCKING,
            "fairness.sex.demographic_parity_ratio",
            ">=",
            0.8,
            0.7982,
            "0.7982 is not >= 0.8",
            refs,
            rationale="four-fifths rule",
            waiver=WaiverNote(
                "fair.sex", "Remediation plan RP-12 in progress", "Dana Approver", "2099-01-01", expired=False
            ),
        ),
        Outcome(
            "fair.eo",
            "Equalized-odds difference at most 0.1",
            Status.WARN,
            Severity.MINOR,
            "fairness.worst.equalized_odds_difference",
            "<=",
            0.1,
            0.17,
            "0.17 is not <= 0.1",
        ),
        Outcome(
            "rob.noise",
            "Noise robustness",
            Status.ERROR,
            Severity.MAJOR,
            "robustness.gaussian_noise.eps_0.1.accuracy_drop",
            "<=",
            0.05,
            None,
            "metric not a number",
        ),
    ]
    if not passed:
        outcomes.append(
            Outcome(
                "fair.age",
                "Selection-rate ratio by age_group is at least 0.8",
                Status.FAIL,
                Severity.BLOCKING,
                "fairness.age_group.demographic_parity_ratio",
                ">=",
                0.8,
                0.7463,
                "0.7463 is not >= 0.8",
                refs,
                rationale="four-fifths rule",
            )
        )
    else:
        outcomes = [o for o in outcomes if o.status is not Status.ERROR]
    return CheckReport(
        policy_name="eu-ai-act-high-risk",
        policy_version="1.0.0",
        policy_source="policies/eu-ai-act-high-risk.yaml",
        policy_sha256="ab" * 32,
        results_source=str(RESULTS_FILE),
        outcomes=tuple(outcomes),
        evaluated_on="2025-01-10",
        spec_name="german-credit",
    )


@pytest.fixture
def check_report() -> CheckReport:
    return make_check_report()


def hostile(raw: dict[str, Any]) -> dict[str, Any]:
    """The results with a hostile spec name, group value and feature name everywhere they appear."""
    doc = copy.deepcopy(raw)
    doc["run"]["spec_name"] = HOSTILE
    doc["run"]["intended_purpose"] = f"purpose {HOSTILE} | pipe"
    top_feature = doc["sections"]["attribution"]["tables"]["importance"][0]["feature"]
    text = json.dumps(doc)
    text = text.replace('"female"', json.dumps(HOSTILE + " | f"))
    text = text.replace(json.dumps(top_feature), json.dumps("<img src=x onerror=alert(2)>"))
    out: dict[str, Any] = json.loads(text)
    return out


@pytest.fixture
def hostile_results(results_dict: dict[str, Any]) -> Results:
    return Results.from_dict(hostile(results_dict), source="hostile.json")
