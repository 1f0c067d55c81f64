"""``governance report RESULTS.json [--policy P] [--waivers W] --format F --output FILE``.

Renders a report from saved results. With ``--policy`` the verdict is shown in the report; the
exit code stays 0 whether the policy passed or not (``governance check`` is the CI gate).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["FORMATS", "add_parser", "run"]

# Literal here (not read from the registry) so that `governance --help` imports nothing; a test
# checks that this tuple and the registry agree.
FORMATS: tuple[str, ...] = ("html", "markdown", "json", "pdf", "cyclonedx")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "report",
        help="render an HTML, Markdown, JSON or PDF report from a saved results.json",
        description=(
            "Render a report for reviewers from saved results. With --policy the policy verdict and "
            "outcomes are shown in the report; the exit code is 0 either way (use `governance check` to gate)."
        ),
    )
    p.add_argument("results", type=Path, metavar="RESULTS.json", help="results written by `governance audit`")
    p.add_argument("--policy", metavar="POLICY.yaml", help="policy pack (file or shipped name) to evaluate")
    p.add_argument("--waivers", type=Path, metavar="FILE", help="waivers for the policy (needs --policy)")
    p.add_argument("--format", required=True, choices=FORMATS, dest="fmt", help="output format")
    p.add_argument("--output", "-o", required=True, type=Path, metavar="FILE", help="file to write")
    p.add_argument(
        "--template-dir", type=Path, metavar="DIR", help="folder with templates overriding the shipped ones"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from governance._io import atomic_write_bytes
    from governance.errors import InputError
    from governance.report.render import render
    from governance.results import load_results

    results = load_results(args.results)
    if args.waivers is not None and args.policy is None:
        raise InputError("--waivers", None, "waivers apply to a policy; give --policy as well")
    check_report = None
    if args.policy is not None:
        from governance.policy.engine import check

        # The engine is given the loaded Results (not the path) so the file is read once; the
        # report still names the file the verdict was computed from.
        check_report = replace(check(results, args.policy, args.waivers), results_source=str(args.results))
    if args.output.is_dir():
        raise InputError(args.output, None, "is a folder; expected --output to name the report file to write")
    data = render(results, args.fmt, check_report=check_report, template_dir=args.template_dir)
    atomic_write_bytes(args.output, data)
    verdict = ""
    if check_report is not None:
        verdict = f"; {check_report.summary_line()}"
    print(f"wrote {args.output} ({args.fmt}, {len(data):,} bytes){verdict}", file=sys.stderr)
    return 0
