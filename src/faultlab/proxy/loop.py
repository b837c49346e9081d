"""The proxy's event loop: one thread that owns every listener and every fast-path socket.

Why one raw loop (measured, see benchmarks/RESULTS.md): a thread per direction gives the
best single ping-pong latency but collapses under hundreds of connections (every hop is a
GIL hand-off between threads), and asyncio's own machinery costs ~4x the latency of a raw
loop. A raw ``epoll`` loop does one wake-up and two syscalls per hop with no thread switch.
Other threads hand work to it with :meth:`Relay.call_soon` or :meth:`Relay.call`; it never
blocks, so the API's calls into it return in microseconds.
"""

from __future__ import annotations

import collections
import heapq
import itertools
import logging
import os
import select
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["Relay", "EPOLLIN", "EPOLLOUT", "EPOLLERRS", "nonblocking_pipe"]

log = logging.getLogger(__name__)

EPOLLIN, EPOLLOUT, EPOLLERRS = 0x001, 0x004, 0x008 | 0x010  # epoll's values on every Linux


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

    def poll(self, timeout: float) -> list[tuple[int, int]]:
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


class Relay:
    """The event loop that owns every listener and every fast-path direction.

    Everything that touches epoll runs on the loop thread; other threads hand work over
    with :meth:`call_soon` (fire and forget) or :meth:`call` (wait for the result).
    """

    def __init__(self) -> None:
        self._epoll: Any = None
        self._handlers: dict[int, Any] = {}
        self._calls: collections.deque[tuple[Callable[..., Any], tuple[Any, ...]]] = collections.deque()
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self._thread: threading.Thread | None = None
        self._wake_r = self._wake_w = -1
        self._running = False
        self._executor: ThreadPoolExecutor | None = None
        self.toxic_threads: set[threading.Thread] = set()
        self._threads_lock = threading.Lock()

    def start(self) -> None:
        """Start the loop thread."""
        self._epoll = _new_poller()
        self._wake_r, self._wake_w = nonblocking_pipe()
        self._epoll.register(self._wake_r, EPOLLIN)
        self._running = True
        self._thread = threading.Thread(target=self._run, name="faultlab-proxy-relay", daemon=True)
        self._thread.start()

    def stop(self, on_stop: Callable[[], None] | None = None) -> None:
        """Run ``on_stop`` on the loop, stop it, and wait for every thread it started."""
        if self._thread is None:
            return
        if on_stop is not None:
            self.call(on_stop)
        self._running = False
        self._wake()
        self._thread.join(5)
        self._drain_calls()
        with self._threads_lock:
            threads = list(self.toxic_threads)
        for thread in threads:
            thread.join(2)
        self._drain_calls()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._epoll.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        self._thread = None

    @property
    def in_loop(self) -> bool:
        """True on the loop thread."""
        return threading.current_thread() is self._thread

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` on the loop thread, without waiting."""
        self._calls.append((fn, args))
        self._wake()

    def call(self, fn: Callable[..., Any], *args: Any, timeout: float = 10.0) -> Any:
        """Run ``fn(*args)`` on the loop thread and return its result (or raise its error)."""
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

    def call_later(self, delay: float, fn: Callable[[], None]) -> list[bool]:
        """Run ``fn`` on the loop after ``delay`` seconds; set ``handle[0] = False`` to cancel."""
        handle = [True]

        def guarded() -> None:
            if handle[0]:
                fn()

        heapq.heappush(self._timers, (time.monotonic() + delay, next(self._seq), guarded))
        return handle

    def executor(self) -> ThreadPoolExecutor:
        """A small pool for blocking name resolution, created on first use."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="faultlab-proxy-dns")
        return self._executor

    def start_thread(self, target: Callable[[], None], name: str) -> None:
        """Start a tracked data-plane thread (joined by :meth:`stop`)."""
        thread = threading.Thread(target=self._tracked, args=(target,), name=name, daemon=True)
        with self._threads_lock:
            self.toxic_threads.add(thread)
        thread.start()

    def _tracked(self, target: Callable[[], None]) -> None:
        try:
            target()
        except Exception:  # noqa: BLE001 - a broken connection must not take the proxy down
            log.exception("proxy data-plane thread failed")
        finally:
            with self._threads_lock:
                self.toxic_threads.discard(threading.current_thread())

    def _drain_calls(self) -> None:
        calls = self._calls
        while calls:
            fn, args = calls.popleft()
            try:
                fn(*args)
            except Exception:  # noqa: BLE001 - keep serving
                log.exception("proxy relay call failed")

    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"\0")
        except BlockingIOError:
            pass

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
            try:
                self._epoll.unregister(fd)
            except (OSError, ValueError):
                pass

    def _run(self) -> None:
        epoll, handlers, calls = self._epoll, self._handlers, self._calls
        while self._running:
            timeout = -1.0
            if self._timers:
                timeout = max(0.0, self._timers[0][0] - time.monotonic())
            if calls:
                timeout = 0.0
            try:
                events = epoll.poll(timeout)
            except InterruptedError:
                continue
            for fd, mask in events:
                if fd == self._wake_r:
                    try:
                        os.read(self._wake_r, 4096)
                    except BlockingIOError:
                        pass
                    continue
                handler = handlers.get(fd)
                if handler is not None:
                    try:
                        handler.on_event(fd, mask)
                    except Exception:  # noqa: BLE001 - keep serving every other connection
                        log.exception("proxy relay handler failed")
                        handler.on_error()
            self._drain_calls()
            now = time.monotonic()
            while self._timers and self._timers[0][0] <= now:
                _, _, fn = heapq.heappop(self._timers)
                try:
                    fn()
                except Exception:  # noqa: BLE001
                    log.exception("proxy relay timer failed")
