"""Links: an accepted client, its upstream, and the two directions between them.

A direction moves bytes on the loop thread while no toxic acts on it: on Linux with
``splice`` through a pipe, so a byte is never copied into Python. The pipe is also the
direction's only buffer: while it is not empty the loop stops reading the source, so a
fast sender is held back by TCP, never buffered. When a toxic acts on a direction it moves
to a :class:`~faultlab.proxy.toxic_path.ToxicPath` and comes back when the toxic goes.
Upstreams are dialled without blocking the loop (names resolved on a small pool), within
:data:`DIAL_TIMEOUT`.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import socket
import threading
from typing import TYPE_CHECKING, Any

from faultlab.proxy.loop import EPOLLERRS, EPOLLIN, EPOLLOUT, Relay, nonblocking_pipe
from faultlab.proxy.toxic_path import ToxicPath

if TYPE_CHECKING:
    from faultlab.proxy.proxy import Proxy

__all__ = ["Listener", "Connection", "Direction", "DIAL_TIMEOUT"]

log = logging.getLogger(__name__)

DIAL_TIMEOUT = 10.0
"""Seconds an upstream has to accept (name resolution included) before the client is closed."""

_HAVE_SPLICE = hasattr(os, "splice")
_splice = getattr(os, "splice", None)
# The largest pipe an unprivileged process gets (fs.pipe-max-size). Measured on 2 vCPUs, 1 GB
# bulk: 1 MiB costs the proxy 0.20-0.26 CPU-s/GB, 512/256/128 KiB 0.24-0.32/0.35-0.43/0.37-0.44
# with no throughput gained. Neither SPLICE_F_MORE nor the copy path (0.33-0.46 CPU-s/GB, the
# sink's share 0.05 lower) moved bulk throughput either: ~87% of the proxy's CPU is inside
# splice, mostly loopback TCP transmit, which a C splice relay pays the same (0.22-0.28).
_PIPE_SIZE = 1 << 20
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
_SPLICE_FLAGS = (os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK) if _HAVE_SPLICE else 0
_COPY_BUFFER = 1 << 20
_BULK_READ = 64 * 1024  # a read this large suggests more is waiting: read again before epoll

FAST, TOXIC, DONE = "fast", "toxic", "done"


class Listener:
    """A proxy's listening socket on the loop: accepts and starts connections."""

    def __init__(self, relay: Relay, proxy: Proxy, sock: socket.socket):
        self.relay, self.proxy, self.sock = relay, proxy, sock
        sock.setblocking(False)
        relay.register(sock.fileno(), EPOLLIN, self)

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
        self._masks[sock.fileno()] = EPOLLOUT
        self.relay.register(sock.fileno(), EPOLLOUT, self)

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
        if writing.pending and mask & (EPOLLOUT | EPOLLERRS):
            writing.flush()
        if not self.closed and reading.wants_read() and mask & (EPOLLIN | EPOLLERRS):
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
            mask = EPOLLOUT if writing.pending else 0
            if reading.mode is FAST and not (reading.eof or reading.pending or reading.want_toxic):
                mask |= EPOLLIN
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
        self.finished()

    def finished(self) -> None:
        """The source's EOF reached the destination (loop thread)."""
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
    r, w = nonblocking_pipe()
    try:
        fcntl.fcntl(w, _F_SETPIPE_SZ, _PIPE_SIZE)
    except OSError:
        pass
    return r, w
