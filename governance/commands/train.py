"""``governance train SPEC.yaml --out DIR``: data-quality gate, then (DP) training.

Writes ``DIR/model.safetensors``, ``config.json``, ``preprocessing.json`` and ``training.json``
(the privacy ledger). Exit 0 on success, 2 for bad input (including a blocking data-quality
finding without ``--force``).
"""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="data-quality gate, then (differentially private) training",
        description="Check the data, train the spec's model (with DP when the spec has train.privacy) and "
        "write weights (safetensors), config, preprocessing and training.json to --out. "
        "Exit 0: trained; 2: bad input or a blocking data-quality finding.",
    )
    p.add_argument("spec", metavar="SPEC.yaml", help="audit spec with data, model and train sections")
    p.add_argument("--out", required=True, metavar="DIR", help="model folder to write")
    p.add_argument(
        "--force", action="store_true", help="train despite blocking data-quality findings (recorded)"
    )
    p.add_argument(
        "--resume", action="store_true", help="continue an interrupted run from its last checkpoint"
    )
    p.add_argument(
        "--device",
        default="auto",
        metavar="DEVICE",
        help="auto (CUDA when present, default), cpu or cuda[:N]",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--trust-code",
        action="store_true",
        help="allow the spec's model.factory (Python code) to run; never needed for built-in architectures",
    )
    p.add_argument(
        "--processes",
        type=int,
        default=None,
        metavar="N",
        help="train in N local processes (torch.distributed: gloo on CPU, NCCL on GPUs); the same "
        "privacy ledger as one process. Under torchrun, leave it out (WORLD_SIZE decides)",
    )
    p.set_defaults(run=run, command_parser=p)  # the ranks of --processes get the same arguments


def run(args: argparse.Namespace) -> int:
    from governance.audit.suite import check_audits
    from governance.spec import load_spec
    from governance.train.api import train

    spec = load_spec(args.spec)
    check_audits(spec)  # an unknown audit or a bad option is bad input before training, too
    # -- processes (issue 17): --processes N starts N ranks of this command; torchrun starts them
    # itself; either way each rank joins the process group from the environment below.
    from governance.train import distributed

    if distributed.needs_launch(args.processes):
        from governance.train.api import require_trust

        require_trust(spec, args.trust_code)
        return distributed.launch_command(spec, args, "train")
    distributed.check_torchrun_agrees(args.processes)
    with distributed.joined(distributed.resolved(args.device)) as world:
        outcome = train(
            spec,
            args.out,
            force=args.force,
            resume=args.resume,
            device=args.device,
            progress=not args.no_progress,
            trust_code=args.trust_code,
            world=world,
        )
    if world is None or world.is_main:
        print(summary_line(outcome.ledger, outcome.model_dir), file=sys.stderr)
    return 0


def summary_line(ledger: dict, model_dir: object) -> str:
    """One line for stderr: epochs, accuracy, ε, where the model went."""
    parts = [
        f"trained {ledger.get('epochs')} epoch(s), {ledger.get('steps')} steps in {ledger.get('seconds', 0):.1f}s"
    ]
    if (ledger.get("world_size") or 1) > 1:
        parts[0] += f" on {ledger['world_size']} processes"
    if ledger.get("eval_accuracy") is not None:
        parts.append(f"eval accuracy {ledger['eval_accuracy']:.3f}")
    privacy = ledger.get("privacy")
    if privacy:
        parts.append(
            f"ε = {privacy['epsilon']:.3f} (target {privacy['target_epsilon']}, δ = {privacy['delta']:g}, "
            f"{privacy['grad_sample_mode']} clipping)"
        )
        if privacy.get("module_fixes"):
            parts.append(f"Opacus fixed the model: {'; '.join(privacy['module_fixes'])}")
    if ledger.get("forced"):
        parts.append("--force: blocking data-quality findings were overridden")
    return "; ".join(parts) + f" -> {model_dir}"
