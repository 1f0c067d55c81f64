"""Machine-readable outcomes: the CheckReport as one JSON document."""

from __future__ import annotations

import json

from governance.policy.outcome import CheckReport


def render(report: CheckReport) -> str:
    return json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n"
