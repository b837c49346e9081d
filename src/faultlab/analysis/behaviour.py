"""How the system behaved while the faults acted, beyond impact and recovery: how it answered
(refused fast, shed load, left requests hanging), how long its latency objective was broken,
what its own metrics showed, and how often its services were restarted.

Each is a pure function of typed journal records:

- :func:`answers`: the business requests by answer (the plugin's ``request_names`` pick the
  load generator's business requests; the canary's are all business requests), with the
  time it took to refuse the refused ones;
- :func:`latency_breach`: the sliding windows after the fault took effect, until the system
  recovered, whose p99 latency broke the steady state's bound: their total time (window step
  each) and the worst p99;
- :func:`metric_figures`: one of the stack's metrics, as the monitor scraped it (a
  ``name{label="value"}`` selector sums the series it matches), before, over and after the
  fault, and a counter's increase with resets counted as Prometheus counts them;
- :func:`restarts`: restarts per service, from the journal's ``service`` records.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from faultlab.analysis.model import Answers, LatencyBreach, Measure, MeasureStatus, MetricFigures, Restarts, Window
from faultlab.analysis.windows import Sample, latency_stats
from faultlab.journal import CanarySample, MonitorSample, ServiceEvent

__all__ = [
    "answers",
    "latency_breach",
    "metric_figures",
    "metric_selector",
    "restarts",
]

_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def answers(samples: Iterable[Sample], business: Iterable[str] = (), shed_statuses: Iterable[int] = ()) -> Answers:
    """Count ``samples`` (canary and load requests) by answer; load requests only when their
    name is one of ``business`` (all of them when it is empty)."""
    names = frozenset(business)
    shed_codes = tuple(shed_statuses)
    sent = ok = rejected = shed = unanswered = late = 0
    refusal_times: list[float] = []
    for s in samples:
        if not isinstance(s, CanarySample) and names and s.name not in names:
            continue
        sent += 1
        if s.ok:
            ok += 1
        elif s.status is None:
            unanswered += 1
        elif s.status >= 400:
            rejected += 1
            refusal_times.append(s.latency_s)
            shed += s.status in shed_codes
        else:
            late += 1
    return Answers(sent=sent, ok=ok, rejected=rejected, shed=shed if shed_codes else None, unanswered=unanswered,
                   late=late, rejection_latency=latency_stats(refusal_times), shed_statuses=shed_codes)


def latency_breach(windows: Sequence[Window], bound_s: float | None, t_inject: float | None,
                   step_s: float, until: float | None = None) -> LatencyBreach:
    """The windows from ``t_inject`` until ``until`` (the recovery point: a slow window after
    the system recovered is not this fault's) whose p99 latency broke ``bound_s`` (see
    :class:`LatencyBreach`)."""
    def breach_s(value: float | None, status: str) -> Measure:
        return Measure(value if status == MeasureStatus.MEASURED else None, "s", step_s, "window_step", status)

    after = [w for w in windows if t_inject is not None and w.start >= t_inject and w.p99_latency_s is not None
             and (until is None or w.start < until)]
    if not after:
        none = breach_s(None, MeasureStatus.NOT_MEASURED)
        return LatencyBreach(bound_s, none, none)
    worst = max(w.p99_latency_s for w in after if w.p99_latency_s is not None)
    worst_p99 = Measure(worst, "s", None, "exact")
    if bound_s is None:
        return LatencyBreach(bound_s, breach_s(None, MeasureStatus.NOT_MEASURED), worst_p99)
    broken = [w for w in after if w.p99_latency_s is not None and w.p99_latency_s > bound_s]
    if not broken:
        return LatencyBreach(bound_s, breach_s(None, MeasureStatus.NO_IMPACT), worst_p99)
    return LatencyBreach(bound_s, breach_s(round(len(broken) * step_s, 6), MeasureStatus.MEASURED), worst_p99,
                         first_t=broken[0].start, last_t=broken[-1].start)


def metric_selector(selector: str) -> tuple[str, dict[str, str]]:
    """``name{a="1",b="2"}`` as its name and labels."""
    name, brace, rest = selector.partition("{")
    return name, dict(_LABEL.findall(rest)) if brace else {}


def _scrapes(monitor: Iterable[MonitorSample]) -> list[tuple[float, Mapping[str, Any]]]:
    out = []
    for poll in monitor:
        metrics = poll.detail.get("metrics")
        if isinstance(metrics, Mapping) and metrics:
            t = poll.detail.get("metrics_t")
            out.append((float(t) if isinstance(t, (int, float)) else poll.t, metrics))
    return sorted(out, key=lambda scrape: scrape[0])


def _matches(key: str, name: str, labels: Mapping[str, str]) -> bool:
    series_name, brace, rest = key.partition("{")
    if series_name != name:
        return False
    if not labels:
        return True
    found = dict(_LABEL.findall(rest)) if brace else {}
    return all(found.get(k) == v for k, v in labels.items())


def _increase(values: Sequence[float]) -> float:
    """Growth of a counter over consecutive values, a drop counting as a reset to zero."""
    grown = 0.0
    for previous, value in zip(values, values[1:], strict=False):
        grown += value - previous if value >= previous else value
    return grown


def metric_figures(monitor: Iterable[MonitorSample], selector: str, t_inject: float | None,
                   after_t: float | None, t_clear: float | None = None) -> MetricFigures:
    """The figures of ``selector`` over the scrapes in ``monitor`` (see :class:`MetricFigures`)."""
    name, labels = metric_selector(selector)
    points: list[tuple[float, float]] = []
    by_series: dict[str, list[tuple[float, float]]] = {}
    for t, metrics in _scrapes(monitor):
        matched = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float)) and _matches(k, name, labels)}
        if not matched:
            continue
        points.append((t, sum(matched.values())))
        for key, value in matched.items():
            by_series.setdefault(key, []).append((t, value))
    values = [v for _, v in points]
    after = [v for t, v in points if after_t is not None and t >= after_t]
    before = [v for t, v in points if t_inject is not None and t < t_inject]

    def grown(since: float | None, until: float | None = None) -> float | None:
        if since is None or not points:
            return None
        return sum(_increase([v for t, v in series if t >= since and (until is None or t <= until)])
                   for series in by_series.values())

    # The growth while the fault acted: from the last scrape before it to the first after it.
    during = None
    if t_inject is not None and t_clear is not None and before and any(t >= t_clear for t, _ in points):
        last_before = max(t for t, _ in points if t < t_inject)
        first_after = min(t for t, _ in points if t >= t_clear)
        during = grown(last_before, first_after)

    return MetricFigures(
        selector=selector, scrapes=len(points), series=len(by_series),
        before=before[-1] if before else None,
        highest=max(values, default=None), lowest=min(values, default=None),
        after_t=after_t, after_scrapes=len(after),
        after_highest=max(after, default=None), after_lowest=min(after, default=None),
        increase=grown(points[0][0]) if points else None,
        increase_after=grown(after_t) if after else None,
        increase_during=during,
        points=points,
    )


def restarts(events: Iterable[ServiceEvent]) -> Restarts | None:
    """Restarts per service from the journal's ``service`` records; None when the journal has
    none (an older run, or a runtime that tells nothing of its services)."""
    seen = list(events)
    if not seen:
        return None
    counts: dict[str, int] = {}
    for event in seen:
        counts.setdefault(event.service, 0)
        if event.kind == "restarted":
            counts[event.service] += 1
    return Restarts(dict(sorted(counts.items())))
