"""Settings from the environment, exponential backoff and a circuit breaker.

Shared by the trading-stack processes. ``TRADINGSTACK_PROFILE`` selects the defaults:
``strong`` (the default: short timeouts, fast reconnect, admission control, circuit breakers)
or ``weak`` (long reconnect backoff, no admission control, long timeouts); an
explicitly set variable always wins over the profile's default. ``TRADINGSTACK_UVLOOP=0``
keeps the services on the standard asyncio loop even when uvloop is installed.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["profile", "setting", "backoff_delay", "run", "CircuitBreaker", "CircuitOpen"]


def profile() -> str:
    """The resilience profile named by ``TRADINGSTACK_PROFILE`` (``strong`` or ``weak``)."""
    name = os.environ.get("TRADINGSTACK_PROFILE", "strong").strip().lower() or "strong"
    if name not in ("strong", "weak"):
        raise ValueError(f"TRADINGSTACK_PROFILE must be 'strong' or 'weak', not {name!r}")
    return name


def setting(name: str, strong: float, weak: float | None = None) -> float:
    """A numeric setting: the environment variable if set, else the profile's default."""
    raw = os.environ.get(name)
    if raw not in (None, ""):
        try:
            return float(raw)
        except ValueError as exc:
            raise ValueError(f"{name} must be a number, not {raw!r}") from exc
    return weak if (weak is not None and profile() == "weak") else strong


def run(main_coroutine) -> None:
    """Run a service's main coroutine, on uvloop when it is installed (``TRADINGSTACK_UVLOOP=0`` opts out)."""
    import asyncio  # noqa: PLC0415

    if os.environ.get("TRADINGSTACK_UVLOOP", "1") != "0":
        try:
            import uvloop  # noqa: PLC0415
        except ImportError:
            pass
        else:
            uvloop.run(main_coroutine)
            return
    asyncio.run(main_coroutine)


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with full jitter on the upper half: ``attempt`` counts from 0."""
    ceiling = min(cap, base * (2 ** min(attempt, 30)))
    return ceiling / 2 + random.random() * ceiling / 2


class CircuitOpen(Exception):
    """Raised instead of calling a dependency while its circuit breaker is open."""

    def __init__(self, name: str, retry_after: float):
        self.retry_after = retry_after
        super().__init__(f"{name} circuit open; retry in {retry_after:.2f}s")


@dataclass
class CircuitBreaker:
    """Closed -> open after ``threshold`` consecutive failures -> half-open after a backoff.

    While open, :meth:`check` raises :class:`CircuitOpen`. After the open period (exponential
    backoff between ``base`` and ``cap`` over consecutive openings) one trial call is let
    through; its success closes the breaker, its failure opens it again for longer.
    ``threshold <= 0`` disables the breaker. The clock is injectable for tests.
    ``on_change(state)`` is called on every transition (to count them in a metric).
    """

    name: str
    threshold: int
    base: float
    cap: float
    clock: Callable[[], float] = time.monotonic
    state: str = "closed"
    failures: int = 0
    openings: int = 0
    opened_until: float = 0.0
    trial_in_flight: bool = field(default=False, repr=False)
    on_change: Callable[[str], None] | None = field(default=None, repr=False, compare=False)

    def _enter(self, state: str) -> None:
        if state != self.state:
            self.state = state
            if self.on_change is not None:
                self.on_change(state)

    def check(self) -> None:
        """Raise :class:`CircuitOpen` unless a call may go ahead now."""
        if self.threshold <= 0 or self.state == "closed":
            return
        now = self.clock()
        if self.state == "open" and now >= self.opened_until:
            self._enter("half_open")
            self.trial_in_flight = False
        if self.state == "half_open" and not self.trial_in_flight:
            self.trial_in_flight = True
            return
        raise CircuitOpen(self.name, max(0.0, self.opened_until - now))

    def success(self) -> None:
        """Record a successful call."""
        self._enter("closed")
        self.failures, self.openings, self.trial_in_flight = 0, 0, False

    def failure(self) -> None:
        """Record a failed call (a timeout or a lost connection, not a business error)."""
        if self.threshold <= 0:
            return
        self.failures += 1
        if self.state == "half_open" or self.failures >= self.threshold:
            self.opened_until = self.clock() + backoff_delay(self.openings, self.base, self.cap)
            self.openings += 1
            self._enter("open")
            self.trial_in_flight = False

    def release_trial(self) -> None:
        """Let another trial through if the current one ended without a verdict."""
        self.trial_in_flight = False

    #: Every state a breaker can be in, for counters created at zero.
    STATES = ("closed", "half_open", "open")

    @property
    def code(self) -> int:
        """0 closed, 1 half-open, 2 open (for a gauge)."""
        return {"closed": 0, "half_open": 1, "open": 2}[self.state]
