"""Conditions: what check steps wait for, decision rules watch and runbook starts wait on.

A condition is written as a one-key mapping, ``{name: parameters}``, and looked up by name in
:data:`faultlab.registry.conditions` (entry-point group ``faultlab.conditions``; a plugin
registers its own like the built-ins). Each class says how its parameters are written
(``Params``, any type pydantic validates: a name, a number, a model, a list of conditions)
and evaluates them against :class:`Readings`, what the run sees right now: the canary's
recent health, the monitor's newest poll, the stack, its jobs. An evaluation is a
:class:`Reading`: whether it holds and the values it was judged on (journalled as a
decision's trigger values and a check's evidence).
"""

from __future__ import annotations

import abc
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, TypeAdapter

from faultlab.model.types import Duration, Fraction, Name, StrictModel

if TYPE_CHECKING:
    from faultlab.engine.context import Jobs
    from faultlab.journal import MonitorSample
    from faultlab.plugin import DrillPlugin
    from faultlab.runtime.base import StackHandle

__all__ = ["Condition", "Reading", "Readings", "HealthView", "MonitorWatch", "condition_of"]

MONITOR_FRESH_S = 3.0
"""A monitor poll older than this says nothing about now."""


@dataclass(frozen=True)
class Reading:
    """A condition evaluated: whether it ``holds`` and the ``values`` it was judged on."""

    holds: bool
    values: Mapping[str, Any] = field(default_factory=dict)


class HealthView(abc.ABC):
    """The canary's recent health (the engine's :class:`~faultlab.engine.run.RollingHealth`)."""

    @abc.abstractmethod
    def since(self, t_from: float) -> tuple[int, float | None, float | None]:
        """Count, success rate and p99 latency of the samples sent at or after ``t_from``."""


class MonitorWatch:
    """The newest poll of the stack's monitoring, and when it first showed a problem after a
    fault took effect (a hub observer of ``monitor`` and ``fault`` events)."""

    def __init__(self, alerts_key: str | None = None, backlog_key: str | None = None):
        self.alerts_key = alerts_key
        self.backlog_key = backlog_key
        self._lock = threading.Lock()
        self.latest: MonitorSample | None = None
        self.fault_t: float | None = None
        self.detected_t: float | None = None
        self._alerts_before: frozenset[str] = frozenset()

    def alerts(self, sample: MonitorSample | None) -> list[str]:
        """The alert names of a poll (empty when its body has none)."""
        if sample is None or not self.alerts_key:
            return []
        body = sample.detail.get("body")
        found = body.get(self.alerts_key) if isinstance(body, Mapping) else None
        return [str(a) for a in found] if isinstance(found, list) else []

    def observe(self, *, event: str, **arguments: Any) -> None:
        """Hub observer: ``monitor`` polls and ``fault`` events."""
        if event == "monitor":
            sample = arguments.get("sample")
            with self._lock:
                self.latest = sample
                if sample is None:
                    return
                alerts = frozenset(self.alerts(sample))
                if self.fault_t is None:
                    self._alerts_before = alerts
                elif self.detected_t is None and sample.t >= self.fault_t and (
                        not sample.ready or alerts - self._alerts_before):
                    self.detected_t = sample.t
        elif event == "fault" and arguments.get("state") == "active":
            with self._lock:
                if self.fault_t is None:
                    self.fault_t = self.latest.t if self.latest is not None else 0.0


@dataclass
class Readings:
    """What conditions see while the run goes; ``now`` is the run clock (the journal's ``t``)."""

    now: Callable[[], float]
    health: HealthView | None = None
    success_rate_min: float | None = None
    p99_latency_max_s: float | None = None
    window_s: float = 1.0
    monitor: MonitorWatch = field(default_factory=MonitorWatch)
    stack: StackHandle | None = None
    jobs: Jobs | None = None
    plugin: DrillPlugin | None = None

    def evaluate(self, condition: Mapping[str, Any]) -> Reading:
        """Evaluate a condition as written (``{alert: NAME}``); an error reads as not holding."""
        kind, params = condition_of(condition)
        try:
            return kind().evaluate(self, params)
        except Exception as exc:  # noqa: BLE001 - a condition that cannot be read does not hold
            return Reading(False, {"error": f"{type(exc).__name__}: {exc}"[:300]})

    def fresh_poll(self) -> MonitorSample | None:
        """The monitor's newest poll when it is recent, else None."""
        sample = self.monitor.latest
        if sample is None or self.now() - sample.t > MONITOR_FRESH_S:
            return None
        return sample


_ADAPTERS: dict[type, TypeAdapter[Any]] = {}


def condition_of(condition: Mapping[str, Any]) -> tuple[type[Condition], Any]:
    """The condition class and its validated parameters for ``{name: parameters}``."""
    from faultlab.registry import conditions

    ((name, raw),) = condition.items()
    kind = conditions.get(name)
    return kind, kind.validate_params(raw)


class Condition(abc.ABC):
    """A condition, such as ``alert`` or ``database_up``; see the module docstring.

    ``Params`` is the type of what is written after the name; ``nested`` marks a condition
    whose parameters are conditions themselves (``all``, ``any``, ``not``), which the loader
    checks one by one; ``targets`` says which parameter names a part of the stack and of
    which types (the key ``""``: the parameter itself), so the loader refuses an unknown one.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    Params: ClassVar[Any] = Literal[True]
    nested: ClassVar[bool] = False
    targets: ClassVar[Mapping[str, frozenset[str]]] = {}

    @abc.abstractmethod
    def evaluate(self, readings: Readings, params: Any) -> Reading:
        """Whether it holds now, and on which values."""

    @classmethod
    def validate_params(cls, raw: Any) -> Any:
        """The parameters validated against ``Params`` (raises pydantic's ValidationError)."""
        adapter = _ADAPTERS.get(cls)
        if adapter is None:
            adapter = _ADAPTERS[cls] = TypeAdapter(cls.Params)
        return adapter.validate_python(raw)


def _rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


class Healthy(Condition):
    """The canary met the steady state over the last window: ``{healthy: true}``."""

    name: ClassVar[str] = "healthy"
    summary: ClassVar[str] = "the canary meets the steady state over the last window"

    def evaluate(self, readings: Readings, params: Any) -> Reading:
        if readings.health is None:
            return Reading(False, {"samples": 0})
        count, rate, p99 = readings.health.since(readings.now() - readings.window_s)
        ok = count > 0 and rate is not None
        if ok and readings.success_rate_min is not None:
            ok = rate is not None and rate >= readings.success_rate_min
        if ok and readings.p99_latency_max_s is not None:
            ok = p99 is not None and p99 <= readings.p99_latency_max_s
        return Reading(ok, {"samples": count, "success_rate": _rounded(rate), "p99_s": _rounded(p99)})


class SuccessRateBelow(Condition):
    """The canary's success rate over the last window is below this: ``{success_rate_below: 0.5}``."""

    name: ClassVar[str] = "success_rate_below"
    summary: ClassVar[str] = "the canary's success rate over the last window is below a fraction"
    Params = Fraction

    def evaluate(self, readings: Readings, params: float) -> Reading:
        if readings.health is None:
            return Reading(False, {"samples": 0})
        count, rate, _ = readings.health.since(readings.now() - readings.window_s)
        return Reading(count > 0 and rate is not None and rate < params,
                       {"samples": count, "success_rate": _rounded(rate)})


class P99LatencyAbove(Condition):
    """The canary's p99 latency over the last window is above this: ``{p99_latency_above: 1s}``."""

    name: ClassVar[str] = "p99_latency_above"
    summary: ClassVar[str] = "the canary's p99 latency over the last window is above a duration"
    Params = Duration

    def evaluate(self, readings: Readings, params: float) -> Reading:
        if readings.health is None:
            return Reading(False, {"samples": 0})
        count, _, p99 = readings.health.since(readings.now() - readings.window_s)
        return Reading(count > 0 and p99 is not None and p99 > params, {"samples": count, "p99_s": _rounded(p99)})


class Alert(Condition):
    """The monitoring's newest poll lists this alert: ``{alert: NAME}``."""

    name: ClassVar[str] = "alert"
    summary: ClassVar[str] = "the stack's monitoring raises an alert (by name)"
    Params = Name

    def evaluate(self, readings: Readings, params: str) -> Reading:
        sample = readings.fresh_poll()
        alerts = readings.monitor.alerts(sample)
        return Reading(params in alerts, {"alerts": alerts, "ready": None if sample is None else sample.ready,
                                          "poll_t": None if sample is None else _rounded(sample.t)})


class MonitorUnready(Condition):
    """The monitoring's newest poll says not ready (or no poll answered lately)."""

    name: ClassVar[str] = "monitor_unready"
    summary: ClassVar[str] = "the stack's monitoring says it is not ready"

    def evaluate(self, readings: Readings, params: Any) -> Reading:
        sample = readings.fresh_poll()
        return Reading(sample is None or not sample.ready,
                       {"ready": None if sample is None else sample.ready,
                        "poll_t": None if sample is None else _rounded(sample.t)})


class Detected(Condition):
    """The monitoring showed a problem after the first fault took effect."""

    name: ClassVar[str] = "detected"
    summary: ClassVar[str] = "the monitoring showed a problem (not ready, a new alert) after a fault"

    def evaluate(self, readings: Readings, params: Any) -> Reading:
        detected = readings.monitor.detected_t
        return Reading(detected is not None, {"detected_t": _rounded(detected),
                                              "fault_t": _rounded(readings.monitor.fault_t)})


class BacklogBelow(Condition):
    """The backlog the stack declares (its readiness body) is below this: ``{backlog_below: 1}``."""

    name: ClassVar[str] = "backlog_below"
    summary: ClassVar[str] = "the stack's declared backlog is below a count (drained: 1)"
    Params = int

    def evaluate(self, readings: Readings, params: int) -> Reading:
        sample = readings.fresh_poll()
        key = readings.monitor.backlog_key
        body = sample.detail.get("body") if sample is not None else None
        value = body.get(key) if isinstance(body, Mapping) and key else None
        number = value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        return Reading(number is not None and number < params, {"backlog": number})


def _service_ready(stack: StackHandle, service: str, timeout_s: float) -> tuple[bool, Any]:
    import socket

    import httpx

    ready = stack.stack.services[service].ready
    if ready is not None and ready.http:
        try:
            status = httpx.get(stack.url(service, ready.http), timeout=timeout_s).status_code
        except httpx.HTTPError as exc:
            return False, type(exc).__name__
        return 200 <= status < 300, status
    host, _, port = stack.address(service).rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=timeout_s).close()
    except OSError as exc:
        return False, type(exc).__name__
    return True, "open"


class ServiceReady(Condition):
    """A service answers its readiness check now: ``{service_ready: gateway}``."""

    name: ClassVar[str] = "service_ready"
    summary: ClassVar[str] = "a service of the stack passes its readiness check"
    Params = Name

    targets = {"": frozenset({"service"})}

    def evaluate(self, readings: Readings, params: str) -> Reading:
        if readings.stack is None:
            return Reading(False, {"service": params, "error": "no running stack"})
        ok, answer = _service_ready(readings.stack, params, 1.0)
        return Reading(ok, {"service": params, "answer": answer})


class DatabaseUp(Condition):
    """A built-in PostgreSQL service answers ``SELECT 1``: ``{database_up: db}``."""

    name: ClassVar[str] = "database_up"
    summary: ClassVar[str] = "a built-in PostgreSQL service answers a query"
    Params = Name

    targets = {"": frozenset({"postgres"})}

    def evaluate(self, readings: Readings, params: str) -> Reading:
        import psycopg

        if readings.stack is None:
            return Reading(False, {"service": params, "error": "no running stack"})
        try:
            with psycopg.connect(readings.stack.dsn(params), connect_timeout=1, autocommit=True) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as exc:
            return Reading(False, {"service": params, "error": type(exc).__name__})
        return Reading(True, {"service": params})


def _job_values(readings: Readings, job: str) -> dict[str, Any]:
    values: dict[str, Any] = {"job": job, "state": readings.jobs.state(job) if readings.jobs else "unknown"}
    if readings.plugin is not None and readings.stack is not None:
        values["progress"] = _rounded(readings.plugin.job_progress(readings.stack, job))
    return values


class JobFinished(Condition):
    """A job of the stack finished: ``{job_finished: NAME}``."""

    name: ClassVar[str] = "job_finished"
    summary: ClassVar[str] = "a job of the stack finished"
    Params = Name

    targets = {"": frozenset({"job"})}

    def evaluate(self, readings: Readings, params: str) -> Reading:
        state = readings.jobs.state(params) if readings.jobs else "unknown"
        return Reading(state == "finished", {"job": params, "state": state})


class JobRunning(Condition):
    """A job of the stack is running: ``{job_running: NAME}``."""

    name: ClassVar[str] = "job_running"
    summary: ClassVar[str] = "a job of the stack is running"
    Params = Name

    targets = {"": frozenset({"job"})}

    def evaluate(self, readings: Readings, params: str) -> Reading:
        values = _job_values(readings, params)
        return Reading(values["state"] == "running", values)


class DeadlineParams(StrictModel):
    job: Name = Field(description="a job of the stack with a deadline")
    within: Duration = Field(description="how close the deadline is")


class DeadlineWithin(Condition):
    """A started job's deadline is this close (or past): ``{deadline_within: {job: NAME, within: 10s}}``."""

    name: ClassVar[str] = "deadline_within"
    summary: ClassVar[str] = "a started job's deadline is at most this far away"
    Params = DeadlineParams

    targets = {"job": frozenset({"job"})}

    def evaluate(self, readings: Readings, params: DeadlineParams) -> Reading:
        started = readings.jobs.started_t(params.job) if readings.jobs else None
        deadline = None
        if readings.stack is not None:
            deadline = readings.stack.stack.jobs[params.job].deadline
        if started is None or deadline is None:
            return Reading(False, {"job": params.job, "started_t": _rounded(started)})
        left = started + deadline - readings.now()
        values = {**_job_values(readings, params.job), "deadline_t": _rounded(started + deadline),
                  "left_s": _rounded(left)}
        return Reading(left <= params.within, values)


class JobProgressParams(StrictModel):
    job: Name
    value: Fraction = Field(description="progress 0..1")


class JobProgressBelow(Condition):
    """A job's progress (its plugin's ``faultlab_job_progress``) is below this."""

    name: ClassVar[str] = "job_progress_below"
    summary: ClassVar[str] = "a job's progress (0..1, from the stack's plugin) is below a value"
    Params = JobProgressParams

    targets = {"job": frozenset({"job"})}

    def evaluate(self, readings: Readings, params: JobProgressParams) -> Reading:
        values = _job_values(readings, params.job)
        progress = values.get("progress")
        return Reading(progress is not None and progress < params.value, values)


def _merged(readings: Readings, conditions: list[dict[str, Any]]) -> tuple[list[Reading], dict[str, Any]]:
    found = [readings.evaluate(c) for c in conditions]
    values: dict[str, Any] = {}
    for condition, reading in zip(conditions, found, strict=True):
        values[next(iter(condition))] = dict(reading.values) | {"holds": reading.holds}
    return found, values


class All(Condition):
    """Every condition of the list holds: ``{all: [{...}, {...}]}``."""

    name: ClassVar[str] = "all"
    summary: ClassVar[str] = "every condition of a list holds"
    Params = list[dict[str, Any]]
    nested = True

    def evaluate(self, readings: Readings, params: list[dict[str, Any]]) -> Reading:
        found, values = _merged(readings, params)
        return Reading(all(r.holds for r in found), values)


class Any_(Condition):
    """At least one condition of the list holds: ``{any: [{...}, {...}]}``."""

    name: ClassVar[str] = "any"
    summary: ClassVar[str] = "at least one condition of a list holds"
    Params = list[dict[str, Any]]
    nested = True

    def evaluate(self, readings: Readings, params: list[dict[str, Any]]) -> Reading:
        found, values = _merged(readings, params)
        return Reading(any(r.holds for r in found), values)


class Not(Condition):
    """The condition does not hold: ``{not: {job_finished: NAME}}``."""

    name: ClassVar[str] = "not"
    summary: ClassVar[str] = "a condition does not hold"
    Params = dict[str, Any]
    nested = True

    def evaluate(self, readings: Readings, params: dict[str, Any]) -> Reading:
        found, values = _merged(readings, [params])
        return Reading(not found[0].holds, values)
