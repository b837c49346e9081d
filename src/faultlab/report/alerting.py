"""The report's account of detection by the run's real monitoring (a stack with ``monitoring:``).

Both ways of detecting side by side (the first alert that reached faultlab, and the
readiness endpoint polled at 10 Hz), each with its resolution; every alert that fired, under
which fault, when Prometheus made it active, when faultlab received it and its time to
detect; the expected alert that never fired; a fault seen by one alert and nothing else;
the scenario's PromQL conditions. Blocks of :mod:`faultlab.report.document`, in the
catalogue's words.
"""

from __future__ import annotations

from typing import Any

from faultlab.analysis import Analysis, FaultDetection, FiredAlert, Measure, MonitoringResult
from faultlab.report.format import measure_text, resolution_text, seconds_text
from faultlab.report.messages import Catalogue

__all__ = ["monitoring_blocks", "detection_rows"]


def _t(t: float | None, cat: Catalogue) -> str:
    return cat("none") if t is None else f"{t:.3f}"


def _way(m: Measure, signal: str, cat: Catalogue) -> str:
    text = measure_text(m, cat)
    if m.measured and signal:
        text = cat("alerting.value", value=text, signal=signal)
    return f"{text} — {resolution_text(m, cat)}"


def detection_rows(a: Analysis, cat: Catalogue) -> list[tuple[str, Measure, dict[str, Any]]]:
    """Rows for the measures table when the run had monitoring: detection by the readiness
    endpoint, shown beside the alert detection that the targets judge."""
    if a.monitoring is None:
        return []
    return [("m.detection_readiness", a.monitoring.readiness_detection, {})]


def _summary(m: MonitoringResult, cat: Catalogue) -> list[tuple[str, str]]:
    by_alert = cat("alerting.by_alert_named", alert=m.expected) if m.expected else cat("alerting.by_alert")
    signal = cat("alerting.alert_signal", alert=m.alert_name) if m.alert_name else ""
    rows = [
        (by_alert, _way(m.alert_detection, signal, cat)),
        (cat("alerting.by_readiness"), _way(m.readiness_detection, m.readiness_signal, cat)),
    ]
    if m.alert_detection.measured and m.readiness_detection.measured:
        assert m.alert_detection.value is not None and m.readiness_detection.value is not None
        rows.append((cat("alerting.later"), seconds_text(m.alert_detection.value - m.readiness_detection.value, cat)))
    return rows


def _alert_row(fault: str, alert: FiredAlert, cat: Catalogue) -> list[str]:
    resolved = cat("alerting.still") if alert.resolved_received_t is None else _t(alert.resolved_received_t, cat)
    return [fault, alert.name, _t(alert.active_t, cat), _t(alert.received_t, cat),
            seconds_text(alert.detect_s, cat), resolved]


def _fault_name(f: FaultDetection) -> str:
    return f"{f.fault_id} ({f.kind} → {f.target})"


def _fault_sentences(f: FaultDetection, cat: Catalogue) -> list[str]:
    about = {"fault": f.fault_id, "kind": f.kind, "target": f.target}
    sentences = []
    if f.only_by is not None:
        sentences.append(cat("alerting.only", alert=f.only_by, **about))
    if not f.alerts:
        sentences.append(cat("alerting.no_alert", **about))
    sentences += [cat("alerting.expected_missing", alert=name, **about) for name in f.expected_missing]
    return sentences


def _promql(m: MonitoringResult, cat: Catalogue) -> list[dict[str, Any]]:
    if not m.promql:
        return []
    rows, oks = [], []
    for r in m.promql:
        bounds = ", ".join(f"{k.removesuffix('_s')} {v:g}" for k, v in r.bounds.items())
        first = f"{len(r.breaches)} ({_t(r.breaches[0][0], cat)})" if r.breaches else "0"
        rows.append([r.name, cat(f"alerting.role.{r.role}") if cat.has(f"alerting.role.{r.role}") else r.role,
                     r.query, bounds, str(r.evaluations), str(r.held), first,
                     "; ".join(r.errors) or cat("none")])
        oks.append(not r.breaches)
    return [
        {"kind": "p", "text": cat("alerting.promql"), "strong": True},
        {"kind": "table", "headers": [cat(f"col.{k}") for k in ("condition", "used_for", "query", "bounds",
                                                                 "evaluations", "held", "breaches", "errors")],
         "rows": rows, "ok": oks},
    ]


def monitoring_blocks(a: Analysis, cat: Catalogue) -> list[dict[str, Any]]:
    """The blocks of the results section about the run's Prometheus and Alertmanager
    (nothing when the run had none)."""
    m = a.monitoring
    if m is None:
        return []
    blocks: list[dict[str, Any]] = [
        {"kind": "h", "text": cat("res.alerting")},
        {"kind": "p", "text": cat(
            "alerting.intro", scrape=seconds_text(m.scrape_interval_s, cat),
            timeout=seconds_text(m.scrape_timeout_s, cat), evaluation=seconds_text(m.evaluation_interval_s, cat),
            wait=seconds_text(m.group_wait_s, cat), interval=seconds_text(m.group_interval_s, cat),
            resolution=seconds_text(m.resolution_s, cat), rules=m.rules_file or cat("none"),
            alerts=", ".join(m.alerts_defined) or cat("none"))},
        {"kind": "kv", "rows": _summary(m, cat)},
        {"kind": "p", "text": cat("alerting.by_fault"), "strong": True},
    ]
    rows: list[list[str]] = []
    oks: list[bool] = []
    sentences: list[str] = []
    for f in m.faults:
        for alert in f.alerts:
            rows.append(_alert_row(_fault_name(f), alert, cat))
            oks.append(True)
        for name in f.expected_missing:
            rows.append([_fault_name(f), name, cat("none"), cat("alerting.never"), cat("mstatus.not_detected"),
                         cat("none")])
            oks.append(False)
        if not f.alerts and not f.expected_missing:
            rows.append([_fault_name(f), cat("alerting.no_alert_row"), cat("none"), cat("none"),
                         cat("mstatus.not_detected"), cat("none")])
            oks.append(False)
        sentences += _fault_sentences(f, cat)
    before = [alert for alert in m.alerts if alert.fault_id is None]
    for alert in before:
        rows.append(_alert_row(cat("alerting.before_any"), alert, cat))
        oks.append(False)
    if rows:
        blocks.append({"kind": "table", "rows": rows, "ok": oks, "headers": [
            cat("col.fault"), cat("col.alert"), cat("col.alert_active"), cat("col.received"),
            cat("col.time_to_detect"), cat("col.resolved_received")]})
    else:
        blocks.append({"kind": "p", "text": cat("alerting.none")})
    if before:
        sentences.append(cat("alerting.before", alerts=", ".join(dict.fromkeys(x.name for x in before))))
    if sentences:
        blocks.append({"kind": "list", "items": sentences})
    return blocks + _promql(m, cat)
