"""``governance demo [--out DIR]``: the embedded default a newcomer runs first.

Trains the German Credit reference model with differential privacy, runs every audit, checks the
EU AI Act high-risk pack and writes results plus every report format. The verdict is shown, not
turned into an exit code: the demo exits 0 when it ran and 2 when it could not.
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["DEMO_POLICY", "DEMO_SPEC", "add_parser", "run"]

#: The reference spec shipped inside the package (audits/ reaches the wheel as governance/_data/audits).
DEMO_SPEC = "german-credit.yaml"
DEMO_POLICY = "eu-ai-act-high-risk"
DEMO_FORMATS = ("html", "markdown", "json", "pdf")


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="train the reference model with DP, run every audit, check the EU AI Act pack, write reports",
        description="The embedded default: German Credit, an MLP trained with differential privacy, every "
        "audit, the eu-ai-act-high-risk policy pack, and results + HTML/Markdown/JSON/PDF/JUnit reports. "
        "Exit 0 when it ran (whatever the verdict), 2 when it could not.",
    )
    p.add_argument("--out", default="out/demo", metavar="DIR", help="output folder (default: out/demo)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:N] (default auto)")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bars")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import time
    from importlib import resources
    from pathlib import Path

    from governance.pipeline import run_audit
    from governance.report.check_formats import get_format
    from governance.spec import load_spec

    started = time.perf_counter()
    out = Path(args.out)
    spec_ref = resources.files("governance") / "_data" / "audits" / DEMO_SPEC
    with resources.as_file(spec_ref) as spec_path:
        spec = load_spec(spec_path)
        outcome = run_audit(
            spec,
            out,
            policy=DEMO_POLICY,
            device=args.device,
            progress=args.progress,
            report_formats=DEMO_FORMATS,
            # Written inside the run's folder, so the manifest covers it and it appears with the rest.
            extra_outputs=lambda verdict: (
                {} if verdict is None else {"junit.xml": get_format("junit")(verdict)}
            ),
        )
    paths = dict(outcome.paths)
    report = outcome.check_report
    assert report is not None  # a policy was given

    results = outcome.results
    privacy = results.metrics.get("privacy.epsilon")
    lines = [
        f"governance demo: {spec.name} audited in {time.perf_counter() - started:.1f} s",
        f"  model       {results.metrics.get('performance.accuracy', float('nan')):.3f} accuracy"
        + (f", trained with DP at ε = {privacy:.2f}" if privacy is not None else ""),
        f"  policy      {report.summary_line()}",
    ]
    for outcome_ in report.red:
        lines.append(
            f"    {outcome_.status.value:6} {outcome_.rule_id}: {outcome_.metric} {outcome_.message}"
        )
    for name in outcome.errored:
        lines.append(f"  audit {name} could not complete: {results.sections[name].error}")
    lines.append("  wrote")
    for key in ("results", "html", "markdown", "pdf", "json", "junit", "manifest", "model"):
        if key in paths:
            lines.append(f"    {key:10} {paths[key]}")
    print("\n".join(lines))
    return 0
