"""``governance check RESULTS.json --policy POLICY``: the CI gate.

The report goes to stdout (or ``--output``), a one-line summary to stderr; exit 0 when the
policy passed, 1 when it was violated, 2 for bad input.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from governance.report.check_formats import format_names

if TYPE_CHECKING:
    from governance.policy.outcome import CheckReport, Outcome


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
    # Evidence (issue 14): integrity of the folder, the verdict as an attestation, regressions.
    p.add_argument(
        "--require-signature",
        metavar="PUB.pem",
        default=None,
        help="the results' folder must be signed with this P-256 public key (else ERROR)",
    )
    p.add_argument(
        "--attestation", metavar="FILE", default=None, help="write the verdict as an in-toto Statement"
    )
    p.add_argument(
        "--sign", metavar="KEY.pem", default=None, help="sign the --attestation with this P-256 key"
    )
    p.add_argument(
        "--baseline",
        metavar="OLD",
        default=None,
        help="results.json or history id to compare with: rules with max_regression fail on a larger worsening",
    )
    p.add_argument("--store", metavar="PATH", default=None, help="history store for a --baseline id")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from governance._io import atomic_write_text
    from governance.policy.engine import check
    from governance.report.check_formats import get_format

    if args.sign and not args.attestation:
        from governance.errors import InputError

        raise InputError("--sign", None, "signs the --attestation; give --attestation FILE as well")
    report = check(args.results, args.policy, args.waivers, fail_on=args.fail_on)
    report = _with_evidence(report, args)
    text = get_format(args.format)(report)
    if args.output:
        atomic_write_text(args.output, text)
    else:
        sys.stdout.write(text)
    if args.attestation:
        from governance.evidence.attestation import write_attestation

        write_attestation(report, args.results, args.attestation, key=args.sign)
    print(report.summary_line(), file=sys.stderr)
    return 0 if report.passed else 1


def _with_evidence(report: CheckReport, args: argparse.Namespace) -> CheckReport:
    """The report with the evidence.integrity outcome and --baseline's regression outcomes added."""
    from dataclasses import replace

    from governance.evidence.integrity import integrity_outcome

    extra: list[Outcome] = []
    integrity = integrity_outcome(args.results, require_signature=args.require_signature)
    if integrity is not None:
        extra.append(integrity)
    if args.baseline:
        from governance.evidence.diff import load_side
        from governance.evidence.regression import regression_outcomes
        from governance.policy.loader import load_policy

        label, old = load_side(args.baseline, store=args.store)
        extra += regression_outcomes(
            load_policy(args.policy), _metrics(args.results), old.get("metrics") or {}, baseline=label
        )
    if not extra:
        return report
    return replace(report, outcomes=(*extra, *report.outcomes))


def _metrics(path: str) -> dict[str, float | None]:
    from governance.results import load_results

    return dict(load_results(path).metrics)
