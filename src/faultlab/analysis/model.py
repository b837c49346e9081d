"""The typed results of analysing one run. Language-neutral: reports put words on them.

Every measured figure is a ``Measure`` that carries its resolution and the basis of that
resolution, and a status that says when there is no number (not detected, not recovered).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from faultlab.plugin.declaration import Declaration

__all__ = [
    "MeasureStatus",
    "Measure",
    "Window",
    "FaultSpan",
    "Baseline",
    "LatencyStats",
    "CompletionDelay",
    "ImpactCounts",
    "CustomerImpact",
    "ErrorBudget",
    "JobResult",
    "IntegrityResult",
    "AlertSpan",
    "FiredAlert",
    "FaultDetection",
    "PromqlResult",
    "MonitoringResult",
    "Answers",
    "LatencyBreach",
    "MetricFigures",
    "Restarts",
    "Verdict",
    "TimelineEvent",
    "Deviation",
    "Finding",
    "Analysis",
]


class MeasureStatus:
    """Why a measure has (or has no) value. Plain strings so they survive JSON."""

    MEASURED = "measured"
    NOT_DETECTED = "not_detected"
    NOT_RECOVERED = "not_recovered"
    NO_IMPACT = "no_impact"
    NOT_MEASURED = "not_measured"
    #: The recovery point came before the moment a time is counted from (the fault was
    #: cleared after the system had already recovered): no time was needed, and a negative
    #: number would not be honest.
    RECOVERED_BEFORE_CLEAR = "recovered_before_clear"
    #: An integrity check the stack's plugin declares but did not run: nothing is known.
    NOT_CHECKED = "not_checked"


@dataclass(frozen=True)
class Measure:
    """One figure with its unit and resolution.

    ``value`` is None unless ``status`` is ``measured``. ``resolution`` is in ``unit``;
    ``basis`` names where the resolution comes from (``window_step``, ``monitor_interval``,
    ``probe_interval``, ``journal`` for event timestamps, ``exact`` for counts).
    """

    value: float | None
    unit: str
    resolution: float | None
    basis: str
    status: str = MeasureStatus.MEASURED

    @property
    def measured(self) -> bool:
        """True when the figure is a number."""
        return self.status == MeasureStatus.MEASURED and self.value is not None


@dataclass(frozen=True)
class Window:
    """One sliding window ``[start, end)`` of samples and whether it met the steady state."""

    start: float
    end: float
    samples: int
    ok: int
    success_rate: float | None
    p99_latency_s: float | None
    throughput_rps: float
    completion_delay_p99_s: float | None
    healthy: bool


@dataclass(frozen=True)
class FaultSpan:
    """One fault from the timeline: when it was planned, took effect and was cleared."""

    fault_id: str
    kind: str
    target: str
    params: dict[str, Any]
    planned_t: float | None
    injected_t: float | None
    active_t: float | None
    reverted_t: float | None
    revert_failed: bool
    revert_plan: str

    @property
    def slip_s(self) -> float | None:
        """Actual minus planned start (DESIGN: slip), when both are known."""
        if self.active_t is None or self.planned_t is None:
            return None
        return self.active_t - self.planned_t


@dataclass(frozen=True)
class LatencyStats:
    """Distribution of latencies (seconds) over a set of samples."""

    count: int
    p50_s: float | None
    p99_s: float | None
    max_s: float | None


@dataclass(frozen=True)
class Baseline:
    """Steady-state metrics before the first fault took effect."""

    start: float
    end: float
    samples: int
    success_rate: float | None
    latency: LatencyStats
    throughput_rps: float | None
    healthy_windows: int
    windows: int
    met_steady_state: bool | None
    #: p99 completion delay of the requests sent in the baseline (None when none recorded).
    completion_p99_s: float | None = None


@dataclass(frozen=True)
class CompletionDelay:
    """Completion delay (request acknowledged to completed, as the stack's plugin measures it)
    of requests sent before, during and after the faults."""

    before: LatencyStats
    during: LatencyStats
    after: LatencyStats

    @property
    def recorded(self) -> bool:
        """True when any completion delay was recorded."""
        return bool(self.before.count or self.during.count or self.after.count)


@dataclass(frozen=True)
class ImpactCounts:
    """Requests by outcome: rejected (answered with an error), failed (no answer), delayed
    (answered OK but slower than the steady state's p99 bound), completed late (answered OK,
    then completed later than the steady state's completion bound).

    ``source`` is ``canary`` (the harness's business requests), ``load`` (the load
    generator's business requests, by the names the plugin declares), ``load_other`` (its
    other requests: reads, cancels...) or ``total``.
    """

    source: str
    sent: int
    ok: int
    rejected: int
    failed: int
    delayed: int
    late: int = 0


@dataclass(frozen=True)
class CustomerImpact:
    """Counts per source (canary, load, total) over the whole run and within the impact."""

    whole_run: list[ImpactCounts]
    during_impact: list[ImpactCounts]
    delayed_threshold_s: float | None


@dataclass(frozen=True)
class ErrorBudget:
    """How much of the run's error budget (1 - success_rate.min) the failures used."""

    allowed_failure_ratio: float | None
    requests: int
    failures: int
    consumed: Measure


@dataclass(frozen=True)
class JobResult:
    """One job of the stack against its window and the margin left before its deadline
    (``deadline_name`` is what happens then, as the stack file names it)."""

    job: str
    started_t: float | None
    finished_t: float | None
    duration_s: float | None
    window_s: float | None
    within_window: bool | None
    deadline_t: float | None
    deadline_name: Any
    margin_s: float | None
    ok: bool


@dataclass(frozen=True)
class IntegrityResult:
    """The data-integrity check after the run, as journalled by the stack's checker:
    violations counted per check it ran, and each violation ``{"check", "ids", "detail"}``."""

    t: float | None
    acknowledged: int | None
    checked: dict[str, int]
    violations: list[dict[str, Any]]
    #: Requests that got no answer in time, looked for in the end state.
    attempted: int = 0
    #: Where the requests ended up: ``{"acknowledged": {class: n}, "attempted": {class: n}}``.
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)
    #: The end-state folder the check can be re-performed from (empty: checked live).
    state: str = ""
    #: When each violation's ids were sent and answered: ``{id: (t_send, t_answered)}``.
    ack_times: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class AlertSpan:
    """An alert of the stack's monitoring: first poll showing it, first poll without it
    (None: still raised at the end of the run)."""

    name: str
    raised_t: float
    cleared_t: float | None


@dataclass(frozen=True)
class FiredAlert:
    """An alert of the stack's Prometheus as it reached faultlab: when Prometheus says it
    became active (``active_t``), when faultlab received it (``received_t``), and, once
    resolved, when it ended and that was received. ``fault_id`` is the fault it fired under
    (the latest to take effect before it became active; None: before any fault), and
    ``detect_s`` the time from that fault taking effect to the alert's arrival."""

    name: str
    labels: dict[str, str]
    active_t: float | None
    received_t: float
    ended_t: float | None = None
    resolved_received_t: float | None = None
    fault_id: str | None = None
    detect_s: float | None = None


@dataclass(frozen=True)
class FaultDetection:
    """How the monitoring saw one fault: the alerts that fired under it (``alerts``, first
    first), the time to its first alert (``first_alert``), the expected alert that never
    fired under it (``expected_missing``), whether the readiness endpoint stopped being ready
    while it lasted (``readiness_changed``), and ``only_by``: the one alert that saw it when
    nothing else did (no other alert fired and readiness never changed)."""

    fault_id: str
    kind: str
    target: str
    alerts: list[FiredAlert]
    first_alert: Measure
    expected_missing: list[str] = field(default_factory=list)
    readiness_changed: bool = False
    only_by: str | None = None


@dataclass(frozen=True)
class PromqlResult:
    """A scenario's PromQL condition over the run: its evaluations, how many held, and the
    spans in which it did not (``breaches``: ``(from, until)``)."""

    name: str
    role: str
    query: str
    bounds: dict[str, float]
    evaluations: int
    held: int
    breaches: list[tuple[float, float]]
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MonitoringResult:
    """Detection by the run's real monitoring (the stack's ``monitoring:``).

    ``resolution_s``: an alert reaches faultlab up to a scrape interval, a scrape's timeout,
    an evaluation interval and Alertmanager's group wait after what it watches changed (a
    resolution: its group interval instead of the wait). ``alert_detection`` is t_inject until the first
    alert that became active after it reached faultlab (``detect_by``'s alert when the
    scenario names one); ``readiness_detection`` is the same fault seen by polling the
    readiness endpoint, for comparison.
    """

    scrape_interval_s: float | None
    scrape_timeout_s: float | None
    evaluation_interval_s: float | None
    group_wait_s: float | None
    group_interval_s: float | None
    resolution_s: float | None
    resolved_resolution_s: float | None
    rules_file: str
    rules_sha256: str
    alerts_defined: list[str]
    expected: str | None
    alerts: list[FiredAlert]
    faults: list[FaultDetection]
    alert_detection: Measure
    alert_name: str
    readiness_detection: Measure
    readiness_signal: str
    promql: list[PromqlResult] = field(default_factory=list)


@dataclass(frozen=True)
class Answers:
    """The business requests of the run by how the system answered them.

    ``rejected``: answered with an error status (400 and above), of which ``shed`` with one
    of the statuses the plugin declares for overload (``shed_statuses``; None when it
    declares none); ``unanswered``: no answer at all before the client gave up (hung, as
    opposed to refused); ``late``: answered without an error but after the client's
    timeout. ``rejection_latency``: how long the refused ones took to be refused.
    """

    sent: int
    ok: int
    rejected: int
    shed: int | None
    unanswered: int
    late: int
    rejection_latency: LatencyStats
    shed_statuses: tuple[int, ...] = ()


@dataclass(frozen=True)
class LatencyBreach:
    """The steady state's p99 latency bound broken after the fault took effect, until the
    system recovered (to the end of the run when it did not).

    ``duration``: the total time of the windows whose p99 was over the bound (each window
    counts its step: the windows slide); ``worst_p99``: the highest p99 of a window after the
    fault took effect; ``first_t`` / ``last_t``: the first and last window broken.
    """

    bound_s: float | None
    duration: Measure
    worst_p99: Measure
    first_t: float | None = None
    last_t: float | None = None


@dataclass(frozen=True)
class MetricFigures:
    """One metric of the stack over the run, summed over the series its selector matches.

    ``scrapes``: how many scrapes showed it; ``before``: its last value before the fault
    took effect; ``highest`` / ``lowest``: over every scrape; ``after_highest`` /
    ``after_lowest``: over the scrapes from ``after_t`` (the fault cleared plus the hold);
    ``increase`` / ``increase_after`` / ``increase_during``: how much it grew (a counter) over
    the run, from ``after_t``, and from the fault taking effect to its clearing (the last
    scrape before the fault to the first after it), a drop counting as a reset to zero. As
    with Prometheus' ``increase()``, a series is counted from its first scrape: a system
    should create its labelled counters at zero when it starts, or their first increments go
    unseen.
    """

    selector: str
    scrapes: int
    series: int
    before: float | None
    highest: float | None
    lowest: float | None
    after_t: float | None
    after_scrapes: int
    after_highest: float | None
    after_lowest: float | None
    increase: float | None
    increase_after: float | None
    increase_during: float | None = None
    points: list[tuple[float, float]] = field(default_factory=list)


@dataclass(frozen=True)
class Restarts:
    """Restarts by each service's supervisor over the run (the runtime's ``restarted``
    events), per service; ``most`` is the highest count of any one service."""

    per_service: dict[str, int]

    @property
    def most(self) -> int:
        """The most restarts of any one service (0 when none)."""
        return max(self.per_service.values(), default=0)


@dataclass(frozen=True)
class Verdict:
    """A pre-set target against its measured value.

    ``comparison`` is ``le`` (measured must be at most the target) or ``ge``. ``outcome``
    is ``met``, ``missed`` or ``not_assessed`` (counted as missed). ``preset`` is False for
    the built-in data-integrity rules that apply even when a scenario states no target.
    ``evidence`` names what caused a miss (the ids concerned, the reason no number exists).
    """

    target: str
    target_value: float
    unit: str
    comparison: str
    measured: Measure
    outcome: str
    preset: bool = True
    evidence: list[str] = field(default_factory=list)

    @property
    def met(self) -> bool:
        """True when the target was met."""
        return self.outcome == "met"


@dataclass(frozen=True)
class TimelineEvent:
    """One moment of the run: a journalled event or a derived one (impact, detection...)."""

    t: float
    wall: str | None
    kind: str
    what: str
    detail: str = ""
    derived: bool = False
    ok: bool = True


@dataclass(frozen=True)
class Deviation:
    """Something that did not go as planned: a slip, a failed revert, an abort, a gap.

    ``kind`` picks the sentence a report writes; ``params`` fills it in.
    """

    kind: str
    t: float | None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    """A finding from a missed target or a notable observation.

    ``kind`` picks the sentence a report writes; ``params`` fills it in. ``severity`` is
    ``high``, ``medium`` or ``low``.
    """

    id: str
    severity: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Analysis:
    """The full analysis of one run: ``faultlab.analysis.analyse(run)`` returns this."""

    run_id: str
    run_dir: str
    schema: str
    scenario: dict[str, Any]
    stack: dict[str, Any]
    origin_wall: str | None
    faultlab_version: str | None
    host: str | None
    status: str
    end_reason: str
    crashed: bool
    duration_s: float | None
    last_t: float | None
    window_s: float
    step_s: float
    hold_s: float
    probe_interval_s: float
    monitor_interval_s: float | None
    steady_state: dict[str, Any]
    targets: dict[str, Any]
    header: dict[str, Any]
    faults: list[FaultSpan]
    t_inject: float | None
    t_clear: float | None
    impact_start: Measure
    detection: Measure
    recovery_point: Measure
    rto_from_inject: Measure
    rto_from_clear: Measure
    impact_duration: Measure
    backlog_drain: Measure
    #: Recovery point objective as measured: the span of acknowledged data lost (0 when
    #: none was lost), from the last acknowledgement durable before the loss to the last
    #: one lost.
    data_loss: Measure
    detection_signal: str
    baseline: Baseline | None
    completion_delay: CompletionDelay
    customer_impact: CustomerImpact
    error_budget: ErrorBudget
    jobs: list[JobResult]
    integrity: IntegrityResult | None
    cleanup: list[dict[str, Any]]
    verdicts: list[Verdict]
    timeline: list[TimelineEvent]
    deviations: list[Deviation]
    findings: list[Finding]
    windows: list[Window]
    problems: list[str]
    #: Tool versions the run recorded (the header's ``tools`` and its ``tools`` record):
    #: python, locust, the PostgreSQL server...
    tools: dict[str, str] = field(default_factory=dict)
    #: The stack plugin's declaration recorded in the header: the system's own words.
    declaration: Declaration = field(default_factory=Declaration)
    #: The monitoring's alerts over the run (the readiness body's list the plugin declared).
    alerts: list[AlertSpan] = field(default_factory=list)
    #: Detection by the run's Prometheus and Alertmanager (None: the stack had no ``monitoring:``).
    monitoring: MonitoringResult | None = None
    #: The drill programme: the runbook as carried out, decisions, communications, people
    #: (:class:`faultlab.analysis.programme.ProgrammeResult`), None when the run had none.
    programme: Any = None
    #: The business requests by answer: refused, shed, hung (None for an older journal).
    answers: Answers | None = None
    #: The latency objective broken after the fault took effect.
    latency_breach: LatencyBreach | None = None
    #: The stack's metrics the targets name, over the run.
    metrics: list[MetricFigures] = field(default_factory=list)
    #: Restarts per service (None when the journal has no service records).
    restarts: Restarts | None = None

    @property
    def all_met(self) -> bool:
        """True when every target was met."""
        return all(v.met for v in self.verdicts)

    @property
    def inconclusive(self) -> bool:
        """True when the run completed but the system was not in its steady state before the
        fault (or nothing shows it was): no target can be judged on such a run."""
        return self.status == "completed" and (self.baseline is None or self.baseline.met_steady_state is not True)

    @property
    def outcome(self) -> str:
        """``passed``, ``failed`` or ``inconclusive``."""
        if self.inconclusive:
            return "inconclusive"
        return "passed" if self.all_met and self.status == "completed" else "failed"

    @property
    def passed(self) -> bool:
        """True when every target was met, the run completed, and its baseline was steady
        (exit code 0)."""
        return self.outcome == "passed"

    def to_dict(self) -> dict[str, Any]:
        """All figures as plain JSON-ready data (``result.json``)."""
        data = asdict(self)
        data["all_met"] = self.all_met
        data["passed"] = self.passed
        data["outcome"] = self.outcome
        for fault, span in zip(data["faults"], self.faults, strict=True):
            fault["slip_s"] = span.slip_s
        return data
