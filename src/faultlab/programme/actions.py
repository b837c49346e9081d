"""Actions: what a runbook step or a decision has faultlab do, looked up by name.

An action is a class registered under its YAML name in the ``faultlab.actions`` entry-point
group, exactly as a fault kind is; a system's plugin package registers its own the same way
(a system registers, say, halting and resuming its intake, or halting its nightly job)::

    [project.entry-points."faultlab.actions"]
    restart_service = "faultlab.programme.actions:RestartService"

Class attributes the loader reads: ``name``, ``summary``, ``Params`` (a strict model of the
step's ``with:``) and ``targets`` (which parameters name a service, a built-in PostgreSQL
service or a job of the stack, so a wrong name is refused before anything starts).
:meth:`Action.perform` does it through the running stack's
:class:`~faultlab.runtime.base.StackHandle` and returns what was done (journalled); it raises
:class:`~faultlab.errors.FaultError` (or anything) when it could not.
"""

from __future__ import annotations

import abc
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from faultlab.errors import FaultError
from faultlab.model.types import Duration, Name, StrictModel, UrlPath, as_written

if TYPE_CHECKING:
    from faultlab.engine.context import Jobs
    from faultlab.journal import JournalWriter
    from faultlab.plugin import DrillPlugin
    from faultlab.runtime.base import StackHandle

__all__ = [
    "Action",
    "ActionContext",
    "ActionParams",
    "NoActionParams",
    "RestartService",
    "StopService",
    "StartDatabase",
    "StopDatabase",
    "HttpCall",
    "RunCommand",
    "StopJob",
]


class ActionParams(StrictModel):
    """Base of an action's parameters (a step's ``with:``)."""


class NoActionParams(ActionParams):
    """The action takes no parameters."""


@dataclass
class ActionContext:
    """What an action may touch: the running stack, its plugin, its jobs, and who asked.

    ``by`` is the participant who started it (``faultlab`` when automatic); ``purpose`` is
    the step or decision it serves (``step reconcile``, ``decision halt-intake``).
    """

    stack: StackHandle
    plugin: DrillPlugin | None = None
    journal: JournalWriter | None = None
    jobs: Jobs | None = None
    by: str = "faultlab"
    purpose: str = ""

    def require_jobs(self) -> Jobs:
        """The run's jobs, or FaultError outside a drill run."""
        if self.jobs is None:
            raise FaultError("this action needs a drill run's jobs")
        return self.jobs


class Action(abc.ABC):
    """An action such as ``restart_service``; see the module docstring."""

    name: ClassVar[str]
    summary: ClassVar[str]
    Params: ClassVar[type[ActionParams]] = NoActionParams
    targets: ClassVar[Mapping[str, frozenset[str]]] = {}

    @abc.abstractmethod
    def perform(self, ctx: ActionContext, params: Any) -> Mapping[str, Any] | None:
        """Do it; return what was done (small, JSON-ready), or None."""

    @classmethod
    def validate_params(cls, params: Mapping[str, Any]) -> ActionParams:
        """The parameters as a validated ``Params`` model (raises pydantic's ValidationError)."""
        return cls.Params.model_validate(dict(params))


_SERVICE = frozenset({"service"})
_POSTGRES = frozenset({"postgres"})


class ServiceParams(ActionParams):
    service: Name = Field(description="a service of the stack")
    grace: Duration = Field(default=as_written("10s"), description="how long to wait before SIGKILL")


class RestartService(Action):
    """Stop a service (SIGTERM, SIGKILL after ``grace``) and start it again."""

    name: ClassVar[str] = "restart_service"
    summary: ClassVar[str] = "restart a service of the stack"
    Params = ServiceParams
    targets = {"service": _SERVICE}

    def perform(self, ctx: ActionContext, params: ServiceParams) -> Mapping[str, Any]:
        ctx.stack.service(params.service).restart(grace_s=params.grace)
        return {"service": params.service}


class StopService(Action):
    """Stop a service; its restart policy does not bring it back."""

    name: ClassVar[str] = "stop_service"
    summary: ClassVar[str] = "stop a service of the stack (no restart follows)"
    Params = ServiceParams
    targets = {"service": _SERVICE}

    def perform(self, ctx: ActionContext, params: ServiceParams) -> Mapping[str, Any]:
        pid = ctx.stack.service(params.service).stop(grace_s=params.grace)
        return {"service": params.service, "pid": pid}


class DatabaseParams(ActionParams):
    service: Name = Field(description="a built-in PostgreSQL service of the stack")


class StartDatabase(Action):
    """Start a built-in PostgreSQL server that is down (after a crash, crash recovery runs)."""

    name: ClassVar[str] = "start_database"
    summary: ClassVar[str] = "start a built-in PostgreSQL server that is down"
    Params = DatabaseParams
    targets = {"service": _POSTGRES}

    def perform(self, ctx: ActionContext, params: DatabaseParams) -> Mapping[str, Any]:
        database = ctx.stack.database(params.service)
        if database.is_running():
            return {"service": params.service, "was_running": True}
        database.start()
        return {"service": params.service, "was_running": False}


class StopDatabaseParams(DatabaseParams):
    mode: Literal["fast", "immediate"] = Field("fast", description="fast: clean; immediate: crash-like")


class StopDatabase(Action):
    """Shut a built-in PostgreSQL server down."""

    name: ClassVar[str] = "stop_database"
    summary: ClassVar[str] = "shut a built-in PostgreSQL server down"
    Params = StopDatabaseParams
    targets = {"service": _POSTGRES}

    def perform(self, ctx: ActionContext, params: StopDatabaseParams) -> Mapping[str, Any]:
        ctx.stack.database(params.service).stop(params.mode)
        return {"service": params.service, "mode": params.mode}


class HttpParams(ActionParams):
    service: Name = Field(description="the service called (on 127.0.0.1, never another host)")
    path: UrlPath = Field(description="the URL path, like /admin/cache")
    method: Literal["GET", "POST", "PUT", "DELETE", "PATCH"] = "POST"
    json_: dict[str, Any] | None = Field(None, alias="json", description="a JSON body")
    timeout: Duration = Field(default=as_written("5s"))
    expect: list[int] = Field(default_factory=lambda: list(range(200, 300)), min_length=1,
                              description="status codes that count as done (2xx by default)")


class HttpCall(Action):
    """An HTTP call to a service of the stack; another status than ``expect`` fails the step."""

    name: ClassVar[str] = "http"
    summary: ClassVar[str] = "an HTTP call to a service of the stack"
    Params = HttpParams
    targets = {"service": _SERVICE}

    def perform(self, ctx: ActionContext, params: HttpParams) -> Mapping[str, Any]:
        import httpx

        url = ctx.stack.url(params.service, params.path)
        try:
            response = httpx.request(params.method, url, json=params.json_, timeout=params.timeout)
        except httpx.HTTPError as exc:
            raise FaultError(f"{params.method} {url} failed: {type(exc).__name__}: {exc}") from exc
        if response.status_code not in params.expect:
            raise FaultError(f"{params.method} {url} answered {response.status_code}",
                             evidence=response.text[:500])
        return {"url": url, "status": response.status_code}


class CommandParams(ActionParams):
    argv: list[str] = Field(min_length=1, description="the command and its arguments (no shell)")
    timeout: Duration = Field(default=as_written("30s"))


class RunCommand(Action):
    """A command run in the run directory; a non-zero exit fails the step."""

    name: ClassVar[str] = "command"
    summary: ClassVar[str] = "run a command (no shell) in the run directory"
    Params = CommandParams

    def perform(self, ctx: ActionContext, params: CommandParams) -> Mapping[str, Any]:
        try:
            done = subprocess.run(params.argv, cwd=ctx.stack.run_dir, capture_output=True, text=True,
                                  timeout=params.timeout, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise FaultError(f"{params.argv[0]} could not run: {exc}") from exc
        if done.returncode != 0:
            raise FaultError(f"{params.argv[0]} exited with {done.returncode}",
                             evidence=(done.stdout + done.stderr)[-1000:])
        return {"argv": params.argv, "exit_code": 0, "output": done.stdout[-300:]}


class JobParams(ActionParams):
    job: Name = Field(description="a job of the stack")
    grace: Duration = Field(default=as_written("30s"), description="how long it may take to stop at a checkpoint")


class StopJob(Action):
    """Ask a running job to stop (SIGTERM: at its next checkpoint), SIGKILL after ``grace``."""

    name: ClassVar[str] = "stop_job"
    summary: ClassVar[str] = "stop a running job of the stack at its next checkpoint"
    Params = JobParams
    targets = {"job": frozenset({"job"})}

    def perform(self, ctx: ActionContext, params: JobParams) -> Mapping[str, Any]:
        return dict(ctx.require_jobs().halt(params.job, grace_s=params.grace))
