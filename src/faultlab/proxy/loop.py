"""The proxy's event loop: one thread that owns every listener, socket and toxic of the data plane.

Why one raw loop (measured, see benchmarks/RESULTS.md): a thread per direction gives the
best single ping-pong latency but collapses under hundreds of connections (every hop is a
GIL hand-off between threads), and asyncio's own machinery costs ~4x the latency of a raw
loop. A raw ``epoll`` loop does one wake-up and two syscalls per hop with no thread switch.
Toxics run here too, as timers and buffers, so a toxic costs no thread and no descriptor.
Other threads hand work to the loop with :meth:`Relay.call_soon` or :meth:`Relay.call`; it
never blocks, so the API's calls into it return within one round of the loop.

Descriptors: :func:`raise_descriptor_limit` lifts the soft limit to the hard one. The loop
keeps a margin below the limit for the API and for pipes: a client accepted above
:attr:`Relay.fd_ceiling` is refused at once (reset), and one reserve descriptor lets a
listener shed a client even when the process has none left, so the backlog drains instead
of spinning. Refusals are logged once, then summarised at most every ten seconds.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import fcntl
import heapq
import itertools
import logging
import os
import resource
import select
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = [
    "Relay", "Timer", "EPOLLIN", "EPOLLOUT", "EPOLLERRS", "nonblocking_pipe", "raise_descriptor_limit",
    "EXHAUSTED",
]

log = logging.getLogger(__name__)

EPOLLIN, EPOLLOUT, EPOLLERRS = 0x001, 0x004, 0x008 | 0x010  # epoll's values on every Linux

EXHAUSTED = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)
"""errnos meaning "no descriptor or buffer left for another socket"."""

_MAX_WAIT = 3600.0  # epoll's timeout is an int of ms: a toxic 292 years away must not overflow it
_SPIN = 50e-6  # seconds of polling without sleeping after work that followed a short quiet spell
_SPIN_BYTES = 16 * 1024  # ... and moved less than this (a bulk transfer does not need it)
_MAX_EVENTS = 512  # events handled per round: bounds how long a call from the API waits for the loop
_PIPE_POOL = 32
_PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_PIPE_RESERVE = 32  # descriptors below the limit that pipes never take (the API's share)
_COPY_BUFFER = 1 << 20
_REFUSAL_LOG_EVERY = 10.0


def raise_descriptor_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard limit (as Go's runtime and Toxiproxy do).

    Returns (soft, hard) as obtained, and logs them. An unlimited hard limit is capped at
    the kernel's ``fs.nr_open``.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if hard == resource.RLIM_INFINITY:
        try:
            with open("/proc/sys/fs/nr_open") as f:
                target = int(f.read())
        except (OSError, ValueError):
            target = max(soft, 1 << 20)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (OSError, ValueError) as exc:
            log.warning("proxy: cannot raise the descriptor limit from %d to %d: %s", soft, target, exc)
        else:
            log.info("proxy: descriptor limit raised from %d to %d (hard limit %s)", soft, target,
                     "unlimited" if hard == resource.RLIM_INFINITY else hard)
            return target, hard
    log.info("proxy: descriptor limit %d (hard limit %s)", soft,
             "unlimited" if hard == resource.RLIM_INFINITY else hard)
    return soft, hard


def _soft_limit() -> int:
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


class _SelectorPoller:
    """``select.epoll``'s interface over :mod:`selectors`, for systems without epoll."""

    def __init__(self) -> None:
        import selectors

        self._selectors = selectors
        self._selector = selectors.DefaultSelector()

    def _events(self, mask: int) -> int:
        events = 0
        if mask & EPOLLIN:
            events |= self._selectors.EVENT_READ
        if mask & EPOLLOUT:
            events |= self._selectors.EVENT_WRITE
        return events

    def register(self, fd: int, mask: int) -> None:
        self._selector.register(fd, self._events(mask) or self._selectors.EVENT_READ)

    def modify(self, fd: int, mask: int) -> None:
        self._selector.modify(fd, self._events(mask) or self._selectors.EVENT_READ)

    def unregister(self, fd: int) -> None:
        self._selector.unregister(fd)

    def poll(self, timeout: float, maxevents: int = -1) -> list[tuple[int, int]]:
        ready = self._selector.select(None if timeout < 0 else timeout)
        return [
            (key.fd, (EPOLLIN if events & self._selectors.EVENT_READ else 0)
             | (EPOLLOUT if events & self._selectors.EVENT_WRITE else 0))
            for key, events in ready
        ]

    def close(self) -> None:
        self._selector.close()


def _new_poller() -> Any:
    return select.epoll() if hasattr(select, "epoll") else _SelectorPoller()


def nonblocking_pipe() -> tuple[int, int]:
    r, w = os.pipe()
    for fd in (r, w):
        os.set_blocking(fd, False)
        os.set_inheritable(fd, False)
    return r, w


class Timer:
    """A callback due on the loop at ``when`` (monotonic seconds); :meth:`cancel` is idempotent."""

    __slots__ = ("when", "fn", "cancelled", "_relay")

    def __init__(self, relay: Relay, when: float, fn: Callable[[], None]):
        self._relay, self.when, self.fn, self.cancelled = relay, when, fn, False

    def cancel(self) -> None:
        if not self.cancelled:
            self.cancelled = True
            self._relay._timer_cancelled()


class _Refusals:
    """Counts refused clients; logs the first at once, then one summary per interval (no floods)."""

    def __init__(self) -> None:
        self.total = 0
        self._unlogged = 0
        self._logged_at = -_REFUSAL_LOG_EVERY

    def note(self, proxy: str, reason: str) -> None:
        self.total += 1
        self._unlogged += 1
        now = time.monotonic()
        if now - self._logged_at >= _REFUSAL_LOG_EVERY:
            log.warning("proxy %s: refused %d new connection(s) since the last report: %s",
                        proxy, self._unlogged, reason)
            self._unlogged = 0
            self._logged_at = now


class Relay:
    """The event loop that owns every listener and every direction, fast or toxic.

    Everything that touches epoll, sockets or toxic state runs on the loop thread; other
    threads hand work over with :meth:`call_soon` (fire and forget) or :meth:`call` (wait
    for the result).
    """

    def __init__(self) -> None:
        self._epoll: Any = None
        self._handlers: dict[int, Any] = {}
        self._calls: collections.deque[tuple[Callable[..., Any], tuple[Any, ...]]] = collections.deque()
        self._timers: list[tuple[float, int, Timer]] = []
        self._cancelled = 0
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._wake_r = self._wake_w = -1
        self._running = False
        self._executor: ThreadPoolExecutor | None = None
        self.pipes: list[tuple[int, int]] = []
        """Empty splice pipes ready for reuse (loop thread only)."""
        self._reserve_fd = -1
        self.fd_limit = 0
        self.fd_ceiling = 0
        self.refusals = _Refusals()
        self._copy_buffer: bytearray | None = None
        self.moved = 0
        """Bytes the fast path moved in the current round (loop thread only)."""

    def start(self) -> None:
        """Start the loop thread."""
        self.fd_limit = _soft_limit()
        headroom = min(512, max(64, self.fd_limit // 8))
        self.fd_ceiling = self.fd_limit - headroom
        self._epoll = _new_poller()
        self._wake_r, self._wake_w = nonblocking_pipe()
        self._epoll.register(self._wake_r, EPOLLIN)
        self._reserve()
        self._running = True
        self._thread = threading.Thread(target=self._run, name="faultlab-proxy-relay", daemon=True)
        self._thread.start()

    def stop(self, on_stop: Callable[[], None] | None = None) -> None:
        """Run ``on_stop`` on the loop, stop it and release what it holds."""
        if self._thread is None:
            return
        if on_stop is not None:
            self.call(on_stop)
        self._running = False
        self._wake()
        self._thread.join(5)
        self._drain_calls(len(self._calls))
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        for r, w in self.pipes:
            os.close(r)
            os.close(w)
        self.pipes = []
        if self._reserve_fd >= 0:
            os.close(self._reserve_fd)
            self._reserve_fd = -1
        self._epoll.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        self._thread = None

    @property
    def in_loop(self) -> bool:
        """True on the loop thread."""
        return threading.current_thread() is self._thread

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop thread in its next round, without waiting."""
        self._calls.append((fn, args))
        if not self.in_loop:
            self._wake()

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 10.0) -> Any:
        """Run ``fn(*args)`` on the loop thread and return its result (or raise its error).

        The loop runs it between two events, never inside one: once this returns, every
        event handled afterwards sees what ``fn`` (or the caller before it) changed.
        """
        if self.in_loop or self._thread is None:
            return fn(*args)
        done = threading.Event()
        box: list[Any] = [None, None]

        def run() -> None:
            try:
                box[0] = fn(*args)
            except BaseException as exc:  # noqa: BLE001 - handed back to the caller
                box[1] = exc
            finally:
                done.set()

        self.call_soon(run)
        if not done.wait(timeout):
            raise TimeoutError("the proxy relay did not answer")
        if box[1] is not None:
            raise box[1]
        return box[0]

    def call_at(self, when: float, fn: Callable[[], None]) -> Timer:
        """Run ``fn`` on the loop at monotonic time ``when`` (loop thread only)."""
        timer = Timer(self, when, fn)
        heapq.heappush(self._timers, (when, next(self._seq), timer))
        return timer

    def call_later(self, delay: float, fn: Callable[[], None]) -> Timer:
        """Run ``fn`` on the loop after ``delay`` seconds (loop thread only)."""
        return self.call_at(time.monotonic() + delay, fn)

    def _timer_cancelled(self) -> None:
        # Cancelled timers stay in the heap until due; rebuild it when they are the majority,
        # so toxics re-armed far into the future do not pile up.
        self._cancelled += 1
        if self._cancelled > 256 and self._cancelled * 2 > len(self._timers):
            self._timers = [entry for entry in self._timers if not entry[2].cancelled]
            heapq.heapify(self._timers)
            self._cancelled = 0

    def executor(self) -> ThreadPoolExecutor:
        """A small pool for blocking name resolution, created on first use."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="faultlab-proxy-dns")
        return self._executor

    @property
    def copy_buffer(self) -> bytearray:
        """One buffer the copy path (no splice) of every direction shares (loop thread only).

        Made on first use: with splice it is never needed.
        """
        if self._copy_buffer is None:
            self._copy_buffer = bytearray(_COPY_BUFFER)
        return self._copy_buffer

    # -- descriptors ---------------------------------------------------------------------------

    def has_room(self, fd: int) -> bool:
        """Whether a new socket numbered ``fd`` leaves the margin the API and pipes need.

        Linux hands out the lowest free number, so a number at the ceiling means every
        number below it is taken.
        """
        return fd < self.fd_ceiling

    def refuse(self, sock: socket.socket, proxy: str, reason: str) -> None:
        """Close a client at once with a reset (loop thread only), counted and logged sparingly."""
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        sock.close()
        self.refusals.note(proxy, reason)

    def _reserve(self) -> None:
        if self._reserve_fd < 0:
            try:
                self._reserve_fd = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
            except OSError:
                self._reserve_fd = -1

    def shed(self, listener: socket.socket, proxy: str, exc: OSError) -> bool:
        """The process ran out of descriptors: accept one client on the reserve and refuse it.

        False if no reserve was left (the caller then pauses its listener).
        """
        if self._reserve_fd < 0:
            self._reserve()
            self.refusals.note(proxy, f"{exc.strerror} (no reserve descriptor left)")
            return False
        os.close(self._reserve_fd)
        self._reserve_fd = -1
        try:
            client, _ = listener.accept()
        except OSError:
            client = None
        if client is not None:
            self.refuse(client, proxy, f"{exc.strerror} (descriptor limit {self.fd_limit})")
        self._reserve()
        return client is not None

    def take_pipe(self) -> tuple[int, int] | None:
        """An empty splice pipe: from the pool, or new; None when descriptors are short."""
        if self.pipes:
            return self.pipes.pop()
        try:
            r, w = nonblocking_pipe()
        except OSError:
            return None
        if w >= self.fd_limit - _PIPE_RESERVE:
            os.close(r)
            os.close(w)
            return None
        with contextlib.suppress(OSError):
            fcntl.fcntl(w, _F_SETPIPE_SZ, _PIPE_SIZE)
        return r, w

    def give_pipe(self, pipe: tuple[int, int]) -> None:
        """Return an empty pipe to the pool (or close it when the pool is full)."""
        if len(self.pipes) < _PIPE_POOL:
            self.pipes.append(pipe)
        else:
            os.close(pipe[0])
            os.close(pipe[1])

    # -- the loop ------------------------------------------------------------------------------

    def _drain_calls(self, count: int) -> None:
        calls = self._calls
        for _ in range(count):
            if not calls:
                return
            fn, args = calls.popleft()
            try:
                fn(*args)
            except Exception:  # noqa: BLE001 - keep serving
                log.exception("proxy relay call failed")

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"\0")

    def register(self, fd: int, mask: int, handler: Any) -> None:
        """Watch ``fd`` (loop thread only)."""
        self._handlers[fd] = handler
        self._epoll.register(fd, mask)

    def modify(self, fd: int, mask: int) -> None:
        """Change the events watched on ``fd`` (loop thread only)."""
        self._epoll.modify(fd, mask)

    def unregister(self, fd: int) -> None:
        """Stop watching ``fd`` (loop thread only)."""
        if self._handlers.pop(fd, None) is not None:
            with contextlib.suppress(OSError, ValueError):
                self._epoll.unregister(fd)

    def _run(self) -> None:
        epoll, calls = self._epoll, self._calls
        done_at = spin_until = 0.0
        while self._running:
            timers = self._timers
            if calls:
                timeout = 0.0
            else:
                now = time.monotonic()
                if now < spin_until:
                    # Polling must not hold up a task this CPU could run instead (the peer we
                    # just woke, often): yield first; with nothing else runnable it returns at once.
                    os.sched_yield()
                    timeout = 0.0
                elif timers:
                    timeout = min(max(0.0, timers[0][0] - now), _MAX_WAIT)
                else:
                    timeout = _MAX_WAIT
            try:
                events = epoll.poll(timeout, _MAX_EVENTS)
            except InterruptedError:
                continue
            if events:
                quiet = time.monotonic() - done_at
                self.moved = 0
                self._dispatch(events)
                # Poll instead of sleeping for a moment when the last quiet spell was that
                # short and little data moved: a ping-pong's next hop comes back within it,
                # and a sleeping loop's vCPU halts and takes tens of µs to wake (measured:
                # benchmarks/RESULTS.md). Bulk transfers wake the loop often enough anyway,
                # and polling would take CPU from their sender and receiver.
                spin = _SPIN if quiet < _SPIN and self.moved < _SPIN_BYTES else 0.0
            else:
                spin = 0.0
            # Only the calls already queued: a call queueing another yields to I/O first.
            self._drain_calls(len(calls))
            if self._timers:
                self._run_timers()
            if events:
                done_at = time.monotonic()
                spin_until = done_at + spin

    def _dispatch(self, events: list[tuple[int, int]]) -> None:
        handlers, wake_r = self._handlers, self._wake_r
        for fd, mask in events:
            if fd == wake_r:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake_r, 4096)
                continue
            handler = handlers.get(fd)
            if handler is not None:
                try:
                    handler.on_event(fd, mask)
                except Exception:  # noqa: BLE001 - keep serving every other connection
                    log.exception("proxy relay handler failed")
                    handler.on_error()

    def _run_timers(self) -> None:
        now = time.monotonic()
        timers = self._timers
        while timers and timers[0][0] <= now:
            timer = heapq.heappop(timers)[2]
            if timer.cancelled:
                self._cancelled = max(0, self._cancelled - 1)
                continue
            timer.cancelled = True
            try:
                timer.fn()
            except Exception:  # noqa: BLE001
                log.exception("proxy relay timer failed")
            timers = self._timers  # a callback may have compacted the heap
