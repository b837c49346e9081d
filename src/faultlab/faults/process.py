"""Process faults on a supervised service."""

from __future__ import annotations

import signal
from typing import Any, ClassVar, Literal

from pydantic import Field

from faultlab.faults.base import FaultKind, FaultParams, NoParams
from faultlab.model.types import Duration

__all__ = ["ProcessKill", "ProcessPause", "ProcessRestart", "Signal"]

Signal = Literal["SIGKILL", "SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGABRT", "SIGUSR1", "SIGUSR2"]

_SERVICE = frozenset({"service"})


class ProcessKillParams(FaultParams):
    signal: Signal = Field("SIGKILL", description="signal sent to the service's process")


class ProcessKill(FaultKind):
    """Kill a service's process; its supervisor restarts it according to its restart policy."""

    name: ClassVar[str] = "process_kill"
    summary: ClassVar[str] = "kill a service (the supervisor restarts it per its restart policy)"
    Params = ProcessKillParams
    target_types = _SERVICE
    needs_for = False

    def inject(self, ctx: Any, target: str, params: Any) -> None:
        ctx.stack.supervisor[target].kill(signal.Signals[params.signal])
        ctx.mark_active()

    def revert(self, ctx: Any, target: str, params: Any) -> None:
        """Nothing to undo: the supervisor restarts the service per its policy."""


class ProcessPause(FaultKind):
    """Pause a service with SIGSTOP, and SIGCONT it after ``for``."""

    name: ClassVar[str] = "process_pause"
    summary: ClassVar[str] = "pause a service (SIGSTOP), continue it (SIGCONT) after `for`"
    Params = NoParams
    target_types = _SERVICE

    def inject(self, ctx: Any, target: str, params: Any) -> None:
        ctx.state["paused"] = True
        ctx.stack.supervisor[target].pause()
        ctx.mark_active()

    def revert(self, ctx: Any, target: str, params: Any) -> None:
        if ctx.state.pop("paused", False):
            ctx.stack.supervisor[target].resume()


class ProcessRestartParams(FaultParams):
    signal: Signal = Field("SIGTERM", description="signal that asks the service to stop")
    grace: Duration = Field("10s", description="how long to wait before SIGKILL")


class ProcessRestart(FaultKind):
    """Stop a service and start it again, whatever its restart policy."""

    name: ClassVar[str] = "process_restart"
    summary: ClassVar[str] = "stop a service (signal, then SIGKILL after grace) and start it again"
    Params = ProcessRestartParams
    target_types = _SERVICE
    needs_for = False

    def inject(self, ctx: Any, target: str, params: Any) -> None:
        service = ctx.stack.supervisor[target]
        ctx.mark_active()
        service.restart(grace_s=params.grace)

    def revert(self, ctx: Any, target: str, params: Any) -> None:
        """Nothing to undo: the restart itself brings the service back."""
