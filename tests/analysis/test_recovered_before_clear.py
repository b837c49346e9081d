"""Recovery before the fault cleared: never a negative time, and the after-clear target is met."""

from __future__ import annotations

from synthetic_run import Outage, RunSpec, write_run

from faultlab.analysis import MeasureStatus, analyse


def test_recovery_before_the_clear_is_reported_as_such_not_as_a_negative_time(tmp_path):
    # The fault stays in place 20-50 s, but customers are only hurt 20-30 s (like a load
    # spike that admission control absorbs after a while).
    spec = RunSpec(fault_at=20.0, fault_for=30.0, outage=Outage(start=20.0, end=30.0, detect_lag=1.0),
                   targets={"recover_within": 35.0, "recover_after_clear_within": 10.0})
    a = analyse(write_run(tmp_path, spec))
    assert a.recovery_point.measured and a.recovery_point.value < a.t_clear
    assert a.rto_from_clear.status == MeasureStatus.RECOVERED_BEFORE_CLEAR
    assert a.rto_from_clear.value is None
    assert a.rto_from_inject.measured and a.rto_from_inject.value > 0
    verdicts = {v.target: v for v in a.verdicts}
    assert verdicts["recover_after_clear_within"].met
    assert verdicts["recover_within"].met
    assert not any(f.kind == "target_missed" for f in a.findings)
    assert all(v is None or v >= 0 for v in (a.rto_from_clear.value, a.rto_from_inject.value, a.impact_duration.value))


def test_recovery_exactly_after_the_clear_stays_a_number(tmp_path):
    a = analyse(write_run(tmp_path, RunSpec(targets={"recover_after_clear_within": 10.0})))
    assert a.rto_from_clear.measured and a.rto_from_clear.value >= 0
