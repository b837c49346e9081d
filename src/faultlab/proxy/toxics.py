"""Toxic types: their attributes as the API shows them, and what each does to a stream.

A toxic type is registered by name in :data:`TOXIC_TYPES` (the API's ``type`` field).
Each type declares its attributes with Go types and units, as Toxiproxy's ``toxics/*.go``
do, and builds a :class:`Stage`: the per-connection, per-direction state that shapes the
chunks of one direction.

Stages work on *scheduled events* rather than sleeping themselves: a chunk read at time
``t`` enters the chain as ``[(t, data)]`` and every stage maps the events to new ones
(later, split, dropped, or turned into a close). The relay's writer then waits for each
event's time and performs it. This keeps pipelined data pipelined (two chunks read 1 ms
apart through a 100 ms latency leave 1 ms apart) and lets stages compose in the order they
were created, as Toxiproxy's chain of goroutines does; the relay's loop performs the events.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from faultlab.proxy.wire import Field

__all__ = ["ToxicType", "Attribute", "TOXIC_TYPES", "Stage", "EOF", "CLOSE", "RESET", "INFINITY", "MAX_MS", "MAX_US"]

INFINITY = float("inf")


class _Marker:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


EOF = _Marker("EOF")
"""The source finished sending: propagate a half-close once earlier data is written."""
CLOSE = _Marker("CLOSE")
"""A toxic ends the connection (both sockets closed)."""
RESET = _Marker("RESET")
"""A toxic resets the connection (SO_LINGER 0, so the peers see RST)."""

Event = tuple[float, Any]


class Stage:
    """One toxic's effect on one direction of one connection.

    ``active`` is the toxicity roll for this connection; an inactive stage passes events
    through untouched. ``process`` maps events to events; ``deadline`` (monotonic seconds,
    or ``None``) is when the stage closes the connection if no data reaches it first.
    """

    def __init__(self, attrs: dict[str, int], active: bool, now: float):
        self.attrs = attrs
        self.active = active
        self.started = now
        self.last_out = 0.0

    def process(self, events: list[Event], now: float) -> list[Event]:
        if not self.active:
            return events
        out: list[Event] = []
        for when, payload in events:
            for due, item in self.apply(when, payload, now):
                # A stage is sequential, like Toxiproxy's goroutine: nothing overtakes.
                self.last_out = max(due, self.last_out)
                out.append((self.last_out, item))
        return out

    def apply(self, when: float, payload: Any, now: float) -> list[Event]:
        return [(when, payload)]

    def deadline(self) -> float | None:
        return None

    def closes_on_removal(self) -> bool:
        return False


class LatencyStage(Stage):
    def apply(self, when: float, payload: Any, now: float) -> list[Event]:
        if payload is EOF:
            return [(when, payload)]
        latency, jitter = self.attrs["latency"], self.attrs["jitter"]
        delay = latency + (random.randrange(2 * jitter) - jitter if jitter > 0 else 0)
        return [(when + max(0, delay) / 1000.0, payload)]


class BandwidthStage(Stage):
    def __init__(self, attrs: dict[str, int], active: bool, now: float):
        super().__init__(attrs, active, now)
        self.busy_until = 0.0

    def apply(self, when: float, payload: Any, now: float) -> list[Event]:
        rate = self.attrs["rate"]  # KB/s, K = 1000, i.e. bytes per millisecond
        if payload is EOF:
            return [(max(when, self.busy_until), payload)]
        if rate == 0:
            return [(INFINITY, payload)]
        # Queued data starts when the previous chunk's time is up, not when the loop got to it:
        # a late timer must not slow the rate down (Go's toxic subtracts its oversleep too).
        start = max(when, self.busy_until) if self.busy_until else max(when, now)
        out: list[Event] = []
        piece = rate * 100
        data = payload
        elapsed = 0.0
        while len(data) > piece:
            elapsed += 0.1
            out.append((start + elapsed, data[:piece]))
            data = data[piece:]
        elapsed += len(data) / rate / 1000.0
        out.append((start + elapsed, data))
        self.busy_until = start + elapsed
        return out


class SlowCloseStage(Stage):
    def apply(self, when: float, payload: Any, now: float) -> list[Event]:
        if payload is EOF:
            return [(when + max(0, self.attrs["delay"]) / 1000.0, payload)]
        return [(when, payload)]


class TimeoutStage(Stage):
    def __init__(self, attrs: dict[str, int], active: bool, now: float):
        super().__init__(attrs, active, now)
        self.last_seen = now

    def apply(self, when: float, payload: Any, now: float) -> list[Event]:
        if payload is EOF:
            return [(when, payload)]
        self.last_seen = max(now, when)
        return []

    def deadline(self) -> float | None:
        timeout = self.attrs["timeout"]
        if not self.active or timeout <= 0:
            return None
        return self.last_seen + timeout / 1000.0

    def closes_on_removal(self) -> bool:
        return self.active


class ResetPeerStage(Stage):
    def __init__(self, attrs: dict[str, int], active: bool, now: float):
        super().__init__(attrs, active, now)
        self.fired = False

    def apply(self, when: float, payload: Any, now: float) -> list[Event]:
        if self.fired:
            return []
        self.fired = True
        return [(max(when, now) + max(0, self.attrs["timeout"]) / 1000.0, RESET)]


class SlicerStage(Stage):
    def __init__(self, attrs: dict[str, int], active: bool, now: float):
        super().__init__(attrs, active, now)
        self.busy_until = 0.0

    def _chunks(self, start: int, end: int) -> list[tuple[int, int]]:
        average, variation = self.attrs["average_size"], self.attrs["size_variation"]
        if end - start <= average + variation:
            return [(start, end)]
        mid = start + (end - start) // 2
        if variation > 0:
            mid += random.randrange(2 * variation) - variation
        mid = min(max(mid, start + 1), end - 1)
        return self._chunks(start, mid) + self._chunks(mid, end)

    def apply(self, when: float, payload: Any, now: float) -> list[Event]:
        if payload is EOF:
            return [(max(when, self.busy_until), payload)]
        delay = max(0, self.attrs["delay"]) / 1_000_000.0
        start = max(when, self.busy_until)
        out = [(start + i * delay, payload[a:b]) for i, (a, b) in enumerate(self._chunks(0, len(payload)))]
        self.busy_until = start + len(out) * delay
        return out


class LimitDataStage(Stage):
    """Forwards ``bytes`` in total, then closes; the count survives updates (``counter``)."""

    def __init__(self, attrs: dict[str, int], active: bool, now: float, counter: list[int]):
        super().__init__(attrs, active, now)
        self.counter = counter
        self.closed = False

    def apply(self, when: float, payload: Any, now: float) -> list[Event]:
        if self.closed:
            return []
        if payload is EOF:
            return [(when, payload)]
        remaining = max(0, self.attrs["bytes"] - self.counter[0])
        data = payload[:remaining]
        out: list[Event] = []
        if data:
            self.counter[0] += len(data)
            out.append((when, data))
        if self.attrs["bytes"] - self.counter[0] <= 0:
            self.closed = True
            out.append((when, CLOSE))
        return out


INT64_MAX = 2**63 - 1
MAX_MS = INT64_MAX // 1_000_000
"""The longest duration in ms a Go ``time.Duration`` holds (about 292 years): Toxiproxy's
arithmetic overflows beyond it, so it is the bound of every millisecond attribute."""
MAX_US = INT64_MAX // 1_000
"""The same bound for the microsecond attribute (slicer ``delay``)."""


@dataclass(frozen=True)
class Attribute:
    """One attribute of a toxic type: JSON key, Go type, the range accepted and its unit."""

    key: str
    go_type: str
    low: int
    high: int
    unit: str

    @property
    def field(self) -> Field:
        return Field(self.key, self.go_type)


def _ms(key: str) -> Attribute:
    return Attribute(key, "int64", 0, MAX_MS, "ms")


def _slicer_sizes(attrs: dict[str, int]) -> str | None:
    if attrs["size_variation"] > attrs["average_size"]:
        return (f"attributes.size_variation must not be greater than attributes.average_size "
                f"({attrs['average_size']} bytes), got {attrs['size_variation']}")
    return None


@dataclass(frozen=True)
class ToxicType:
    """A registered toxic type: its Go struct name, attributes (in Go field order) and stage."""

    name: str
    struct_name: str
    attributes: tuple[Attribute, ...]
    stage: type[Stage]
    relation: Callable[[dict[str, int]], str | None] = field(default=lambda attrs: None)
    stateful: bool = False
    acts_when_idle: bool = False
    """Whether it acts on a connection no data crosses (timeout's clock): live connections
    then take it up at once, not with their next byte."""

    @property
    def fields(self) -> tuple[Field, ...]:
        """The attributes as the JSON decoder sees them."""
        return tuple(a.field for a in self.attributes)

    def defaults(self) -> dict[str, int]:
        """Every attribute zero-filled, in Go's field order."""
        return {a.key: 0 for a in self.attributes}

    def validate(self, attrs: dict[str, int]) -> str | None:
        """The first attribute out of its range (named, with the range), or None."""
        for attr in self.attributes:
            value = attrs[attr.key]
            if not attr.low <= value <= attr.high:
                return (f"attributes.{attr.key} must be between {attr.low} and {attr.high} ({attr.unit}), "
                        f"got {value}")
        return self.relation(attrs)

    def roll(self, toxicity: float) -> bool:
        """The toxicity roll: does this toxic act on a connection? (a noop never needs to)."""
        return self.stage is not Stage and random.random() < toxicity

    def new_stage(self, attrs: dict[str, int], active: bool, now: float, state: Any = None) -> Stage:
        """A stage for one connection direction; ``active`` is that direction's roll."""
        if self.stateful:
            return self.stage(attrs, active, now, state)  # type: ignore[call-arg]
        return self.stage(attrs, active, now)


TOXIC_TYPES: dict[str, ToxicType] = {
    t.name: t
    for t in (
        ToxicType("noop", "NoopToxic", (), Stage),
        ToxicType("latency", "LatencyToxic", (_ms("latency"), _ms("jitter")), LatencyStage),
        ToxicType("bandwidth", "BandwidthToxic", (Attribute("rate", "int64", 0, INT64_MAX, "KB/s"),), BandwidthStage),
        ToxicType("slow_close", "SlowCloseToxic", (_ms("delay"),), SlowCloseStage),
        ToxicType("timeout", "TimeoutToxic", (_ms("timeout"),), TimeoutStage, acts_when_idle=True),
        ToxicType("reset_peer", "ResetToxic", (_ms("timeout"),), ResetPeerStage),
        ToxicType("slicer", "SlicerToxic",
                  (Attribute("average_size", "int", 1, INT64_MAX, "bytes"),
                   Attribute("size_variation", "int", 0, INT64_MAX, "bytes"),
                   Attribute("delay", "int", 0, MAX_US, "µs")),
                  SlicerStage, _slicer_sizes),
        ToxicType("limit_data", "LimitDataToxic", (Attribute("bytes", "int64", 0, INT64_MAX, "bytes"),),
                  LimitDataStage, stateful=True),
    )
}
"""Toxic types by the API's ``type`` name."""
