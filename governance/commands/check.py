"""``governance check RESULTS.json --policy POLICY``: the CI gate.

The report goes to stdout (or ``--output``), a one-line summary to stderr; exit 0 when the
policy passed, 1 when it was violated, 2 for bad input.
"""

from __future__ import annotations

import argparse
import sys

from governance.report.check_formats import format_names


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check",
        help="evaluate a policy against results.json (the CI gate)",
        description="Evaluate a policy pack against saved audit results. "
        "Exit 0: passed; 1: a blocking or major rule failed (with --fail-on warn: minor ones too); 2: bad input.",
    )
    p.add_argument("results", metavar="RESULTS.json", help="results written by `governance audit`")
    p.add_argument("--policy", required=True, metavar="POLICY", help="policy YAML file or built-in pack name")
    p.add_argument("--waivers", metavar="FILE", help="YAML/JSON list of {rule, reason, approver, expires}")
    p.add_argument("--format", choices=format_names(), default="text", help="report format (default: text)")
    p.add_argument("--output", metavar="FILE", help="write the report here instead of stdout")
    p.add_argument(
        "--fail-on", choices=("fail", "warn"), default="fail", help="which outcomes exit 1 (default: fail)"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from governance._io import atomic_write_text
    from governance.policy.engine import check
    from governance.report.check_formats import get_format

    report = check(args.results, args.policy, args.waivers, fail_on=args.fail_on)
    text = get_format(args.format)(report)
    if args.output:
        atomic_write_text(args.output, text)
    else:
        sys.stdout.write(text)
    print(report.summary_line(), file=sys.stderr)
    return 0 if report.passed else 1
