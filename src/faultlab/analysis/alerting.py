"""Detection by the run's real monitoring: the alerts Alertmanager delivered, per fault, and
the scenario's PromQL conditions. Pure functions of the journal's ``alert`` and ``promql``
records and the header's ``monitoring`` section (what the engine wrote of the stack's
``monitoring:``).

An alert's time to detect is counted to its *arrival* at faultlab, the moment an on-call
person would be told, not to the moment Prometheus evaluated it; its resolution is what the
intervals allow (a scrape and its timeout, an evaluation and Alertmanager's group wait). An alert that was
already active before the fault took effect is not news of it.
"""

from __future__ import annotations

import statistics
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from faultlab.analysis.measures import first_breach
from faultlab.analysis.model import (
    FaultDetection,
    FaultSpan,
    FiredAlert,
    Measure,
    MeasureStatus,
    MonitoringResult,
    PromqlResult,
    Window,
)
from faultlab.journal import Alert, MonitorSample, PromqlSample, json_number

__all__ = [
    "BASIS",
    "fired_alerts",
    "alert_detection",
    "fault_detections",
    "promql_results",
    "steady_breaches",
    "unhealthy_where_breached",
    "monitoring_result",
]

BASIS = "alert_pipeline"
"""The basis of an alert detection's resolution: scrape interval and timeout + evaluation
interval + group wait."""


def _number(section: Mapping[str, Any], key: str) -> float | None:
    return json_number(section.get(key))


def fired_alerts(records: Iterable[Alert]) -> list[FiredAlert]:
    """Each alert that fired, with its resolution when one arrived (paired by Alertmanager's
    fingerprint), in order of arrival. A resolution without a firing is left out."""
    open_: dict[str, int] = {}
    fired: list[FiredAlert] = []
    for record in sorted(records, key=lambda r: r.t):
        if record.status == "firing":
            if record.fingerprint in open_:
                continue
            open_[record.fingerprint] = len(fired)
            fired.append(FiredAlert(name=record.name, labels=dict(record.labels), active_t=record.active_t,
                                    received_t=record.t))
        elif record.status == "resolved" and record.fingerprint in open_:
            i = open_.pop(record.fingerprint)
            fired[i] = replace(fired[i], ended_t=record.ended_t, resolved_received_t=record.t)
    return fired


def _news_after(alert: FiredAlert, t: float) -> bool:
    """Whether ``alert`` became active at or after ``t`` (one with no known activation counts
    by its arrival)."""
    return (alert.active_t if alert.active_t is not None else alert.received_t) >= t


def alert_detection(alerts: Sequence[FiredAlert], t_inject: float | None, resolution: float | None,
                    name: str | None = None) -> tuple[Measure, str, float | None]:
    """t_inject until the first alert (``name`` only, when given) that became active after it
    reached faultlab: the measure, the alert's name, and when it arrived."""
    def found(value: float | None, status: str) -> Measure:
        return Measure(value if status == MeasureStatus.MEASURED else None, "s", resolution, BASIS, status)

    if t_inject is None:
        return found(None, MeasureStatus.NOT_MEASURED), "", None
    news = [a for a in alerts if _news_after(a, t_inject) and (name is None or a.name == name)]
    if not news:
        return found(None, MeasureStatus.NOT_DETECTED), "", None
    first = min(news, key=lambda a: a.received_t)
    return found(first.received_t - t_inject, MeasureStatus.MEASURED), first.name, first.received_t


def _fault_of(alert: FiredAlert, starts: Sequence[float], faults: Sequence[FaultSpan]) -> FaultSpan | None:
    """The latest fault that took effect at or before the alert became active."""
    when = alert.active_t if alert.active_t is not None else alert.received_t
    i = bisect_right(starts, when)
    return faults[i - 1] if i > 0 else None


def _readiness_changed(monitor: Sequence[MonitorSample], start: float, end: float | None) -> bool:
    return any(not m.ready for m in monitor if m.t >= start and (end is None or m.t <= end))


def fault_detections(alerts: Sequence[FiredAlert], faults: Sequence[FaultSpan], monitor: Sequence[MonitorSample],
                     resolution: float | None, expected: str | None,
                     last_t: float | None) -> tuple[list[FiredAlert], list[FaultDetection]]:
    """Each alert with the fault it fired under, and per fault that took effect: its alerts,
    the time to the first, the expected alert that never fired under it, and whether it was
    seen by one alert only (readiness stayed ready and no other alert fired)."""
    active = sorted((f for f in faults if f.active_t is not None), key=lambda f: f.active_t or 0.0)
    starts = [f.active_t or 0.0 for f in active]
    attributed = []
    for alert in alerts:
        fault = _fault_of(alert, starts, active)
        if fault is None or fault.active_t is None:
            attributed.append(alert)
            continue
        attributed.append(replace(alert, fault_id=fault.fault_id, detect_s=alert.received_t - fault.active_t))
    detections = []
    for fault in active:
        mine = sorted((a for a in attributed if a.fault_id == fault.fault_id), key=lambda a: a.received_t)
        first = Measure(mine[0].detect_s, "s", resolution, BASIS) if mine else \
            Measure(None, "s", resolution, BASIS, MeasureStatus.NOT_DETECTED)
        names = list(dict.fromkeys(a.name for a in mine))
        changed = _readiness_changed(monitor, fault.active_t or 0.0, fault.reverted_t or last_t)
        detections.append(FaultDetection(
            fault_id=fault.fault_id, kind=fault.kind, target=fault.target, alerts=mine, first_alert=first,
            expected_missing=[expected] if expected is not None and expected not in names else [],
            readiness_changed=changed,
            only_by=names[0] if len(names) == 1 and not changed and bool(monitor) else None,
        ))
    return attributed, detections


def _bounds(condition: Mapping[str, Any]) -> dict[str, float]:
    keys = ("min", "max") if condition.get("role") == "steady_state" else ("above", "below", "for_s")
    return {k: v for k in keys if (v := json_number(condition.get(k))) is not None}


def _spans(samples: Sequence[PromqlSample], end: float | None) -> list[tuple[float, float]]:
    """Where the condition did not hold: from each evaluation that failed until the next
    evaluation of it (the last until one interval later, or the end of the run)."""
    times = [s.t for s in samples]
    gaps = [b - a for a, b in zip(times, times[1:], strict=False) if b > a]
    step = statistics.median(gaps) if gaps else 0.0
    spans: list[tuple[float, float]] = []
    for i, sample in enumerate(samples):
        if sample.ok:
            continue
        until = samples[i + 1].t if i + 1 < len(samples) else max(sample.t + step, end or sample.t)
        if spans and spans[-1][1] >= sample.t:
            spans[-1] = (spans[-1][0], until)
        else:
            spans.append((sample.t, until))
    return spans


def promql_results(section: Mapping[str, Any], samples: Sequence[PromqlSample],
                   last_t: float | None) -> list[PromqlResult]:
    """Each PromQL condition the header's ``monitoring`` section lists, over its journalled
    evaluations."""
    raw = section.get("promql")
    conditions = [c for c in raw if isinstance(c, Mapping)] if isinstance(raw, list) else []
    by_name: dict[str, list[PromqlSample]] = {}
    for sample in sorted(samples, key=lambda s: s.t):
        by_name.setdefault(sample.condition, []).append(sample)
    results = []
    for condition in conditions:
        name = str(condition.get("name", ""))
        mine = by_name.get(name, [])
        errors = list(dict.fromkeys(s.error for s in mine if s.error))
        results.append(PromqlResult(
            name=name, role=str(condition.get("role", "")), query=str(condition.get("query", "")),
            bounds=_bounds(condition), evaluations=len(mine), held=sum(1 for s in mine if s.ok),
            breaches=_spans(mine, last_t), errors=errors[:5],
        ))
    return results


def steady_breaches(results: Sequence[PromqlResult]) -> list[tuple[float, float]]:
    """Where any steady-state PromQL condition did not hold, merged and sorted."""
    spans = sorted(span for r in results if r.role == "steady_state" for span in r.breaches)
    merged: list[tuple[float, float]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def unhealthy_where_breached(windows: Sequence[Window], spans: Sequence[tuple[float, float]]) -> list[Window]:
    """The windows, those overlapping a breach of a steady-state PromQL condition unhealthy."""
    if not spans:
        return list(windows)
    return [replace(w, healthy=False) if w.healthy and first_breach(spans, w.start, w.end) is not None else w
            for w in windows]


def monitoring_result(section: Mapping[str, Any], records: Sequence[Alert], promql: Sequence[PromqlResult],
                      faults: Sequence[FaultSpan], monitor: Sequence[MonitorSample], t_inject: float | None,
                      expected: str | None, readiness: tuple[Measure, str],
                      last_t: float | None) -> MonitoringResult | None:
    """Everything the run's monitoring showed (None when the run had none: an empty section);
    ``promql`` are the conditions' results (:func:`promql_results`)."""
    if not section:
        return None
    resolution = _number(section, "resolution_s")
    alerts = fired_alerts(records)
    measure, name, _ = alert_detection(alerts, t_inject, resolution, expected)
    attributed, per_fault = fault_detections(alerts, faults, monitor, resolution, expected, last_t)
    raw_rules = section.get("rules")
    rules: Mapping[str, Any] = raw_rules if isinstance(raw_rules, Mapping) else {}
    defined = section.get("alerts")
    return MonitoringResult(
        scrape_interval_s=_number(section, "scrape_interval_s"),
        scrape_timeout_s=_number(section, "scrape_timeout_s"),
        evaluation_interval_s=_number(section, "evaluation_interval_s"),
        group_wait_s=_number(section, "group_wait_s"),
        group_interval_s=_number(section, "group_interval_s"),
        resolution_s=resolution,
        resolved_resolution_s=_number(section, "resolved_resolution_s"),
        rules_file=str(rules.get("file", "")),
        rules_sha256=str(rules.get("sha256", "")),
        alerts_defined=[str(a) for a in defined] if isinstance(defined, list) else [],
        expected=expected,
        alerts=attributed,
        faults=per_fault,
        alert_detection=measure,
        alert_name=name,
        readiness_detection=readiness[0],
        readiness_signal=readiness[1],
        promql=list(promql),
    )
