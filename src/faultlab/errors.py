"""Every way faultlab can fail, and the one place that turns a failure into an exit code.

The tree is split by phase, like ``httpx._exceptions``::

    FaultlabError                 anything faultlab raises on purpose
    ├── InputError                the user's documents or arguments are wrong      -> exit 2
    │                             (carries every Problem found, with file:line:col)
    ├── InfrastructureError       the harness could not do its job                 -> exit 3
    │   ├── ReadinessTimeout      a service never became ready (says what it last saw)
    │   ├── ServiceFailed         a process or server died or would not start
    │   └── FaultError            a fault could not be injected
    ├── Interrupted               Ctrl-C or SIGTERM during work                     -> exit 4
    ├── CleanupError              a fault or resource could not be reverted/removed -> exit 5
    └── EvidenceTampered          a run's journal or pre-registration was changed   -> exit 1
                                  after the run: it is not re-judged

A missed target or a gate regression is a *result*, not an exception: commands return
``ExitCode.TARGET_MISSED`` for it. Foreign exceptions (subprocess, HTTP, psycopg, docker)
are translated at the adapter that called them, with ``raise ... from exc`` and evidence.
"""

from __future__ import annotations

import enum
import traceback
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ExitCode",
    "Problem",
    "FaultlabError",
    "InputError",
    "InfrastructureError",
    "ReadinessTimeout",
    "ServiceFailed",
    "FaultError",
    "Interrupted",
    "CleanupError",
    "EvidenceTampered",
    "exit_code_for",
    "save_traceback",
]


class ExitCode(enum.IntEnum):
    """Process exit codes of the ``faultlab`` command (DESIGN.md)."""

    OK = 0
    TARGET_MISSED = 1
    INVALID_INPUT = 2
    INFRASTRUCTURE = 3
    INTERRUPTED = 4
    CLEANUP_FAILED = 5


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with an input document, located as precisely as the input allows.

    ``line`` and ``column`` are 1-based; 0 means "unknown". ``path`` is the YAML path,
    such as ``timeline[0].for``.
    """

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file or "<input>"
        if self.line:
            where += f":{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class FaultlabError(Exception):
    """Base of every error faultlab raises on purpose."""

    exit_code: ExitCode = ExitCode.INFRASTRUCTURE


class InputError(FaultlabError):
    """The user's input is wrong. Holds every problem found, not only the first."""

    exit_code = ExitCode.INVALID_INPUT

    def __init__(self, problems: list[Problem] | str):
        if isinstance(problems, str):
            problems = [Problem("", 0, 0, "", problems)]
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class InfrastructureError(FaultlabError):
    """The harness could not do its job (a process would not start, a port was taken...).

    ``evidence`` holds what was last observed (a log tail, the last probe sample).
    """

    exit_code = ExitCode.INFRASTRUCTURE

    def __init__(self, message: str, *, evidence: str = ""):
        self.evidence = evidence
        super().__init__(message if not evidence else f"{message}\n--- evidence ---\n{evidence}")


class ReadinessTimeout(InfrastructureError):
    """A wait ran past its deadline; the message says what was last observed."""


class ServiceFailed(InfrastructureError):
    """A supervised process or server died or could not be started."""


class FaultError(InfrastructureError):
    """A fault could not be injected."""


class Interrupted(FaultlabError):
    """The user pressed Ctrl-C (or the harness got SIGTERM)."""

    exit_code = ExitCode.INTERRUPTED


class CleanupError(FaultlabError):
    """Something could not be reverted or removed; the stack may need ``faultlab cleanup``."""

    exit_code = ExitCode.CLEANUP_FAILED


class EvidenceTampered(FaultlabError):
    """A run's evidence was changed after the run wrote it (a break in the journal's hash
    chain, targets other than the pre-registered ones): it is reported, never re-judged.
    Exit 1, as when ``faultlab verify`` finds a changed file."""

    exit_code = ExitCode.TARGET_MISSED


def exit_code_for(exc: BaseException) -> ExitCode:
    """The exit code for an exception that reached the top of a command."""
    if isinstance(exc, FaultlabError):
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return ExitCode.INTERRUPTED
    return ExitCode.INFRASTRUCTURE


def save_traceback(exc: BaseException, path: Path) -> str:
    """Write the full traceback of an unexpected ``exc`` to ``path`` and say where it went.

    The user is told what failed in one line; the traceback is for whoever fixes it.
    """
    try:
        path.write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
    except OSError as write_error:
        return f"its traceback could not be written to {path}: {write_error}"
    return f"traceback in {path}"
