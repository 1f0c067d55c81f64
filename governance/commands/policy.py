"""``governance policy validate POLICY``: lint a policy pack without evaluating it."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("policy", help="work with policy packs", description="Work with policy packs.")
    actions = p.add_subparsers(dest="policy_command", metavar="ACTION", required=True)
    v = actions.add_parser("validate", help="lint a policy file (schema, extends, metric IDs)")
    v.add_argument("policy", metavar="POLICY.yaml", help="policy YAML file or built-in pack name")
    v.set_defaults(run=run_validate)
    ls = actions.add_parser("list", help="list the built-in policy packs")
    ls.set_defaults(run=run_list)
    mc = actions.add_parser("metrics", help="list the metric IDs (patterns) a rule may name")
    mc.set_defaults(run=run_metrics)


def run_validate(args: argparse.Namespace) -> int:
    from governance.errors import InputError
    from governance.policy.loader import load_policy
    from governance.policy.schema import ERR_THRESHOLD_SOURCE_MISSING

    policy = load_policy(args.policy)
    for rule in policy.rules:
        if not rule.threshold_source_declared:
            raise InputError(rule.source, f"rules[{rule.id}].threshold_source", ERR_THRESHOLD_SOURCE_MISSING)
    inherited = sum(1 for r in policy.rules if r.source != policy.source)
    parents = f", extends {', '.join(policy.extends)} ({inherited} inherited)" if policy.extends else ""
    missing_refs = [r.id for r in policy.rules if not r.refs]
    print(f"{policy.source}: OK: policy {policy.name} {policy.version}, {len(policy.rules)} rules{parents}")
    for rule_id in missing_refs:
        print(f"{policy.source}: note: rule {rule_id} cites no regulation (refs is empty)", file=sys.stderr)
    return 0


def run_list(args: argparse.Namespace) -> int:
    from governance.policy.loader import builtin_pack_names, load_policy

    for name in builtin_pack_names():
        policy = load_policy(name)
        about = (policy.description or "").split(". ")[0]
        print(f"{name:24} {policy.version:7} {len(policy.rules):3} rules  {about[:90]}")
    return 0


def run_metrics(args: argparse.Namespace) -> int:
    from governance.metrics_catalog import catalog_lines

    print("\n".join(catalog_lines()))
    return 0
