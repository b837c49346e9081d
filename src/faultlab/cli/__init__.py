"""The ``faultlab`` command.

Each command lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``handler`` to a function
``(args) -> ExitCode``. This module is the only place where exceptions become exit codes.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from faultlab import __version__
from faultlab.errors import ExitCode, FaultlabError, InputError, exit_code_for

# Command modules, in the order their commands appear in --help.
COMMAND_MODULES = [
    "faultlab.cli.validate",
    "faultlab.cli.run",
    "faultlab.cli.proxy",
    "faultlab.cli.report",
    "faultlab.cli.gate",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="faultlab",
        description=(
            "Fault-injection and disaster-drill harness: bring a stack up, drive load, inject "
            "faults on a timeline, measure detection, recovery and data loss, write reports."
        ),
        epilog=(
            "exit codes: 0 all targets met, 1 a target missed or a gate regression, "
            "2 invalid input, 3 infrastructure error, 4 interrupted, 5 clean-up failed"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"faultlab {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show full tracebacks instead of short messages"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)  # argparse itself exits with 2 on bad arguments
    if not getattr(args, "handler", None):
        parser.print_help()
        return ExitCode.INVALID_INPUT
    try:
        return int(args.handler(args))
    except KeyboardInterrupt as exc:
        if args.debug:
            raise
        print("faultlab: interrupted", file=sys.stderr)
        return exit_code_for(exc)
    except InputError as exc:
        if args.debug:
            raise
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        count = len(exc.problems)
        print(f"faultlab: {count} problem{'s' if count != 1 else ''} found", file=sys.stderr)
        return exc.exit_code
    except FaultlabError as exc:
        if args.debug:
            raise
        print(f"faultlab: {type(exc).__name__}: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - the one place that maps every failure
        if args.debug:
            raise
        print(
            f"faultlab: internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)",
            file=sys.stderr,
        )
        return exit_code_for(exc)
