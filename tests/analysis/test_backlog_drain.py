"""The drain of the backlog a fault left, read from the stack's readiness polls.

Both series are what quarterly drills recorded: FT-08 (the exchange link cut 30 s: 3,080
waiting, then the rest of the run between 6 and 19 while the router also took 3,000 fills,
against 5 before the fault) and FT-18 (the router killed and back within a second: nothing
piled up, but one entry was caught waiting 15 s later, against 0 before). By the number
alone neither drained in time; by the oldest wait both drained within two seconds.
"""

from __future__ import annotations

from faultlab.analysis.measures import backlog_drain
from faultlab.analysis.model import MeasureStatus
from faultlab.journal import MonitorSample


def _polls(rows):
    """(t, backlog, oldest wait) as polls of the readiness body."""
    return [MonitorSample(t=t, ready=True, status=200,
                          detail={"body": {"backlog": n, **({"waiting": age} if age is not None else {})}})
            for t, n, age in rows]


def _ft08(with_age: bool):
    rows = [(t, n, 0.2 if n else 0.0) for t, n in ((3, 2), (4, 5), (5, 0), (6, 3), (7, 1))]
    rows += [(t, 100 * (t - 8), t - 8.0) for t in range(9, 38)]           # cut: piling up
    rows += [(38.5, 3080, 30.3), (39.0, 900, 30.8), (39.5, 14, 0.4)]       # cleared at 38: drained
    rows += [(40 + 0.5 * i, 6 + (i * 7) % 14, 0.3) for i in range(20)]    # settles at 6-19
    return _polls([(t, n, age if with_age else None) for t, n, age in rows])


def _ft18(with_age: bool):
    rows = [(t, 0, 0.0) for t in range(3, 26)] + [(26, 1, 0.001), (27, 1, 0.002), (31, 0, 0.0)]
    return _polls([(t, n, age if with_age else None) for t, n, age in rows])


def test_a_burst_drained_when_nothing_waits_from_before_the_clear():
    drain = backlog_drain(_ft08(True), 8.0, 38.0, 0.1, "backlog", "waiting")
    assert drain.status == MeasureStatus.MEASURED and drain.value == 1.5


def test_an_entry_caught_waiting_long_after_the_fault_is_not_its_backlog():
    drain = backlog_drain(_ft18(True), 11.06, 11.07, 0.1, "backlog", "waiting")
    assert drain.status == MeasureStatus.MEASURED and round(drain.value, 2) == 0.93


def test_without_the_age_the_level_before_the_fault_decides():
    assert backlog_drain(_ft08(False), 8.0, 38.0, 0.1, "backlog", "waiting").status == MeasureStatus.NOT_RECOVERED
    ft18 = backlog_drain(_ft18(False), 11.06, 11.07, 0.1, "backlog")
    assert ft18.status == MeasureStatus.MEASURED and round(ft18.value, 2) == 19.93


def test_an_entry_still_waiting_from_before_the_clear_is_not_drained():
    rows = [(3, 0, 0.0), (9, 40, 1.0), (20, 40, 12.0), (21, 2, 12.9), (22, 2, 13.9)]
    assert backlog_drain(_polls(rows), 8.0, 20.0, 0.1, "backlog", "waiting").status == MeasureStatus.NOT_RECOVERED
    rows.append((23, 2, 0.5))
    assert backlog_drain(_polls(rows), 8.0, 20.0, 0.1, "backlog", "waiting").value == 3.0


def test_no_rise_is_no_impact_and_no_backlog_key_is_not_measured():
    flat = _polls([(t, 1, 0.1) for t in range(3, 30)])
    assert backlog_drain(flat, 8.0, 9.0, 0.1, "backlog", "waiting").status == MeasureStatus.NO_IMPACT
    assert backlog_drain(flat, 8.0, 9.0, 0.1, None).status == MeasureStatus.NOT_MEASURED
