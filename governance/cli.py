"""Argument parsing and exit codes only; every command calls the library.

Exit codes (CONTRACT §2): 0 success / policy passed, 1 policy violated or an audit could not
complete, 2 bad input or usage, printed as one line naming the file and the field.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from typing import NoReturn

from governance import __version__
from governance.errors import InputError

__all__ = ["EXIT_BAD_INPUT", "EXIT_OK", "EXIT_VIOLATION", "main"]

EXIT_OK = 0
EXIT_VIOLATION = 1
EXIT_BAD_INPUT = 2

# Each command lives in governance.commands.<name> with add_parser(subparsers) and run(args) -> int.
# Those modules import only argparse-level things at the top, so `--help` stays fast.
COMMANDS: tuple[str, ...] = ("demo", "train", "audit", "check", "report", "policy")
# Evidence commands (issue 14), kept apart so the merge stays a one-line change.
COMMANDS += ("sign", "verify", "history", "diff")
# Fairness mitigation (issue 16).
COMMANDS += ("mitigate",)


class _OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line on stderr and exit 2, like every other bad input."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="governance",
        description="Responsible-AI audit and governance for PyTorch models.",
        epilog="Exit codes: 0 success/passed, 1 policy violated or audit incomplete, 2 bad input.",
    )
    parser.add_argument("--version", action="version", version=f"governance {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineParser)
    for name in COMMANDS:
        module = importlib.import_module(f"governance.commands.{name}")
        module.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "run", None) is None:
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    try:
        return int(args.run(args))
    except InputError as exc:
        if args.debug:
            raise
        print(f"governance {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        # `governance check ... | head`: the reader left; that is not an error of ours.
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        print(f"governance {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        from governance._output_folder import is_no_space

        if args.debug:
            raise
        if is_no_space(exc):
            # A full disk is not bad input: exit 1. Outputs are staged, so nothing half-written remains.
            filename = getattr(exc, "filename", None)
            where = f" writing {filename}" if filename else ""
            print(
                f"governance {args.command}: error: no space left on device{where}; nothing was written",
                file=sys.stderr,
            )
            return EXIT_VIOLATION
        return _unexpected(args.command, exc)


def _unexpected(command: str, exc: BaseException) -> int:
    print(
        f"governance {command}: error: unexpected {exc.__class__.__name__}: {exc} "
        "(rerun with --debug for the traceback)",
        file=sys.stderr,
    )
    return EXIT_BAD_INPUT
