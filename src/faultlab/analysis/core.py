"""``analyse(run) -> Analysis``: every measure of DESIGN.md computed from a saved journal."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from faultlab.analysis.model import (
    Analysis,
    Baseline,
    CompletionDelay,
    CustomerImpact,
    Deviation,
    ErrorBudget,
    FaultSpan,
    Finding,
    ImpactCounts,
    IntegrityResult,
    JobResult,
    Measure,
    MeasureStatus,
    TimelineEvent,
    Verdict,
    Window,
)
from faultlab.analysis.rundir import RunJournal, load_run
from faultlab.analysis.targets import evaluate_targets
from faultlab.analysis.windows import (
    Sample,
    SteadyState,
    completion_delays_from,
    latency_stats,
    samples_from,
    seconds,
    sliding_windows,
)
from faultlab.plugin.declaration import Declaration

__all__ = ["analyse", "DEFAULT_WINDOW_S", "DEFAULT_HOLD_S", "DEFAULT_PROBE_INTERVAL_S"]

DEFAULT_WINDOW_S = 1.0
DEFAULT_HOLD_S = 5.0
DEFAULT_PROBE_INTERVAL_S = 0.1
SLIP_TOLERANCE_S = 0.5


def _float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _wall(origin: datetime | None, t: float | None) -> str | None:
    if origin is None or t is None:
        return None
    return (origin + timedelta(seconds=t)).astimezone(timezone.utc).isoformat(timespec="milliseconds")


def _faults(run: RunJournal) -> list[FaultSpan]:
    spans: dict[str, dict[str, Any]] = {}
    for rec in run.of_type("fault"):
        fid = str(rec.get("fault_id", "?"))
        span = spans.setdefault(
            fid,
            {"fault_id": fid, "kind": "", "target": "", "params": {}, "planned_t": None,
             "injected_t": None, "active_t": None, "reverted_t": None, "revert_failed": False,
             "revert_plan": ""},
        )
        for key in ("kind", "target", "revert_plan"):
            if rec.get(key):
                span[key] = str(rec[key])
        if isinstance(rec.get("params"), dict) and rec["params"]:
            span["params"] = rec["params"]
        if rec.get("planned_t") is not None:
            span["planned_t"] = _float(rec["planned_t"])
        t = _float(rec.get("t"))
        event = rec.get("event")
        # The first `active` counts (when the fault took effect); the last `reverted` counts.
        if event == "injected" and span["injected_t"] is None:
            span["injected_t"] = t
        elif event == "active" and span["active_t"] is None:
            span["active_t"] = t
        elif event == "reverted":
            span["reverted_t"] = t
        elif event == "revert_failed":
            span["revert_failed"] = True
    return [FaultSpan(**span) for span in spans.values()]


def _interval(times: Sequence[float]) -> float | None:
    gaps = [b - a for a, b in zip(times, times[1:]) if b > a]
    return round(statistics.median(gaps), 6) if gaps else None


def _within_run(samples: list[Sample], end_t: float | None, problems: list[str]) -> list[Sample]:
    """Drop samples timed outside the run (before its origin or after its end record).

    Such times come from a writer on another clock; counting them would invent windows.
    """
    kept: list[Sample] = []
    dropped: list[Sample] = []
    for sample in samples:
        (kept if sample.t >= 0 and (end_t is None or sample.t <= end_t) else dropped).append(sample)
    if dropped:
        sources = sorted({s.source for s in dropped})
        problems.append(
            f"{len(dropped)} {'/'.join(sources)} sample(s) timed outside the run "
            f"(before t=0 or after the end record) ignored"
        )
    return kept


def _measure_s(value: float | None, resolution: float | None, basis: str, status: str) -> Measure:
    if status != MeasureStatus.MEASURED:
        value = None
    return Measure(value=value, unit="s", resolution=resolution, basis=basis, status=status)


def _first_bad_at_or_after(samples: Sequence[Sample], steady: SteadyState, lo: float, hi: float) -> float | None:
    for s in samples:
        if s.t >= hi:
            break
        if s.t >= lo and steady.is_bad(s):
            return s.t
    return None


def _impact_and_recovery(
    windows: list[Window], samples: list[Sample], steady: SteadyState, t_inject: float | None,
    window_s: float, step_s: float, hold_s: float,
) -> tuple[Measure, Measure, int | None]:
    if t_inject is None or not any(w.end > t_inject + 1e-9 for w in windows):
        # No samples after the fault took effect: no evidence either way.
        none = _measure_s(None, step_s, "window_step", MeasureStatus.NOT_MEASURED)
        return none, none, None
    first = next(
        (i for i, w in enumerate(windows) if w.end > t_inject + 1e-9 and not w.healthy), None
    )
    if first is None:
        none = _measure_s(None, step_s, "window_step", MeasureStatus.NO_IMPACT)
        return none, none, None
    w = windows[first]
    lo = max(w.start, t_inject)
    bad = _first_bad_at_or_after(samples, steady, lo, w.end)
    impact = _measure_s(bad if bad is not None else lo, step_s, "window_step", MeasureStatus.MEASURED)

    # run_end[k]: start of the last window of the unbroken healthy run beginning at k.
    run_end: list[float | None] = [None] * len(windows)
    for k in range(len(windows) - 1, -1, -1):
        if windows[k].healthy:
            nxt = run_end[k + 1] if k + 1 < len(windows) else None
            run_end[k] = nxt if nxt is not None else windows[k].start
    need = max(0.0, hold_s - window_s)
    for k in range(first + 1, len(windows)):
        end = run_end[k]
        if end is not None and end + step_s * 1e-3 >= windows[k].start + need:
            return impact, _measure_s(windows[k].start, step_s, "window_step", MeasureStatus.MEASURED), first
    return impact, _measure_s(None, step_s, "window_step", MeasureStatus.NOT_RECOVERED), first


def _body(rec: dict[str, Any]) -> dict[str, Any]:
    detail = rec.get("detail") if isinstance(rec.get("detail"), dict) else {}
    body = detail.get("body")
    return body if isinstance(body, dict) else {}


def _alerts(rec: dict[str, Any], key: str | None) -> set[str]:
    alerts = _body(rec).get(key) if key else None
    return {str(a) for a in alerts} if isinstance(alerts, list) else set()


def _detection(monitor: list[dict[str, Any]], t_inject: float | None,
               alerts_key: str | None) -> tuple[Measure, float | None, str, float | None]:
    """When the stack's own monitoring first showed the problem: not ready, or a new alert
    (in the readiness body's list the plugin declared, ``monitor.alerts``).

    Alerts already raised in the last poll before t_inject do not count: they are not news.
    """
    rows = sorted((r for r in monitor if _float(r.get("t")) is not None), key=lambda r: float(r["t"]))
    interval = _interval([float(r["t"]) for r in rows])
    if t_inject is None or not rows:
        return _measure_s(None, interval, "monitor_interval", MeasureStatus.NOT_MEASURED), None, "", interval
    before = [r for r in rows if float(r["t"]) < t_inject]
    standing = _alerts(before[-1], alerts_key) if before else set()
    for rec in rows:
        t = float(rec["t"])
        if t < t_inject:
            continue
        new_alerts = sorted(_alerts(rec, alerts_key) - standing)
        if rec.get("ready") is not True or new_alerts:
            signal = "not ready" if rec.get("ready") is not True else ""
            if new_alerts:
                signal = "; ".join(filter(None, [signal, "alert: " + ", ".join(new_alerts)]))
            return _measure_s(t - t_inject, interval, "monitor_interval", MeasureStatus.MEASURED), t, signal, interval
    return _measure_s(None, interval, "monitor_interval", MeasureStatus.NOT_DETECTED), None, "", interval


def _backlog(monitor: list[dict[str, Any]], t_inject: float | None, t_from: float | None,
             interval: float | None, key: str | None) -> Measure:
    """Fault cleared until the backlog the plugin declared (``monitor.backlog``, a number in
    the readiness body) is back to its level before the fault."""
    series: list[tuple[float, float]] = []
    for rec in monitor:
        t, value = _float(rec.get("t")), (_float(_body(rec).get(key)) if key else None)
        if t is not None and value is not None:
            series.append((t, value))
    if not series or t_inject is None or t_from is None:
        return _measure_s(None, interval, "monitor_interval", MeasureStatus.NOT_MEASURED)
    series.sort()
    before = [v for t, v in series if t < t_inject]
    floor = max(before) if before else 0.0
    if not any(v > floor for t, v in series if t >= t_inject):
        return _measure_s(None, interval, "monitor_interval", MeasureStatus.NO_IMPACT)
    rose = False
    for t, v in series:
        if t < t_inject:
            continue
        rose = rose or v > floor
        if rose and t >= t_from and v <= floor:
            return _measure_s(t - t_from, interval, "monitor_interval", MeasureStatus.MEASURED)
    return _measure_s(None, interval, "monitor_interval", MeasureStatus.NOT_RECOVERED)


def _counts(samples: Sequence[Sample], source: str, delayed_over: float | None) -> ImpactCounts:
    ok = [s for s in samples if s.ok]
    return ImpactCounts(
        source=source,
        sent=len(samples),
        ok=len(ok),
        rejected=sum(1 for s in samples if not s.ok and s.answered),
        failed=sum(1 for s in samples if not s.ok and not s.answered),
        delayed=sum(
            1 for s in ok
            if delayed_over is not None and s.latency_s is not None and s.latency_s > delayed_over
        ),
    )


def _impact_counts(samples: Sequence[Sample], delayed_over: float | None) -> list[ImpactCounts]:
    rows = [
        _counts([s for s in samples if s.source == src], src, delayed_over)
        for src in ("canary", "load")
    ]
    rows.append(_counts(samples, "total", delayed_over))
    return rows


def _baseline(run: RunJournal, samples: list[Sample], windows: list[Window], steady: SteadyState,
              t_inject: float | None, last_t: float | None) -> Baseline | None:
    if not samples:
        return None
    start, end = samples[0].t, t_inject if t_inject is not None else (last_t or samples[-1].t)
    for rec in run.of_type("phase"):
        if rec.get("name") == "baseline" and _float(rec.get("t")) is not None:
            t = float(rec["t"])
            if rec.get("state") == "begin":
                start = t
            elif rec.get("state") == "end" and (t_inject is None or t <= t_inject):
                end = t
    chunk = [s for s in samples if start <= s.t < end]
    inside = [w for w in windows if w.start >= start - 1e-9 and w.end <= end + 1e-9]
    span = end - start
    return Baseline(
        start=start,
        end=end,
        samples=len(chunk),
        success_rate=(sum(1 for s in chunk if s.ok) / len(chunk)) if chunk else None,
        latency=latency_stats(s.latency_s for s in chunk),
        throughput_rps=(sum(1 for s in chunk if s.ok) / span) if span > 0 else None,
        healthy_windows=sum(1 for w in inside if w.healthy),
        windows=len(inside),
        met_steady_state=all(w.healthy for w in inside) if inside else None,
    )


def _jobs(run: RunJournal) -> list[JobResult]:
    out = []
    for rec in run.of_type("job_result"):
        started, finished = _float(rec.get("started_t")), _float(rec.get("finished_t"))
        window, deadline = seconds(rec.get("window_s")), _float(rec.get("deadline_t"))
        duration = finished - started if started is not None and finished is not None else None
        margin = _float(rec.get("margin_s"))
        if margin is None and deadline is not None and finished is not None:
            margin = deadline - finished
        out.append(
            JobResult(
                job=str(rec.get("job", "")),
                started_t=started,
                finished_t=finished,
                duration_s=duration,
                window_s=window,
                within_window=(duration <= window) if duration is not None and window is not None else None,
                deadline_t=deadline,
                deadline_name=rec.get("deadline_name"),
                margin_s=margin,
                ok=bool(rec.get("ok")),
            )
        )
    return out


def _integrity(run: RunJournal) -> IntegrityResult | None:
    recs = run.of_type("integrity")
    if not recs:
        return None
    rec = recs[-1]
    checked = rec.get("checked") if isinstance(rec.get("checked"), dict) else {}
    violations = [v for v in rec.get("violations") or [] if isinstance(v, dict)]
    return IntegrityResult(
        t=_float(rec.get("t")),
        acknowledged=int(rec["acknowledged"]) if isinstance(rec.get("acknowledged"), int) else None,
        checked={str(k): int(v) for k, v in checked.items() if isinstance(v, (int, float))},
        violations=violations,
    )


def _timeline(run: RunJournal, origin: datetime | None, derived: list[tuple[float | None, str, str]]) -> list[TimelineEvent]:
    events: list[TimelineEvent] = []
    for rec in run.records:
        t = _float(rec.get("t"))
        kind = str(rec.get("type", ""))
        if t is None or kind in ("run", "tools"):
            continue
        if kind == "phase":
            what, detail, ok = f"phase.{rec.get('state')}", str(rec.get("name", "")), True
        elif kind == "fault":
            what = f"fault.{rec.get('event')}"
            detail = f"{rec.get('fault_id', '')} {rec.get('kind', '')} → {rec.get('target', '')}"
            ok = rec.get("event") != "revert_failed"
        elif kind == "job":
            what, detail = f"job.{rec.get('event')}", str(rec.get("job", ""))
            ok = rec.get("event") != "failed"
        elif kind == "decision":
            what, detail, ok = "decision", f"{rec.get('what', '')}: {rec.get('why', '')}".strip(": "), True
        elif kind == "note":
            what, detail = f"note.{rec.get('level', 'info')}", str(rec.get("message", ""))
            ok = rec.get("level") != "warning"
        elif kind == "cleanup":
            what, detail, ok = "cleanup", str(rec.get("what", "")), bool(rec.get("ok"))
        elif kind == "integrity":
            n = sum(len(v.get("ids") or []) or 1 for v in rec.get("violations") or [] if isinstance(v, dict))
            what, detail, ok = "integrity", f"acknowledged={rec.get('acknowledged')} violations={n}", n == 0
        elif kind == "job_result":
            what, detail, ok = "job_result", str(rec.get("job", "")), bool(rec.get("ok"))
        elif kind == "end":
            what, detail = "end", f"{rec.get('status', '')} {rec.get('reason', '') or ''}".strip()
            ok = rec.get("status") == "completed"
        else:
            what, detail, ok = kind, "", True
        events.append(TimelineEvent(t=t, wall=_wall(origin, t), kind=kind, what=what, detail=detail, ok=ok))
    for t, what, detail in derived:
        if t is not None:
            events.append(TimelineEvent(t=t, wall=_wall(origin, t), kind="derived", what=what,
                                        detail=detail, derived=True))
    events.sort(key=lambda e: (e.t, e.derived))
    return events


def _tools(run: RunJournal) -> dict[str, str]:
    """What the header says, updated by the ``tools`` records the engine writes after stack up."""
    found: dict[str, str] = {}
    for source in [run.header, *run.of_type("tools")]:
        tools = source.get("tools")
        if isinstance(tools, dict):
            found.update({str(k): str(v) for k, v in tools.items() if v is not None})
    return found


def _deviations(run: RunJournal, faults: list[FaultSpan], status: str, crashed: bool,
                tolerance: float, problems: list[str]) -> list[Deviation]:
    out: list[Deviation] = []
    if crashed:
        out.append(Deviation("crashed", None, {}))
    elif status != "completed":
        end = run.end or {}
        out.append(Deviation("run_status", _float(end.get("t")), {"status": status, "reason": end.get("reason") or ""}))
    for f in faults:
        if f.active_t is None:
            out.append(Deviation("fault_never_active", f.injected_t or f.planned_t, {"fault": f.fault_id, "kind": f.kind}))
            continue
        if f.slip_s is not None and abs(f.slip_s) > tolerance:
            out.append(Deviation("slip", f.active_t, {"fault": f.fault_id, "kind": f.kind, "slip_s": round(f.slip_s, 3)}))
        if f.revert_failed:
            out.append(Deviation("revert_failed", f.reverted_t, {"fault": f.fault_id, "kind": f.kind}))
        elif f.reverted_t is None:
            out.append(Deviation("not_reverted", None, {"fault": f.fault_id, "kind": f.kind}))
    for rec in run.of_type("cleanup"):
        if not rec.get("ok"):
            out.append(Deviation("cleanup_failed", _float(rec.get("t")), {"what": str(rec.get("what", ""))}))
    for rec in run.of_type("job"):
        if rec.get("event") == "failed":
            out.append(Deviation("job_failed", _float(rec.get("t")), {"job": str(rec.get("job", ""))}))
    for rec in run.of_type("note"):
        if rec.get("level") == "warning":
            out.append(Deviation("warning", _float(rec.get("t")), {"message": str(rec.get("message", ""))}))
    for rec in run.of_type("decision"):
        if rec.get("what") == "abort":
            out.append(Deviation("abort", _float(rec.get("t")), {"why": str(rec.get("why", ""))}))
    if not run.of_type("integrity"):
        out.append(Deviation("integrity_missing", None, {}))
    for problem in problems:
        out.append(Deviation("journal_problem", None, {"problem": problem}))
    return out


def _findings(verdicts: list[Verdict], deviations: list[Deviation], baseline: Baseline | None,
              detection: Measure, recovery: Measure, jobs: list[JobResult],
              budget: ErrorBudget, impact: Measure, detected_t: float | None,
              t_clear: float | None, integrity_checks: set[str]) -> list[Finding]:
    raw: list[tuple[str, str, dict[str, Any]]] = []
    for v in verdicts:
        if not v.met:
            severity = "high" if v.target in integrity_checks or not v.measured.measured else "medium"
            raw.append((severity, "target_missed", {"target": v.target, "evidence": list(v.evidence)}))
    targets = {v.target for v in verdicts}
    if detection.status == MeasureStatus.NOT_DETECTED and "detect_within" not in targets:
        raw.append(("medium", "not_detected", {}))
    if recovery.status == MeasureStatus.NOT_RECOVERED and "recover_within" not in targets:
        raw.append(("high", "not_recovered", {}))
    severity_of = {"crashed": "high", "run_status": "high", "revert_failed": "high",
                   "not_reverted": "high", "cleanup_failed": "high", "fault_never_active": "medium",
                   "job_failed": "medium", "abort": "medium", "slip": "low",
                   "integrity_missing": "medium"}
    for d in deviations:
        if d.kind in severity_of:
            raw.append((severity_of[d.kind], f"deviation_{d.kind}", dict(d.params)))
    # Measures are defined from t_inject on; one that only starts after the fault was
    # cleared may have another cause, and the reader must be told so.
    if t_clear is not None and impact.measured and impact.value > t_clear:  # type: ignore[operator]
        raw.append(("medium", "impact_after_clear", {"after_s": round(impact.value - t_clear, 3)}))  # type: ignore[operator]
    if t_clear is not None and detected_t is not None and detected_t > t_clear:
        raw.append(("medium", "detected_after_clear", {"after_s": round(detected_t - t_clear, 3)}))
    if baseline is not None and baseline.met_steady_state is False:
        raw.append(("medium", "baseline_unsteady",
                    {"healthy": baseline.healthy_windows, "windows": baseline.windows}))
    for j in jobs:
        if j.within_window is False or (j.margin_s is not None and j.margin_s < 0) or not j.ok:
            raw.append(("high", "job_overran", {"job": j.job, "margin_s": j.margin_s}))
    if budget.consumed.measured and (budget.consumed.value or 0) > 1.0:
        raw.append(("low", "error_budget_exceeded", {"consumed": budget.consumed.value}))
    rank = {"high": 0, "medium": 1, "low": 2}
    raw.sort(key=lambda r: rank[r[0]])
    return [Finding(id=f"F-{i}", severity=s, kind=k, params=p) for i, (s, k, p) in enumerate(raw, start=1)]


def analyse(run: RunJournal | str | Path) -> Analysis:
    """Compute every measure, verdict, timeline entry and finding of one run.

    ``run`` is a run directory or a ``RunJournal`` already read from one. Pure: reads the
    saved files only, never the running stack.
    """
    if not isinstance(run, RunJournal):
        run = load_run(run)
    header = run.header
    problems = list(run.problems)
    declaration = Declaration.from_json(header.get("declaration"))
    window_s = seconds(header.get("window_s")) or DEFAULT_WINDOW_S
    hold_s = seconds(header.get("hold_s")) or DEFAULT_HOLD_S
    probe_s = seconds(header.get("probe_interval_s")) or DEFAULT_PROBE_INTERVAL_S
    step_s = probe_s
    steady = SteadyState.from_journal(header.get("steady_state"))
    try:
        origin = datetime.fromisoformat(str(header.get("origin_wall")))
    except ValueError:
        origin = None

    samples = samples_from(run.canary, "canary", problems) + samples_from(run.requests, "load", problems)
    samples.sort(key=lambda s: s.t)
    end = run.end
    crashed = end is None
    samples = _within_run(samples, _float((end or {}).get("t")), problems)
    status = "crashed" if crashed else str(end.get("status", "unknown"))
    record_times = [t for t in (_float(r.get("t")) for r in run.records) if t is not None]
    monitor_times = [t for t in (_float(r.get("t")) for r in run.monitor) if t is not None]
    last_t = max([*record_times, *monitor_times, *(s.t for s in samples)], default=None)

    delays = completion_delays_from(run.completions, problems)

    windows: list[Window] = []
    if samples:
        start = (samples[0].t // step_s) * step_s
        windows = sliding_windows(samples, steady, window_s=window_s, step_s=step_s,
                                  start=start, stop=samples[-1].t + probe_s, delays=delays)

    faults = _faults(run)
    actives = [f.active_t for f in faults if f.active_t is not None]
    t_inject = min(actives) if actives else None
    became_active = [f for f in faults if f.active_t is not None]
    t_clear = (
        max(f.reverted_t for f in became_active)  # type: ignore[type-var]
        if became_active and all(f.reverted_t is not None for f in became_active)
        else None
    )

    impact, recovery, _ = _impact_and_recovery(windows, samples, steady, t_inject, window_s, step_s, hold_s)
    detection, detected_t, detection_signal, monitor_interval = _detection(run.monitor, t_inject,
                                                                          declaration.monitor.alerts)

    def rto(since: float | None) -> Measure:
        if since is None:
            return _measure_s(None, step_s, "window_step", MeasureStatus.NOT_MEASURED)
        if recovery.status != MeasureStatus.MEASURED:
            return _measure_s(None, step_s, "window_step", recovery.status)
        if recovery.value < since:  # type: ignore[operator]
            return _measure_s(None, step_s, "window_step", MeasureStatus.RECOVERED_BEFORE_CLEAR)
        return _measure_s(recovery.value - since, step_s, "window_step", MeasureStatus.MEASURED)  # type: ignore[operator]

    rto_inject, rto_clear = rto(t_inject), rto(t_clear)
    impact_duration = rto(impact.value if impact.measured else None)
    if impact.status == MeasureStatus.NO_IMPACT:
        impact_duration = _measure_s(None, step_s, "window_step", MeasureStatus.NO_IMPACT)
    backlog = _backlog(run.monitor, t_inject, t_clear if t_clear is not None else t_inject, monitor_interval,
                       declaration.monitor.backlog)

    def split(lo: float | None, hi: float | None) -> list[float | None]:
        return [d for t, d in delays if (lo is None or t >= lo) and (hi is None or t < hi)]

    if t_inject is None:
        completion = CompletionDelay(latency_stats(split(None, None)), latency_stats([]), latency_stats([]))
    else:
        completion = CompletionDelay(
            before=latency_stats(split(None, t_inject)),
            during=latency_stats(split(t_inject, t_clear)),
            after=latency_stats(split(t_clear, None)) if t_clear is not None else latency_stats([]),
        )

    delayed_over = steady.p99_latency_max_s
    if impact.measured:
        until = recovery.value if recovery.measured else float("inf")
        during = [s for s in samples if impact.value <= s.t < until]  # type: ignore[operator]
    else:
        during = []
    customer = CustomerImpact(
        whole_run=_impact_counts(samples, delayed_over),
        during_impact=_impact_counts(during, delayed_over),
        delayed_threshold_s=delayed_over,
    )

    allowed = (1.0 - steady.success_rate_min) if steady.success_rate_min is not None else None
    failures = sum(1 for s in samples if not s.ok)
    if allowed is None or not samples or (allowed <= 0 and failures):
        consumed = Measure(None, "ratio", None, "exact", MeasureStatus.NOT_MEASURED)
    else:
        value = 0.0 if failures == 0 else failures / (allowed * len(samples))
        consumed = Measure(value, "ratio", None, "exact")
    budget = ErrorBudget(allowed_failure_ratio=allowed, requests=len(samples), failures=failures, consumed=consumed)

    baseline = _baseline(run, samples, windows, steady, t_inject, last_t)
    jobs = _jobs(run)
    integrity = _integrity(run)
    targets = header.get("targets") if isinstance(header.get("targets"), dict) else {}
    verdicts = evaluate_targets(
        targets,
        declaration,
        detection=detection,
        rto_from_inject=rto_inject,
        rto_from_clear=rto_clear,
        impact_duration=impact_duration,
        integrity=integrity,
        jobs=jobs,
        error_budget=budget,
        completion_delay=completion,
        backlog_drain=backlog,
    )
    deviations = _deviations(run, faults, status, crashed, max(SLIP_TOLERANCE_S, probe_s), problems)
    findings = _findings(verdicts, deviations, baseline, detection, recovery, jobs, budget,
                         impact, detected_t, t_clear, set(declaration.check_names))
    derived = [
        (impact.value, "impact_start", ""),
        (detected_t, "detected", detection_signal),
        (recovery.value, "recovered", ""),
        ((t_clear + backlog.value) if backlog.measured and t_clear is not None else None, "backlog_drained", ""),
    ]
    scenario = header.get("scenario") if isinstance(header.get("scenario"), dict) else {}
    stack = header.get("stack") if isinstance(header.get("stack"), dict) else {}
    return Analysis(
        run_id=str(header.get("run_id") or run.run_dir.name),
        run_dir=str(run.run_dir),
        schema=str(header.get("schema")),
        scenario=scenario,
        stack=stack,
        origin_wall=str(header["origin_wall"]) if header.get("origin_wall") else None,
        faultlab_version=header.get("faultlab_version"),
        host=header.get("host"),
        status=status,
        end_reason=str((end or {}).get("reason") or ""),
        crashed=crashed,
        duration_s=seconds(header.get("duration_s")),
        last_t=last_t,
        window_s=window_s,
        step_s=step_s,
        hold_s=hold_s,
        probe_interval_s=probe_s,
        monitor_interval_s=monitor_interval,
        steady_state={"success_rate_min": steady.success_rate_min, "p99_latency_max_s": steady.p99_latency_max_s},
        targets=dict(targets),
        header=dict(header),
        faults=faults,
        t_inject=t_inject,
        t_clear=t_clear,
        impact_start=impact,
        detection=detection,
        recovery_point=recovery,
        rto_from_inject=rto_inject,
        rto_from_clear=rto_clear,
        impact_duration=impact_duration,
        backlog_drain=backlog,
        detection_signal=detection_signal,
        baseline=baseline,
        completion_delay=completion,
        customer_impact=customer,
        error_budget=budget,
        jobs=jobs,
        integrity=integrity,
        cleanup=[dict(r) for r in run.of_type("cleanup")],
        verdicts=verdicts,
        timeline=_timeline(run, origin, derived),
        deviations=deviations,
        findings=findings,
        windows=windows,
        problems=problems,
        tools=_tools(run),
        declaration=declaration,
    )
