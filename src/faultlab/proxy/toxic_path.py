"""The toxic path of one direction: reader thread -> bounded queue -> writer thread.

The reader stamps chunks (<= 32 KiB, as Toxiproxy) with their receive time into a queue
bounded in chunks and bytes; the writer runs them through the direction's toxic stages
(:mod:`faultlab.proxy.toxics`) and performs each scheduled event when it is due. Chain
changes wake both threads; when no toxic acts on the direction any more, the queue is
drained in order and the direction is handed back to the loop's fast path.
"""

from __future__ import annotations

import collections
import os
import select
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from faultlab.proxy.loop import nonblocking_pipe
from faultlab.proxy.toxics import CLOSE, EOF, INFINITY, RESET, Stage

if TYPE_CHECKING:
    from faultlab.proxy.link import Direction

__all__ = ["ToxicPath"]

_CHUNK = 32 * 1024
_QUEUE_CHUNKS = 1024
_QUEUE_BYTES = 16 << 20

_HANDBACK = object()
_CHANGED = object()
_TIMEOUT = object()


class _ChunkQueue:
    """The bounded queue between a toxic direction's reader and writer (chunks and bytes)."""

    def __init__(self) -> None:
        self.items: collections.deque[Any] = collections.deque()
        self.bytes = 0
        self.cond = threading.Condition()
        self.changed = False
        self.closed = False

    def put(self, item: Any, size: int = 0) -> bool:
        with self.cond:
            while not self.closed and (len(self.items) >= _QUEUE_CHUNKS or self.bytes + size > _QUEUE_BYTES) and self.items:
                self.cond.wait()
            if self.closed:
                return False
            self.items.append(item)
            self.bytes += size
            self.cond.notify_all()
            return True

    def get(self, deadline: float | None) -> Any:
        with self.cond:
            while True:
                if self.closed:
                    return None
                if self.changed:
                    self.changed = False
                    return _CHANGED
                if self.items:
                    item = self.items.popleft()
                    if isinstance(item, tuple):
                        self.bytes -= len(item[1])
                    self.cond.notify_all()
                    return item
                if deadline is None:
                    self.cond.wait()
                else:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return _TIMEOUT
                    self.cond.wait(remaining)

    def wait_until(self, when: float) -> bool:
        """Sleep until ``when``; False if the chain changed or the connection closed first."""
        with self.cond:
            while not self.closed and not self.changed:
                remaining = when - time.monotonic()
                if remaining <= 0:
                    return True
                self.cond.wait(None if when == INFINITY else remaining)
            return False

    def sleep_until(self, when: float) -> None:
        """Sleep until ``when`` whatever happens to the chain (only a close cuts it short)."""
        with self.cond:
            while not self.closed and when > time.monotonic():
                self.cond.wait(when - time.monotonic())

    def poke(self, close: bool = False) -> None:
        with self.cond:
            self.changed = True
            self.closed = self.closed or close
            self.cond.notify_all()


class ToxicPath:
    """A direction's toxic pipeline: reader thread -> bounded queue -> writer thread."""

    def __init__(self, direction: Direction):
        self.direction = direction
        self.conn = direction.conn
        self.queue = _ChunkQueue()
        self.stages: dict[str, tuple[int, Stage]] = {}
        self.order: list[Stage] = []
        self.generation = -1
        self._wake_r, self._wake_w = nonblocking_pipe()
        self._wake_closed = False
        self._wake_lock = threading.Lock()

    def start(self) -> None:
        self.sync()
        self.conn.hold()
        self.conn.hold()
        name = f"faultlab-proxy-{self.conn.proxy.name}-{self.direction.name}"
        self.conn.relay.start_thread(self._read, name + "-reader")
        self.conn.relay.start_thread(self._write, name + "-writer")

    def chain_changed(self) -> None:
        """Called on the loop thread: wake both threads to re-read the chain (or see the close)."""
        self.queue.poke(close=self.conn.closed)
        if not self._wake_closed:
            try:
                os.write(self._wake_w, b"\0")
            except OSError:
                pass

    def close_wake(self) -> None:
        with self._wake_lock:
            if not self._wake_closed:
                self._wake_closed = True
                os.close(self._wake_r)
                os.close(self._wake_w)

    def sync(self) -> bool:
        """Bring the stages in line with the chain; False if the connection must close."""
        toxics = self.conn.proxy.toxics
        generation, chain = toxics.snapshot(self.direction.name)
        if generation == self.generation:
            return True
        self.generation = generation
        now = time.monotonic()
        stages: dict[str, tuple[int, Stage]] = {}
        for toxic in chain:
            kept = self.stages.get(toxic.uid)
            if kept is not None and kept[0] == toxic.version:
                stages[toxic.uid] = kept
            else:
                state = self.conn.link_state.setdefault((self.direction.name, toxic.uid), [0])
                active = self.direction.is_active(toxic)
                stages[toxic.uid] = (toxic.version, toxic.kind.new_stage(toxic.attributes, active, now, state))
        removed = [stage for uid, (_, stage) in self.stages.items() if uid not in stages]
        self.stages = stages
        self.order = [stages[t.uid][1] for t in chain]
        return not any(stage.closes_on_removal() for stage in removed)

    # -- reader thread -----------------------------------------------------------------------

    def _read(self) -> None:
        conn, direction, queue = self.conn, self.direction, self.queue
        poller = select.poll()
        poller.register(direction.src_fd, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        buffer = bytearray(_CHUNK)
        try:
            while not conn.closed:
                if not direction.any_active():
                    queue.put(_HANDBACK)
                    return
                ready = poller.poll()
                if any(fd == self._wake_r for fd, _ in ready):
                    try:
                        os.read(self._wake_r, 4096)
                    except OSError:
                        pass
                    continue
                try:
                    n = direction.src.recv_into(buffer)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    conn.request_close()
                    return
                if n == 0:
                    queue.put(EOF)
                    return
                direction.stats[0] += n
                if not queue.put((time.monotonic(), bytes(buffer[:n])), n):
                    return
        finally:
            conn.release()

    # -- writer thread -----------------------------------------------------------------------

    def _write(self) -> None:
        conn, queue = self.conn, self.queue
        handback = False
        try:
            while not conn.closed:
                if not self.sync():
                    conn.request_close()
                    return
                deadlines = [d for d in (s.deadline() for s in self.order) if d is not None]
                item = queue.get(min(deadlines) if deadlines else None)
                if item is None:
                    return
                if item is _CHANGED:
                    continue
                if item is _TIMEOUT:
                    deadlines = [d for d in (s.deadline() for s in self.order) if d is not None]
                    if deadlines and min(deadlines) <= time.monotonic():
                        conn.request_close()
                        return
                    continue
                if item is _HANDBACK:
                    handback = True
                    return
                events = [item] if item is not EOF else [(time.monotonic(), EOF)]
                now = time.monotonic()
                for stage in self.order:
                    events = stage.process(events, now)
                if not self._perform(events):
                    return
        finally:
            queue.poke(close=True)
            if handback:
                conn.relay.call_soon(self.direction.back_to_fast, self)
            conn.release()

    def _perform(self, events: list[tuple[float, Any]]) -> bool:
        """Carry out scheduled events in order; False once the direction is finished."""
        interrupted = False
        for when, payload in events:
            if not interrupted and when > time.monotonic():
                interrupted = not self.queue.wait_until(when)
                if self.conn.closed:
                    return False
            if interrupted and payload is RESET:
                self.queue.sleep_until(when)
            if payload is EOF:
                try:
                    self.direction.dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                self.conn.relay.call_soon(self._finished)
                return False
            if payload is CLOSE:
                self.conn.request_close()
                return False
            if payload is RESET:
                self.conn.request_close(rst=True)
                return False
            if not self._send_all(payload):
                return False
        return True

    def _finished(self) -> None:
        self.direction.finished()

    def _send_all(self, data: bytes) -> bool:
        view = memoryview(data)
        dst = self.direction.dst
        poller: Any = None
        while view:
            if self.conn.closed:
                return False
            try:
                n = dst.send(view)
            except (BlockingIOError, InterruptedError):
                if poller is None:
                    poller = select.poll()
                    poller.register(self.direction.dst_fd, select.POLLOUT)
                poller.poll(100)
                continue
            except OSError:
                self.conn.request_close()
                return False
            view = view[n:]
            self.direction.stats[1] += n
        return True
