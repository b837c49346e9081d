"""The measures of DESIGN.md, each a pure function of typed journal records.

Fault spans and the moments the first fault took effect and the last one cleared; impact
and recovery from the sliding windows; detection and backlog from the monitor's polls;
customer impact, error budget and baseline from the requests; completion delay; the jobs
against their windows and deadlines; the integrity check; the tool versions. Every figure
is a :class:`~faultlab.analysis.model.Measure` with its resolution, or a typed result.
"""

from __future__ import annotations

import statistics
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from faultlab.analysis.model import (
    AlertSpan,
    Baseline,
    CompletionDelay,
    CustomerImpact,
    ErrorBudget,
    FaultSpan,
    ImpactCounts,
    IntegrityResult,
    JobResult,
    Measure,
    MeasureStatus,
    Window,
)
from faultlab.analysis.windows import Sample, SteadyState, latency_stats
from faultlab.journal import CanarySample, FaultEvent, Integrity, MonitorSample, Phase, RunHeader, Tools, json_number
from faultlab.journal import JobResult as JobRecord

__all__ = [
    "Detection",
    "ImpactRules",
    "measure_s",
    "fault_spans",
    "injection_and_clear",
    "impact_and_recovery",
    "time_since",
    "detection",
    "backlog_drain",
    "customer_impact",
    "error_budget",
    "baseline",
    "completion_delay",
    "jobs",
    "integrity",
    "answer_times",
    "data_loss",
    "alert_spans",
    "first_breach",
    "tools",
]

_EPS = 1e-9


def measure_s(value: float | None, resolution: float | None, basis: str, status: str) -> Measure:
    """A time in seconds; its value only when ``status`` is ``measured``."""
    if status != MeasureStatus.MEASURED:
        value = None
    return Measure(value=value, unit="s", resolution=resolution, basis=basis, status=status)


def _blank_span(fault_id: str) -> dict[str, Any]:
    return {"fault_id": fault_id, "kind": "", "target": "", "params": {}, "planned_t": None,
            "injected_t": None, "active_t": None, "reverted_t": None, "revert_failed": False,
            "revert_plan": ""}


def fault_spans(events: Iterable[FaultEvent]) -> list[FaultSpan]:
    """One span per fault of the timeline, from its events in journal order.

    The first ``injected`` and ``active`` count (when the fault took effect), the last
    ``reverted`` counts.
    """
    spans: dict[str, dict[str, Any]] = {}
    for event in events:
        span = spans.setdefault(event.fault_id, _blank_span(event.fault_id))
        span.update({key: value for key, value in (("kind", event.kind), ("target", event.target),
                                                   ("revert_plan", event.revert_plan)) if value})
        if event.params:
            span["params"] = dict(event.params)
        if event.planned_t is not None:
            span["planned_t"] = event.planned_t
        if event.event in ("injected", "active") and span[f"{event.event}_t"] is None:
            span[f"{event.event}_t"] = event.t
        elif event.event == "reverted":
            span["reverted_t"] = event.t
        elif event.event == "revert_failed":
            span["revert_failed"] = True
    return [FaultSpan(**span) for span in spans.values()]


def injection_and_clear(faults: Sequence[FaultSpan]) -> tuple[float | None, float | None]:
    """``t_inject``, when the first fault took effect, and ``t_clear``, when the last fault
    that took effect was reverted (None unless every one of them was)."""
    active = [f.active_t for f in faults if f.active_t is not None]
    reverted = [f.reverted_t for f in faults if f.active_t is not None]
    t_inject = min(active) if active else None
    cleared = [t for t in reverted if t is not None]
    t_clear = max(cleared) if cleared and len(cleared) == len(reverted) else None
    return t_inject, t_clear


def _first_bad(samples: Sequence[Sample], late: Sequence[float], steady: SteadyState,
               lo: float, hi: float, breaches: Sequence[tuple[float, float]] = ()) -> float | None:
    """Send time of the first request in ``[lo, hi)`` that failed, was slow, or (``late``:
    send times of requests completed later than the bound, sorted) was completed late; or
    the first moment there inside a span where a PromQL steady-state condition did not hold
    (``breaches``, sorted and disjoint)."""
    start = bisect_left(samples, lo, key=lambda s: s.t)
    failed = next((s.t for s in samples[start:] if s.t < hi and steady.is_bad(s)), None)
    if failed is not None and failed >= hi:
        failed = None
    k = bisect_left(late, lo)
    completed_late = late[k] if k < len(late) and late[k] < hi else None
    found = [t for t in (failed, completed_late, first_breach(breaches, lo, hi)) if t is not None]
    return min(found) if found else None


def first_breach(spans: Sequence[tuple[float, float]], lo: float, hi: float) -> float | None:
    """The first moment in ``[lo, hi)`` inside one of ``spans`` (sorted, disjoint), or None."""
    for start, end in spans:
        if start >= hi:
            return None
        if end > lo:
            return max(start, lo)
    return None


def _recovery_point(windows: Sequence[Window], first: int, step_s: float, need_s: float) -> int | None:
    """Index of the first window after ``first`` that begins an unbroken healthy run lasting
    ``need_s`` beyond its own window."""
    # run_end[k]: start of the last window of the unbroken healthy run beginning at k.
    run_end: list[float | None] = [None] * len(windows)
    for k in range(len(windows) - 1, -1, -1):
        if windows[k].healthy:
            nxt = run_end[k + 1] if k + 1 < len(windows) else None
            run_end[k] = nxt if nxt is not None else windows[k].start
    for k in range(first + 1, len(windows)):
        end = run_end[k]
        if end is not None and end + step_s * 1e-3 >= windows[k].start + need_s:
            return k
    return None


def _first_answer(samples: Sequence[Sample], since: float) -> float | None:
    """When the system first answered OK a request sent at or after ``since``."""
    start = bisect_left(samples, since, key=lambda s: s.t)
    return min((s.t + s.latency_s for s in samples[start:] if s.ok), default=None)


def impact_and_recovery(windows: Sequence[Window], samples: Sequence[Sample], steady: SteadyState,
                        t_inject: float | None, *, window_s: float, step_s: float, hold_s: float,
                        late: Sequence[float] = (),
                        breaches: Sequence[tuple[float, float]] = ()) -> tuple[Measure, Measure]:
    """Impact start and recovery point.

    Impact start: the first request sent at or after ``t_inject`` that failed, was slow or
    was completed late (``late``: sorted send times of requests completed over the bound), in
    an unhealthy window, or the first moment a PromQL steady-state condition did not hold
    (``breaches``: sorted, disjoint spans); a window unhealthy only because of requests sent
    before the fault is not impact of the fault. A window with no request at all after
    ``t_inject`` is no evidence of health: its start counts.

    Recovery point: when the system first answered OK a request of the first period after
    the impact that stays healthy for ``hold_s``. Judged by the answer, not only the send
    time: a request sent while the system was frozen and answered after the thaw shows the
    system answering again at the thaw, not before it.
    """
    def window_measure(value: float | None, status: str) -> Measure:
        return measure_s(value, step_s, "window_step", status)

    if t_inject is None or not any(w.end > t_inject + _EPS for w in windows):
        # No samples after the fault took effect: no evidence either way.
        none = window_measure(None, MeasureStatus.NOT_MEASURED)
        return none, none
    first, impact_t = None, None
    for i, w in enumerate(windows):
        if w.end <= t_inject + _EPS or w.healthy:
            continue
        lo = max(w.start, t_inject)
        impact_t = _first_bad(samples, late, steady, lo, w.end, breaches)
        if impact_t is None and w.samples == 0:
            impact_t = lo
        if impact_t is not None:
            first = i
            break
    if first is None or impact_t is None:
        none = window_measure(None, MeasureStatus.NO_IMPACT)
        return none, none
    impact = window_measure(impact_t, MeasureStatus.MEASURED)
    k = _recovery_point(windows, first, step_s, max(0.0, hold_s - window_s))
    if k is None:
        return impact, window_measure(None, MeasureStatus.NOT_RECOVERED)
    answered = _first_answer(samples, windows[k].start)
    if answered is None:
        return impact, window_measure(windows[k].start, MeasureStatus.MEASURED)
    # The system was back at most one step before the healthy period began, and is seen
    # back when it answered: the truth lies within [start - step, answer].
    point = max(windows[k].start, answered)
    return impact, measure_s(point, step_s + point - windows[k].start, "probe_and_answer", MeasureStatus.MEASURED)


def time_since(recovery: Measure, since: float | None, step_s: float) -> Measure:
    """The recovery point minus ``since`` (t_inject, t_clear, the impact start), at the
    recovery point's resolution: not measured without a ``since``, the recovery's own status
    without a recovery point, and ``recovered_before_clear`` when the system answered again
    before ``since`` (then there is no time to count)."""
    resolution = recovery.resolution if recovery.resolution is not None else step_s
    basis = recovery.basis if recovery.measured else "window_step"
    if since is None:
        return measure_s(None, resolution, basis, MeasureStatus.NOT_MEASURED)
    if recovery.value is None or recovery.status != MeasureStatus.MEASURED:
        return measure_s(None, resolution, basis, recovery.status)
    if recovery.value < since:
        return measure_s(None, resolution, basis, MeasureStatus.RECOVERED_BEFORE_CLEAR)
    return measure_s(recovery.value - since, resolution, basis, MeasureStatus.MEASURED)


def _interval(times: Sequence[float]) -> float | None:
    gaps = [b - a for a, b in zip(times, times[1:], strict=False) if b > a]
    return round(statistics.median(gaps), 6) if gaps else None


def _body(sample: MonitorSample) -> Mapping[str, Any]:
    body = sample.detail.get("body")
    return body if isinstance(body, Mapping) else {}


def _alerts(sample: MonitorSample, key: str | None) -> set[str]:
    alerts = _body(sample).get(key) if key else None
    return {str(a) for a in alerts} if isinstance(alerts, list) else set()


@dataclass(frozen=True)
class Detection:
    """When the stack's own monitoring first showed the problem, and how."""

    measure: Measure
    t: float | None
    signal: str
    monitor_interval: float | None


def detection(monitor: Sequence[MonitorSample], t_inject: float | None, alerts_key: str | None) -> Detection:
    """t_inject until the first poll that is not ready or shows a new alert (in the readiness
    body's list the plugin declared, ``monitor.alerts``).

    Alerts already raised in the last poll before t_inject do not count: they are not news.
    """
    polls = sorted(monitor, key=lambda m: m.t)
    interval = _interval([m.t for m in polls])

    def found(value: float | None, status: str, t: float | None = None, signal: str = "") -> Detection:
        return Detection(measure_s(value, interval, "monitor_interval", status), t, signal, interval)

    if t_inject is None or not polls:
        return found(None, MeasureStatus.NOT_MEASURED)
    before = [m for m in polls if m.t < t_inject]
    standing = _alerts(before[-1], alerts_key) if before else set()
    for poll in polls[len(before):]:
        new_alerts = sorted(_alerts(poll, alerts_key) - standing)
        if not poll.ready or new_alerts:
            signals = [] if poll.ready else ["not ready"]
            if new_alerts:
                signals.append("alert: " + ", ".join(new_alerts))
            return found(poll.t - t_inject, MeasureStatus.MEASURED, poll.t, "; ".join(signals))
    return found(None, MeasureStatus.NOT_DETECTED)


def backlog_drain(monitor: Sequence[MonitorSample], t_inject: float | None, t_from: float | None,
                  interval: float | None, key: str | None, age_key: str | None = None) -> Measure:
    """``t_from`` (the fault cleared) until the backlog the fault left is drained.

    The backlog is the number the plugin declared (``monitor.backlog``, in the readiness
    body). With ``age_key`` (``monitor.backlog_age``, how long the oldest waiting request has
    waited), it is drained at the first poll where nothing waits from before ``t_from``: the
    oldest has waited less than the time since. Without it, at the first poll where the
    number is back to its highest level before the fault. A stack whose backlog settles higher
    after a burst, or moves by one or two in normal work, reads as not drained by the level
    alone, which is why a stack that can tell the age should declare it. No impact when the
    number never rose above that level after ``t_inject``."""
    series: list[tuple[float, float, float | None]] = []
    for poll in monitor:
        body = _body(poll)
        value = json_number(body.get(key)) if key else None
        if value is not None:
            series.append((poll.t, value, json_number(body.get(age_key)) if age_key else None))

    def drained(value: float | None, status: str) -> Measure:
        return measure_s(value, interval, "monitor_interval", status)

    if not series or t_inject is None or t_from is None:
        return drained(None, MeasureStatus.NOT_MEASURED)
    series.sort(key=lambda row: row[0])
    floor = max((v for t, v, _ in series if t < t_inject), default=0.0)
    if not any(v > floor for t, v, _ in series if t >= t_inject):
        return drained(None, MeasureStatus.NO_IMPACT)
    rose = False
    for t, v, age in series:
        if t < t_inject:
            continue
        rose = rose or v > floor
        if t < t_from:
            continue
        if age is not None:
            if v == 0 or age < t - t_from:
                return drained(t - t_from, MeasureStatus.MEASURED)
        elif rose and v <= floor:
            return drained(t - t_from, MeasureStatus.MEASURED)
    return drained(None, MeasureStatus.NOT_RECOVERED)


@dataclass(frozen=True)
class ImpactRules:
    """What makes an answered request customer impact: slower than ``delayed_over``, or
    acknowledged as one of ``late`` (completed later than the completion bound);
    ``business`` are the load requests that are the system's business request (the names
    its plugin declares)."""

    delayed_over: float | None
    late: frozenset[str] = frozenset()
    business: frozenset[str] = frozenset()

    def source(self, s: Sample) -> str:
        """``canary``, ``load`` (a business request) or ``load_other``."""
        if isinstance(s, CanarySample):
            return "canary"
        return "load" if not self.business or s.name in self.business else "load_other"


def _counts(samples: Iterable[Sample], rules: ImpactRules) -> list[ImpactCounts]:
    tally: dict[str, list[int]] = {"canary": [0] * 6, "load": [0] * 6, "load_other": [0] * 6}
    limit = float("inf") if rules.delayed_over is None else rules.delayed_over
    for s in samples:  # one pass: a run holds hundreds of thousands of requests
        row = tally[rules.source(s)]
        row[0] += 1
        if s.ok:
            row[1] += 1
            row[4] += s.latency_s > limit
            row[5] += s.ack is not None and s.ack in rules.late
        elif s.status is None:
            row[3] += 1
        else:
            row[2] += 1
    sources = ["canary", "load", *(["load_other"] if rules.business else [])]
    rows = [ImpactCounts(name, *tally[name]) for name in sources]
    total = ImpactCounts("total", *(sum(column) for column in zip(*(tally[n] for n in sources), strict=True)))
    return [*rows, total]


def customer_impact(samples: Sequence[Sample], impact: Measure, recovery: Measure,
                    rules: ImpactRules) -> CustomerImpact:
    """Requests by outcome (rejected: answered with an error; failed: no answer; delayed: OK
    but slow; completed late) over the whole run and within the impact, the system's
    business requests apart from the load generator's other requests."""
    during: list[Sample] = []
    if impact.value is not None and impact.measured:
        start = impact.value
        until = recovery.value if recovery.value is not None and recovery.measured else float("inf")
        during = [s for s in samples if start <= s.t < until]
    return CustomerImpact(
        whole_run=_counts(samples, rules),
        during_impact=_counts(during, rules),
        delayed_threshold_s=rules.delayed_over,
    )


def error_budget(samples: Sequence[Sample], steady: SteadyState) -> ErrorBudget:
    """How much of the run's error budget (1 - success_rate.min) the failures used."""
    allowed = (1.0 - steady.success_rate_min) if steady.success_rate_min is not None else None
    failures = sum(1 for s in samples if not s.ok)
    if allowed is None or not samples or (allowed <= 0 and failures):
        consumed = Measure(None, "ratio", None, "exact", MeasureStatus.NOT_MEASURED)
    else:
        consumed = Measure(0.0 if failures == 0 else failures / (allowed * len(samples)), "ratio", None, "exact")
    return ErrorBudget(allowed_failure_ratio=allowed, requests=len(samples), failures=failures, consumed=consumed)


def baseline(phases: Iterable[Phase], samples: Sequence[Sample], windows: Sequence[Window],
             t_inject: float | None, last_t: float | None, steady: SteadyState,
             delays: Sequence[tuple[float, float]] = (),
             breaches: Sequence[tuple[float, float]] = ()) -> Baseline | None:
    """Steady-state figures of the ``baseline`` phase (else from the first sample), before
    the first fault took effect.

    The baseline meets the steady state when its requests as a whole do (success rate, p99
    latency, p99 completion delay of the requests completed before ``t_inject``) and every
    PromQL steady-state condition held throughout
    (``breaches``: where one did not): one slow request in a one-second window of a healthy
    minute is not an unsteady system. Fewer requests than one window holds are no evidence.
    """
    if not samples:
        return None
    start, end = samples[0].t, t_inject if t_inject is not None else (last_t or samples[-1].t)
    for phase in phases:
        if phase.name != "baseline":
            continue
        if phase.state == "begin":
            start = phase.t
        elif phase.state == "end" and (t_inject is None or phase.t <= t_inject):
            end = phase.t
    chunk = [s for s in samples if start <= s.t < end]
    ok = sum(1 for s in chunk if s.ok)
    inside = [w for w in windows if w.start >= start - _EPS and w.end <= end + _EPS]
    span = end - start
    latency = latency_stats(s.latency_s for s in chunk)
    # Completed before the fault too: a request sent just before it and held by it is the
    # fault's doing, not the steady state's.
    completion = latency_stats(d for t, d in delays if start <= t and t + d < end)
    rate = (ok / len(chunk)) if chunk else None
    steady_enough = (bool(inside) and steady.admits(rate, latency.p99_s, completion.p99_s)
                     and first_breach(breaches, start, end) is None)
    return Baseline(
        start=start,
        end=end,
        samples=len(chunk),
        success_rate=rate,
        latency=latency,
        throughput_rps=(ok / span) if span > 0 else None,
        healthy_windows=sum(1 for w in inside if w.healthy),
        windows=len(inside),
        met_steady_state=steady_enough if inside else None,
        completion_p99_s=completion.p99_s,
    )


def completion_delay(delays: Sequence[tuple[float, float]], t_inject: float | None,
                     t_clear: float | None) -> CompletionDelay:
    """Completion delays (``(send time, delay)``, sorted by send time) of requests sent
    before, during and after the faults (all of them "before" when no fault took effect)."""
    times = [t for t, _ in delays]

    def sent(lo: float | None, hi: float | None) -> list[float]:
        start = 0 if lo is None else bisect_left(times, lo)
        stop = len(times) if hi is None else bisect_left(times, hi)
        return [d for _, d in delays[start:stop]]

    if t_inject is None:
        return CompletionDelay(latency_stats(sent(None, None)), latency_stats([]), latency_stats([]))
    return CompletionDelay(
        before=latency_stats(sent(None, t_inject)),
        during=latency_stats(sent(t_inject, t_clear)),
        after=latency_stats(sent(t_clear, None)) if t_clear is not None else latency_stats([]),
    )


def jobs(results: Iterable[JobRecord]) -> list[JobResult]:
    """Each job that finished against its window and the margin left before its deadline."""
    out = []
    for r in results:
        duration = r.finished_t - r.started_t if r.started_t is not None and r.finished_t is not None else None
        margin = r.margin_s
        if margin is None and r.deadline_t is not None and r.finished_t is not None:
            margin = r.deadline_t - r.finished_t
        out.append(JobResult(
            job=r.job,
            started_t=r.started_t,
            finished_t=r.finished_t,
            duration_s=duration,
            window_s=r.window_s,
            within_window=(duration <= r.window_s) if duration is not None and r.window_s is not None else None,
            deadline_t=r.deadline_t,
            deadline_name=r.deadline_name,
            margin_s=margin,
            ok=bool(r.ok),
        ))
    return out


def answer_times(samples: Iterable[Sample], ids: Iterable[str]) -> dict[str, tuple[float, float]]:
    """When each of ``ids`` was sent and answered (by its acknowledgement or request id)."""
    wanted = set(ids)
    found: dict[str, tuple[float, float]] = {}
    for s in samples:
        for key in (s.ack, s.request_id):
            if key in wanted and key not in found:
                found[key] = (s.t, s.t + s.latency_s)
    return found


def integrity(checks: Sequence[Integrity], samples: Sequence[Sample]) -> IntegrityResult | None:
    """The last integrity check of the run, with when each id it names was sent and
    answered; None when none was journalled."""
    if not checks:
        return None
    last = checks[-1]
    ids = [str(i) for v in last.violations for i in v.get("ids") or []]
    return IntegrityResult(
        t=last.t,
        acknowledged=last.acknowledged,
        checked=dict(last.checked),
        violations=[dict(v) for v in last.violations],
        attempted=last.attempted,
        outcomes={k: dict(v) for k, v in last.outcomes.items()},
        state=last.state,
        ack_times=answer_times(samples, ids),
    )


def data_loss(result: IntegrityResult | None, loss_checks: Sequence[str], samples: Sequence[Sample],
              t_inject: float | None) -> Measure:
    """The span of acknowledged data lost: from the last acknowledgement still durable before
    the first one lost to the last one lost, by answer times (0 when none was lost; not
    measured without the plugin's loss check). The resolution is the probe interval."""
    def span(value: float | None, status: str) -> Measure:
        return measure_s(value, None, "journal", status)

    checks = [c for c in loss_checks if result is not None and c in result.checked]
    if result is None or not checks:
        return span(None, MeasureStatus.NOT_MEASURED)
    lost = {str(i) for v in result.violations if v.get("check") in checks for i in v.get("ids") or []}
    if not lost:
        return span(0.0, MeasureStatus.MEASURED)
    answered = [result.ack_times[i][1] for i in lost if i in result.ack_times]
    if not answered:
        return span(None, MeasureStatus.NOT_MEASURED)
    first_lost, last_lost = min(answered), max(answered)
    durable = [s.t + s.latency_s for s in samples if s.ok and s.ack and s.ack not in lost
               and s.t + s.latency_s < first_lost]
    since = max(durable) if durable else (t_inject if t_inject is not None and t_inject < first_lost else first_lost)
    return span(last_lost - since, MeasureStatus.MEASURED)


def alert_spans(monitor: Sequence[MonitorSample], key: str | None) -> list[AlertSpan]:
    """Each alert of the readiness body's list (``key``, the plugin's ``monitor.alerts``):
    the first poll showing it and the first poll without it again."""
    if not key:
        return []
    spans: list[AlertSpan] = []
    raised: dict[str, float] = {}
    for poll in sorted(monitor, key=lambda m: m.t):
        if "body" not in poll.detail:
            continue  # no answer: no evidence about the alerts
        now = _alerts(poll, key)
        for name in sorted(now - raised.keys()):
            raised[name] = poll.t
        for name in sorted(raised.keys() - now):
            spans.append(AlertSpan(name, raised.pop(name), poll.t))
    spans += [AlertSpan(name, t, None) for name, t in raised.items()]
    return sorted(spans, key=lambda s: (s.raised_t, s.name))


def tools(header: RunHeader, records: Iterable[Tools]) -> dict[str, str]:
    """What the header says, updated by the ``tools`` records the engine writes after stack up."""
    found = dict(header.tools)
    for record in records:
        found.update(record.tools)
    return found
