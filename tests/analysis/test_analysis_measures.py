"""Analysis against synthetic journals whose truth is known."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from synthetic_run import Outage, RunSpec, write_run

from faultlab.analysis import MeasureStatus, analyse
from faultlab.errors import InputError


def verdict(analysis, target):
    return next(v for v in analysis.verdicts if v.target == target)


@pytest.mark.parametrize(
    ("start", "end", "lag"),
    [(20.0, 30.0, 1.0), (20.03, 31.27, 1.37), (12.51, 14.49, 0.26), (33.333, 44.444, 4.99)],
)
def test_impact_detection_and_recovery_match_the_truth_within_the_probe_interval(tmp_path, start, end, lag):
    spec = RunSpec(fault_at=start, fault_for=end - start, outage=Outage(start=start, end=end, detect_lag=lag))
    a = analyse(write_run(tmp_path, spec))

    assert a.t_inject == pytest.approx(start)
    assert abs(a.impact_start.value - start) <= a.probe_interval_s
    assert abs(a.t_inject + a.detection.value - (start + lag)) <= a.monitor_interval_s + 1e-9
    # the recovery is seen when the system answers again: after the truth, within the
    # resolution it states (one probe interval plus the time that answer took)
    assert 0 <= a.recovery_point.value - end <= a.recovery_point.resolution
    assert a.recovery_point.resolution <= a.probe_interval_s + 0.05  # answers take 10-50 ms here
    assert a.rto_from_inject.value == pytest.approx(a.recovery_point.value - start)
    assert a.rto_from_clear.value == pytest.approx(a.recovery_point.value - a.t_clear)
    # every figure states its resolution
    assert (a.impact_start.resolution, a.impact_start.basis) == (a.step_s, "window_step")
    for m in (a.recovery_point, a.rto_from_inject, a.rto_from_clear):
        assert (m.resolution, m.basis) == (a.recovery_point.resolution, "probe_and_answer")
    assert (a.detection.resolution, a.detection.basis) == (pytest.approx(0.1), "monitor_interval")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    start=st.floats(min_value=8.0, max_value=25.0),
    length=st.floats(min_value=1.5, max_value=20.0),
    lag=st.floats(min_value=0.0, max_value=3.0),
)
def test_measures_stay_within_one_probe_interval_of_any_truth(tmp_path_factory, start, length, lag):
    assume(lag < length - 0.2)
    end = start + length
    spec = RunSpec(fault_at=start, fault_for=length, outage=Outage(start=start, end=end, detect_lag=lag))
    a = analyse(write_run(tmp_path_factory.mktemp("run"), spec))
    assert abs(a.impact_start.value - start) <= a.probe_interval_s + 1e-9
    assert 0 <= a.recovery_point.value - end <= a.recovery_point.resolution + 1e-9
    assert abs(a.detection.value - lag) <= a.monitor_interval_s + 1e-9


def test_not_recovered_is_a_miss_never_a_number(tmp_path):
    spec = RunSpec(outage=Outage(start=20.0, end=None, detect_lag=1.0), fault_for=60.0)
    a = analyse(write_run(tmp_path, spec))
    assert a.recovery_point.status == MeasureStatus.NOT_RECOVERED
    assert a.recovery_point.value is None and a.rto_from_inject.value is None
    v = verdict(a, "recover_within")
    assert v.outcome == "missed" and v.measured.value is None
    assert not a.passed


def test_recovery_that_does_not_hold_long_enough_is_not_a_recovery(tmp_path):
    # healthy again at 56 s but the run ends at 60 s: fewer than hold (5 s) of evidence
    spec = RunSpec(outage=Outage(start=20.0, end=56.0, detect_lag=1.0), fault_for=36.0)
    a = analyse(write_run(tmp_path, spec))
    assert a.recovery_point.status == MeasureStatus.NOT_RECOVERED


def test_not_detected_misses_the_detection_target(tmp_path):
    a = analyse(write_run(tmp_path, RunSpec(outage=Outage(detect_lag=None))))
    assert a.detection.status == MeasureStatus.NOT_DETECTED
    assert verdict(a, "detect_within").outcome == "missed"


def test_slow_detection_misses_with_the_measured_value(tmp_path):
    spec = RunSpec(outage=Outage(start=20.0, end=30.0, detect_lag=7.0))
    a = analyse(write_run(tmp_path, spec))
    v = verdict(a, "detect_within")
    assert v.outcome == "missed" and v.measured.value == pytest.approx(7.0, abs=0.1) and v.target_value == 5.0


def test_no_customer_impact_meets_the_recovery_target(tmp_path):
    a = analyse(write_run(tmp_path, RunSpec(outage=None)))
    assert a.impact_start.status == MeasureStatus.NO_IMPACT
    assert a.recovery_point.status == MeasureStatus.NO_IMPACT
    assert verdict(a, "recover_within").met
    assert a.detection.status == MeasureStatus.NOT_DETECTED


def test_a_lost_order_misses_the_integrity_target_and_names_the_order(tmp_path):
    spec = RunSpec(integrity_violations=[{"check": "lost_orders", "ids": ["c-123"], "detail": "acked at t=21.3"}])
    a = analyse(write_run(tmp_path, spec))
    v = verdict(a, "lost_orders")
    assert v.outcome == "missed" and v.measured.value == 1
    assert "c-123" in v.evidence
    assert any(f.kind == "target_missed" and f.params["target"] == "lost_orders" and f.severity == "high"
               for f in a.findings)


def test_builtin_integrity_rules_apply_without_a_stated_target(tmp_path):
    spec = RunSpec(targets={}, integrity_violations=[{"check": "duplicate_executions", "ids": ["c-9"]}])
    a = analyse(write_run(tmp_path, spec))
    v = verdict(a, "duplicate_executions")
    assert not v.preset and v.outcome == "missed" and "c-9" in v.evidence


def test_a_crashed_run_is_reported_as_crashed(tmp_path):
    a = analyse(write_run(tmp_path, RunSpec(completed=False)))
    assert a.crashed and a.status == "crashed" and not a.passed
    assert any(d.kind == "crashed" for d in a.deviations)
    assert any("torn last line" in p for p in a.problems)
    assert verdict(a, "lost_orders").outcome == "missed"  # no integrity record: no evidence


def test_rejections_failures_and_delays_are_counted_apart(tmp_path):
    a = analyse(write_run(tmp_path, RunSpec(outage=Outage(rejected=True), load=False)))
    canary = a.customer_impact.whole_run[0]
    assert (canary.source, canary.rejected, canary.failed) == ("canary", 200, 0)
    b = analyse(write_run(tmp_path / "b", RunSpec(load=False)))
    assert b.customer_impact.whole_run[0].failed == 200


def test_completion_delay_before_during_and_after(tmp_path):
    a = analyse(write_run(tmp_path))
    ed = a.completion_delay
    assert ed.before.count and ed.after.count
    assert ed.before.p99_s < 0.02 and ed.after.max_s > 0.5


def test_job_margin_against_its_target(tmp_path):
    job = {"started_t": 1.0, "finished_t": 50.0, "window_s": 60, "deadline_t": 55.0, "ok": True}
    a = analyse(write_run(tmp_path, RunSpec(targets={"job_margin_min": 10.0}, job=job)))
    v = verdict(a, "job_margin_min")
    assert v.outcome == "missed" and v.measured.value == 5.0 and v.comparison == "ge"
    assert a.jobs[0].duration_s == 49.0 and a.jobs[0].within_window


def test_unknown_targets_are_not_assessed_and_count_as_missed(tmp_path):
    a = analyse(write_run(tmp_path, RunSpec(targets={"coffee_within": 5.0})))
    assert verdict(a, "coffee_within").outcome == "not_assessed"
    assert not a.all_met


def test_slip_between_plan_and_effect_is_a_deviation(tmp_path):
    a = analyse(write_run(tmp_path, RunSpec(planned_at=18.0)))
    slip = next(d for d in a.deviations if d.kind == "slip")
    assert slip.params["slip_s"] == pytest.approx(2.0)
    assert a.faults[0].slip_s == pytest.approx(2.0)


def test_backlog_drain_and_error_budget(tmp_path):
    a = analyse(write_run(tmp_path))
    assert a.backlog_drain.value == pytest.approx(2.0, abs=0.11)
    assert a.error_budget.failures == 300 and a.error_budget.consumed.value == pytest.approx(300 / (0.01 * 1800))


def test_baseline_comes_from_before_the_fault(tmp_path):
    a = analyse(write_run(tmp_path))
    assert a.baseline.end == pytest.approx(19.5) and a.baseline.success_rate == 1.0
    assert a.baseline.met_steady_state is True


@pytest.mark.parametrize(
    ("content", "needle"),
    [(None, "no journal.jsonl"), (b"not json\n", "not readable JSON"),
     (b'{"type":"note"}\n', "header"), (b'{"type":"run","schema":"faultlab.journal/9"}\n', "unsupported")],
)
def test_bad_run_directories_are_input_errors(tmp_path, content, needle):
    if content is not None:
        (tmp_path / "journal.jsonl").write_bytes(content)
    with pytest.raises(InputError) as caught:
        analyse(tmp_path)
    assert needle in str(caught.value)


def test_result_is_plain_json(tmp_path):
    a = analyse(write_run(tmp_path))
    data = json.loads(json.dumps(a.to_dict()))
    assert data["detection"]["value"] == a.detection.value and data["passed"] is True


def test_detection_by_a_new_alert_while_still_ready_and_backlog_from_the_readiness_body(tmp_path):
    run = write_run(tmp_path)
    rows = [json.loads(line) for line in (run / "monitor.jsonl").read_text().splitlines()]
    for row in rows:
        alerts = ["router_down"]  # standing before the fault: not news
        if row["t"] >= 22.5:
            alerts.append("execution_delay")
        row["ready"] = True
        row["detail"] = {"body": {"ready": True, "alerts": alerts,
                                  "outbox_backlog": 7 if 20.0 <= row["t"] < 33.0 else 0}}
    (run / "monitor.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    a = analyse(run)
    assert a.detection.value == pytest.approx(2.5, abs=0.1)
    assert a.detection_signal == "alert: execution_delay"
    assert a.backlog_drain.value == pytest.approx(3.0, abs=0.1)


def test_integrity_violations_count_by_category(tmp_path):
    spec = RunSpec(integrity_violations=[
        {"check": "unreconciled", "ids": ["acct-1"], "detail": "cash off by 10"},
    ])
    a = analyse(write_run(tmp_path, spec))
    v = verdict(a, "unreconciled")
    assert v.outcome == "missed" and "acct-1" in v.evidence and "cash off by 10" in v.evidence


def test_impact_duration_against_its_target(tmp_path):
    a = analyse(write_run(tmp_path, RunSpec(targets={"impact_within": 5.0})))
    assert a.impact_duration.value == pytest.approx(10.0, abs=0.1)
    assert verdict(a, "impact_within").outcome == "missed"
    b = analyse(write_run(tmp_path / "b", RunSpec(outage=None, targets={"impact_within": 5.0})))
    assert verdict(b, "impact_within").met


def test_no_samples_after_the_fault_is_no_evidence_not_no_impact(tmp_path):
    run = write_run(tmp_path)
    rows = [json.loads(line) for line in (run / "canary.jsonl").read_text().splitlines()]
    (run / "canary.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows if r["t_send"] < 15.0))
    (run / "requests.jsonl").unlink()
    a = analyse(run)
    assert a.impact_start.status == MeasureStatus.NOT_MEASURED
    assert verdict(a, "recover_within").outcome == "missed"
