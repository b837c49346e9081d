"""Process faults on a running service, through the runtime's
:class:`~faultlab.runtime.base.ServiceControl` (a process group locally, a container on docker)."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from faultlab.faults.base import FaultKind, FaultParams, NoParams
from faultlab.model.types import Duration, as_written

if TYPE_CHECKING:
    from faultlab.engine.context import FaultContext

__all__ = ["ProcessKill", "ProcessPause", "ProcessRestart", "Paused", "Signal"]

Signal = Literal["SIGKILL", "SIGTERM", "SIGINT", "SIGQUIT", "SIGHUP", "SIGABRT", "SIGUSR1", "SIGUSR2"]

_SERVICE = frozenset({"service"})
_CONTROL = frozenset({"service_control"})


class ProcessKillParams(FaultParams):
    signal: Signal = Field("SIGKILL", description="signal sent to the service's process")


class ProcessKill(FaultKind[ProcessKillParams, None]):
    """Kill a service's process; its supervisor restarts it according to its restart policy."""

    name: ClassVar[str] = "process_kill"
    summary: ClassVar[str] = "kill a service (the supervisor restarts it per its restart policy)"
    Params = ProcessKillParams
    target_types = _SERVICE
    needs_for = False
    requires = _CONTROL

    def inject(self, ctx: FaultContext, target: str, params: ProcessKillParams) -> None:
        service = ctx.stack.service(target)
        with ctx.taking_effect():
            service.kill(signal.Signals[params.signal])

    def revert(self, ctx: FaultContext, target: str, params: ProcessKillParams, injected: None) -> None:
        """Nothing to undo: the supervisor restarts the service per its policy."""


@dataclass
class Paused:
    """A paused service, until ``paused`` is False again."""

    service: str
    paused: bool = True


class ProcessPause(FaultKind[NoParams, Paused]):
    """Pause a service with SIGSTOP, and SIGCONT it after ``for``."""

    name: ClassVar[str] = "process_pause"
    summary: ClassVar[str] = "pause a service (SIGSTOP), continue it (SIGCONT) after `for`"
    Params = NoParams
    target_types = _SERVICE
    requires = _CONTROL

    def inject(self, ctx: FaultContext, target: str, params: NoParams) -> Paused:
        service = ctx.stack.service(target)
        paused = ctx.keep(Paused(target))  # before the call: a pause may stop the group and then fail
        with ctx.taking_effect():
            service.pause()
        return paused

    def revert(self, ctx: FaultContext, target: str, params: NoParams, injected: Paused | None) -> None:
        if injected is not None and injected.paused:
            ctx.stack.service(injected.service).resume()
            injected.paused = False


class ProcessRestartParams(FaultParams):
    signal: Signal = Field("SIGTERM", description="signal that asks the service to stop")
    grace: Duration = Field(default=as_written("10s"), description="how long to wait before SIGKILL")


class ProcessRestart(FaultKind[ProcessRestartParams, None]):
    """Stop a service and start it again, whatever its restart policy."""

    name: ClassVar[str] = "process_restart"
    summary: ClassVar[str] = "stop a service (signal, then SIGKILL after grace) and start it again"
    Params = ProcessRestartParams
    target_types = _SERVICE
    needs_for = False
    requires = _CONTROL

    def inject(self, ctx: FaultContext, target: str, params: ProcessRestartParams) -> None:
        service = ctx.stack.service(target)
        ctx.mark_active()
        service.restart(grace_s=params.grace, sig=signal.Signals[params.signal])

    def revert(self, ctx: FaultContext, target: str, params: ProcessRestartParams, injected: None) -> None:
        """Nothing to undo: the restart itself brings the service back."""
