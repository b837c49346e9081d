"""The scenario document: one failure test: load, faults on a timeline, pre-set targets."""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    field_validator,
    model_validator,
)

from faultlab.model.document import Document, resolve_path
from faultlab.model.runbook import DecisionRule, RunbookRef
from faultlab.model.stack import Stack
from faultlab.model.types import Duration, Fraction, Identifier, LocalText, Name, Rate, StrictModel, as_written
from faultlab.plugin.declaration import CHECK_NAME
from faultlab.units import DURATION_PATTERN, parse_duration

__all__ = [
    "Scenario",
    "Load",
    "Canary",
    "SteadyState",
    "SuccessRateFloor",
    "LatencyCeiling",
    "FaultStep",
    "JobStep",
    "TimelineEntry",
    "Targets",
    "AbortWhen",
    "PromqlBound",
    "PromqlAbort",
    "MetricBounds",
    "METRIC_SELECTOR",
    "FAULT_STEP_KEYS",
]

FAULT_STEP_KEYS = ("at", "fault", "target", "for")
"""The keys of a fault step that are not the fault kind's own parameters."""


class Load(StrictModel):
    """The load generator (locust, in its own process): how many users, how fast they start."""

    users: int = Field(ge=0, le=1_000_000, description="simulated users")
    spawn_rate: float = Field(gt=0, le=100_000, description="users started per second")
    shape: Name | None = Field(None, description="a load shape from the stack's drill plugin")
    workers: int = Field(1, ge=1, le=256, description="locust worker processes")


class Canary(StrictModel):
    """The harness's own probe requests (one business request each, from the stack's plugin)."""

    rate: Rate = Field(default=as_written("10/s"), description="requests per unit of time, like 20/s")
    timeout: Duration = Field(default=as_written("1s"), description="a request slower than this failed")


class SuccessRateFloor(StrictModel):
    min: Fraction = Field(description="lowest healthy success rate in a window")


class LatencyCeiling(StrictModel):
    max: Duration = Field(description="highest healthy p99 latency in a window")


class CompletionCeiling(StrictModel):
    max: Duration = Field(description="highest healthy p99 completion delay of the requests sent in a window")


def _finite(value: float) -> float:
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError("a threshold is a finite number")
    return value


class PromqlBound(StrictModel):
    """A PromQL expression evaluated against the run's Prometheus, and the bounds its value
    stays within while the system is healthy (the probe Litmus users know as promProbe).

    The query must give one number (a scalar, or a vector of one series: aggregate it with
    ``sum``, ``max``...); no value at all is no evidence of health (write ``... or vector(0)``
    when an absent series means zero).
    """

    query: str = Field(min_length=1, description="a PromQL expression giving one number")
    min: float | None = Field(None, description="healthy while the value is at least this")
    max: float | None = Field(None, description="healthy while the value is at most this")

    _finite_bounds = field_validator("min", "max")(_finite)

    @model_validator(mode="after")
    def _a_bound(self) -> PromqlBound:
        if self.min is None and self.max is None:
            raise ValueError("give `min:` and/or `max:`, the bounds the value stays within while healthy")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"`min` ({self.min:g}) is above `max` ({self.max:g}): no value could be healthy")
        return self

    def admits(self, value: float | None) -> bool:
        """True when ``value`` is within the bounds (no value never is)."""
        if value is None:
            return False
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class SteadyState(StrictModel):
    """When a window counts as healthy (at least one condition).

    ``completion_delay`` bounds how long acknowledged requests wait to be completed (the
    stack plugin's completion delay, like a payment's time to be paid out): a request that
    was accepted fast but completed late is customer impact too. ``promql`` conditions are
    evaluated against the run's Prometheus (the stack needs ``monitoring:``): a window is
    healthy only while each of them holds.
    """

    success_rate: SuccessRateFloor | None = None
    p99_latency: LatencyCeiling | None = None
    completion_delay: CompletionCeiling | None = None
    promql: list[PromqlBound] = Field(
        default_factory=list, description="PromQL expressions with the bounds they stay within while healthy"
    )

    @model_validator(mode="after")
    def _at_least_one_condition(self) -> SteadyState:
        if self.success_rate is None and self.p99_latency is None and self.completion_delay is None:
            raise ValueError(
                "give `success_rate: {min: ...}`, `p99_latency: {max: ...}` and/or `completion_delay: {max: ...}`"
                " (a `promql` condition comes besides them: the requests are the customer's view)"
            )
        return self


class FaultStep(StrictModel):
    """``{at, fault, target, for?, <parameters of that fault kind>}``.

    The fault's own parameters are written inline and kept, as written, in ``params``; the
    loader checks them against the kind's ``Params`` model (see :attr:`kind_params`).
    """

    at: Duration = Field(description="when the fault is injected, from the start of the run")
    fault: str = Field(min_length=1, description="the fault kind (see `faultlab kinds`)")
    target: Name | None = Field(
        None, description="a service, link or job of the stack (left out for load faults)"
    )
    for_: Duration | None = Field(
        None, alias="for", description="how long the fault lasts; reverted at at + for"
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="the kind's parameters, as written"
    )

    _kind_params: Any = PrivateAttr(None)

    @model_validator(mode="before")
    @classmethod
    def _gather_params(cls, data: Any) -> Any:
        # The YAML form has the parameters inline; a dump of this model has them in
        # `params` already (and nothing else beside the core keys).
        if not isinstance(data, dict):
            return data
        core_keys = {*FAULT_STEP_KEYS, "for_"}
        if "params" in data and set(data) <= {*core_keys, "params"}:
            return data
        core = {k: v for k, v in data.items() if k in core_keys}
        core["params"] = {k: v for k, v in data.items() if k not in core_keys}
        return core

    @property
    def until(self) -> float | None:
        """When the fault is reverted (``at + for``), or None for an instantaneous fault."""
        return None if self.for_ is None else self.at + self.for_

    @property
    def kind(self) -> Any:
        """The fault kind class from :data:`faultlab.registry.fault_kinds`."""
        from faultlab.registry import fault_kinds

        return fault_kinds.get(self.fault)

    @property
    def kind_params(self) -> Any:
        """The parameters validated by the kind's ``Params`` model (units parsed, defaults in)."""
        if self._kind_params is None:
            self._kind_params = self.kind.validate_params(self.params)
        return self._kind_params


class JobStep(StrictModel):
    """``{at, job: NAME}``: start one of the stack's jobs (a nightly run, say)."""

    at: Duration = Field(description="when the job starts, from the start of the run")
    job: Name = Field(description="a job of the stack")


def _step_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        has_fault, has_job = "fault" in value, "job" in value
    else:
        has_fault, has_job = isinstance(value, FaultStep), isinstance(value, JobStep)
    if has_fault == has_job:
        return None
    return "fault-step" if has_fault else "job-step"


TimelineEntry = Annotated[
    Annotated[FaultStep, Tag("fault-step")] | Annotated[JobStep, Tag("job-step")],
    Discriminator(
        _step_kind,
        custom_error_type="timeline_entry",
        custom_error_message=(
            "a timeline entry needs exactly one of `fault:` (a fault to inject) "
            "or `job:` (a stack job to start)"
        ),
    ),
]


METRIC_SELECTOR = re.compile(
    r'^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)'
    r'(?:\{(?P<labels>[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*)?\})?$'
)
"""A metric as a target names it: ``name`` or ``name{label="value",...}`` (the series of the
stack's metrics whose name is ``name`` and whose labels include those given, summed)."""


class MetricBounds(StrictModel):
    """Bounds on one of the stack's own metrics, as the monitor scraped it over the run.

    ``max`` / ``min`` bound every scrape of the run; ``after_max`` / ``after_min`` the scrapes
    after the fault cleared and the system had ``hold`` to settle (no pool still starved, no
    queue still growing); ``increase_min`` / ``increase_max`` bound how much a counter grew over
    the run (counter resets, like a restarted process's, are counted as Prometheus does),
    ``increase_during_min`` how much it grew at least while the faults acted (reads still
    served), and ``increase_after_max`` how much it still grew after the fault cleared and the
    hold.
    """

    max: float | None = Field(None, description="highest value of any scrape")
    min: float | None = Field(None, description="lowest value of any scrape")
    after_max: float | None = Field(None, description="highest value after the fault cleared (plus hold)")
    after_min: float | None = Field(None, description="lowest value after the fault cleared (plus hold)")
    increase_min: float | None = Field(None, description="least growth of a counter over the run")
    increase_max: float | None = Field(None, description="most growth of a counter over the run")
    increase_during_min: float | None = Field(
        None, description="least growth of a counter while the faults acted (still served under the fault)"
    )
    increase_after_max: float | None = Field(
        None, description="most growth of a counter after the fault cleared (plus hold)"
    )

    @model_validator(mode="after")
    def _at_least_one_bound(self) -> MetricBounds:
        if all(getattr(self, name) is None for name in type(self).model_fields):
            raise ValueError("give at least one bound: " + ", ".join(type(self).model_fields))
        return self


def _metric_selectors(value: Any) -> Any:
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str) or not METRIC_SELECTOR.match(key):
                raise ValueError(
                    f"{key!r} is not a metric: write a Prometheus name, optionally with labels, "
                    'like gateway_db_pool_waiting or router_circuit_transitions_total{to="open"}'
                )
    return value


class Targets(StrictModel):
    """Objectives fixed before the drill; each one left out is not judged.

    Besides the measures every system has, a scenario may set a target on each integrity
    check its stack's plugin declares (``lost_payments: 0`` for the payments example) and on the
    declared completion delay's p99 (``payout_delay_p99: 5s``); the loader checks those
    names against the plugin's declaration.
    """

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "additionalProperties": {
                "anyOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": DURATION_PATTERN}],
                "description": "an integrity check the stack's plugin declares (a count) or <completion>_p99 "
                               "(a duration)",
            },
            "propertyNames": {"pattern": CHECK_NAME.pattern},
        },
    )

    detect_within: Duration | None = Field(
        None, description="time to detect: injection to detection by the monitoring"
    )
    recover_within: Duration | None = Field(
        None, description="RTO: injection to the recovery point"
    )
    recover_after_clear_within: Duration | None = Field(
        None, description="fault cleared to the recovery point"
    )
    impact_within: Duration | None = Field(None, description="longest customer impact")
    backlog_drain_within: Duration | None = Field(
        None, description="fault cleared to the stack's declared backlog back to its level before the fault"
    )
    error_budget: Fraction | None = Field(
        None, description="most of the error budget (1 - success_rate.min) the run may consume, like 0.5"
    )
    job_margin_min: Duration | None = Field(
        None, description="least margin between a job finishing and its deadline"
    )
    detect_by: str | None = Field(
        None, min_length=1,
        description="the alert of the stack's monitoring rules whose arrival is the detection detect_within judges",
    )
    runbook_within: Duration | None = Field(
        None, description="the runbook started to its last step done (and confirmed where four-eyes)"
    )
    decide_within: Duration | None = Field(
        None, description="each decision rule's condition met to its decision taken (confirmed where required)"
    )
    deadline_impact_within: Duration | None = Field(
        None, description="unhealthy time from a job's deadline to the end of the load"
    )
    unanswered_requests: int | None = Field(
        None, ge=0, description="most business requests left without any answer (the client gave up): hung, "
                                "not refused"
    )
    rejection_p99_within: Duration | None = Field(
        None, description="p99 time to answer the business requests refused with an error: refused fast"
    )
    shed_requests_min: int | None = Field(
        None, ge=0, description="least business requests refused as overload (the statuses the stack's plugin "
                                "declares, like HTTP 429): admission control engaged"
    )
    latency_breach_within: Duration | None = Field(
        None, description="total time the windows broke the steady state's p99 latency, from the fault taking "
                          "effect to the recovery point"
    )
    worst_p99_within: Duration | None = Field(
        None, description="highest p99 latency of a window after the fault took effect"
    )
    restarts_max: int | None = Field(
        None, ge=0, description="most restarts of any one service by its supervisor over the run"
    )
    metrics: Annotated[dict[str, MetricBounds], BeforeValidator(_metric_selectors)] | None = Field(
        None, description="bounds on the stack's own metrics, by name: {gateway_db_pool_waiting: {after_max: 0}}"
    )

    @model_validator(mode="after")
    def _declared_targets(self) -> Targets:
        # Whether a key is declared, and its value right for what it names, is the loader's
        # check against the stack's plugin; here only what no declaration can make right.
        extra = self.model_extra or {}
        for key, value in extra.items():
            if not CHECK_NAME.match(key):
                raise ValueError(f"{key!r} cannot be a target: targets are lower-case names like lost_orders")
            if key.endswith("_p99"):
                with contextlib.suppress(ValueError):
                    extra[key] = parse_duration(value)  # seconds, like every duration of the model
        return self

    @property
    def declared(self) -> dict[str, Any]:
        """The targets named by the stack's plugin (integrity checks, completion delay p99)."""
        return dict(self.model_extra or {})


class SuccessRateAbort(StrictModel):
    below: Fraction
    for_: Duration = Field(alias="for")


class LatencyAbort(StrictModel):
    above: Duration
    for_: Duration = Field(alias="for")


class PromqlAbort(StrictModel):
    """A PromQL expression of the run's Prometheus; the run stops when its value stays above
    ``above`` (or below ``below``) for ``for``."""

    query: str = Field(min_length=1, description="a PromQL expression giving one number")
    above: float | None = Field(None, description="abort while the value is above this")
    below: float | None = Field(None, description="abort while the value is below this")
    for_: Duration = Field(alias="for", description="how long the value must stay beyond the threshold")

    _finite_bounds = field_validator("above", "below")(_finite)

    @model_validator(mode="after")
    def _one_threshold(self) -> PromqlAbort:
        if (self.above is None) == (self.below is None):
            raise ValueError("give exactly one of `above:` or `below:`")
        return self

    def breached(self, value: float | None) -> bool:
        """True when ``value`` is beyond the threshold (no value is not a breach)."""
        if value is None:
            return False
        return value > self.above if self.above is not None else self.below is not None and value < self.below


class AbortWhen(StrictModel):
    """Stop the run early (and revert everything) when the system is this bad for this long."""

    success_rate: SuccessRateAbort | None = None
    p99_latency: LatencyAbort | None = None
    promql: list[PromqlAbort] = Field(
        default_factory=list, description="PromQL expressions of the run's Prometheus and their thresholds"
    )


class Scenario(Document):
    """One failure test: the stack, the load, the fault timeline, and the targets to meet."""

    id: Identifier = Field(description="like FT-01")
    title: LocalText = Field(description="what the scenario tests, in a line")
    stack: Path = Field(description="the stack file, relative to this scenario")
    load: Load | None = None
    canary: Canary = Field(default_factory=Canary)
    steady_state: SteadyState
    timeline: list[TimelineEntry] = Field(min_length=1)
    duration: Duration = Field(description="how long the load runs")
    targets: Targets = Field(default_factory=lambda: Targets.model_validate({}))
    abort_when: AbortWhen | None = None
    hold: Duration = Field(default=as_written("5s"), description="how long healthy it must stay to count as recovered")
    warmup: Duration = Field(
        default=as_written("2s"),
        description="load time before the baseline begins (users starting, the stack warming); the baseline "
                    "runs from then to the first fault (from the first request when the first fault comes sooner)",
    )
    window: Duration = Field(default=as_written("1s"), description="length of the sliding window judged healthy or not")
    settle: Duration = Field(
        default=as_written("5s"), description="wait after the load stops, before the integrity check"
    )
    description: LocalText | None = Field(None, description="the scenario's narrative, for the report")
    assumptions: LocalText | None = Field(None, description="the assumptions it challenges, for the report")
    runbook: RunbookRef | None = Field(None, description="the recovery runbook followed, and when it starts")
    decisions: list[DecisionRule] = Field(default_factory=list, description="decision rules evaluated during the run")

    _stack: Stack | None = PrivateAttr(None)

    _resolve_stack = field_validator("stack", mode="before")(resolve_path)

    @property
    def resolved_stack(self) -> Stack:
        """The stack this scenario runs against (attached by the loader)."""
        if self._stack is None:
            raise RuntimeError("this scenario was not loaded with faultlab.loader.load_scenario")
        return self._stack

    def steps(self) -> list[tuple[str, FaultStep | JobStep]]:
        """Every timeline entry with its id (``timeline[0]``, as journalled), in file order."""
        return [(f"timeline[{i}]", step) for i, step in enumerate(self.timeline)]

    def fault_steps(self) -> list[tuple[str, FaultStep]]:
        """The fault entries with their ids."""
        return [(sid, s) for sid, s in self.steps() if isinstance(s, FaultStep)]

    def job_steps(self) -> list[tuple[str, JobStep]]:
        """The job entries with their ids."""
        return [(sid, s) for sid, s in self.steps() if isinstance(s, JobStep)]


