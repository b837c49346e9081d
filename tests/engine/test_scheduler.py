"""Scheduler: ordering, deadlines, abort, cancellation, reverts on early stop."""

from __future__ import annotations

import statistics
import threading
import time

import pytest

from faultlab.engine.clock import FakeClock, MonotonicClock
from faultlab.engine.scheduler import Scheduler, TimelineItem, compile_timeline


def test_fake_clock_advances_on_sleep_and_never_goes_back():
    clock = FakeClock(start=10.0)
    assert clock.sleep_until(12.5) is False
    assert clock.now() == 12.5
    clock.sleep_until(11.0)
    assert clock.now() == 12.5
    with pytest.raises(ValueError):
        clock.advance(-1)
    wake = threading.Event()
    wake.set()
    assert clock.sleep_until(20.0, wake) is True
    assert clock.now() == 12.5


def test_monotonic_clock_wakes_on_event():
    clock = MonotonicClock()
    wake = threading.Event()
    threading.Timer(0.05, wake.set).start()
    start = clock.now()
    assert clock.sleep_until(start + 5.0, wake) is True
    assert clock.now() - start < 1.0


def test_compile_orders_ends_before_starts_at_the_same_instant():
    noop = lambda: None  # noqa: E731
    plan = compile_timeline(
        [
            TimelineItem(15.0, noop, "db_stall", for_s=20.0, end_action=noop),
            (35.0, noop, "partition"),
            (5.0, noop, "spike"),
            TimelineItem(40.0, noop, "zero", for_s=0.0, end_action=noop),
        ],
        origin=100.0,
    )
    assert [(p.offset_s, p.name, p.phase) for p in plan] == [
        (5.0, "spike", "start"),
        (15.0, "db_stall", "start"),
        (35.0, "db_stall", "end"),
        (35.0, "partition", "start"),
        (40.0, "zero", "start"),
        (40.0, "zero", "end"),
    ]
    assert plan[0].deadline == 105.0


def test_item_validation():
    with pytest.raises(ValueError):
        TimelineItem(-1.0, lambda: None)
    with pytest.raises(ValueError):
        TimelineItem(1.0, lambda: None, for_s=2.0)


def test_runs_each_action_at_its_deadline_on_the_fake_clock():
    clock = FakeClock(start=0.0)
    seen = []

    def act(name):
        return lambda: seen.append((name, clock.now()))

    def slow():
        seen.append(("slow", clock.now()))
        clock.advance(3.0)  # an action that takes 3 s must not shift the next deadline

    scheduler = Scheduler(
        [(1.0, slow, "slow"), TimelineItem(2.0, act("inject"), "f", for_s=5.0, end_action=act("revert"))],
        origin=0.0,
        clock=clock,
        until_s=10.0,
    )
    result = scheduler.run()
    assert result.status == "completed"
    assert seen == [("slow", 1.0), ("inject", 4.0), ("revert", 7.0)]
    slips = {(r.name, r.phase): r.slip_s for r in result.records}
    assert slips[("f", "start")] == pytest.approx(2.0)
    assert slips[("f", "end")] == pytest.approx(0.0)
    assert clock.now() == 10.0
    assert result.stopped_t == 10.0


def test_abort_predicate_stops_while_waiting_and_reverts_started_faults():
    clock = FakeClock(start=0.0)
    done = []
    scheduler = Scheduler(
        [
            TimelineItem(1.0, lambda: done.append("inject"), "f", for_s=50.0, end_action=lambda: done.append("revert")),
            (30.0, lambda: done.append("late")),
        ],
        origin=0.0,
        clock=clock,
        abort_when=lambda: "success rate below 0.2 for 30 s" if clock.now() >= 12.0 else None,
        poll_s=0.5,
    )
    result = scheduler.run()
    assert result.status == "aborted"
    assert result.reason.startswith("success rate")
    assert done == ["inject", "revert"]
    assert clock.now() == pytest.approx(12.0)
    revert = result.records[-1]
    assert revert.early and revert.phase == "end"


def test_failing_action_is_recorded_and_optionally_stops():
    def boom():
        raise RuntimeError("proxy down")

    clock = FakeClock(start=0.0)
    after = []
    result = Scheduler([(1.0, boom, "x"), (2.0, lambda: after.append(1))], origin=0.0, clock=clock).run()
    assert result.status == "completed" and after == [1]
    assert result.records[0].ok is False and "proxy down" in result.records[0].error

    result = Scheduler(
        [(1.0, boom, "x"), (2.0, lambda: after.append(2))], origin=0.0, clock=FakeClock(0.0), stop_on_error=True
    ).run()
    assert result.status == "failed" and after == [1]


def test_broken_predicate_and_observer_are_not_fatal():
    def bad_predicate():
        raise ValueError("oops")

    def bad_observer(**kwargs):
        raise ValueError("observer oops")

    events = []
    result = Scheduler(
        [(1.0, lambda: None)],
        origin=0.0,
        clock=FakeClock(0.0),
        abort_when=bad_predicate,
        observers=[bad_observer, lambda **kw: events.append((kw["event"], kw["step"]))],
    ).run()
    assert result.status == "completed"
    assert events == [("schedule", "due"), ("schedule", "done"), ("schedule", "stopped")]


def test_cancel_from_another_thread_is_prompt_on_the_real_clock():
    clock = MonotonicClock()
    reverted = threading.Event()
    scheduler = Scheduler(
        [TimelineItem(0.0, lambda: None, "f", for_s=60.0, end_action=reverted.set)],
        origin=clock.now(),
        clock=clock,
        poll_s=10.0,
    )
    scheduler.start()
    time.sleep(0.1)
    t0 = time.monotonic()
    scheduler.cancel("operator pressed Ctrl-C")
    scheduler.cancel("twice is harmless")
    result = scheduler.join(5.0)
    assert result is not None and result.status == "cancelled"
    assert result.reason == "operator pressed Ctrl-C"
    assert time.monotonic() - t0 < 0.5
    assert reverted.is_set()


def test_real_clock_slip(record_property, capsys):
    """Slip of 150 actions 10 ms apart on the real clock (numbers recorded, not asserted)."""
    clock = MonotonicClock()
    origin = clock.now() + 0.05
    items = [(0.01 * i, lambda: None, f"a{i}") for i in range(150)]
    result = Scheduler(items, origin=origin, clock=clock).run()
    slips_ms = sorted(s * 1000 for s in result.slips)
    p50 = statistics.median(slips_ms)
    p99 = slips_ms[int(0.99 * (len(slips_ms) - 1))]
    record_property("slip_p50_ms", round(p50, 3))
    record_property("slip_p99_ms", round(p99, 3))
    with capsys.disabled():
        print(f"\nscheduler slip on the real clock: p50={p50:.3f} ms p99={p99:.3f} ms max={slips_ms[-1]:.3f} ms")
    assert all(s >= 0 for s in slips_ms)
