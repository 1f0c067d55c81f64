"""``governance history [--name SPEC] [--store PATH] [--check]``: the audits recorded so far.

Newest first: id, time, spec name, model and data digests, policy verdict. ``--check`` walks the
hash chain instead: exit 1 naming each changed or deleted row.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "history",
        help="list recorded audits (newest first), or --check the store's hash chain",
        description="List the audits recorded in the history store, newest first. With --check, "
        "verify the hash chain: exit 1 naming each changed or deleted row.",
    )
    p.add_argument("--name", metavar="SPEC_NAME", default=None, help="only audits of this spec")
    p.add_argument(
        "--store",
        metavar="PATH",
        default=None,
        help="history store (default $GOVERNANCE_STORE or .governance/history.sqlite)",
    )
    p.add_argument("--check", action="store_true", help="verify the hash chain instead of listing")
    p.add_argument(
        "--format", choices=("text", "json"), default="text", help="listing format (default: text)"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from governance.evidence.store import check_chain, list_audits, resolve_store

    store = resolve_store(args.store)
    if args.check:
        problems = check_chain(store=store)
        for problem in problems:
            print(problem.line())
        verdict = "INTACT" if not problems else f"TAMPERED ({len(problems)} rows)"
        print(f"history {store}: {verdict}", file=sys.stderr)
        return 0 if not problems else 1
    records = list_audits(name=args.name, store=store)
    if args.format == "json":
        sys.stdout.write(json.dumps([r.to_dict() for r in records], indent=2) + "\n")
        return 0
    for r in records:
        data = ", ".join(f"{k} {v[:12]}" for k, v in sorted(r.data_digests.items())) or "no data files"
        model = (r.model_digest or "none")[:12]
        print(f"{r.id:>5}  {r.recorded_at[:19]}Z  {r.spec_name}  model {model}  data {data}  {r.verdict}")
    print(f"history {store}: {len(records)} audits", file=sys.stderr)
    return 0
