"""``governance verify DIR [--key PUB.pem]``: does an audit folder still hold what was written?

Exit 0 when every file matches ``manifest.json`` (and the signature, with ``--key``); 1 naming each
file that changed, is missing or was added, or a signature that does not verify; 2 when there is no
manifest to verify against. Never imports torch.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "verify",
        help="check an audit folder against its manifest and signature",
        description="Check every file of an audit folder against manifest.json and, with --key, "
        "evidence.sigstore.json. Exit 0: intact; 1: a file changed, is missing or was added, or the "
        "signature does not verify; 2: bad input.",
    )
    p.add_argument("folder", metavar="DIR", help="an audit folder (written by `governance audit`)")
    p.add_argument(
        "--key", metavar="PUB.pem", default=None, help="P-256 public key the folder must be signed with"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from governance.evidence.verify import verify_folder

    report = verify_folder(args.folder, public_key=args.key)
    for line in report.lines():
        print(line)
    print(report.summary_line(), file=sys.stderr)
    return 0 if report.ok else 1
