"""The one clock of a run: monotonic seconds, injectable so tests never sleep.

Every time in a run is measured on a :class:`Clock`. The real one reads
``time.monotonic()`` (``CLOCK_MONOTONIC`` on Linux, shared by every process on the
machine, so offsets taken in a child process agree with the harness's). Tests use
:class:`FakeClock`, whose ``sleep_until`` advances time instead of waiting.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "MonotonicClock", "FakeClock"]


@runtime_checkable
class Clock(Protocol):
    """What the engine needs from a clock."""

    def now(self) -> float:
        """Seconds on a monotonic scale (arbitrary origin)."""
        ...

    def sleep_until(self, deadline: float, wake: threading.Event | None = None) -> bool:
        """Wait until ``now() >= deadline`` or ``wake`` is set; True if ``wake`` was set."""
        ...


class MonotonicClock:
    """The real clock: ``time.monotonic()``; waits on an event so cancellation is prompt."""

    #: below this much remaining time, spin with short sleeps rather than one long wait,
    #: because ``Event.wait`` can overshoot by a scheduler tick.
    fine_s: float = 0.002

    def now(self) -> float:
        """Seconds since an arbitrary, system-wide origin (``CLOCK_MONOTONIC``)."""
        return time.monotonic()

    def sleep_until(self, deadline: float, wake: threading.Event | None = None) -> bool:
        """Block until ``deadline`` (absolute, on this clock) or until ``wake`` is set.

        Returns True when woken by ``wake`` before the deadline.
        """
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return bool(wake is not None and wake.is_set())
            coarse = remaining - self.fine_s
            if wake is not None:
                if wake.wait(coarse if coarse > 0 else min(remaining, 0.0005)):
                    return True
            else:
                time.sleep(coarse if coarse > 0 else min(remaining, 0.0005))


class FakeClock:
    """A clock for tests: time stands still until someone sleeps or calls :meth:`advance`.

    ``sleep_until`` jumps straight to the deadline (or returns at once when ``wake`` is
    already set), so a 90 s timeline runs in microseconds and ordering is deterministic.
    """

    def __init__(self, start: float = 1000.0):
        self._now = float(start)
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def now(self) -> float:
        """The current fake time."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` (never backward); returns the new time."""
        if seconds < 0:
            raise ValueError("a monotonic clock never goes back")
        with self._lock:
            self._now += seconds
            return self._now

    def sleep_until(self, deadline: float, wake: threading.Event | None = None) -> bool:
        """Jump to ``deadline`` unless ``wake`` is already set; True if woken."""
        if wake is not None and wake.is_set():
            return True
        with self._lock:
            self.sleeps.append(deadline)
            if deadline > self._now:
                self._now = deadline
        return False
