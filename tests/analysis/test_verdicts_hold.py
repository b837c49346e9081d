"""Verdicts that hold (issue 12): what the report claims is true of the recorded requests."""

from __future__ import annotations

import pytest
from synthetic_run import Outage, RunSpec, write_run

from faultlab.analysis import MeasureStatus, analyse


def test_requests_held_by_a_pause_do_not_make_the_system_recover_before_the_clear(tmp_path):
    # A paused service: requests sent in the last 0.25 s before the clear are answered just
    # after it, fast enough to look healthy. The system delivered nothing until the clear.
    spec = RunSpec(outage=Outage(start=20.0, end=30.0, detect_lag=0.5, held=True), fault_for=10.0)
    a = analyse(write_run(tmp_path, spec))
    assert a.recovery_point.value >= a.t_clear
    assert a.rto_from_clear.status == MeasureStatus.MEASURED
    assert 0 <= a.rto_from_clear.value <= a.rto_from_clear.resolution


def test_recovered_before_the_clear_when_it_is_true(tmp_path):
    # the outage ends 3 s before the fault is reverted: answers came back before the clear
    spec = RunSpec(outage=Outage(start=20.0, end=27.0, detect_lag=0.5), fault_for=10.0)
    a = analyse(write_run(tmp_path, spec))
    assert a.recovery_point.value < a.t_clear
    assert a.rto_from_clear.status == MeasureStatus.RECOVERED_BEFORE_CLEAR


def test_impact_start_is_the_first_bad_request_after_the_fault_not_the_injection(tmp_path):
    # one stray failure 0.3 s before the fault; the fault bites 2 s after it took effect
    spec = RunSpec(fault_at=20.0, fault_for=12.0, failed_at=(19.7,),
                   outage=Outage(start=22.0, end=30.0, detect_lag=0.5))
    a = analyse(write_run(tmp_path, spec))
    assert a.impact_start.value == pytest.approx(22.0, abs=a.probe_interval_s)


def test_orders_completed_late_are_customer_impact_when_the_steady_state_bounds_them(tmp_path):
    # answered at once, completed only when the outage ends: no failure, no slow answer
    outage = Outage(start=20.0, end=30.0, detect_lag=0.5, late=True)
    unbounded = analyse(write_run(tmp_path / "a", RunSpec(outage=outage)))
    assert unbounded.impact_start.status == MeasureStatus.NO_IMPACT
    bounded = analyse(write_run(tmp_path / "b", RunSpec(outage=outage, steady_state={
        "success_rate": {"min": 0.99}, "p99_latency": {"max": 0.25}, "completion_delay": {"max": 2.0}})))
    assert bounded.impact_start.value == pytest.approx(20.0, abs=bounded.probe_interval_s)
    # requests sent from 28.1 s on complete within 2 s again (30.1 s - 28.1 s)
    assert bounded.recovery_point.value == pytest.approx(28.1, abs=bounded.recovery_point.resolution)


def test_a_check_the_plugin_did_not_run_is_not_checked_never_met(tmp_path):
    from faultlab.report import write_reports

    run = write_run(tmp_path, RunSpec(targets={"lost_orders": 0, "stuck_orders": 0}))
    # the plugin ran only lost_orders this time
    journal = run / "journal.jsonl"
    lines = journal.read_text().splitlines()
    lines = [line.replace('"duplicate_orders": 0, "duplicate_executions": 0, "stuck_orders": 0, "unreconciled": 0', "")
             .replace('"lost_orders": 0, }', '"lost_orders": 0}') for line in lines]
    journal.write_text("\n".join(lines) + "\n")
    a = analyse(run)
    assert a.integrity is not None and set(a.integrity.checked) == {"lost_orders"}
    verdicts = {v.target: v for v in a.verdicts}
    assert verdicts["lost_orders"].met
    assert verdicts["stuck_orders"].measured.status == MeasureStatus.NOT_CHECKED and not verdicts["stuck_orders"].met
    assert "duplicate_executions" not in verdicts  # no target, not run: no verdict at all
    write_reports(run)
    report = (run / "report.md").read_text()
    assert report.count("not checked") >= 3  # stuck (a target), duplicates, double executions, unreconciled


def test_an_unsteady_baseline_makes_the_run_inconclusive(tmp_path):
    spec = RunSpec(failed_at=tuple(round(5.0 + 0.05 * i, 6) for i in range(100)))  # 5-10 s: 100 failures
    a = analyse(write_run(tmp_path, spec))
    assert a.baseline is not None and a.baseline.met_steady_state is False
    assert a.inconclusive and a.outcome == "inconclusive" and not a.passed
    assert a.all_met  # the targets themselves were met: still no pass
    assert any(f.kind == "baseline_unsteady" and f.severity == "high" for f in a.findings)


def test_one_slow_window_in_a_steady_minute_is_not_an_unsteady_baseline(tmp_path):
    a = analyse(write_run(tmp_path, RunSpec(failed_at=(7.0,))))
    assert a.baseline is not None and a.baseline.healthy_windows < a.baseline.windows
    assert a.baseline.met_steady_state is True and a.passed


def test_an_instantaneous_fault_is_never_reported_as_unnoticed_after_it_cleared(tmp_path):
    spec = RunSpec(fault_for=0.0, outage=Outage(start=20.0, end=21.0, detect_lag=0.03))
    a = analyse(write_run(tmp_path, spec))
    assert a.detection.measured
    assert not any(f.kind in ("detected_after_clear", "impact_after_clear") for f in a.findings)


def test_a_finding_is_as_severe_as_the_miss_is_far(tmp_path):
    near = analyse(write_run(tmp_path / "near", RunSpec(targets={"recover_within": 9.0})))
    far = analyse(write_run(tmp_path / "far", RunSpec(targets={"recover_within": 2.0})))
    severity = {a.run_dir: next(f.severity for f in a.findings if f.kind == "target_missed") for a in (near, far)}
    assert severity[near.run_dir] == "low" and severity[far.run_dir] == "high"


def test_load_requests_are_counted_apart_from_the_business_requests(tmp_path):
    a = analyse(write_run(tmp_path, RunSpec()))
    sources = [r.source for r in a.customer_impact.whole_run]
    assert sources == ["canary", "load", "load_other", "total"]
    rows = {r.source: r for r in a.customer_impact.whole_run}
    assert rows["load"].sent and rows["load_other"].sent  # place_order apart from get_order
    assert rows["total"].sent == sum(r.sent for r in a.customer_impact.whole_run[:-1])


def test_an_error_budget_burnt_many_times_over_is_a_high_finding(tmp_path):
    a = analyse(write_run(tmp_path, RunSpec()))  # 10 s of failures in 60 s against a 1 % budget
    burn = next(f for f in a.findings if f.kind == "error_budget_exceeded")
    assert a.error_budget.consumed.value > 3 and burn.severity == "high"


def test_data_lost_is_the_span_of_acknowledgements_missing_after_the_fault(tmp_path):
    # canary sample i is sent at i * 0.05 s: c-300 .. c-320 are 15.00 .. 16.00 s
    lost = [f"c-{i}" for i in range(300, 321)]
    spec = RunSpec(integrity_violations=[{"check": "lost_orders", "ids": lost, "detail": "not in the database"}])
    a = analyse(write_run(tmp_path, spec))
    assert a.data_loss.status == MeasureStatus.MEASURED
    # from the last durable acknowledgement before c-300 (c-299, answered just after 14.95 s)
    # to the last lost one (c-320, answered just after 16.00 s)
    assert a.data_loss.value == pytest.approx(1.05, abs=0.06)
    assert a.integrity.ack_times["c-300"][0] == pytest.approx(15.0)
    clean = analyse(write_run(tmp_path / "clean", RunSpec()))
    assert clean.data_loss.status == MeasureStatus.MEASURED and clean.data_loss.value == 0.0


def test_the_intake_alert_is_shown_as_intake_halted_and_resumed(tmp_path):
    import json

    from faultlab.report import write_reports

    run = write_run(tmp_path, RunSpec())
    rows = [json.loads(line) for line in (run / "monitor.jsonl").read_text().splitlines()]
    for row in rows:
        row["detail"] = {"body": {"alerts": ["order_intake_failing"] if 21.0 <= row["t"] < 30.5 else []}}
    (run / "monitor.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    a = analyse(run)
    assert [(s.name, s.raised_t, s.cleared_t) for s in a.alerts] == [
        ("order_intake_failing", pytest.approx(21.0), pytest.approx(30.5))]
    assert [e.what for e in a.timeline if e.what.startswith("intake_")] == ["intake_halted", "intake_resumed"]
    write_reports(run, langs=("en", "ja"))
    assert "Order intake halted from t = 21.000 s to 30.500 s (9.500 s)." in (run / "report.md").read_text()
    assert "注文受付の停止" in (run / "report.ja.md").read_text()
