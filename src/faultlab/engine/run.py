"""One drill run: stack up, load, faults on the timeline, probes, integrity, teardown.

:func:`run_scenario` is the engine's main job. Its order of work, every step journalled:

1. pre-register the inputs and targets (``inputs/``), open the journal (header first,
   chained to that record) and the clean-up ledger, before anything starts;
2. bring the stack up with the runtime its stack file names (``runtime:``, looked up in
   :data:`faultlab.registry.runtimes`), and with its ``monitoring:`` a Prometheus and an
   Alertmanager beside it (:mod:`faultlab.monitoring`; their programs are looked up before
   anything starts), and journal the tool versions (``tools``);
3. start the monitor probe, the PromQL conditions' probe, the canary and the load
   generator: ``t_load`` is the origin of the scenario's timeline; the ``baseline`` phase
   begins after the scenario's warm-up;
4. run the timeline on one monotonic clock: each fault journalled (``planned`` with its
   revert plan, ``injected``, ``active``) before and as it takes effect, and reverted at
   ``at + for`` with what its ``inject`` returned (or kept before failing); abort
   conditions checked while waiting;
5. stop the load and probes, let the system settle, ask the plugin for the acknowledged
   requests' completion delays (``completions.jsonl``), run the plugin's integrity check;
6. whatever happened (exception, abort, Ctrl-C): revert every fault again (reverts are
   idempotent), tear the stack down, write the ``end`` record with the run's status.

The engine talks to the running stack only through its
:class:`~faultlab.runtime.base.StackHandle`, and to observers through one
:class:`~faultlab.hub.Hub`. A missed target is not an exception: the caller analyses the
journal and decides.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import signal
import socket
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faultlab import __version__
from faultlab.engine import integrity
from faultlab.engine.clock import MonotonicClock
from faultlab.engine.context import FaultContext, Jobs
from faultlab.engine.scheduler import Scheduler, TimelineItem
from faultlab.errors import FaultlabError, InfrastructureError, Interrupted, save_traceback
from faultlab.evidence.inputs import judged, preregister_run
from faultlab.hub import Hub, Observer
from faultlab.journal import (
    REQUESTS_FILE,
    CanarySample,
    Cleanup,
    CompletionSample,
    Decision,
    FaultEvent,
    JournalWriter,
    PromqlSample,
    RunHeader,
    ServiceEvent,
    Tools,
)
from faultlab.model.scenario import FaultStep, JobStep, PromqlAbort, Scenario
from faultlab.model.types import text_json
from faultlab.stats import percentile

if TYPE_CHECKING:
    from faultlab.engine.load import LoadDriver
    from faultlab.engine.probes import CanaryProbe, MonitorProbe
    from faultlab.model.stack import Stack
    from faultlab.monitoring import Binaries, PromqlProbe, RunMonitoring
    from faultlab.plugin import DrillPlugin
    from faultlab.programme.run import Crew, Programme
    from faultlab.runtime.base import StackHandle
    from faultlab.runtime.ledger import Ledger

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


class RollingHealth:
    """The canary's recent samples: success rate and p99 over any recent span (for the abort
    rule and the live display)."""

    def __init__(self, horizon_s: float = 60.0):
        self._samples: deque[tuple[float, bool, float]] = deque()
        self._lock = threading.Lock()
        self.horizon_s = horizon_s

    def add(self, sample: CanarySample) -> None:
        """Take one canary sample into account."""
        with self._lock:
            self._samples.append((sample.t_send, bool(sample.ok), float(sample.latency_s)))
            while self._samples and self._samples[0][0] < sample.t_send - self.horizon_s:
                self._samples.popleft()

    def observe(self, *, sample: CanarySample, **_: Any) -> None:
        """A hub observer of ``sample`` events."""
        self.add(sample)

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


class _AbortRule:
    """The scenario's ``abort_when``, checked while the timeline waits: a reason to abort, or ''.

    ``promql`` gives the latest evaluation of a PromQL condition by its journal name
    (``abort_when.promql[0]``); without it the PromQL conditions are not checked."""

    def __init__(self, scenario: Scenario, health: RollingHealth, now: Callable[[], float], t_load: float,
                 promql: Callable[[str], PromqlSample | None] | None = None):
        self.rules = scenario.abort_when
        self.health = health
        self.now = now
        self.t_load = t_load
        self.promql = promql
        self.bad_since: float | None = None

    def _breaches(self) -> list[tuple[float, str]]:
        rules = self.rules
        assert rules is not None
        _, rate, p99 = self.health.since(self.now() - 1.0)
        found = []
        if rules.success_rate is not None and rate is not None and rate < rules.success_rate.below:
            found.append((rules.success_rate.for_, f"success rate {rate:.0%} below {rules.success_rate.below:.0%}"))
        if rules.p99_latency is not None and p99 is not None and p99 > rules.p99_latency.above:
            found.append((rules.p99_latency.for_,
                          f"p99 latency {p99 * 1000:.0f} ms above {rules.p99_latency.above * 1000:.0f} ms"))
        for i, condition in enumerate(rules.promql if self.promql is not None else []):
            latest = self.promql(f"abort_when.promql[{i}]") if self.promql is not None else None
            if latest is not None and not latest.ok and latest.value is not None:
                side, limit = ("above", condition.above) if condition.above is not None else ("below", condition.below)
                found.append((condition.for_, f"PromQL {condition.query} = {latest.value:g}, {side} {limit:g}"))
        return found

    def __call__(self) -> str:
        if self.rules is None:
            return ""
        t = self.now()
        breaches = self._breaches()
        if not breaches or t < self.t_load + 1.0:
            self.bad_since = None
            return ""
        if self.bad_since is None:
            self.bad_since = t
        lasting = t - self.bad_since
        for needed, why in breaches:
            if lasting >= needed:
                return f"abort_when: {why} for {lasting:.1f} s"
        return ""


def _abort_rule(scenario: Scenario, health: RollingHealth, now: Callable[[], float],
                t_load: float, promql: Callable[[str], PromqlSample | None] | None = None) -> Callable[[], str]:
    """The abort predicate of ``scenario`` (see :class:`_AbortRule`)."""
    return _AbortRule(scenario, health, now, t_load, promql)


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
    """Injects and reverts the scenario's faults, journalling every step.

    Each fault's inject result (or what it kept before failing, see
    :meth:`FaultContext.keep`) is kept here and handed to its ``revert``."""

    def __init__(self, journal: JournalWriter, hub: Hub, make_context: Callable[[str, FaultStep], FaultContext]):
        self.journal = journal
        self.hub = hub
        self.make_context = make_context
        self.contexts: dict[str, FaultContext] = {}
        self.injected: dict[str, FaultStep] = {}
        self.results: dict[str, object] = {}
        self.reverted: set[str] = set()
        self._lock = threading.Lock()

    def plan(self, fault_id: str, step: FaultStep, planned_t: float) -> None:
        self.journal.fault(
            "planned", fault_id, kind=step.fault, target=step.target or "", params=step.params,
            planned_t=planned_t, revert_plan=_revert_plan(step),
        )

    def _marker(self, fault_id: str, step: FaultStep, planned_t: float, ctx: FaultContext) -> Callable[[], None]:
        active = threading.Event()

        def mark_active() -> None:
            if not active.is_set():
                active.set()
                started = ctx.effect_started  # the call that took effect began then (FaultContext.taking_effect)
                self.journal.write(FaultEvent(t=started if started is not None else self.journal.t(), event="active",
                                              fault_id=fault_id, kind=step.fault, target=step.target or "",
                                              planned_t=planned_t))
                self.hub.publish("fault", state="active", fault_id=fault_id, kind=step.fault, target=step.target)

        return mark_active

    def inject(self, fault_id: str, step: FaultStep, planned_t: float) -> None:
        kind = step.kind()
        ctx = self.make_context(fault_id, step)
        ctx.mark_active = self._marker(fault_id, step, planned_t, ctx)
        with self._lock:
            self.contexts[fault_id] = ctx
            self.injected[fault_id] = step
        self.journal.fault("injected", fault_id, kind=step.fault, target=step.target or "", planned_t=planned_t)
        try:
            result = kind.inject(ctx, step.target or "", step.kind_params)
        except Exception as exc:
            with self._lock:
                self.results[fault_id] = ctx.kept
            self.journal.fault("injected", fault_id, kind=step.fault, target=step.target or "",
                               planned_t=planned_t, error=f"{type(exc).__name__}: {exc}")
            raise
        with self._lock:
            self.results[fault_id] = result if result is not None else ctx.kept
        ctx.mark_active()
        if not kind.needs_for:
            self.revert(fault_id)  # an instantaneous fault (a kill) is over once it took effect

    def revert(self, fault_id: str) -> bool:
        """Revert one fault (idempotent); True when it is reverted."""
        with self._lock:
            step = self.injected.get(fault_id)
            ctx = self.contexts.get(fault_id)
            result = self.results.get(fault_id)
            if step is None or ctx is None or fault_id in self.reverted:
                return True
        what = f"{fault_id} ({step.fault} on {step.target})"
        try:
            step.kind().revert(ctx, step.target or "", step.kind_params, result)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            self.journal.fault("revert_failed", fault_id, kind=step.fault, target=step.target or "", error=error)
            self.journal.write(Cleanup(t=self.journal.t(), what=f"revert {what}", ok=False))
            return False
        with self._lock:
            self.reverted.add(fault_id)
        self.journal.fault("reverted", fault_id, kind=step.fault, target=step.target or "")
        self.journal.write(Cleanup(t=self.journal.t(), what=f"reverted {what}"))
        self.hub.publish("fault", state="reverted", fault_id=fault_id, kind=step.fault, target=step.target)
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
    return (f"{step.fault}.revert on {step.target or 'the stack'} at {step.until:g} s after load start, "
            "and in any case at teardown")


def _header(scenario: Scenario, stack: Stack, plugin: DrillPlugin, run_id: str) -> RunHeader:
    scenario_file = Path(str(scenario.source))
    stack_file = Path(str(stack.source))
    return RunHeader(
        run_id=run_id,
        scenario={"id": scenario.id, "title": text_json(scenario.title), "file": str(scenario_file),
                  "sha256": _sha256(scenario_file), "description": text_json(scenario.description),
                  "assumptions": text_json(scenario.assumptions),
                  "timeline": [s.model_dump(mode="json", by_alias=True) for s in scenario.timeline],
                  "load": scenario.load.model_dump(mode="json") if scenario.load else None},
        stack={"name": stack.name, "file": str(stack_file), "sha256": _sha256(stack_file), "runtime": stack.runtime},
        origin_wall=datetime.now(UTC).isoformat(),
        faultlab_version=__version__,
        host=socket.gethostname(),
        targets=judged(scenario)["targets"],
        steady_state=judged(scenario)["steady_state"],
        window_s=scenario.window,
        hold_s=scenario.hold,
        probe_interval_s=PROBE_INTERVAL_S,
        duration_s=scenario.duration,
        plugin=stack.plugin or "",
        declaration=plugin.declaration.to_json(),
        monitoring=_monitoring_header(scenario, stack),
    )


def _monitoring_header(scenario: Scenario, stack: Stack) -> dict[str, Any]:
    """What analysis needs to know of the run's monitoring: the intervals, the resolution of
    a detection by alert, the rules file (hashed) and its alerts, and the PromQL conditions
    by the names their evaluations are journalled under. Empty without ``monitoring:``."""
    spec = stack.monitoring
    if spec is None:
        return {}
    rules = Path(spec.rules)
    conditions: list[dict[str, Any]] = [
        {"name": f"steady_state.promql[{i}]", "role": "steady_state", "query": c.query, "min": c.min, "max": c.max}
        for i, c in enumerate(scenario.steady_state.promql)
    ]
    if scenario.abort_when is not None:
        conditions += [{"name": f"abort_when.promql[{i}]", "role": "abort", "query": c.query, "above": c.above,
                        "below": c.below, "for_s": c.for_} for i, c in enumerate(scenario.abort_when.promql)]
    return {
        "scrape_interval_s": spec.scrape_interval,
        "scrape_timeout_s": spec.timeout,
        "evaluation_interval_s": spec.evaluation_interval,
        "group_wait_s": spec.group_wait,
        "group_interval_s": spec.group_interval,
        "resolution_s": spec.resolution,
        "resolved_resolution_s": spec.resolved_resolution,
        "scrape": dict(spec.scrape),
        "rules": {"file": str(rules), "sha256": _sha256(rules)},
        "alerts": list(spec.alerts),
        "promql": conditions,
    }


def run_scenario(
    scenario: Scenario,
    *,
    reports_dir: str | Path = "reports",
    run_id: str | None = None,
    observers: Hub | Iterable[Observer] = (),
    state_dir: str | Path | None = None,
    group: str | None = None,
    inputs: Sequence[tuple[str, str | os.PathLike[str]]] = (),
    crew: Crew | None = None,
) -> RunResult:
    """Run ``scenario`` end to end and leave its journal in the run directory.

    The run directory is ``<reports_dir>/<group or scenario id>/<run id>/``. Before anything
    starts, the scenario, its stack and ``inputs`` (``(role, path)``, such as the drill plan)
    are pre-registered in its ``inputs/`` with the targets, and the journal is chained to
    that record (:mod:`faultlab.evidence.inputs`); the scenario's runbook is registered with
    them. ``crew`` (:class:`faultlab.programme.run.Crew`) says who answers for the people of
    the runbook and the decision rules (nobody by default). ``observers``
    (plain callables, or a :class:`~faultlab.hub.Hub`) see the run's events, as listed in
    :mod:`faultlab.hub` (``run``, ``phase``, ``fault``, ``sample``, ``monitor``,
    ``schedule``, ``decision``, ``service``; unknown events must be ignored). Raises
    :class:`~faultlab.errors.Interrupted` on Ctrl-C or SIGTERM and
    :class:`~faultlab.errors.InfrastructureError` when the stack cannot be brought up; the
    journal is complete (with its ``end`` record) in every case.
    """
    from faultlab.plugin import load_plugin
    from faultlab.registry import runtimes
    from faultlab.runtime.ledger import Ledger

    stack_model = scenario.resolved_stack
    runtime = runtimes.get(stack_model.runtime)()
    plugin = load_plugin(stack_model.plugin, folder=Path(stack_model.source).parent if stack_model.source else None)
    binaries = _monitoring_binaries(stack_model)  # a missing program stops the run before anything starts
    run_id = run_id or new_run_id(scenario.id)
    run_dir = Path(reports_dir) / (group or scenario.id) / run_id
    clock = MonotonicClock()
    hub = Hub([Hub.of(observers).publish])  # the run's own hub: its health observer stays with this run
    health = RollingHealth()
    hub.subscribe(health.observe, events=["sample"])
    if scenario.runbook is not None:
        inputs = [*inputs, ("runbook", scenario.runbook.file)]
    preregister_run(run_dir, scenario, run_id, extra=inputs)
    header = _header(scenario, stack_model, plugin, run_id)
    journal = JournalWriter.open(run_dir, header, origin=clock.now(), clock=clock)
    hub.subscribe(_service_journal(journal), events=["service"])
    ledger = Ledger(run_id, state_dir=state_dir)
    status, reason = "failed", ""
    error: BaseException | None = None
    unreverted: list[str] = []
    hub.publish("run", state="begin", run_id=run_id, run_dir=run_dir, scenario=scenario)
    try:
        with sigterm_as_interrupt(), _labelled(run_id):
            journal.phase("stack_up", "begin")
            hub.publish("phase", name="stack_up", state="begin")
            with runtime.bring_up(stack_model, run_dir, ledger=ledger, observers=hub) as stack, \
                    _monitoring(stack, binaries, header, journal, hub, ledger) as monitoring:
                journal.phase("stack_up", "end")
                tools = _tool_versions(stack)
                tools.update(monitoring.versions if monitoring is not None else {})
                journal.write(Tools(t=journal.t(), tools=tools))
                drive = _Drive(scenario, stack, plugin, journal, clock, hub, health, monitoring, crew)
                try:
                    status, reason = drive.run()
                finally:
                    unreverted = drive.faults.revert_all()  # before teardown: a second chance for any that failed
    except KeyboardInterrupt as exc:
        status, reason, error = "interrupted", "interrupted by the user (Ctrl-C or SIGTERM)", exc
    except FaultlabError as exc:
        status, reason, error = "failed", f"{type(exc).__name__}: {exc}", exc
    except Exception as exc:  # noqa: BLE001 - journalled, then re-raised as infrastructure trouble
        where = save_traceback(exc, run_dir / HARNESS_ERROR_FILE)
        status, reason, error = "failed", f"unexpected {type(exc).__name__}: {exc} ({where})", exc
    finally:
        if unreverted:
            reason += f"; could not revert {', '.join(unreverted)}"
        journal.phase("teardown", "end")
        journal.end(status, reason)
        journal.close()
        ledger.close()
        hub.publish("run", state="end", status=status, reason=reason, run_dir=run_dir)
    return _result(RunResult(run_dir, run_id, status, reason, error))


def _monitoring_binaries(stack: Stack) -> Binaries | None:
    """Prometheus and Alertmanager when the stack asks for monitoring (an
    :class:`InfrastructureError` naming the packages when they are not installed)."""
    if stack.monitoring is None:
        return None
    from faultlab.monitoring import find_binaries

    return find_binaries()


def _monitoring(stack: StackHandle, binaries: Binaries | None, header: RunHeader, journal: JournalWriter, hub: Hub,
                ledger: Ledger) -> contextlib.AbstractContextManager[RunMonitoring | None]:
    """The run's Prometheus and Alertmanager beside ``stack`` for the block, or nothing
    without a ``monitoring:`` section."""
    spec = stack.stack.monitoring
    if spec is None or binaries is None:
        return contextlib.nullcontext()
    from faultlab.monitoring import bring_up

    try:
        origin: datetime | None = datetime.fromisoformat(header.origin_wall)
    except ValueError:
        origin = None
    return bring_up(spec, stack, run_id=header.run_id, journal=journal, binaries=binaries, origin_wall=origin,
                    hub=hub, ledger=ledger)


def _service_journal(journal: JournalWriter) -> Observer:
    """A hub observer journalling every change of a supervised service (restarts are counted
    from these)."""

    def record(*, service: str = "", kind: str = "", restart_count: int | None = None, exit_code: int | None = None,
               signal: str | None = None, by_operator: bool | None = None, **_: Any) -> None:
        journal.write(ServiceEvent(t=journal.t(), service=str(service), kind=str(kind), restart_count=restart_count,
                                   exit_code=exit_code, signal=signal, by_operator=by_operator))

    return record


def _result(result: RunResult) -> RunResult:
    """The result, or the error that ended the run as faultlab's own exception."""
    error = result.error
    if isinstance(error, KeyboardInterrupt):
        raise Interrupted(result.reason) from error
    if error is not None and not isinstance(error, FaultlabError):
        raise InfrastructureError(result.reason) from error
    if error is not None:
        raise error
    return result


class _Drive:
    """What runs while the stack is up: probes, load, the timeline, then settling and the
    integrity check. :meth:`run` does each step in order."""

    def __init__(self, scenario: Scenario, stack: StackHandle, plugin: DrillPlugin, journal: JournalWriter,
                 clock: MonotonicClock, hub: Hub, health: RollingHealth, monitoring: RunMonitoring | None = None,
                 crew: Crew | None = None):
        self.scenario = scenario
        self.stack = stack
        self.plugin = plugin
        self.journal = journal
        self.clock = clock
        self.hub = hub
        self.health = health
        self.jobs = Jobs(stack, journal, plugin=plugin)
        self.monitor = self._monitor()
        self.promql = self._promql(monitoring)
        self.canary = self._canary()
        self.load = self._load()
        self.faults = _Faults(journal, hub, self._fault_context)
        self.programme = self._programme(crew)

    def _programme(self, crew: Crew | None) -> Programme | None:
        """The runbook runner and the rule watcher, when the scenario has either (or people
        are there anyway, at the console)."""
        from faultlab.programme.run import Crew, Programme, readings_for

        crew = crew or Crew()
        if not Programme.wanted(self.scenario) and not crew.operators:
            return None
        readings = readings_for(self.scenario, now=self.journal.t, health=self.health, stack=self.stack,
                                jobs=self.jobs, plugin=self.plugin)
        self.hub.subscribe(readings.monitor.observe, events=["monitor", "fault"])
        programme = Programme(self.scenario, self.journal, readings, crew, hub=self.hub, stack=self.stack,
                              plugin=self.plugin, jobs=self.jobs)
        programme.journal_documents()
        return programme

    def _monitor(self) -> MonitorProbe | None:
        from faultlab.engine.probes import MonitorProbe

        spec = self.stack.stack.monitor
        if spec is None:
            return None
        # Every service's metrics on the probe's scrape thread, labelled with the service, so
        # a slow metrics endpoint never delays a readiness poll.
        scrape = {spec.service: spec.metrics} if spec.metrics else {}
        scrape.update(spec.scrape)
        return MonitorProbe(
            self.stack.url(spec.service, spec.ready), origin=self.journal.origin, interval_s=PROBE_INTERVAL_S,
            scrape={name: self.stack.url(name, path) for name, path in scrape.items()},
            clock=self.clock, journal=self.journal, observers=self.hub,
        )

    def _promql(self, monitoring: RunMonitoring | None) -> PromqlProbe | None:
        """The probe of the scenario's PromQL conditions (steady state and abort), if any."""
        if monitoring is None:
            return None
        from faultlab.monitoring import PromqlCondition, PromqlProbe

        conditions = [PromqlCondition(f"steady_state.promql[{i}]", c.query, c.admits)
                      for i, c in enumerate(self.scenario.steady_state.promql)]
        abort = self.scenario.abort_when
        conditions += [PromqlCondition(f"abort_when.promql[{i}]", c.query, _holds(c))
                       for i, c in enumerate(abort.promql if abort is not None else [])]
        if not conditions:
            return None
        return PromqlProbe(monitoring, conditions, interval_s=monitoring.spec.evaluation_interval,
                           journal=self.journal, clock=self.clock)

    def _canary(self) -> CanaryProbe:
        from faultlab.engine.probes import CanaryProbe

        return CanaryProbe(
            self.plugin.canary(self.stack), rate_hz=self.scenario.canary.rate, timeout_s=self.scenario.canary.timeout,
            origin=self.journal.origin, clock=self.clock, journal=self.journal, observers=self.hub,
        )

    def _load(self) -> LoadDriver | None:
        from faultlab.engine.load import LoadSpec

        load = self.scenario.load
        if load is None or load.users <= 0:
            return None
        spec = LoadSpec(
            locustfile=self.plugin.locustfile(), host=self.plugin.load_host(self.stack), users=load.users,
            spawn_rate=load.spawn_rate, workers=load.workers if load.workers > 1 else 0,
            env=self.plugin.load_env(self.stack, load.shape), ack_field=self.plugin.declaration.ack_field,
        )
        return self.stack.load_driver(spec, origin=self.journal.origin)

    def _fault_context(self, fault_id: str, step: FaultStep) -> FaultContext:
        return FaultContext(fault_id=fault_id, stack=self.stack, plugin=self.plugin, journal=self.journal,
                            jobs=self.jobs, load=self.load, for_s=step.for_,
                            base_users=self.scenario.load.users if self.scenario.load else 0)

    def run(self) -> tuple[str, str]:
        """Every step; the run's status and reason. Faults are reverted and the probes and
        load stopped whatever happens."""
        try:
            try:
                t_load = self._start_load()
                if self.programme is not None:
                    self.programme.start(t_load)
                status, reason = self._run_timeline(t_load)
            finally:
                if self.programme is not None:
                    self.programme.stop()
                self._stop_load()
            self._settle()
            self._check_integrity()
        finally:
            if self.monitor is not None:
                self.monitor.stop()
            if self.promql is not None:
                self.promql.stop()
        self.journal.phase("teardown", "begin")
        self.hub.publish("phase", name="teardown", state="begin")
        return status, reason

    def _start_load(self) -> float:
        if self.monitor is not None:
            self.monitor.start()
        if self.promql is not None:
            self.promql.start()
        if self.load is not None:
            self.journal.phase("load_start", "begin")
            self.load.start()
        self.canary.start()
        t_load = self.journal.t()
        self.journal.phase("load", "begin")
        self.hub.publish("phase", name="load", state="begin", t=t_load, duration=self.scenario.duration)
        return t_load

    def _timeline(self, t_load: float) -> list[TimelineItem]:
        items = []
        first_fault = min((step.at for _, step in self.scenario.fault_steps()), default=None)
        warmup = self.scenario.warmup
        if first_fault is not None and 0 < warmup < first_fault:
            # The baseline leaves out the load ramping up; it ends where the first fault begins.
            items.append(TimelineItem(warmup, lambda: self.journal.phase("baseline", "begin"), name="baseline"))
        for step_id, step in self.scenario.steps():
            planned_t = t_load + step.at
            if isinstance(step, FaultStep):
                self.faults.plan(step_id, step, planned_t)
                items.append(TimelineItem(
                    step.at, _call(self.faults.inject, step_id, step, planned_t), name=step_id, for_s=step.for_,
                    end_action=_call(self.faults.revert, step_id) if step.until is not None else None,
                ))
            elif isinstance(step, JobStep):
                items.append(TimelineItem(step.at, _call(self.jobs.start, step.job), name=step_id))
        return items

    def _run_timeline(self, t_load: float) -> tuple[str, str]:
        scheduler = Scheduler(
            self._timeline(t_load), origin=self.journal.origin + t_load, clock=self.clock,
            abort_when=_abort_rule(self.scenario, self.health, self.journal.t, t_load,
                                   self.promql.latest if self.promql is not None else None),
            until_s=self.scenario.duration, observers=self.hub,
        )
        result = scheduler.run()
        for record in result.records:
            if not record.ok:
                self.journal.note(f"{record.name} {record.phase} failed: {record.error}", level="warning")
        status, reason = result.status, result.reason
        if status == "aborted":
            self.journal.write(Decision(t=self.journal.t(), what="abort", why=reason))
            self.hub.publish("decision", what="abort", why=reason)
        if status == "cancelled":
            status = "interrupted"
        return status, reason

    def _stop_load(self) -> None:
        self.journal.phase("load", "end")
        if self.load is not None:
            self.load.stop()
        self.canary.stop()
        self.faults.revert_all()

    def _settle(self) -> None:
        self.journal.phase("settle", "begin")
        self.hub.publish("phase", name="settle", state="begin")
        windows = [j.window or 0.0 for j in self.stack.stack.jobs.values()]
        if not self.jobs.wait_all(max(windows, default=0.0) + 5.0):
            self.journal.note("a job was still running at the end of the run and was stopped", level="warning")

    def _check_integrity(self) -> None:
        requests = self.stack.run_dir / REQUESTS_FILE
        sent_at = integrity.acknowledged(self.canary.samples, requests)
        acknowledged = set(sent_at)
        _record_completion_delays(self.stack, self.plugin, sent_at, self.journal)
        self.journal.phase("integrity", "begin")
        self.hub.publish("phase", name="integrity", state="begin")
        integrity.check_integrity(self.stack, self.plugin, acknowledged,
                                  integrity.attempted(self.canary.samples, requests, acknowledged),
                                  settle_s=max(self.scenario.settle, 1.0), run_dir=self.stack.run_dir,
                                  journal=self.journal)
        self.journal.phase("integrity", "end")


def _holds(condition: PromqlAbort) -> Callable[[float | None], bool]:
    """Whether a value of ``condition``'s query keeps the run going (its threshold not crossed)."""
    return lambda value: not condition.breached(value)


def _call(action: Callable[..., Any], *args: Any) -> Callable[[], Any]:
    """``action(*args)`` as a timeline action."""
    return lambda: action(*args)


def _tool_versions(stack: StackHandle) -> dict[str, str]:
    """The versions the report's manifest names: python, locust (looked up, never imported:
    importing it patches the standard library), the runtime's own (the Docker engine's) and
    each PostgreSQL server the stack runs
    (``postgres``, or ``postgres (name)`` when there are several). What cannot be found is
    left out."""
    import platform
    from importlib.metadata import PackageNotFoundError, version

    tools = {"python": platform.python_version()}
    with contextlib.suppress(PackageNotFoundError):
        tools["locust"] = version("locust")
    tools.update(stack.tool_versions())
    servers = sorted(name for name, service in stack.stack.services.items() if service.postgres is not None)
    for name in servers:
        found = _postgres_version(stack, name)
        if found:
            tools["postgres" if len(servers) == 1 else f"postgres ({name})"] = found
    return tools


def _postgres_version(stack: StackHandle, name: str) -> str | None:
    try:
        found = stack.database(name).server_version()
    except Exception:  # noqa: BLE001 - a version we cannot read is left out, not a failed run
        log.warning("could not read the PostgreSQL server version of %s", name, exc_info=True)
        return None
    if found is None:
        log.warning("could not read the PostgreSQL server version of %s", name)
    return found


def _record_completion_delays(stack: StackHandle, plugin: DrillPlugin, sent_at: dict[str, float],
                              journal: JournalWriter) -> None:
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
