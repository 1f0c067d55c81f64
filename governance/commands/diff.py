"""``governance diff OLD NEW``: every metric's change between two audits, regressions marked.

OLD and NEW are results.json paths or history ids. Exit 0 always when both sides load (the diff is
information; ``check --baseline`` is the gate), 2 for bad input.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "diff",
        help="every metric's change between two audits (results.json paths or history ids)",
        description="Compare two audits metric by metric. Metrics with bootstrap intervals change when "
        "the intervals do not overlap; the others when they move by more than the policy rule's "
        "max_regression. The policy's ops say which way is worse.",
    )
    p.add_argument("old", metavar="OLD", help="results.json or history id")
    p.add_argument("new", metavar="NEW", help="results.json or history id")
    p.add_argument(
        "--policy",
        metavar="POLICY",
        default="eu-ai-act-high-risk",
        help="policy whose rules give directions and tolerances (default: eu-ai-act-high-risk)",
    )
    p.add_argument("--format", choices=("text", "json", "markdown"), default="text", help="output format")
    p.add_argument("--changed-only", action="store_true", help="leave out unchanged metrics")
    p.add_argument("--output", metavar="FILE", default=None, help="write here instead of stdout")
    p.add_argument("--store", metavar="PATH", default=None, help="history store for ids")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from governance._io import atomic_write_text
    from governance.evidence.diff import diff_results, format_diff, load_side
    from governance.policy.loader import load_policy

    old_label, old = load_side(args.old, store=args.store)
    new_label, new = load_side(args.new, store=args.store)
    policy = load_policy(args.policy) if args.policy else None
    report = diff_results(old, new, policy=policy, old_label=old_label, new_label=new_label)
    text = format_diff(report, args.format, all_metrics=not args.changed_only)
    if args.output:
        atomic_write_text(args.output, text)
    else:
        sys.stdout.write(text)
    print(f"diff: {len(report.changes)} metrics, {len(report.regressions)} regressions", file=sys.stderr)
    return 0
