"""What a fault sees while it is injected and reverted, and the stack's jobs.

:class:`FaultContext` is handed to ``FaultKind.inject`` and ``revert`` (the same object
for both, one per timeline entry): the running stack (a
:class:`~faultlab.runtime.base.StackHandle`, whichever runtime runs it), the clean-up ledger,
the load driver, the jobs, the plugin, the fault's ``for``, and :meth:`FaultContext.keep`
through which a fault hands its inject result to the engine before its risky steps.

:class:`Jobs` runs the stack's one-shot jobs (a nightly run, say) as processes the runtime
supervises and journals their start, finish, window and the margin left before their deadline.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from faultlab.errors import FaultError
from faultlab.journal import JobEvent, JobResult, JournalWriter
from faultlab.runtime.base import ServiceControl, StackHandle, interpolate
from faultlab.runtime.supervisor import ServiceSpec

if TYPE_CHECKING:
    from faultlab.engine.load import LoadDriver
    from faultlab.plugin import DrillPlugin
    from faultlab.runtime.ledger import Ledger

__all__ = ["FaultContext", "Jobs"]

T = TypeVar("T")


def _nothing() -> None:
    return None


@dataclass
class FaultContext:
    """Everything one fault may touch.

    ``mark_active()`` journals the moment the fault took effect; a fault that does not call
    it is taken to be active when ``inject`` returns. A fault that takes effect through one
    call to the runtime (a freeze, a pause, a kill) wraps it in :meth:`taking_effect`, which
    marks it active as of the call's start. ``for_s`` is the entry's ``for`` (None for an
    instantaneous fault). ``journal`` and ``jobs`` are None outside a drill run (the pytest
    plugin's ``drill`` fixture).
    """

    fault_id: str
    stack: StackHandle
    plugin: DrillPlugin
    journal: JournalWriter | None = None
    jobs: Jobs | None = None
    load: LoadDriver | None = None
    base_users: int = 0
    for_s: float | None = None
    mark_active: Callable[[], None] = _nothing
    kept: object = None
    effect_started: float | None = None

    @property
    def ledger(self) -> Ledger | None:
        """The run's clean-up ledger (None when the stack runs without one)."""
        return self.stack.ledger

    def keep(self, injected: T) -> T:
        """Hand the inject result to the engine now, before the steps that may fail; returns
        it, so a fault records its progress in it as it goes and returns it at the end. When
        ``inject`` raises, the engine reverts with what was kept."""
        self.kept = injected
        return injected

    @contextlib.contextmanager
    def taking_effect(self) -> Iterator[None]:
        """Around the one call to the runtime that makes the fault take effect: once it
        returns, the fault is active as of the moment the call began (``effect_started``,
        on the journal's clock). The effect begins somewhere during the call, which takes
        tens of milliseconds through a container engine, so the times measured from it are
        never too short, and requests sent during the call do not count as before the fault.
        A call that raises marks nothing."""
        started = self.journal.t() if self.journal is not None else None
        yield
        self.effect_started = started
        self.mark_active()

    def require_jobs(self) -> Jobs:
        """The run's jobs, or FaultError outside a drill run."""
        if self.jobs is None:
            raise FaultError("job faults need a drill run: there are no jobs outside one")
        return self.jobs


def _text_json(value: Any) -> Any:
    return value.model_dump(exclude_none=True) if hasattr(value, "model_dump") else value


class Jobs:
    """The stack's jobs: start them, crash them, and journal how they did."""

    def __init__(self, stack: StackHandle, journal: JournalWriter, *, plugin: DrillPlugin | None = None):
        self.stack = stack
        self.journal = journal
        self.plugin = plugin
        self._lock = threading.Lock()
        self._started_t: dict[str, float] = {}
        self._runs: dict[str, int] = {}
        self._current: dict[str, ServiceControl] = {}
        self._watchers: list[threading.Thread] = []
        self._crashing: set[str] = set()
        self._halting: set[str] = set()
        self._state: dict[str, str] = {}

    def start(self, name: str) -> None:
        """Start job ``name`` (again, after a crash: the job resumes from its checkpoint)."""
        job = self.stack.stack.jobs[name]
        values = self.stack.interpolation_values(None)
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
            command=[interpolate(arg, values) for arg in job.command],
            env=env,
            cwd=str(self.stack.run_dir),
            restart="no",
        )
        process = self.stack.start_process(spec)
        with self._lock:
            self._current[name] = process
            self._state[name] = "running"
        timing = {"window_s": job.window, "deadline_s": job.deadline,
                  "deadline_name": _text_json(job.deadline_name)} if run == 1 else {}
        self.journal.write(JobEvent(t=self.journal.t(), job=name, event="started",
                                    detail={"run": run, "pid": process.pid, **timing}))
        watcher = threading.Thread(target=self._watch, args=(name, run, process), name=f"faultlab-job-{name}",
                                   daemon=True)
        watcher.start()
        self._watchers.append(watcher)

    def _watch(self, name: str, run: int, process: ServiceControl) -> None:
        code = None
        while code is None:
            code = process.wait_exited(0.5)
            if code is None and process.state == "stopped":
                return
        with self._lock:
            crashed_on_purpose = name in self._crashing
            self._crashing.discard(name)
            halted = name in self._halting
            self._halting.discard(name)
        event = "halted" if halted else "finished" if code == 0 else "failed"
        with self._lock:
            self._state[name] = event
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

    def state(self, name: str) -> str:
        """``not_started``, ``running``, ``finished``, ``failed`` or ``halted`` (its newest run)."""
        with self._lock:
            return self._state.get(name, "not_started")

    def started_t(self, name: str) -> float | None:
        """When job ``name`` first started on the run clock, or None."""
        with self._lock:
            return self._started_t.get(name)

    def halt(self, name: str, *, grace_s: float = 30.0) -> dict[str, object]:
        """Ask job ``name`` to stop at its next checkpoint (SIGTERM; SIGKILL after ``grace_s``)
        and wait for it; journalled as ``halted``, not as a failure."""
        process = self.running(name)
        if process is None:
            return {"job": name, "running": False, "state": self.state(name)}
        with self._lock:
            self._halting.add(name)
        asked = time.monotonic()
        process.kill(signal.SIGTERM)
        code = process.wait_exited(grace_s)
        if code is None:
            process.kill(signal.SIGKILL)
            code = process.wait_exited(10.0)
        return {"job": name, "running": True, "exit_code": code, "stopped_in_s": round(time.monotonic() - asked, 3)}

    def running(self, name: str) -> ServiceControl | None:
        """The newest process of job ``name`` if it runs, else None."""
        with self._lock:
            process = self._current.get(name)
        return process if process is not None and process.state in ("running", "paused", "starting") else None

    def crash(self, name: str, *, sig: int = signal.SIGKILL, at_progress: float | None = None,
              timeout_s: float = 60.0, mark_active: Callable[[], None] = _nothing) -> None:
        """Kill job ``name`` (once it reached ``at_progress``, when given)."""
        deadline = time.monotonic() + timeout_s
        while True:
            process = self.running(name)
            progress = None
            if at_progress is not None and self.plugin is not None:
                progress = self.plugin.job_progress(self.stack, name)
            if process is not None and (at_progress is None or (progress is not None and progress >= at_progress)):
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
        process.kill(sig)
        mark_active()

    def wait_all(self, timeout_s: float) -> bool:
        """Wait for the jobs' watchers; True when every job ended."""
        deadline = time.monotonic() + timeout_s
        for watcher in self._watchers:
            watcher.join(max(0.0, deadline - time.monotonic()))
        return all(not w.is_alive() for w in self._watchers)
