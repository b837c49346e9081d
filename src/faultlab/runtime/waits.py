"""Waiting for a service: readiness ("is it up?") and recovery ("is it healthy again?").

One family of wait strategies, modelled on testcontainers' ``core/waiting_utils.py``: a
:class:`WaitStrategy` makes one :class:`Observation` per :meth:`~WaitStrategy.check`;
:func:`wait_for` repeats checks until one passes (or until they have passed for ``hold_s``
in a row, for recovery) under one :class:`Deadline` that several waits can share. A
timeout raises :class:`~faultlab.errors.ReadinessTimeout` saying what was last observed
(status code, error, log tail).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Container, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from faultlab.errors import ReadinessTimeout, ServiceFailed

if TYPE_CHECKING:
    import httpx

__all__ = [
    "Deadline",
    "Observation",
    "WaitStrategy",
    "HttpWait",
    "TcpWait",
    "CallableWait",
    "AllOf",
    "wait_for",
]


class Deadline:
    """An absolute deadline on a monotonic clock, shared by every wait that uses it."""

    def __init__(self, timeout_s: float, *, clock: Any = None):
        self._now: Callable[[], float] = clock.now if clock is not None else time.monotonic
        self.timeout_s = timeout_s
        self.at = self._now() + timeout_s

    def remaining(self) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self.at - self._now())

    @property
    def expired(self) -> bool:
        """True once the deadline has passed."""
        return self._now() >= self.at

    def now(self) -> float:
        """The clock's current reading."""
        return self._now()


@dataclass(frozen=True)
class Observation:
    """The result of one check: ``ok`` and what was seen, in words and as fields."""

    ok: bool
    seen: str
    status: int | None = None
    error: str | None = None
    latency_s: float | None = None


class WaitStrategy:
    """One kind of check; subclasses implement :meth:`check` and set ``description``."""

    description: str = "condition"

    def check(self, deadline: Deadline) -> Observation:
        """Look once, within the time ``deadline`` leaves; never raise for a "not yet"."""
        raise NotImplementedError

    def __str__(self) -> str:
        return self.description


class HttpWait(WaitStrategy):
    """``GET url`` answers with an accepted status (default: any 2xx)."""

    def __init__(
        self,
        url: str,
        *,
        status: int | Container[int] | Callable[[int], bool] | None = None,
        request_timeout_s: float = 1.0,
        client: httpx.Client | None = None,
    ):
        self.url = url
        self.status = status
        self.request_timeout_s = request_timeout_s
        self._client = client
        self.description = f"HTTP GET {url}"

    def _accepts(self, code: int) -> bool:
        if self.status is None:
            return 200 <= code < 300
        if isinstance(self.status, int):
            return code == self.status
        if callable(self.status):
            return bool(self.status(code))
        return code in self.status

    def check(self, deadline: Deadline) -> Observation:
        """One GET with a timeout bounded by the deadline."""
        import httpx  # importing httpx pulls in rich (its CLI); keep it out of import time

        timeout = max(0.01, min(self.request_timeout_s, deadline.remaining()))
        start = time.monotonic()
        try:
            if self._client is not None:
                response = self._client.get(self.url, timeout=timeout)
            else:
                response = httpx.get(self.url, timeout=timeout)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return Observation(False, error, error=error, latency_s=time.monotonic() - start)
        latency = time.monotonic() - start
        body = response.text[:200].strip()
        seen = f"status {response.status_code}" + (f": {body}" if body else "")
        return Observation(self._accepts(response.status_code), seen, status=response.status_code, latency_s=latency)


class TcpWait(WaitStrategy):
    """A TCP connection to ``host:port`` is accepted."""

    def __init__(self, port: int, host: str = "127.0.0.1", *, connect_timeout_s: float = 1.0):
        self.host = host
        self.port = port
        self.connect_timeout_s = connect_timeout_s
        self.description = f"TCP connect {host}:{port}"

    def check(self, deadline: Deadline) -> Observation:
        """One connection attempt with a timeout bounded by the deadline."""
        timeout = max(0.01, min(self.connect_timeout_s, deadline.remaining()))
        start = time.monotonic()
        try:
            with socket.create_connection((self.host, self.port), timeout=timeout):
                pass
        except OSError as exc:
            error = f"{type(exc).__name__}: {exc}"
            return Observation(False, error, error=error, latency_s=time.monotonic() - start)
        return Observation(True, "connected", latency_s=time.monotonic() - start)


class CallableWait(WaitStrategy):
    """``fn()`` returns something truthy (or an :class:`Observation` with ``ok``).

    An exception raised by ``fn`` counts as "not yet" and is what the timeout reports.
    """

    def __init__(self, fn: Callable[[], Any], description: str = ""):
        self.fn = fn
        self.description = description or getattr(fn, "__name__", "callable")

    def check(self, deadline: Deadline) -> Observation:
        """Call ``fn`` once."""
        try:
            result = self.fn()
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            return Observation(False, error, error=error)
        if isinstance(result, Observation):
            return result
        return Observation(bool(result), f"returned {result!r}")


class AllOf(WaitStrategy):
    """Every strategy passes in the same round (checked in order, stopping at the first miss)."""

    def __init__(self, strategies: Sequence[WaitStrategy]):
        self.strategies = list(strategies)
        self.description = " and ".join(s.description for s in self.strategies)

    def check(self, deadline: Deadline) -> Observation:
        """Check each strategy; the first that fails is what is reported."""
        seen = []
        for strategy in self.strategies:
            observation = strategy.check(deadline)
            if not observation.ok:
                return Observation(False, f"{strategy.description}: {observation.seen}",
                                   status=observation.status, error=observation.error)
            seen.append(f"{strategy.description}: {observation.seen}")
        return Observation(True, "; ".join(seen))


def wait_for(
    strategy: WaitStrategy,
    deadline: Deadline | float,
    *,
    what: str = "",
    poll_s: float = 0.1,
    hold_s: float = 0.0,
    evidence: Callable[[], str] | None = None,
    give_up: Callable[[], str | None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Observation:
    """Check ``strategy`` until it passes (for ``hold_s`` in a row when given) or time is up.

    ``deadline`` is a shared :class:`Deadline` or a timeout in seconds. ``give_up()``
    returning a reason (say, the process exited) stops at once with ``ServiceFailed``.
    ``evidence()`` (say, the service's log tail) is attached to either error.
    """
    if not isinstance(deadline, Deadline):
        deadline = Deadline(float(deadline))
    label = what or strategy.description
    last: Observation | None = None
    before: Observation | None = None
    passing_since: float | None = None
    attempts = 0
    while True:
        if give_up is not None:
            reason = give_up()
            if reason:
                raise ServiceFailed(
                    f"{label}: gave up waiting: {reason}" + (f" (last seen: {last.seen})" if last else ""),
                    evidence=_evidence(evidence),
                )
        attempts += 1
        before, last = last, strategy.check(deadline)
        now = deadline.now()
        if last.ok:
            if passing_since is None:
                passing_since = now
            if now - passing_since >= hold_s:
                return last
        else:
            passing_since = None
        if deadline.expired:
            held = f", passing for {now - passing_since:.1f} of {hold_s:.1f} s" if passing_since is not None else ""
            seen = last.seen
            if before is not None and before.seen != last.seen:
                # The last check may have been cut short by the deadline (its own timeout is
                # bounded by what is left): what the one before saw is said too.
                seen += f"; the check before: {before.seen}"
            raise ReadinessTimeout(
                f"{label}: not satisfied within {deadline.timeout_s:g} s after {attempts} checks{held}; "
                f"last seen: {seen}",
                evidence=_evidence(evidence),
            )
        sleep(max(0.0, min(poll_s, deadline.remaining())))


def _evidence(evidence: Callable[[], str] | None) -> str:
    if evidence is None:
        return ""
    try:
        return evidence()
    except Exception as exc:
        return f"(could not collect evidence: {exc})"
