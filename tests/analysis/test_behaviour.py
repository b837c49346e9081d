"""The measures of how a system behaved under a fault: answers, latency breach, metrics, restarts."""

from __future__ import annotations

import json

from synthetic_run import Outage, RunSpec, write_run

from faultlab.analysis import analyse
from faultlab.analysis.behaviour import answers, latency_breach, metric_figures, restarts
from faultlab.analysis.model import MeasureStatus, Window
from faultlab.journal import CanarySample, MonitorSample, RequestSample, ServiceEvent


def _canary(t: float, ok: bool, status: int | None, latency: float = 0.01) -> CanarySample:
    return CanarySample(t_send=t, t_done=t + latency, ok=ok, latency_s=latency, status=status)


def test_answers_tell_refused_from_shed_from_hung() -> None:
    samples = [
        _canary(0.0, True, 201),
        _canary(0.1, False, 503, 0.02),      # refused fast
        _canary(0.2, False, 429, 0.001),     # shed by admission control
        _canary(0.3, False, None, 1.0),      # no answer: hung
        _canary(0.4, False, 201, 1.2),       # answered, but after the client's timeout
        RequestSample(t=0.5, name="place_order", ok=False, latency_s=1.5, status=504),
        RequestSample(t=0.6, name="get_order", ok=False, latency_s=0.0, status=None),  # not a business request
    ]
    found = answers(samples, business=("place_order",), shed_statuses=(429,))
    assert (found.sent, found.ok, found.rejected, found.shed, found.unanswered, found.late) == (6, 1, 3, 1, 1, 1)
    assert found.rejection_latency.count == 3 and found.rejection_latency.max_s == 1.5
    assert answers(samples).shed is None  # nothing declared: not measured, never a made-up zero


def _window(start: float, p99: float | None) -> Window:
    return Window(start=start, end=start + 1.0, samples=10 if p99 is not None else 0, ok=10, success_rate=1.0,
                  p99_latency_s=p99, throughput_rps=10.0, completion_delay_p99_s=None, healthy=True)


def test_latency_breach_counts_broken_windows_after_the_fault_only() -> None:
    windows = [_window(t / 10, p99) for t, p99 in
               [(0, 0.9), (10, 0.1), (20, 0.4), (21, 0.6), (22, 0.3), (23, 0.2), (24, None), (25, 0.1)]]
    breach = latency_breach(windows, 0.25, t_inject=1.5, step_s=0.1)
    assert breach.duration.value == 0.3  # three windows of one step each; the one before the fault is not counted
    assert breach.worst_p99.value == 0.6
    assert (breach.first_t, breach.last_t) == (2.0, 2.2)
    assert latency_breach(windows[:2], 0.25, 1.5, 0.1).duration.status == MeasureStatus.NOT_MEASURED
    recovered = latency_breach(windows, 0.25, t_inject=1.5, step_s=0.1, until=2.15)
    assert recovered.duration.value == 0.2 and recovered.last_t == 2.1  # the window at 2.2 came after recovery
    calm = latency_breach([_window(2.0, 0.1)], 0.25, 1.5, 0.1)
    assert calm.duration.status == MeasureStatus.NO_IMPACT and calm.worst_p99.value == 0.1


def _scrape(t: float, metrics: dict[str, float]) -> MonitorSample:
    return MonitorSample(t=t + 0.05, ready=True, status=200, detail={"metrics": metrics, "metrics_t": t})


def test_metric_figures_sum_matching_series_and_count_counter_resets() -> None:
    key_open = 'transitions_total{service="router",to="open"}'
    key_closed = 'transitions_total{service="router",to="closed"}'
    monitor = [
        _scrape(0.0, {key_open: 0, key_closed: 0, "pool_waiting": 0}),
        _scrape(1.0, {key_open: 1, key_closed: 0, "pool_waiting": 5}),
        _scrape(2.0, {key_open: 2, key_closed: 1, "pool_waiting": 9}),
        _scrape(3.0, {key_open: 1, key_closed: 1, "pool_waiting": 1}),   # the router restarted: counters reset
        _scrape(4.0, {key_open: 1, key_closed: 2, "pool_waiting": 0}),
        MonitorSample(t=4.5, ready=True),                                  # a poll without a scrape
    ]
    opened = metric_figures(monitor, 'transitions_total{to="open"}', t_inject=0.5, after_t=3.0)
    assert opened.series == 1 and opened.scrapes == 5
    assert opened.increase == 3.0          # 0 -> 1 -> 2, reset, 1 -> 1
    assert opened.increase_after == 0.0
    during = metric_figures(monitor, 'transitions_total{to="open"}', t_inject=0.5, after_t=3.0, t_clear=2.5)
    assert during.increase_during == 3.0   # from the scrape at 0 (before) to the one at 3 (after the clear)
    assert opened.increase_during is None  # no clearing time given
    both = metric_figures(monitor, "transitions_total", t_inject=0.5, after_t=3.0)
    assert both.series == 2 and both.increase == 5.0 and both.highest == 3.0
    pool = metric_figures(monitor, "pool_waiting", t_inject=0.5, after_t=3.0)
    assert (pool.before, pool.highest, pool.after_highest, pool.after_lowest, pool.after_scrapes) == (0, 9, 1, 0, 2)
    missing = metric_figures(monitor, "nothing_like_it", 0.5, 3.0)
    assert missing.scrapes == 0 and missing.increase is None and missing.highest is None


def test_restarts_per_service() -> None:
    events = [ServiceEvent(t=1.0, service="gateway", kind="started"),
              ServiceEvent(t=2.0, service="gateway", kind="killed", by_operator=True),
              ServiceEvent(t=2.5, service="gateway", kind="restarted", restart_count=1),
              ServiceEvent(t=3.0, service="router", kind="started")]
    found = restarts(events)
    assert found is not None and found.per_service == {"gateway": 1, "router": 0} and found.most == 1
    assert restarts([]) is None


def _append(path, rows) -> None:
    with open(path, "a", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)


def test_the_new_targets_get_verdicts_from_a_saved_run(tmp_path) -> None:
    targets = {"unanswered_requests": 0, "rejection_p99_within": 0.5, "shed_requests_min": 1,
               "latency_breach_within": 20.0, "worst_p99_within": 2.0, "restarts_max": 0,
               "metrics": {"pool_waiting": {"after_max": 0.0, "max": 100.0}, "absent_total": {"increase_min": 1.0}}}
    run_dir = write_run(tmp_path, RunSpec(targets=targets, outage=Outage(start=20.0, end=30.0, rejected=True)))
    journal = run_dir / "journal.jsonl"
    lines = journal.read_text().splitlines()
    end = lines.pop()
    lines += [json.dumps({"type": "service", "t": 25.0, "service": "gateway", "kind": "restarted",
                          "restart_count": 1}), end]
    journal.write_text("\n".join(lines) + "\n")
    _append(run_dir / "monitor.jsonl", [
        {"t": t + 0.01, "ready": True, "status": 200, "detail": {"metrics": {"pool_waiting": w}, "metrics_t": t}}
        for t, w in [(10.0, 0), (25.0, 12), (36.0, 2), (40.0, 0)]])
    a = analyse(run_dir)
    verdicts = {v.target: v for v in a.verdicts}
    # The canary was refused (503) during the outage, the load's orders were left without an answer.
    hung = verdicts["unanswered_requests"]
    assert not hung.met and hung.measured.value == a.answers.unanswered > 0
    assert verdicts["rejection_p99_within"].met            # the outage's refusals took 10 ms
    assert not verdicts["shed_requests_min"].met           # refused with 503, never shed with 429
    assert not verdicts["restarts_max"].met and verdicts["restarts_max"].evidence == ["gateway: 1"]
    assert verdicts["metric:pool_waiting:max"].met
    after = verdicts["metric:pool_waiting:after_max"]      # after 30 s (cleared) + 5 s (hold): 2, then 0
    assert not after.met and after.measured.value == 2.0
    absent = verdicts["metric:absent_total:increase_min"]
    assert not absent.met and absent.measured.status == MeasureStatus.NOT_MEASURED and absent.evidence
    assert a.answers is not None and a.answers.rejected > 0 and a.restarts is not None
    assert [m.selector for m in a.metrics] == ["pool_waiting", "absent_total"]
    assert any(f.kind == "target_missed" and f.params["target"] == "restarts_max" for f in a.findings)
    json.dumps(a.to_dict())  # result.json stays JSON


def test_the_baseline_ends_when_the_injection_began_not_when_the_fault_was_seen_active(tmp_path) -> None:
    """A fault acts from some moment between ``injected`` and ``active`` (a proxy call under
    way, a lock request queued): requests it failed then are not the baseline's."""
    failing = tuple(round(19.55 + 0.05 * i, 6) for i in range(9))  # 19.55 ... 19.95: while injecting
    run_dir = write_run(tmp_path, RunSpec(failed_at=failing))
    journal = run_dir / "journal.jsonl"
    # As the engine writes it: no baseline phase, so the fault's own times bound the baseline.
    rows = [r for r in map(json.loads, journal.read_text().splitlines()) if r.get("name") != "baseline"]
    for row in rows:
        if row.get("type") == "fault" and row["event"] == "injected":
            row["t"] = 19.5
    journal.write_text("".join(json.dumps(r) + "\n" for r in rows))
    a = analyse(run_dir)
    assert a.t_inject == 20.0
    assert a.baseline is not None and a.baseline.end == 19.5 and a.baseline.met_steady_state is True
    assert a.outcome == "passed"


def test_requests_held_by_the_fault_do_not_make_the_baseline_complete_late(tmp_path) -> None:
    """An order sent just before the fault and completed only after it was held by the fault:
    its completion delay is not the steady state's."""
    run_dir = write_run(tmp_path, RunSpec(steady_state={"success_rate": {"min": 0.99}, "p99_latency": {"max": 0.25},
                                                        "completion_delay": {"max": 2.0}}))
    held = [{"t": round(19.0 + 0.05 * i, 3), "ack": f"held-{i}", "delay_s": 12.0} for i in range(10)]
    rows = [json.loads(line) for line in (run_dir / "completions.jsonl").read_text().splitlines()]
    rows = sorted(rows + held, key=lambda r: r["t"])
    (run_dir / "completions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    a = analyse(run_dir)
    assert a.baseline is not None and a.baseline.met_steady_state is True
    assert a.baseline.completion_p99_s is not None and a.baseline.completion_p99_s < 2.0
