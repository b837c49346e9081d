"""The toxic path of one direction, on the relay's loop: inbox -> toxic stages -> outbox.

Chunks read from the source (<= 32 KiB, as Toxiproxy) are stamped with their receive time
into an inbox bounded in chunks and bytes; reading stops while it is full, so TCP holds the
sender back. One inbox item at a time runs through the direction's toxic stages
(:mod:`faultlab.proxy.toxics`), which turn it into scheduled events; the outbox performs
each event when it is due, on a loop timer, and sends with non-blocking writes (waiting for
the destination to be writable when it is full). Nothing here blocks and nothing needs a
thread or a descriptor of its own, so a toxic on thousands of connections costs only their
buffers and timers.

A chain change (seen before the next item is processed, and pushed by the proxy's sweep)
makes the outbox's remaining events due at once, as an interrupted Toxiproxy stub forwards
its in-flight chunk; when no toxic acts on the direction any more, the inbox is drained
first in, first out, and the direction goes back to the loop's fast path.
"""

from __future__ import annotations

import collections
import contextlib
import socket
import time
from typing import TYPE_CHECKING, Any

from faultlab.proxy.toxics import CLOSE, EOF, INFINITY, RESET, Stage

if TYPE_CHECKING:
    from faultlab.proxy.link import Direction
    from faultlab.proxy.loop import Timer

__all__ = ["ToxicPath"]

_CHUNK = 32 * 1024
_READS_PER_WAKE = 16
_INBOX_CHUNKS = 1024
_INBOX_BYTES = 16 << 20


class ToxicPath:
    """A direction's toxic pipeline, driven by the loop's events and timers."""

    def __init__(self, direction: Direction):
        self.direction = direction
        self.conn = direction.conn
        self.relay = direction.relay
        self.inbox: collections.deque[Any] = collections.deque()
        self.inbox_bytes = 0
        self.outbox: collections.deque[tuple[float, Any]] = collections.deque()
        self.interrupted = False
        self.unsent: memoryview | None = None
        self.stages: dict[str, tuple[int, Stage]] = {}
        self.order: list[Stage] = []
        self.generation = -1
        self.active = True
        self.src_eof = False
        self._timer: Timer | None = None
        self._timer_at = INFINITY
        self._released = False

    def start(self) -> None:
        """Take over the direction (loop thread)."""
        if not self.sync():
            self.conn.close()
            return
        self.advance()

    # -- what the loop watches ---------------------------------------------------------------

    def wants_read(self) -> bool:
        return (self.active and not self.src_eof and len(self.inbox) < _INBOX_CHUNKS
                and self.inbox_bytes < _INBOX_BYTES)

    def wants_write(self) -> bool:
        return self.unsent is not None

    def on_readable(self) -> None:
        direction = self.direction
        src, inbox, stats = direction.src, self.inbox, direction.stats
        for _ in range(_READS_PER_WAKE):
            try:
                data = src.recv(_CHUNK)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self.conn.close()
                return
            if not data:
                inbox.append(EOF)
                self.src_eof = True
                break
            stats[0] += len(data)
            inbox.append((time.monotonic(), data))
            self.inbox_bytes += len(data)
            if not self.wants_read():
                break
        self.advance()

    # -- chain changes -----------------------------------------------------------------------

    def chain_changed(self) -> None:
        """The chain changed (loop thread): flush what is in flight, re-read the chain, go on."""
        self.advance()

    def sync(self) -> bool:
        """Bring the stages in line with the chain; False if the connection must close."""
        direction = self.direction
        generation, chain = direction.toxics.state(direction.name)
        if generation == self.generation:
            return True
        if self.outbox:
            self.interrupted = True
        self.generation = generation
        direction.generation = generation
        now = time.monotonic()
        stages: dict[str, tuple[int, Stage]] = {}
        link_state = self.conn.link_state
        for toxic in chain:
            kept = self.stages.get(toxic.uid)
            if kept is not None and kept[0] == toxic.version:
                stages[toxic.uid] = kept
            else:
                state = link_state.setdefault((direction.name, toxic.uid), [0])
                active = direction.is_active(toxic)
                stages[toxic.uid] = (toxic.version, toxic.kind.new_stage(toxic.attributes, active, now, state))
        removed = [stage for uid, (_, stage) in self.stages.items() if uid not in stages]
        self.stages = stages
        self.order = [stages[t.uid][1] for t in chain]
        self.active = direction.any_active(chain)
        if len(link_state) > 2 * len(stages) + 2:
            live = {(d, uid) for d in ("upstream", "downstream") for uid in stages}
            for key in [k for k in link_state if k[0] == direction.name and k not in live]:
                del link_state[key]
        return not any(stage.closes_on_removal() for stage in removed)

    # -- the pipeline ------------------------------------------------------------------------

    def advance(self) -> None:
        """Perform what is due, then feed the stages from the inbox; re-arm the timer (loop thread)."""
        conn = self.conn
        direction = self.direction
        while not conn.closed and not self._released:
            if direction.toxics.generation(direction.name) != self.generation and not self.sync():
                conn.close()
                return
            if not self._perform():
                return
            self.interrupted = False
            if not self.inbox:
                self._idle()
                return
            item = self.inbox.popleft()
            now = time.monotonic()
            if item is EOF:
                events: list[tuple[float, Any]] = [(now, EOF)]
            else:
                self.inbox_bytes -= len(item[1])
                events = [item]
            for stage in self.order:
                events = stage.process(events, now)
            self.outbox.extend(events)

    def _idle(self) -> None:
        """Nothing in flight and nothing read: hand back, or wait for data or a stage's deadline."""
        if not self.active:
            self._arm(INFINITY)
            self.direction.back_to_fast()
            return
        deadlines = [d for d in (s.deadline() for s in self.order) if d is not None]
        if not deadlines:
            self._arm(INFINITY)
            return
        due = min(deadlines)
        if due <= time.monotonic():
            self.conn.close()
            return
        self._arm(due)

    def _perform(self) -> bool:
        """Carry out due events in order; False while waiting (timer, writable) or once finished."""
        outbox = self.outbox
        while outbox:
            when, payload = outbox[0]
            if when > time.monotonic() and (not self.interrupted or payload is RESET):
                self._arm(when)
                return False
            if payload is EOF:
                outbox.clear()
                with contextlib.suppress(OSError):
                    self.direction.dst.shutdown(socket.SHUT_WR)
                self.direction.finished()
                return False
            if payload is CLOSE:
                self.conn.close()
                return False
            if payload is RESET:
                self.conn.close(rst=True)
                return False
            view = self.unsent if self.unsent is not None else memoryview(payload)
            try:
                sent = self.direction.dst.send(view)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                self.conn.close()
                return False
            self.direction.stats[1] += sent
            if sent < len(view):
                self.unsent = view[sent:]
                self._arm(INFINITY)
                return False
            self.unsent = None
            outbox.popleft()
        return True

    def _arm(self, when: float) -> None:
        if when == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._timer_at = when
        if when != INFINITY:
            self._timer = self.relay.call_at(when, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = INFINITY
        self.advance()
        self.conn.update_interest()

    def release(self) -> None:
        """Stop for good (connection closed, EOF delivered or back on the fast path)."""
        self._released = True
        self._arm(INFINITY)
        self.inbox.clear()
        self.outbox.clear()
        self.unsent = None
