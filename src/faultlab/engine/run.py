"""One drill run: stack up, load, faults on the timeline, probes, integrity, teardown.

:func:`run_scenario` is the engine's main job. Its order of work, every step journalled:

1. open the journal (header first) and the clean-up ledger, before anything starts;
2. bring the stack up with the local runtime and journal the tool versions (``tools``);
3. start the monitor probe, the canary and the load generator: ``t_load`` is the origin
   of the scenario's timeline;
4. run the timeline on one monotonic clock: each fault journalled (``planned`` with its
   revert plan, ``injected``, ``active``) before and as it takes effect, and reverted at
   ``at + for``; abort conditions checked while waiting;
5. stop the load and probes, let the system settle, ask the plugin for the acknowledged
   requests' completion delays (``completions.jsonl``), run the plugin's integrity check;
6. whatever happened (exception, abort, Ctrl-C): revert every fault again (reverts are
   idempotent), tear the stack down, write the ``end`` record with the run's status.

A missed target is not an exception: the caller analyses the journal and decides.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import socket
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from faultlab import __version__
from faultlab.engine import integrity
from faultlab.engine.clock import MonotonicClock
from faultlab.engine.context import FaultContext, Jobs
from faultlab.engine.scheduler import Scheduler, TimelineItem
from faultlab.errors import FaultlabError, InfrastructureError, Interrupted, save_traceback
from faultlab.journal import (
    REQUESTS_FILE,
    Cleanup,
    CompletionSample,
    Decision,
    JournalWriter,
    RunHeader,
    Tools,
)
from faultlab.model.scenario import FaultStep, JobStep, Scenario
from faultlab.stats import percentile

__all__ = ["RunResult", "RollingHealth", "run_scenario", "new_run_id", "sigterm_as_interrupt", "PROBE_INTERVAL_S"]

log = logging.getLogger(__name__)

PROBE_INTERVAL_S = 0.1
"""The monitor polls at 10 Hz: detection times have this resolution."""

HARNESS_ERROR_FILE = "harness-error.txt"
"""Where in the run directory an unexpected error's traceback is written."""


@dataclass(frozen=True)
class RunResult:
    """Where a run was written and how it ended (``completed``, ``aborted``, ``interrupted``,
    ``failed``); ``error`` is the exception that ended it, if any."""

    run_dir: Path
    run_id: str
    status: str
    reason: str
    error: BaseException | None = None


def new_run_id(scenario_id: str) -> str:
    """``FT-01-20261125T101500-1a2b``: scenario, UTC start, and a short random tail."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    return f"{scenario_id}-{stamp}-{uuid.uuid4().hex[:4]}"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def notify(observers: Sequence[Callable[..., None]], **event: Any) -> None:
    """Call each observer with the event's keyword arguments; an observer's exception is
    logged, not fatal."""
    for observer in observers:
        try:
            observer(**event)
        except Exception:
            log.exception("observer %r failed on %s", observer, event.get("event"))


class _Hub:
    """The run's observers, called as ``hub(event=..., ...)`` (see :func:`notify`)."""

    def __init__(self, observers: Sequence[Callable[..., None]]):
        self.observers = list(observers)

    def __call__(self, **event: Any) -> None:
        notify(self.observers, **event)


class RollingHealth:
    """The canary's recent samples: success rate and p99 over any recent span (for the abort
    rule and the live display)."""

    def __init__(self, horizon_s: float = 60.0):
        self._samples: deque[tuple[float, bool, float]] = deque()
        self._lock = threading.Lock()
        self.horizon_s = horizon_s

    def add(self, sample: Any) -> None:
        with self._lock:
            self._samples.append((sample.t_send, bool(sample.ok), float(sample.latency_s)))
            while self._samples and self._samples[0][0] < sample.t_send - self.horizon_s:
                self._samples.popleft()

    def newest(self) -> float | None:
        """Send time of the newest sample, or None before the first."""
        with self._lock:
            return self._samples[-1][0] if self._samples else None

    def since(self, t_from: float) -> tuple[int, float | None, float | None]:
        """Count, success rate and p99 latency of the samples sent at or after ``t_from``."""
        with self._lock:
            rows = [s for s in self._samples if s[0] >= t_from]
        if not rows:
            return 0, None, None
        p99 = percentile(sorted(s[2] for s in rows), 0.99)
        return len(rows), sum(1 for s in rows if s[1]) / len(rows), p99


def _abort_rule(scenario: Scenario, health: RollingHealth, now: Callable[[], float], t_load: float) -> Callable[[], str]:
    rules = scenario.abort_when
    state: dict[str, float | None] = {"bad_since": None}

    def check() -> str:
        if rules is None:
            return ""
        t = now()
        reasons = []
        _, rate, p99 = health.since(t - 1.0)
        if rules.success_rate is not None and rate is not None and rate < rules.success_rate.below:
            reasons.append((rules.success_rate.for_, f"success rate {rate:.0%} below {rules.success_rate.below:.0%}"))
        if rules.p99_latency is not None and p99 is not None and p99 > rules.p99_latency.above:
            reasons.append((rules.p99_latency.for_, f"p99 latency {p99 * 1000:.0f} ms above "
                                                     f"{rules.p99_latency.above * 1000:.0f} ms"))
        if not reasons or t < t_load + 1.0:
            state["bad_since"] = None
            return ""
        if state["bad_since"] is None:
            state["bad_since"] = t
        lasting = t - state["bad_since"]
        for needed, why in reasons:
            if lasting >= needed:
                return f"abort_when: {why} for {lasting:.1f} s"
        return ""

    return check


@contextmanager
def _labelled(run_id: str) -> Iterator[None]:
    """Put the run label in this process's environment while the run lasts, so every
    process it starts (PostgreSQL and its backends included) inherits it and
    ``faultlab cleanup`` finds them after a ``kill -9``."""
    from faultlab.runtime.ledger import RUN_LABEL

    previous = os.environ.get(RUN_LABEL)
    os.environ[RUN_LABEL] = run_id
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(RUN_LABEL, None)
        else:
            os.environ[RUN_LABEL] = previous


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM ends a run like Ctrl-C does (faults reverted, journal closed)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Faults:
    """Injects and reverts the scenario's faults, journalling every step."""

    def __init__(self, journal: JournalWriter, hub: _Hub, make_context: Callable[[str], FaultContext]):
        self.journal = journal
        self.hub = hub
        self.make_context = make_context
        self.contexts: dict[str, FaultContext] = {}
        self.injected: dict[str, FaultStep] = {}
        self.reverted: set[str] = set()
        self._lock = threading.Lock()

    def plan(self, fault_id: str, step: FaultStep, planned_t: float) -> None:
        self.journal.fault(
            "planned", fault_id, kind=step.fault, target=step.target or "", params=step.params,
            planned_t=planned_t, revert_plan=_revert_plan(step),
        )

    def inject(self, fault_id: str, step: FaultStep, planned_t: float) -> None:
        kind = step.kind()
        active = threading.Event()

        def mark_active() -> None:
            if not active.is_set():
                active.set()
                self.journal.fault("active", fault_id, kind=step.fault, target=step.target or "", planned_t=planned_t)
                self.hub(event="fault", state="active", fault_id=fault_id, kind=step.fault, target=step.target)

        ctx = self.make_context(fault_id)
        ctx.mark_active = mark_active
        ctx.state["for_s"] = step.for_
        with self._lock:
            self.contexts[fault_id] = ctx
            self.injected[fault_id] = step
        self.journal.fault("injected", fault_id, kind=step.fault, target=step.target or "", planned_t=planned_t)
        try:
            kind.inject(ctx, step.target or "", step.kind_params)
        except Exception as exc:
            self.journal.fault("injected", fault_id, kind=step.fault, target=step.target or "",
                               planned_t=planned_t, error=f"{type(exc).__name__}: {exc}")
            raise
        mark_active()
        if not kind.needs_for:
            self.revert(fault_id)  # an instantaneous fault (a kill) is over once it took effect

    def revert(self, fault_id: str) -> bool:
        """Revert one fault (idempotent); True when it is reverted."""
        with self._lock:
            step = self.injected.get(fault_id)
            ctx = self.contexts.get(fault_id)
            if step is None or ctx is None or fault_id in self.reverted:
                return True
        try:
            step.kind().revert(ctx, step.target or "", step.kind_params)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            self.journal.fault("revert_failed", fault_id, kind=step.fault, target=step.target or "", error=error)
            self.journal.write(Cleanup(t=self.journal.t(), what=f"revert {fault_id} ({step.fault} on {step.target})", ok=False))
            return False
        with self._lock:
            self.reverted.add(fault_id)
        self.journal.fault("reverted", fault_id, kind=step.fault, target=step.target or "")
        self.journal.write(Cleanup(t=self.journal.t(), what=f"reverted {fault_id} ({step.fault} on {step.target})"))
        self.hub(event="fault", state="reverted", fault_id=fault_id, kind=step.fault, target=step.target)
        return True

    def revert_all(self) -> list[str]:
        """Revert whatever is still injected; returns the ids that failed."""
        failed = []
        for fault_id in list(reversed(list(self.injected))):
            if not self.revert(fault_id) and not self.revert(fault_id):
                failed.append(fault_id)
        return failed


def _revert_plan(step: FaultStep) -> str:
    kind = step.kind()
    if not kind.needs_for:
        return f"nothing to undo for {step.fault}; the supervisor or the job itself recovers"
    return f"{step.fault}.revert on {step.target or 'the stack'} at {step.until:g} s after load start, and in any case at teardown"


def run_scenario(
    scenario: Scenario,
    *,
    reports_dir: str | Path = "reports",
    run_id: str | None = None,
    observers: Sequence[Callable[..., None]] = (),
    state_dir: str | Path | None = None,
    group: str | None = None,
) -> RunResult:
    """Run ``scenario`` end to end and leave its journal in the run directory.

    The run directory is ``<reports_dir>/<group or scenario id>/<run id>/``. Observers are
    called with keyword arguments (``event=`` ``run``, ``phase``, ``fault``, ``sample``,
    ``schedule``, ``decision``; unknown events must be ignored). Raises :class:`~faultlab.errors.Interrupted` on Ctrl-C or SIGTERM and
    :class:`~faultlab.errors.InfrastructureError` when the stack cannot be brought up; the
    journal is complete (with its ``end`` record) in every case.
    """
    from faultlab.plugin import load_plugin
    from faultlab.runtime.ledger import Ledger
    from faultlab.runtime.local import bring_up

    stack_model = scenario.resolved_stack
    plugin = load_plugin(stack_model.plugin, folder=Path(stack_model.source).parent if stack_model.source else None)
    run_id = run_id or new_run_id(scenario.id)
    run_dir = Path(reports_dir) / (group or scenario.id) / run_id
    clock = MonotonicClock()
    hub = _Hub(observers)
    origin = clock.now()
    header = RunHeader(
        run_id=run_id,
        scenario={"id": scenario.id, "title": scenario.title, "file": str(scenario.source),
                  "sha256": _sha256(Path(scenario.source)), "description": scenario.description,
                  "assumptions": scenario.assumptions,
                  "timeline": [s.model_dump(mode="json", by_alias=True) for s in scenario.timeline],
                  "load": scenario.load.model_dump(mode="json") if scenario.load else None},
        stack={"name": stack_model.name, "file": str(stack_model.source), "sha256": _sha256(Path(stack_model.source))},
        origin_wall=datetime.now(UTC).isoformat(),
        faultlab_version=__version__,
        host=socket.gethostname(),
        targets=scenario.targets.model_dump(mode="json", exclude_none=True),
        steady_state=scenario.steady_state.model_dump(mode="json", exclude_none=True),
        window_s=scenario.window,
        hold_s=scenario.hold,
        probe_interval_s=PROBE_INTERVAL_S,
        duration_s=scenario.duration,
        plugin=stack_model.plugin or "",
        declaration=plugin.declaration.to_json(),
    )
    journal = JournalWriter.open(run_dir, header, origin=origin, clock=clock)
    ledger = Ledger(run_id, state_dir=state_dir)
    health = RollingHealth()
    status, reason = "failed", ""
    error: BaseException | None = None
    faults: _Faults | None = None
    hub(event="run", state="begin", run_id=run_id, run_dir=run_dir, scenario=scenario)
    try:
        with sigterm_as_interrupt(), _labelled(run_id):
            journal.phase("stack_up", "begin")
            hub(event="phase", name="stack_up", state="begin")
            with bring_up(stack_model, run_dir, ledger=ledger) as stack:
                journal.phase("stack_up", "end")
                journal.write(Tools(t=journal.t(), tools=_tool_versions(stack)))
                status, reason, faults = _drive(scenario, stack, plugin, journal, clock, hub, health)
    except KeyboardInterrupt as exc:
        status, reason, error = "interrupted", "interrupted by the user (Ctrl-C or SIGTERM)", exc
    except FaultlabError as exc:
        status, reason, error = "failed", f"{type(exc).__name__}: {exc}", exc
    except Exception as exc:  # noqa: BLE001 - journalled, then re-raised as infrastructure trouble
        where = save_traceback(exc, run_dir / HARNESS_ERROR_FILE)
        status, reason, error = "failed", f"unexpected {type(exc).__name__}: {exc} ({where})", exc
    finally:
        if faults is not None:
            failed = faults.revert_all()
            if failed:
                reason += f"; could not revert {', '.join(failed)}"
        journal.phase("teardown", "end")
        journal.end(status, reason)
        journal.close()
        ledger.close()
        hub(event="run", state="end", status=status, reason=reason, run_dir=run_dir)
    result = RunResult(run_dir, run_id, status, reason, error)
    if isinstance(error, KeyboardInterrupt):
        raise Interrupted(reason) from error
    if error is not None and not isinstance(error, FaultlabError):
        raise InfrastructureError(reason) from error
    if error is not None:
        raise error
    return result


def _drive(scenario: Scenario, stack: Any, plugin: Any, journal: JournalWriter, clock: MonotonicClock,
           hub: _Hub, health: RollingHealth) -> tuple[str, str, _Faults]:
    from faultlab.engine.load import LoadDriver, LoadSpec
    from faultlab.engine.probes import CanaryProbe, MonitorProbe

    jobs = Jobs(stack, journal, plugin=plugin)
    monitor_spec = stack.stack.monitor
    monitor = None
    if monitor_spec is not None:
        monitor = MonitorProbe(
            stack.url(monitor_spec.service, monitor_spec.ready), origin=journal.origin,
            interval_s=PROBE_INTERVAL_S,
            metrics_url=stack.url(monitor_spec.service, monitor_spec.metrics) if monitor_spec.metrics else None,
            clock=clock, journal=journal,
        )
    canary = CanaryProbe(
        plugin.canary(stack), rate_hz=scenario.canary.rate, timeout_s=scenario.canary.timeout,
        origin=journal.origin, clock=clock, journal=journal,
        observers=[lambda sample, **_: health.add(sample), lambda sample, **_: hub(event="sample", sample=sample)],
    )
    load = None
    if scenario.load is not None and scenario.load.users > 0:
        load = LoadDriver(
            LoadSpec(
                locustfile=plugin.locustfile(), host=plugin.load_host(stack), users=scenario.load.users,
                spawn_rate=scenario.load.spawn_rate,
                workers=scenario.load.workers if scenario.load.workers > 1 else 0,
                env=plugin.load_env(stack, scenario.load.shape),
                ack_field=plugin.declaration.ack_field,
            ),
            run_dir=stack.run_dir, origin=journal.origin, supervisor=stack.supervisor,
        )

    def make_context(fault_id: str) -> FaultContext:
        return FaultContext(fault_id=fault_id, stack=stack, journal=journal, jobs=jobs, plugin=plugin,
                            load=load, base_users=scenario.load.users if scenario.load else 0)

    faults = _Faults(journal, hub, make_context)
    try:
        if monitor is not None:
            monitor.start()
        if load is not None:
            journal.phase("load_start", "begin")
            load.start()
        canary.start()
        t_load = journal.t()
        journal.phase("load", "begin")
        hub(event="phase", name="load", state="begin", t=t_load, duration=scenario.duration)

        items = []
        for step_id, step in scenario.steps():
            planned_t = t_load + step.at
            if isinstance(step, FaultStep):
                faults.plan(step_id, step, planned_t)
                end = (lambda fid=step_id: faults.revert(fid)) if step.until is not None else None
                items.append(TimelineItem(
                    step.at, lambda fid=step_id, s=step, p=planned_t: faults.inject(fid, s, p),
                    name=step_id, for_s=step.for_, end_action=end,
                ))
            elif isinstance(step, JobStep):
                items.append(TimelineItem(step.at, lambda name=step.job: jobs.start(name), name=step_id))
        scheduler = Scheduler(
            items, origin=journal.origin + t_load, clock=clock,
            abort_when=_abort_rule(scenario, health, journal.t, t_load),
            until_s=scenario.duration,
            observers=[lambda event, **kw: hub(event="schedule", step=event, **kw)],
        )
        result = scheduler.run()
        for record in result.records:
            if not record.ok:
                journal.note(f"{record.name} {record.phase} failed: {record.error}", level="warning")
        status, reason = result.status, result.reason
        if status == "aborted":
            journal.write(Decision(t=journal.t(), what="abort", why=reason))
            hub(event="decision", what="abort", why=reason)
        if status == "cancelled":
            status = "interrupted"
    finally:
        journal.phase("load", "end")
        if load is not None:
            load.stop()
        canary.stop()
        faults.revert_all()

    journal.phase("settle", "begin")
    hub(event="phase", name="settle", state="begin")
    _finish_jobs(stack, jobs, journal)
    sent_at = integrity.acknowledged(canary.samples, stack.run_dir / REQUESTS_FILE)
    acknowledged = set(sent_at)
    _record_completion_delays(stack, plugin, sent_at, journal)
    journal.phase("integrity", "begin")
    integrity.check_integrity(stack, plugin, acknowledged,
                              integrity.attempted(canary.samples, stack.run_dir / REQUESTS_FILE, acknowledged),
                              settle_s=max(scenario.settle, 1.0), run_dir=stack.run_dir, journal=journal)
    journal.phase("integrity", "end")
    if monitor is not None:
        monitor.stop()
    journal.phase("teardown", "begin")
    return status, reason, faults


def _tool_versions(stack: Any) -> dict[str, str]:
    """The versions the report's manifest names: python, locust (looked up, never imported:
    importing it patches the standard library) and each PostgreSQL server the stack runs
    (``postgres``, or ``postgres (name)`` when there are several). What cannot be found is
    left out."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    tools = {"python": platform.python_version()}
    try:
        tools["locust"] = version("locust")
    except PackageNotFoundError:
        pass
    servers = sorted(getattr(stack, "postgres", None) or {})
    for name in servers:
        found = _postgres_version(stack.dsn(name))
        if found:
            tools["postgres" if len(servers) == 1 else f"postgres ({name})"] = found
    return tools


def _postgres_version(dsn: str) -> str | None:
    try:
        import psycopg

        with psycopg.connect(dsn, connect_timeout=5, autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except Exception:  # noqa: BLE001 - a version we cannot read is left out, not a failed run
        log.warning("could not read the PostgreSQL server version", exc_info=True)
        return None
    return str(row[0]) if row else None


def _finish_jobs(stack: Any, jobs: Jobs, journal: JournalWriter) -> None:
    windows = [j.window or 0.0 for j in stack.stack.jobs.values()]
    if not jobs.wait_all(max(windows, default=0.0) + 5.0):
        journal.note("a job was still running at the end of the run and was stopped", level="warning")


def _record_completion_delays(stack: Any, plugin: Any, sent_at: dict[str, float], journal: JournalWriter) -> None:
    """Ask the plugin how long each acknowledged request waited to be completed; journal it
    in ``completions.jsonl`` on the run clock (``t`` = the request's send time)."""
    try:
        delays = plugin.completion_delays(stack, sent_at)
    except Exception as exc:  # noqa: BLE001 - a missing measure is evidence, not a crash
        journal.note(f"completion delays not measured: {type(exc).__name__}: {exc}", level="warning")
        return
    rows = sorted(
        (CompletionSample(t=sent_at[ack], ack=ack, delay_s=delay)
         for ack, delay in delays.items() if ack in sent_at),
        key=lambda r: r.t,
    )
    journal.completions(rows)
