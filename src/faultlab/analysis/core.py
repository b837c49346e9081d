"""``analyse(run) -> Analysis``: every measure of DESIGN.md computed from a saved journal.

This module only wires the parts together: the journal read by :func:`faultlab.journal.read_run`,
the samples in sliding windows (:mod:`.windows`), the measures (:mod:`.measures`), the
verdicts on the pre-set targets (:mod:`.targets`), deviations and findings
(:mod:`.findings`) and the timeline (:mod:`.timeline`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from pathlib import Path

from faultlab.analysis import alerting, behaviour, measures
from faultlab.analysis.findings import Evidence, deviations, findings
from faultlab.analysis.model import Analysis, MeasureStatus, MonitoringResult, Window
from faultlab.analysis.programme import programme, programme_deviations
from faultlab.analysis.targets import evaluate_targets
from faultlab.analysis.timeline import record_time, timeline
from faultlab.analysis.windows import Sample, SteadyState, sliding_windows
from faultlab.journal import (
    Alert,
    CanarySample,
    Cleanup,
    FaultEvent,
    Integrity,
    JobResult,
    Phase,
    PromqlSample,
    Run,
    RunHeader,
    ServiceEvent,
    Tools,
    gc_paused,
    read_run,
)
from faultlab.plugin.declaration import Declaration

__all__ = ["analyse", "DEFAULT_WINDOW_S", "DEFAULT_HOLD_S", "DEFAULT_PROBE_INTERVAL_S"]

DEFAULT_WINDOW_S = 1.0
DEFAULT_HOLD_S = 5.0
DEFAULT_PROBE_INTERVAL_S = 0.1
SLIP_TOLERANCE_S = 0.5


@dataclass(frozen=True)
class _Settings:
    """What the header fixes for the analysis: the windows, the hold, the steady state."""

    window_s: float
    hold_s: float
    step_s: float
    steady: SteadyState
    origin: datetime | None

    @classmethod
    def of(cls, header: RunHeader) -> _Settings:
        try:
            origin: datetime | None = datetime.fromisoformat(header.origin_wall)
        except ValueError:
            origin = None
        return cls(
            window_s=header.window_s if header.window_s > 0 else DEFAULT_WINDOW_S,
            hold_s=header.hold_s if header.hold_s > 0 else DEFAULT_HOLD_S,
            step_s=header.probe_interval_s if header.probe_interval_s > 0 else DEFAULT_PROBE_INTERVAL_S,
            steady=SteadyState.from_journal(header.steady_state),
            origin=origin,
        )


def _samples(run: Run, problems: list[str]) -> list[Sample]:
    """Canary and load requests sent within the run, by send time.

    Times before the origin or after the end record come from a writer on another clock;
    counting them would invent windows.
    """
    samples: list[Sample] = sorted([*run.canary, *run.requests], key=attrgetter("t"))
    end = run.end
    kept = [s for s in samples if s.t >= 0 and (end is None or s.t <= end.t)]
    if len(kept) < len(samples):
        outside = [s for s in samples if s.t < 0 or (end is not None and s.t > end.t)]
        sources = sorted({"canary" if isinstance(s, CanarySample) else "load" for s in outside})
        problems.append(f"{len(outside)} {'/'.join(sources)} sample(s) timed outside the run "
                        f"(before t=0 or after the end record) ignored")
    return kept


def _windows(samples: list[Sample], delays: list[tuple[float, float]], s: _Settings) -> list[Window]:
    if not samples:
        return []
    start = (samples[0].t // s.step_s) * s.step_s
    return sliding_windows(samples, s.steady, window_s=s.window_s, step_s=s.step_s,
                           start=start, stop=samples[-1].t + s.step_s, delays=delays)


def analyse(run: Run | str | Path) -> Analysis:
    """Compute every measure, verdict, timeline entry and finding of one run.

    ``run`` is a run directory or a :class:`~faultlab.journal.Run` already read from one.
    Pure: reads the saved files only, never the running stack. A damaged journal is
    analysed as far as it reads; what could not be read is listed in ``problems``.
    """
    if not isinstance(run, Run):
        run = read_run(run)
    with gc_paused():
        return _analyse(run)


def _analyse(run: Run) -> Analysis:
    header = run.judged_header  # targets and steady state as pre-registered, never as the journal says
    problems = [str(p) for p in run.problems]
    declaration = Declaration.from_json(header.declaration)
    s = _Settings.of(header)

    samples = _samples(run, problems)
    delays = sorted((c.t, c.delay_s) for c in run.completions)
    times = [t for t in map(record_time, run.records) if t is not None]
    last_t = max([*times, *(m.t for m in run.monitor), *(x.t for x in samples)], default=None)
    promql = alerting.promql_results(header.monitoring, run.of(PromqlSample), last_t)
    breaches = alerting.steady_breaches(promql)
    windows = alerting.unhealthy_where_breached(_windows(samples, delays, s), breaches)

    faults = measures.fault_spans(run.of(FaultEvent))
    t_inject, t_clear = measures.injection_and_clear(faults)
    late = [t for t, d in delays if s.steady.completed_late(d)]
    impact, recovery = measures.impact_and_recovery(windows, samples, s.steady, t_inject, window_s=s.window_s,
                                                    step_s=s.step_s, hold_s=s.hold_s, late=late, breaches=breaches)
    readiness = measures.detection(run.monitor, t_inject, declaration.monitor.alerts)
    expected = header.targets.get("detect_by")
    monitoring = alerting.monitoring_result(
        header.monitoring, run.of(Alert), promql, faults, run.monitor, t_inject,
        expected if isinstance(expected, str) else None, (readiness.measure, readiness.signal), last_t)
    detection = _detection(readiness, monitoring, t_inject)
    rto_inject = measures.time_since(recovery, t_inject, s.step_s)
    rto_clear = measures.time_since(recovery, t_clear, s.step_s)
    impact_duration = measures.time_since(recovery, impact.value if impact.measured else None, s.step_s)
    if impact.status == MeasureStatus.NO_IMPACT:
        impact_duration = measures.measure_s(None, s.step_s, "window_step", MeasureStatus.NO_IMPACT)
    backlog = measures.backlog_drain(run.monitor, t_inject, t_clear if t_clear is not None else t_inject,
                                     detection.monitor_interval, declaration.monitor.backlog,
                                     declaration.monitor.backlog_age)
    completion = measures.completion_delay(delays, t_inject, t_clear)
    budget = measures.error_budget(samples, s.steady)
    jobs = measures.jobs(run.of(JobResult))
    integrity = measures.integrity(run.of(Integrity), samples)
    drill_programme = programme(run, windows, s.step_s, t_inject)
    answers = behaviour.answers(samples, declaration.request_names, declaration.shed_statuses)
    breach = behaviour.latency_breach(windows, s.steady.p99_latency_max_s, t_inject, s.step_s,
                                      until=recovery.value if recovery.measured else None)
    after_t = t_clear + s.hold_s if t_clear is not None else None
    named = header.targets.get("metrics")
    metrics = [behaviour.metric_figures(run.monitor, str(name), t_inject, after_t, t_clear)
               for name in (named if isinstance(named, dict) else {})]
    restarts = behaviour.restarts(run.of(ServiceEvent))
    verdicts = evaluate_targets(
        dict(header.targets), declaration, detection=detection.measure, rto_from_inject=rto_inject,
        rto_from_clear=rto_clear, impact_duration=impact_duration, integrity=integrity, jobs=jobs,
        error_budget=budget, completion_delay=completion, backlog_drain=backlog, programme=drill_programme,
        answers=answers, latency_breach=breach, metrics=tuple(metrics), restarts=restarts,
    )
    run_deviations = deviations(run, faults, max(SLIP_TOLERANCE_S, s.step_s), problems)
    run_deviations += programme_deviations(drill_programme)
    # The baseline ends when the harness began injecting: a fault takes effect somewhere
    # between that moment and the one journalled as active (a lock queued, a proxy call under
    # way), and what it did then is not the system's steady state.
    began = min((f.injected_t if f.injected_t is not None else f.active_t for f in faults if f.active_t is not None),
                default=t_inject)
    baseline = measures.baseline(run.of(Phase), samples, windows, began, last_t, s.steady, delays, breaches)
    derived = [
        (impact.value, "impact_start", ""),
        (detection.t, "detected", detection.signal),
        (readiness.t if monitoring is not None else None, "detected_by_readiness", readiness.signal),
        (recovery.value, "recovered", ""),
        ((t_clear + backlog.value) if backlog.value is not None and t_clear is not None else None,
         "backlog_drained", ""),
    ]
    alerts = measures.alert_spans(run.monitor, declaration.monitor.alerts)
    intake = declaration.monitor.intake_alert
    for span in alerts:
        halted = span.name == intake
        derived.append((span.raised_t, "intake_halted" if halted else "alert_raised", span.name))
        derived.append((span.cleared_t, "intake_resumed" if halted else "alert_cleared", span.name))
    end = run.end
    return Analysis(
        run_id=header.run_id or run.run_dir.name,
        run_dir=str(run.run_dir),
        schema=header.schema,
        scenario=dict(header.scenario),
        stack=dict(header.stack),
        origin_wall=header.origin_wall or None,
        faultlab_version=header.faultlab_version or None,
        host=header.host or None,
        status=run.status,
        end_reason=end.reason if end is not None else "",
        crashed=run.crashed,
        duration_s=header.duration_s,
        last_t=last_t,
        window_s=s.window_s,
        step_s=s.step_s,
        hold_s=s.hold_s,
        probe_interval_s=s.step_s,
        monitor_interval_s=detection.monitor_interval,
        steady_state={"success_rate_min": s.steady.success_rate_min, "p99_latency_max_s": s.steady.p99_latency_max_s,
                      "completion_delay_max_s": s.steady.completion_delay_max_s},
        targets=dict(header.targets),
        header=header.to_dict(),
        faults=faults,
        t_inject=t_inject,
        t_clear=t_clear,
        impact_start=impact,
        detection=detection.measure,
        recovery_point=recovery,
        rto_from_inject=rto_inject,
        rto_from_clear=rto_clear,
        impact_duration=impact_duration,
        backlog_drain=backlog,
        data_loss=measures.data_loss(integrity, [c.name for c in declaration.integrity_checks if c.loss],
                                     samples, t_inject),
        detection_signal=detection.signal,
        baseline=baseline,
        completion_delay=completion,
        customer_impact=measures.customer_impact(samples, impact, recovery, measures.ImpactRules(
            delayed_over=s.steady.p99_latency_max_s,
            late=frozenset(c.ack for c in run.completions if s.steady.completed_late(c.delay_s)),
            business=frozenset(declaration.request_names))),
        error_budget=budget,
        jobs=jobs,
        integrity=integrity,
        cleanup=[r.to_dict() for r in run.of(Cleanup)],
        verdicts=verdicts,
        timeline=timeline(run.records, s.origin, derived),
        deviations=run_deviations,
        findings=findings(Evidence(
            verdicts=verdicts, deviations=run_deviations, baseline=baseline, detection=detection.measure,
            detected_t=detection.t, impact=impact, recovery=recovery, t_clear=t_clear, jobs=jobs,
            error_budget=budget, integrity_checks=frozenset(declaration.check_names),
            lasting=any(f.active_t is not None and (f.reverted_t is None or f.reverted_t - f.active_t > s.step_s)
                        for f in faults),
            alerting=monitoring is not None,
        )),
        windows=windows,
        problems=problems,
        tools=measures.tools(header, run.of(Tools)),
        declaration=declaration,
        alerts=alerts,
        monitoring=monitoring,
        programme=drill_programme,
        answers=answers,
        latency_breach=breach,
        metrics=metrics,
        restarts=restarts,
    )


def _detection(readiness: measures.Detection, monitoring: MonitoringResult | None,
               t_inject: float | None) -> measures.Detection:
    """The detection the targets judge: by the first alert that reached faultlab when the run
    had monitoring (DESIGN: the on-call person is told by the alerting), else by the
    readiness endpoint."""
    if monitoring is None:
        return readiness
    measure = monitoring.alert_detection
    t = t_inject + measure.value if measure.value is not None and t_inject is not None else None
    signal = f"alert {monitoring.alert_name}" if monitoring.alert_name else ""
    return measures.Detection(measure, t, signal, readiness.monitor_interval)
