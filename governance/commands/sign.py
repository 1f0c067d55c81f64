"""``governance sign DIR --key KEY.pem``: sign every file of an audit folder (OpenSSF model-signing).

Writes ``DIR/evidence.sigstore.json``, a sigstore bundle that ``governance verify DIR --key PUB.pem``
and ``model_signing verify key`` accept. Exit 0 signed; 1 the folder no longer matches its
manifest (nothing is signed); 2 bad input (no manifest, unreadable or non-P-256 key).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "sign",
        help="sign an audit folder (results, reports, manifest, model) with a P-256 key",
        description="Sign every file of an audit folder into DIR/evidence.sigstore.json with the "
        "OpenSSF model-signing library. The folder must still match its manifest.",
    )
    p.add_argument("folder", metavar="DIR", help="an audit folder (written by `governance audit`)")
    p.add_argument("--key", required=True, metavar="KEY.pem", help="P-256 private key (PEM, unencrypted)")
    p.add_argument("--signer", default=None, help="who signs (default: the login name)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from governance.evidence.signing import sign_folder
    from governance.evidence.verify import verify_folder

    # Signing vouches for the folder: never sign one that was changed since the audit wrote it.
    report = verify_folder(args.folder)
    if not report.ok:
        for line in report.lines():
            print(line)
        print(f"governance sign: {args.folder} does not match its manifest; nothing signed", file=sys.stderr)
        return 1
    signoff = sign_folder(args.folder, args.key, signer=args.signer)
    print(
        f"governance sign: signed {signoff.files} files of {args.folder} as {signoff.signer} "
        f"(key {signoff.key_fingerprint}) at {signoff.signed_at}",
        file=sys.stderr,
    )
    return 0
