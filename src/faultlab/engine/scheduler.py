"""The fault timeline, compiled to absolute deadlines on one clock and run against them.

A timeline is a list of items ``(offset_s, action)`` or :class:`TimelineItem` (which may
carry a duration ``for_s`` and an ``end_action``, the revert of a fault with ``for``).
:func:`compile_timeline` turns it into :class:`PlannedAction` s with absolute deadlines
``origin + offset``; :class:`Scheduler` waits for each deadline (never "sleep, then the
next step", so a slow action never shifts the ones after it), records the planned and the
actual time of every action, evaluates an abort predicate while it waits, and can be
cancelled from any thread. When it stops early it still runs the end actions of every
item it started: reverting does not depend on how the run went.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from faultlab.engine.clock import Clock, MonotonicClock
from faultlab.hub import Hub, Observer

__all__ = [
    "TimelineItem",
    "PlannedAction",
    "ActionRecord",
    "ScheduleResult",
    "Scheduler",
    "compile_timeline",
]

log = logging.getLogger(__name__)

Action = Callable[[], Any]


@dataclass(frozen=True)
class TimelineItem:
    """One entry of a timeline: ``action`` at ``at_s``; with ``for_s``, ``end_action`` after it."""

    at_s: float
    action: Action
    name: str = ""
    for_s: float | None = None
    end_action: Action | None = None

    def __post_init__(self) -> None:
        if self.at_s < 0:
            raise ValueError(f"{self.name or 'timeline item'}: offset {self.at_s} s is negative")
        if self.for_s is not None and self.for_s < 0:
            raise ValueError(f"{self.name or 'timeline item'}: duration {self.for_s} s is negative")
        if (self.for_s is None) != (self.end_action is None):
            raise ValueError(f"{self.name or 'timeline item'}: 'for_s' and 'end_action' go together")


@dataclass(frozen=True)
class PlannedAction:
    """An action with its absolute deadline on the clock; ``phase`` is ``start`` or ``end``."""

    deadline: float
    offset_s: float
    item: int
    phase: str
    name: str
    action: Action = field(repr=False, compare=False)


@dataclass(frozen=True)
class ActionRecord:
    """What happened to one planned action; times are seconds since the run's origin.

    ``slip_s`` is ``actual_t - planned_t`` (how late the action started). ``early`` marks an
    end action run before its time because the schedule stopped.
    """

    item: int
    phase: str
    name: str
    planned_t: float
    actual_t: float
    finished_t: float
    ok: bool
    error: str | None = None
    early: bool = False

    @property
    def slip_s(self) -> float:
        """How late the action started compared with its plan."""
        return self.actual_t - self.planned_t


@dataclass(frozen=True)
class ScheduleResult:
    """The outcome: ``status`` is ``completed``, ``aborted``, ``cancelled`` or ``failed``."""

    status: str
    reason: str
    records: tuple[ActionRecord, ...]
    stopped_t: float

    @property
    def slips(self) -> list[float]:
        """Slip of every action that ran on its own deadline (early reverts excluded)."""
        return [r.slip_s for r in self.records if not r.early]


def _as_item(entry: TimelineItem | tuple) -> TimelineItem:
    if isinstance(entry, TimelineItem):
        return entry
    offset, action, *rest = entry
    return TimelineItem(float(offset), action, name=str(rest[0]) if rest else getattr(action, "__name__", ""))


def compile_timeline(items: Iterable[TimelineItem | tuple], origin: float) -> list[PlannedAction]:
    """Absolute deadlines for every start and end action, in the order they must run.

    Ties are broken so that, at one instant, faults that end are reverted before new ones
    start (an item's own end always follows its start), then by their place in the timeline.
    """
    planned: list[tuple[tuple, PlannedAction]] = []
    for index, entry in enumerate(items):
        item = _as_item(entry)
        name = item.name or f"timeline[{index}]"
        planned.append(
            ((item.at_s, 1, index), PlannedAction(origin + item.at_s, item.at_s, index, "start", name, item.action))
        )
        if item.end_action is not None and item.for_s is not None:
            end = item.at_s + item.for_s
            rank = 0 if item.for_s > 0 else 2
            planned.append(
                ((end, rank, index), PlannedAction(origin + end, end, index, "end", name, item.end_action))
            )
    planned.sort(key=lambda pair: pair[0])
    return [p for _, p in planned]


class Scheduler:
    """Runs a compiled timeline against its deadlines on ``clock``.

    ``abort_when`` is called at least every ``poll_s`` while waiting and before each action;
    a truthy return (a reason string, or True) stops the schedule with status ``aborted``.
    ``until_s`` keeps the schedule (and the abort check) going until that offset even after
    the last action. ``stop_on_error`` decides whether a failing start action stops the run;
    end actions always run. Progress is published to ``observers`` (a
    :class:`~faultlab.hub.Hub` or plain callables) as ``schedule`` events whose ``step`` is
    ``due`` or ``done`` (with ``planned`` and ``record``) or ``stopped`` (with ``status`` and
    ``reason``); an observer's exception is logged, never fatal.
    """

    def __init__(
        self,
        timeline: Sequence[TimelineItem | tuple],
        *,
        origin: float,
        clock: Clock | None = None,
        abort_when: Callable[[], Any] | None = None,
        poll_s: float = 0.05,
        until_s: float | None = None,
        stop_on_error: bool = False,
        observers: Hub | Iterable[Observer] = (),
    ):
        self.clock: Clock = clock or MonotonicClock()
        self.origin = origin
        self.plan = compile_timeline(timeline, origin)
        self.abort_when = abort_when
        self.poll_s = poll_s
        self.until_s = until_s
        self.stop_on_error = stop_on_error
        self.hub = Hub.of(observers)
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._cancel_reason = ""
        self._records: list[ActionRecord] = []
        self._thread: threading.Thread | None = None
        self._result: ScheduleResult | None = None

    def cancel(self, reason: str = "cancelled") -> None:
        """Stop the schedule as soon as possible (safe from any thread, idempotent)."""
        with self._lock:
            if not self._cancel.is_set():
                self._cancel_reason = reason
                self._cancel.set()

    @property
    def records(self) -> list[ActionRecord]:
        """A snapshot of the actions run so far."""
        with self._lock:
            return list(self._records)

    def start(self) -> threading.Thread:
        """Run the schedule on a background thread; :meth:`join` returns its result."""
        if self._thread is not None:
            raise RuntimeError("the schedule was already started")
        self._thread = threading.Thread(target=self._run_to_result, name="faultlab-scheduler", daemon=True)
        self._thread.start()
        return self._thread

    def join(self, timeout: float | None = None) -> ScheduleResult | None:
        """Wait for a schedule started with :meth:`start`; None if still running."""
        if self._thread is None:
            raise RuntimeError("the schedule was never started")
        self._thread.join(timeout)
        return self._result

    def _run_to_result(self) -> None:
        self.run()

    def run(self) -> ScheduleResult:
        """Run every action at its deadline (blocking) and return what happened."""
        status, reason = "completed", ""
        started: dict[int, PlannedAction] = {}
        ends = {p.item: p for p in self.plan if p.phase == "end"}
        pending = list(self.plan)
        try:
            while pending:
                planned = pending[0]
                stop = self._wait(planned.deadline)
                if stop:
                    status, reason = stop
                    break
                pending.pop(0)
                record = self._execute(planned, early=False)
                if planned.phase == "start":
                    started[planned.item] = planned
                else:
                    started.pop(planned.item, None)
                if not record.ok and planned.phase == "start" and self.stop_on_error:
                    status, reason = "failed", f"{planned.name}: {record.error}"
                    break
            else:
                if self.until_s is not None:
                    stop = self._wait(self.origin + self.until_s)
                    if stop:
                        status, reason = stop
        finally:
            for item in list(started):
                end = ends.get(item)
                if end is not None:
                    self._execute(end, early=True)
        result = ScheduleResult(status, reason, tuple(self.records), self.clock.now() - self.origin)
        self._result = result
        self.hub.publish("schedule", step="stopped", status=status, reason=reason)
        return result

    def _wait(self, deadline: float) -> tuple[str, str] | None:
        while True:
            if self._cancel.is_set():
                return "cancelled", self._cancel_reason
            why = self._should_abort()
            if why:
                return "aborted", why
            now = self.clock.now()
            if now >= deadline:
                return None
            self.clock.sleep_until(min(deadline, now + self.poll_s), self._cancel)

    def _should_abort(self) -> str:
        if self.abort_when is None:
            return ""
        try:
            why = self.abort_when()
        except Exception:  # a broken predicate must not end a run that holds faults
            log.exception("abort predicate failed")
            return ""
        if not why:
            return ""
        return why if isinstance(why, str) else "abort condition met"

    def _execute(self, planned: PlannedAction, *, early: bool) -> ActionRecord:
        self.hub.publish("schedule", step="due", planned=planned)
        actual = self.clock.now() - self.origin
        error = None
        try:
            planned.action()
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            log.warning("action %s (%s) failed: %s", planned.name, planned.phase, error)
        record = ActionRecord(
            item=planned.item,
            phase=planned.phase,
            name=planned.name,
            planned_t=planned.offset_s,
            actual_t=actual,
            finished_t=self.clock.now() - self.origin,
            ok=error is None,
            error=error,
            early=early,
        )
        with self._lock:
            self._records.append(record)
        self.hub.publish("schedule", step="done", planned=planned, record=record)
        return record
