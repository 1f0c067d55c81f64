"""``governance audit SPEC --out DIR [--model DIR] [--policy POLICY]``: run the audits of a spec.

Exit codes: 0 every audit ran (and the policy passed); 1 an audit could not complete (its section is
ERROR, results.json is still written) or the policy was violated; 2 bad input.
Only argparse-level imports here: the audit stack loads inside :func:`run`, and torch only when a
model is involved (a predictions-only audit never imports it).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "audit",
        help="run the audits listed in a spec; write results.json, report.html, manifest.json",
        description=(
            "Run the audits a spec lists (training first if the spec trains and no --model is given). "
            "Exit 0: all audits ran (and the policy passed); 1: an audit errored or the policy failed; "
            "2: bad input."
        ),
    )
    p.add_argument("spec", metavar="SPEC", help="audit spec (YAML)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument(
        "--model", metavar="DIR", default=None, help="a model folder written by `governance train`"
    )
    p.add_argument("--policy", metavar="POLICY", default=None, help="policy file or pack name to check")
    p.add_argument("--waivers", metavar="FILE", default=None, help="waivers for the policy check")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (default auto)")
    p.add_argument(
        "--force",
        action="store_true",
        help="train despite blocking data-quality findings (recorded in the ledger)",
    )
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    # Evidence (issue 14): sign the finished folder; where the run records itself.
    p.add_argument(
        "--sign", metavar="KEY.pem", default=None, help="sign the output folder with this P-256 key"
    )
    p.add_argument(
        "--store",
        metavar="PATH",
        default=None,
        help="history store (default $GOVERNANCE_STORE or .governance/history.sqlite)",
    )
    p.add_argument(
        "--trust-code",
        action="store_true",
        help="allow the spec's model.factory (Python code) to run; a model folder never names code",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from governance.pipeline import run_audit
    from governance.spec import load_spec

    spec = load_spec(args.spec)
    outcome = run_audit(
        spec,
        args.out,
        model_dir=args.model,
        policy=args.policy,
        waivers=args.waivers,
        device=args.device,
        force=args.force,
        progress=args.progress,
        sign_key=args.sign,
        store=args.store,
        trust_code=args.trust_code,
    )
    results = outcome.results
    print(
        f"governance audit: wrote {outcome.paths['results']} "
        f"({len(results.metrics)} metrics, {len(results.findings)} findings)",
        file=sys.stderr,
    )
    for name in outcome.errored:
        print(
            f"governance audit: audit {name} could not complete: {results.sections[name].error}",
            file=sys.stderr,
        )
    if outcome.check_report is not None:
        print(outcome.check_report.summary_line(), file=sys.stderr)
    return outcome.exit_code
