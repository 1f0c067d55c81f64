"""``governance mitigate SPEC --method threshold --out DIR [--model DIR]``: fairness mitigation.

Fits fairlearn's ThresholdOptimizer on a calibration part of the eval rows for the constraint and
attribute of the spec's ``mitigation`` block, sweeps its tolerance into a frontier, picks the most
accurate setting that reaches the target, and writes every performance and fairness metric before
and after on the held-out rows. ``--method reweigh`` retrains the spec's model with Kamiran-Calders
weights at a sweep of strengths instead (governance.mitigation.reweigh) and writes the chosen model.
Exit 0 written; 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["METHODS", "add_parser", "run"]

METHODS: tuple[str, ...] = ("threshold", "reweigh")


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "mitigate",
        help="fairness mitigation with every metric before and after",
        description=(
            "Mitigate the spec's model (or decision log with y_score) for the spec's mitigation block; "
            "write results.json with before/after for every metric, the frontier and the decision rule. "
            "Exit 0: written; 2: bad input."
        ),
    )
    p.add_argument("spec", metavar="SPEC", help="audit spec (YAML) with a mitigation block")
    p.add_argument(
        "--method",
        required=True,
        choices=METHODS,
        help="threshold (fairlearn ThresholdOptimizer) or reweigh (Kamiran-Calders weights, retrained)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--model", metavar="DIR", default=None, help="a model folder written by `governance train`"
    )
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (default auto)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.add_argument(
        "--trust-code",
        action="store_true",
        help="allow the spec's model.factory (Python code) to run; a model folder never names code",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from governance.pipeline import run_mitigation
    from governance.spec import load_spec

    outcome = run_mitigation(
        load_spec(args.spec),
        args.out,
        method=args.method,
        model_dir=args.model,
        device=args.device,
        progress=args.progress,
        trust_code=args.trust_code,
    )
    details = outcome.results.sections["mitigation"].details
    print(f"governance mitigate: {details['reason']}", file=sys.stderr)
    print(f"governance mitigate: wrote {outcome.paths['results']}", file=sys.stderr)
    return 0
