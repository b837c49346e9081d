"""What a fault sees while it is injected and reverted, and the stack's jobs.

:class:`FaultContext` is handed to ``FaultKind.inject`` and ``revert`` (the same object
for both, one per timeline entry): the running stack, the clean-up ledger, the load
driver, the jobs, the plugin, and ``state`` where a fault keeps what its revert needs.

:class:`Jobs` runs the stack's one-shot jobs (a nightly run, say) as supervised processes
and journals their start, finish, window and the margin left before their deadline.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from faultlab.errors import FaultError
from faultlab.journal import JobEvent, JobResult, JournalWriter
from faultlab.runtime.local import LocalStack, command_argv, interpolate
from faultlab.runtime.supervisor import ServiceSpec, Supervisor

__all__ = ["FaultContext", "Jobs"]


@dataclass
class FaultContext:
    """Everything one fault may touch. ``mark_active()`` journals the moment the fault took
    effect; a fault that does not call it is taken to be active when ``inject`` returns."""

    fault_id: str
    stack: LocalStack
    journal: JournalWriter
    jobs: Jobs
    plugin: Any
    load: Any = None
    base_users: int = 0
    mark_active: Callable[[], None] = lambda: None
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def ledger(self) -> Any:
        """The run's clean-up ledger (None in tests that run without one)."""
        return self.stack.ledger


def _text_json(value: Any) -> Any:
    return value.model_dump(exclude_none=True) if hasattr(value, "model_dump") else value


class Jobs:
    """The stack's jobs: start them, crash them, and journal how they did."""

    def __init__(self, stack: LocalStack, journal: JournalWriter, *, plugin: Any = None):
        self.stack = stack
        self.journal = journal
        self.plugin = plugin
        self._lock = threading.Lock()
        self._started_t: dict[str, float] = {}
        self._runs: dict[str, int] = {}
        self._watchers: list[threading.Thread] = []
        self._crashing: set[str] = set()

    def _supervisor(self) -> Supervisor:
        supervisor = self.stack.supervisor
        if supervisor is None:
            raise FaultError("the stack's jobs cannot run: its processes are not supervised (the stack is not up)")
        return supervisor

    def start(self, name: str) -> None:
        """Start job ``name`` (again, after a crash: the job resumes from its checkpoint)."""
        job = self.stack.stack.jobs[name]
        values = self.stack.values(None)
        if job.window is not None:
            values["window"] = f"{job.window:g}"
        env = {key: interpolate(value, values) for key, value in job.env.items()}
        env.setdefault("PYTHONUNBUFFERED", "1")
        with self._lock:
            run = self._runs.get(name, 0) + 1
            self._runs[name] = run
            self._started_t.setdefault(name, self.journal.t())
        spec = ServiceSpec(
            name=f"job-{name}" if run == 1 else f"job-{name}-{run}",
            command=command_argv(job.command, values),
            env=env,
            cwd=str(self.stack.run_dir),
            restart="no",
        )
        service = self._supervisor().start(spec)
        self.journal.write(JobEvent(t=self.journal.t(), job=name, event="started",
                                    detail={"run": run, "pid": service.pid}))
        watcher = threading.Thread(target=self._watch, args=(name, run, service), name=f"faultlab-job-{name}",
                                   daemon=True)
        watcher.start()
        self._watchers.append(watcher)

    def _watch(self, name: str, run: int, service: Any) -> None:
        code = None
        while code is None:
            code = service.wait_exited(0.5)
            if code is None and service.state in ("stopped",):
                return
        with self._lock:
            crashed_on_purpose = name in self._crashing
            self._crashing.discard(name)
        event = "finished" if code == 0 else "failed"
        self.journal.write(JobEvent(
            t=self.journal.t(), job=name, event=event,
            detail={"run": run, "exit_code": code, "crashed_by_fault": crashed_on_purpose},
        ))
        if code == 0:
            self._journal_margin(name)

    def _journal_margin(self, name: str) -> None:
        job = self.stack.stack.jobs[name]
        started = self._started_t[name]
        finished = self.journal.t()
        deadline = None if job.deadline is None else started + job.deadline
        within = None if job.window is None else finished - started <= job.window
        self.journal.write(JobResult(
            t=finished, job=name, started_t=started, finished_t=finished, window_s=job.window,
            deadline_t=deadline, deadline_name=_text_json(job.deadline_name),
            margin_s=None if deadline is None else deadline - finished,
            ok=within if deadline is None else bool(within is not False and finished <= deadline),
        ))

    def running(self, name: str) -> Any:
        """The newest process of job ``name`` if it runs, else None."""
        run = self._runs.get(name)
        if not run:
            return None
        service = self._supervisor().services.get(f"job-{name}" if run == 1 else f"job-{name}-{run}")
        return service if service is not None and service.state in ("running", "paused", "starting") else None

    def crash(self, name: str, *, sig: int = signal.SIGKILL, at_progress: float | None = None,
              timeout_s: float = 60.0, mark_active: Callable[[], None] = lambda: None) -> None:
        """Kill job ``name`` (once it reached ``at_progress``, when given)."""
        deadline = time.monotonic() + timeout_s
        while True:
            service = self.running(name)
            progress = self.plugin.job_progress(self.stack, name) if at_progress is not None and self.plugin else None
            if service is not None and (at_progress is None or (progress is not None and progress >= at_progress)):
                break
            if time.monotonic() > deadline:
                raise FaultError(
                    f"job {name!r} was not running"
                    + (f" at {at_progress:.0%} progress (last seen: {progress})" if at_progress is not None else "")
                    + f" within {timeout_s:g} s"
                )
            time.sleep(0.05)
        with self._lock:
            self._crashing.add(name)
        service.kill(sig)
        mark_active()

    def wait_all(self, timeout_s: float) -> bool:
        """Wait for the jobs' watchers; True when every job ended."""
        deadline = time.monotonic() + timeout_s
        for watcher in self._watchers:
            watcher.join(max(0.0, deadline - time.monotonic()))
        return all(not w.is_alive() for w in self._watchers)
