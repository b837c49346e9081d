"""The data plane: one epoll thread moves every untoxic byte; toxic directions get threads.

Why this shape (measured, see benchmarks/RESULTS.md): a thread per direction gives the best
single ping-pong latency but collapses under hundreds of connections (every hop is a GIL
hand-off between threads), and asyncio's own machinery costs ~4x the latency of a raw
loop. A single raw ``epoll`` loop does one wake-up and two syscalls per hop with no
thread switch, and on Linux moves bytes with ``splice`` through a pipe, so a byte is never
copied into Python. The pipe is also the direction's only buffer: while it is not empty
the loop stops reading the source, so a fast sender is held back by TCP, never buffered.

A direction with an active toxic leaves the loop: a reader thread stamps chunks (<= 32 KiB,
as Toxiproxy) into a bounded queue and a writer thread runs them through the toxic stages
and writes them when due. When the last toxic of that direction goes, the queue is drained
in order and the direction returns to the loop. The API never waits for the data plane,
except for the few microseconds it takes the loop to close a listener.
"""

from __future__ import annotations

import collections
import errno
import fcntl
import heapq
import itertools
import logging
import os
import select
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from faultlab.proxy.toxics import CLOSE, EOF, INFINITY, RESET, Stage

if TYPE_CHECKING:
    from faultlab.proxy.proxy import Proxy

__all__ = ["Relay", "Connection", "DIAL_TIMEOUT"]

log = logging.getLogger(__name__)

DIAL_TIMEOUT = 10.0
"""Seconds an upstream has to accept before the client is closed."""

_HAVE_SPLICE = hasattr(os, "splice")
_splice = getattr(os, "splice", None)
_PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_SPLICE_FLAGS = (os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK) if _HAVE_SPLICE else 0
_COPY_BUFFER = 1 << 20
_CHUNK = 32 * 1024
_BULK_READ = 64 * 1024  # a read this large suggests more is waiting: read again before epoll
_QUEUE_CHUNKS = 1024
_QUEUE_BYTES = 16 << 20
_EPOLLIN, _EPOLLOUT, _EPOLLERRS = 0x001, 0x004, 0x008 | 0x010  # epoll's values on every Linux


class _SelectorPoller:
    """``select.epoll``'s interface over :mod:`selectors`, for systems without epoll."""

    def __init__(self) -> None:
        import selectors

        self._selectors = selectors
        self._selector = selectors.DefaultSelector()

    def _events(self, mask: int) -> int:
        events = 0
        if mask & _EPOLLIN:
            events |= self._selectors.EVENT_READ
        if mask & _EPOLLOUT:
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
            (key.fd, (_EPOLLIN if events & self._selectors.EVENT_READ else 0)
             | (_EPOLLOUT if events & self._selectors.EVENT_WRITE else 0))
            for key, events in ready
        ]

    def close(self) -> None:
        self._selector.close()


def _new_poller() -> Any:
    return select.epoll() if hasattr(select, "epoll") else _SelectorPoller()


def _nonblocking_pipe() -> tuple[int, int]:
    r, w = os.pipe()
    for fd in (r, w):
        os.set_blocking(fd, False)
        os.set_inheritable(fd, False)
    return r, w

FAST, TOXIC, DONE = "fast", "toxic", "done"


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
        self._wake_r, self._wake_w = _nonblocking_pipe()
        self._epoll.register(self._wake_r, _EPOLLIN)
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


class Listener:
    """A proxy's listening socket on the loop: accepts and starts connections."""

    def __init__(self, relay: Relay, proxy: Proxy, sock: socket.socket):
        self.relay, self.proxy, self.sock = relay, proxy, sock
        sock.setblocking(False)
        relay.register(sock.fileno(), _EPOLLIN, self)

    def on_event(self, fd: int, mask: int) -> None:
        for _ in range(64):
            try:
                client, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.warning("proxy %s cannot accept: %s", self.proxy.name, exc)
                return
            Connection(self.relay, self.proxy, client).dial()

    def on_error(self) -> None:
        pass

    def close(self) -> None:
        """Stop listening (loop thread only): new clients get ECONNREFUSED."""
        self.relay.unregister(self.sock.fileno())
        self.sock.close()


class Connection:
    """One accepted client and its upstream: two directions, ``upstream`` and ``downstream``."""

    def __init__(self, relay: Relay, proxy: Proxy, client: socket.socket):
        self.relay, self.proxy, self.client = relay, proxy, client
        self.upstream: socket.socket | None = None
        self.closed = False
        self.directions: dict[str, Direction] = {}
        self._masks: dict[int, int] = {}
        self._dial_timer: list[bool] | None = None
        self._by_fd: dict[int, tuple[Direction, Direction]] = {}
        self._holds = 1
        self._holds_lock = threading.Lock()
        self.link_state: dict[tuple[str, str], list[int]] = {}
        client.setblocking(False)
        proxy.connections.add(self)

    # -- dialling (off the accept path: never blocks the loop) -----------------------------

    def dial(self) -> None:
        """Resolve and connect to the upstream without blocking the loop, within DIAL_TIMEOUT."""
        self._dial_timer = self.relay.call_later(DIAL_TIMEOUT, self._dial_timed_out)
        host, port = self.proxy.upstream_address()
        if host == "localhost":
            host = "127.0.0.1"  # as Go's dialer does first; saves a resolver round trip per client
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
        except (socket.gaierror, UnicodeError, ValueError, TypeError):
            infos = None
        if infos:
            self._connect(infos)
            return
        future = self.relay.executor().submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
        future.add_done_callback(lambda f: self.relay.call_soon(self._resolved, f))

    def _resolved(self, future: Any) -> None:
        if self.closed:
            return
        try:
            infos = future.result()
        except Exception:  # noqa: BLE001 - any resolution failure means "cannot reach upstream"
            infos = []
        infos.sort(key=lambda info: info[0] != socket.AF_INET)
        if not infos:
            self.close()
            return
        self._connect(infos)

    def _connect(self, infos: list[Any]) -> None:
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        self.upstream = sock
        err = sock.connect_ex(address)
        if err not in (0, errno.EINPROGRESS):
            self.close()
            return
        self._masks[sock.fileno()] = _EPOLLOUT
        self.relay.register(sock.fileno(), _EPOLLOUT, self)

    def _dial_timed_out(self) -> None:
        if not self.directions:
            self.close()

    def _established(self) -> None:
        assert self.upstream is not None
        if self._dial_timer is not None:
            self._dial_timer[0] = False
        if self.upstream.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            self.close()
            return
        for sock in (self.client, self.upstream):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        if self.proxy.toxics.has_reset_peer():
            self.set_linger_zero()
        up = Direction(self, "upstream", self.client, self.upstream)
        down = Direction(self, "downstream", self.upstream, self.client)
        self.directions = {"upstream": up, "downstream": down}
        self._by_fd = {self.client.fileno(): (up, down), self.upstream.fileno(): (down, up)}
        for direction in self.directions.values():
            direction.refresh()
        self.update_interest()

    def set_linger_zero(self) -> None:
        """Make closing send RST instead of FIN (what ``reset_peer`` needs)."""
        for sock in (self.client, self.upstream):
            if sock is not None:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                except OSError:
                    pass

    # -- events ------------------------------------------------------------------------------

    def on_event(self, fd: int, mask: int) -> None:
        if self.closed:
            return
        if not self.directions:
            self._established()
            return
        reading, writing = self._by_fd[fd]
        if writing.pending and mask & (_EPOLLOUT | _EPOLLERRS):
            writing.flush()
        if not self.closed and reading.wants_read() and mask & (_EPOLLIN | _EPOLLERRS):
            reading.pump()
        if not self.closed:
            self.update_interest()

    def on_error(self) -> None:
        self.close()

    def update_interest(self) -> None:
        """Watch exactly the events the fast-path directions need (unwatched fds raise no HUP storms)."""
        if self.closed or not self.directions:
            return
        masks = self._masks
        for fd, (reading, writing) in self._by_fd.items():
            mask = _EPOLLOUT if writing.pending else 0
            if reading.mode is FAST and not (reading.eof or reading.pending or reading.want_toxic):
                mask |= _EPOLLIN
            old = masks.get(fd)
            if mask == old:
                continue
            if mask == 0:
                self.relay.unregister(fd)
            elif not old:
                self.relay.register(fd, mask, self)
            else:
                self.relay.modify(fd, mask)
            masks[fd] = mask

    def direction_finished(self) -> None:
        """A direction delivered its EOF; close once both have."""
        if all(d.mode == DONE for d in self.directions.values()):
            self.close()

    # -- closing -----------------------------------------------------------------------------

    def request_close(self, rst: bool = False) -> None:
        """Close from any thread."""
        self.relay.call_soon(self.close, rst)

    def close(self, rst: bool = False) -> None:
        """Close both sockets (loop thread only); with ``rst`` the peers see a reset."""
        if self.closed:
            return
        self.closed = True
        if self._dial_timer is not None:
            self._dial_timer[0] = False
        self.proxy.connections.discard(self)
        socks = [s for s in (self.client, self.upstream) if s is not None]
        for sock in socks:
            self.relay.unregister(sock.fileno())
        if rst:
            self.set_linger_zero()
        else:
            for sock in socks:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        for direction in self.directions.values():
            direction.wake()
        self.release()

    def hold(self) -> None:
        with self._holds_lock:
            self._holds += 1

    def release(self) -> None:
        """Drop one holder; the last one closes the file descriptors (never reused under a thread)."""
        with self._holds_lock:
            self._holds -= 1
            last = self._holds == 0
        if last:
            for sock in (self.client, self.upstream):
                if sock is not None:
                    sock.close()
            for direction in self.directions.values():
                direction.close_pipes()


class Direction:
    """One direction of a connection: ``src`` bytes to ``dst``, fast or through toxics."""

    def __init__(self, conn: Connection, name: str, src: socket.socket, dst: socket.socket):
        self.conn, self.name, self.src, self.dst = conn, name, src, dst
        self.src_fd, self.dst_fd = src.fileno(), dst.fileno()
        self.mode = FAST
        self.eof = False
        self.pending = 0
        self.want_toxic = False
        self._pipe: tuple[int, int] | None = None
        self._buffer: bytearray | None = None
        self._view: memoryview | None = None
        self._offset = 0
        self.toxic: ToxicPath | None = None
        self.rolls: dict[tuple[str, int], bool] = {}
        self.stats = conn.proxy.stats[name]

    # -- fast path (loop thread) -------------------------------------------------------------

    def wants_read(self) -> bool:
        return self.mode == FAST and not self.eof and not self.pending and not self.want_toxic

    def pump(self) -> None:
        """Move what the source has; stop reading while the pipe holds data the sink won't take.

        A few rounds per wake-up: under bulk load that saves an epoll round trip per read.
        """
        for _ in range(8):
            moved = self._pump_once()
            if moved < _BULK_READ or self.pending or self.mode != FAST or self.want_toxic:
                return

    def _pump_once(self) -> int:
        try:
            if _HAVE_SPLICE:
                if self._pipe is None:
                    self._pipe = _make_pipe()
                n = _splice(self.src_fd, self._pipe[1], _PIPE_SIZE, flags=_SPLICE_FLAGS)
            else:
                if self._buffer is None:
                    self._buffer = bytearray(_COPY_BUFFER)
                    self._view = memoryview(self._buffer)
                n = self.src.recv_into(self._buffer)
                self._offset = 0
        except (BlockingIOError, InterruptedError):
            return 0
        except OSError:
            self.conn.close()
            return 0
        if n == 0:
            self.eof = True
            self._finish_if_flushed()
            return 0
        self.stats[0] += n
        self.pending = n
        self.flush()
        return 0 if self.conn.closed else n

    def flush(self) -> None:
        """Write what the pipe (or buffer) holds to the destination, as far as it takes it."""
        try:
            if _HAVE_SPLICE:
                assert self._pipe is not None
                m = _splice(self._pipe[0], self.dst_fd, self.pending, flags=_SPLICE_FLAGS)
            else:
                assert self._view is not None
                m = self.dst.send(self._view[self._offset : self._offset + self.pending])
                self._offset += m
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.conn.close()
            return
        self.pending -= m
        self.stats[1] += m
        if not self.pending:
            if self.eof:
                self._finish_if_flushed()
            elif self.want_toxic:
                self.refresh()

    def _finish_if_flushed(self) -> None:
        if self.pending:
            return
        try:
            self.dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.mode = DONE
        self.conn.direction_finished()

    def refresh(self) -> None:
        """Re-read this direction's toxic chain (loop thread): switch paths or tell the writer."""
        if self.conn.closed or self.mode == DONE:
            return
        has_toxics = self.any_active()
        if self.mode == TOXIC:
            assert self.toxic is not None
            self.toxic.chain_changed()
            return
        if not has_toxics:
            self.want_toxic = False
            return
        if self.pending:
            self.want_toxic = True
            return
        self.want_toxic = False
        self.mode = TOXIC
        self.toxic = ToxicPath(self)
        self.toxic.start()

    def is_active(self, toxic: Any) -> bool:
        """This direction's toxicity roll for a toxic version (rolled once, from any thread)."""
        key = (toxic.uid, toxic.version)
        active = self.rolls.get(key)
        if active is None:
            active = self.rolls.setdefault(key, toxic.kind.roll(toxic.toxicity))
        return active

    def any_active(self) -> bool:
        """Whether any toxic in this direction's chain acts on this connection.

        Only then does the direction leave the fast path: a toxic that lost its roll (or a
        noop) costs this connection nothing.
        """
        return any(self.is_active(t) for t in self.conn.proxy.toxics.chain(self.name))

    def back_to_fast(self, path: ToxicPath) -> None:
        """The toxic path drained and stopped (loop thread): resume the fast path."""
        path.close_wake()
        if self.toxic is path:
            self.toxic = None
        if self.conn.closed or self.mode != TOXIC:
            return
        self.mode = FAST
        self.refresh()
        self.conn.update_interest()

    def wake(self) -> None:
        if self.toxic is not None:
            self.toxic.chain_changed()

    def close_pipes(self) -> None:
        if self._pipe is not None:
            for fd in self._pipe:
                os.close(fd)
            self._pipe = None
        if self.toxic is not None:
            self.toxic.close_wake()


def _make_pipe() -> tuple[int, int]:
    r, w = _nonblocking_pipe()
    try:
        fcntl.fcntl(w, _F_SETPIPE_SZ, _PIPE_SIZE)
    except OSError:
        pass
    return r, w


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
        self._wake_r, self._wake_w = _nonblocking_pipe()
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
        self.direction.mode = DONE
        self.conn.direction_finished()

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
