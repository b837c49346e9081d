"""The ``faultlab`` command.

Each command lives in its own module of this package and exposes
``register(subparsers)``, which adds its parser and sets ``handler`` to a function
``(args) -> ExitCode``. This module is the only place where exceptions become exit codes.

Every failure is one line on standard error. An unexpected exception (a bug) says what
failed and where its traceback was written; ``--debug`` shows the traceback instead. A
reader that leaves early (``faultlab kinds | head -1``) ends the command quietly, with
exit code 4 (interrupted): the command did not get to finish its work.
"""

from __future__ import annotations

import argparse
import importlib
import os
import select
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from faultlab import __version__
from faultlab.errors import ExitCode, FaultlabError, InputError, exit_code_for, save_traceback

# Command modules, in the order their commands appear in --help.
COMMAND_MODULES = [
    "faultlab.cli.init",
    "faultlab.cli.validate",
    "faultlab.cli.run",
    "faultlab.cli.proxy",
    "faultlab.cli.report",
    "faultlab.cli.gate",
    "faultlab.cli.keys",
    "faultlab.cli.evidence",
    "faultlab.cli.approve",
    "faultlab.cli.programme",
    "faultlab.cli.images",
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
    try:
        code = _main(argv)
        sys.stdout.flush()  # a reader that left shows up here, while it can still be handled
    except BrokenPipeError:
        if not _silence_closed_outputs():
            raise
        return ExitCode.INTERRUPTED
    return code


def _main(argv: Sequence[str] | None) -> int:
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
        if args.debug or (isinstance(exc, BrokenPipeError) and _closed_outputs()):
            raise
        print(f"faultlab: internal error in `faultlab {args.command}`: {type(exc).__name__}: {exc} "
              f"({_save_traceback(exc)}; --debug shows it here)", file=sys.stderr)
        return exit_code_for(exc)


def _save_traceback(exc: BaseException) -> str:
    try:
        handle, name = tempfile.mkstemp(prefix="faultlab-error-", suffix=".txt")
    except OSError as exc_tmp:
        return f"its traceback could not be written: {exc_tmp}"
    os.close(handle)
    return save_traceback(exc, Path(name))


def _closed_outputs() -> list[int]:
    """Standard output and error descriptors that are pipes whose reader has gone."""
    closed = []
    for stream in (sys.stdout, sys.stderr):
        try:
            fd = stream.fileno()
            poller = select.poll()
        except (AttributeError, OSError, ValueError):
            continue
        poller.register(fd, select.POLLOUT)
        if any(events & select.POLLERR for _, events in poller.poll(0)):
            closed.append(fd)
    return closed


def _silence_closed_outputs() -> bool:
    """Point every closed output at /dev/null (Python's recipe for SIGPIPE), so that the
    flush at exit does not fail again; False when the broken pipe was not an output's."""
    closed = _closed_outputs()
    if closed:
        devnull = os.open(os.devnull, os.O_WRONLY)
        for fd in closed:
            os.dup2(devnull, fd)
        os.close(devnull)
    return bool(closed)
