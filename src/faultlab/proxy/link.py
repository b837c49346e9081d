"""Links: an accepted client, its upstream, and the two directions between them.

A direction moves bytes on the loop thread. While no toxic acts on it, it takes the fast
path: on Linux ``splice`` through a pipe, so a byte is never copied into Python. The pipe
is borrowed from the loop's pool only while it holds bytes the destination has not taken
yet, and while it holds any the loop stops reading the source, so a fast sender is held back
by TCP, never buffered; an idle or ping-ponging connection costs its two sockets and no
more. Without splice (or without a spare descriptor for a pipe) the direction copies
through one buffer the whole loop shares, keeping only what the destination refused.

When a toxic acts on a direction it moves to a :class:`~faultlab.proxy.toxic_path.ToxicPath`,
also on the loop, and comes back when the toxic goes. A direction notices a chain change
before it moves any byte read after the change (see ``generation``); the proxy pushes the
change to directions already on the toxic path (their held data may be due at once) and, for
a toxic that acts on idle connections, to every direction.

Upstreams are dialled without blocking the loop (names resolved on a small pool), within
:data:`DIAL_TIMEOUT`.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
from typing import TYPE_CHECKING, Any

from faultlab.proxy.loop import EPOLLERRS, EPOLLIN, EPOLLOUT, EXHAUSTED, Relay, Timer
from faultlab.proxy.toxic_path import ToxicPath

if TYPE_CHECKING:
    from faultlab.proxy.proxy import Proxy

__all__ = ["Listener", "Connection", "Direction", "DIAL_TIMEOUT"]

log = logging.getLogger(__name__)

DIAL_TIMEOUT = 10.0
"""Seconds an upstream has to accept (name resolution included) before the client is closed."""

_HAVE_SPLICE = hasattr(os, "splice")
# The largest pipe an unprivileged process gets (fs.pipe-max-size). Measured on 2 vCPUs, 1 GB
# bulk: 1 MiB costs the proxy 0.20-0.26 CPU-s/GB, 512/256/128 KiB 0.24-0.32/0.35-0.43/0.37-0.44
# with no throughput gained. Neither SPLICE_F_MORE nor the copy path (0.33-0.46 CPU-s/GB, the
# sink's share 0.05 lower) moved bulk throughput either: ~87% of the proxy's CPU is inside
# splice, mostly loopback TCP transmit, which a C splice relay pays the same (0.22-0.28).
_PIPE_SIZE = 1 << 20
_SPLICE_FLAGS = (os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK) if _HAVE_SPLICE else 0
_BULK_READ = 64 * 1024  # a read this large suggests more is waiting: read again before epoll
_LINGER_ZERO = b"\x01\0\0\0\0\0\0\0"

FAST, TOXIC, DONE = "fast", "toxic", "done"


class Listener:
    """A proxy's listening socket on the loop: accepts and starts connections.

    Made on any thread; every later use of it is on the loop thread.
    """

    def __init__(self, relay: Relay, proxy: Proxy, sock: socket.socket):
        self.relay, self.proxy, self.sock = relay, proxy, sock
        self.fd = sock.fileno()
        self._paused: Timer | None = None
        sock.setblocking(False)
        # The socket already listens (clients queue in its backlog); the loop starts
        # accepting in its next round, before any later call such as close().
        relay.call_soon(relay.register, self.fd, EPOLLIN, self)

    def on_event(self, fd: int, mask: int) -> None:
        relay = self.relay
        for _ in range(64):
            try:
                client, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in EXHAUSTED:
                    if not relay.shed(self.sock, self.proxy.name, exc):
                        self._pause()
                        return
                    continue
                if exc.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EPERM):
                    continue
                raise
            if not relay.has_room(client.fileno()):
                relay.refuse(client, self.proxy.name, f"descriptors near the limit of {relay.fd_limit}")
                continue
            Connection(relay, self.proxy, client).dial()

    def _pause(self) -> None:
        """Stop accepting for a moment (no reserve descriptor to shed a client with)."""
        if self._paused is None:
            self.relay.unregister(self.fd)
            self._paused = self.relay.call_later(0.1, self._resume)

    def _resume(self) -> None:
        self._paused = None
        if self.sock.fileno() >= 0:
            self.relay.register(self.fd, EPOLLIN, self)

    def on_error(self) -> None:
        pass

    def close(self) -> None:
        """Stop listening (loop thread only): new clients get ECONNREFUSED."""
        if self._paused is not None:
            self._paused.cancel()
            self._paused = None
        self.relay.unregister(self.fd)
        self.sock.close()


class Connection:
    """One accepted client and its upstream: two directions, ``upstream`` and ``downstream``."""

    def __init__(self, relay: Relay, proxy: Proxy, client: socket.socket):
        self.relay, self.proxy, self.client = relay, proxy, client
        self.upstream: socket.socket | None = None
        self.closed = False
        self.directions: dict[str, Direction] = {}
        self._masks: dict[int, int] = {}
        self._dial_timer: Timer | None = None
        self._by_fd: dict[int, tuple[Direction, Direction]] = {}
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
        try:
            sock = socket.socket(family, kind, proto)
        except OSError as exc:
            if exc.errno not in EXHAUSTED:
                raise
            self._refuse(exc.strerror or "no descriptor for the upstream socket")
            return
        if not self.relay.has_room(sock.fileno()):
            sock.close()
            self._refuse(f"descriptors near the limit of {self.relay.fd_limit}")
            return
        sock.setblocking(False)
        self.upstream = sock
        err = sock.connect_ex(address)
        if err not in (0, errno.EINPROGRESS):
            self.close()
            return
        self._masks[sock.fileno()] = EPOLLOUT
        self.relay.register(sock.fileno(), EPOLLOUT, self)

    def _refuse(self, reason: str) -> None:
        self.closed = True
        if self._dial_timer is not None:
            self._dial_timer.cancel()
        self.proxy.connections.discard(self)
        self.relay.refuse(self.client, self.proxy.name, reason)

    def _dial_timed_out(self) -> None:
        if not self.directions:
            self.close()

    def _established(self) -> None:
        assert self.upstream is not None
        if self._dial_timer is not None:
            self._dial_timer.cancel()
            self._dial_timer = None
        if self.upstream.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            self.close()
            return
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.proxy.toxics.has_reset_peer():
            self.set_linger_zero()
        up = Direction(self, "upstream", self.client, self.upstream)
        down = Direction(self, "downstream", self.upstream, self.client)
        self.directions = {"upstream": up, "downstream": down}
        self._by_fd = {self.client.fileno(): (up, down), self.upstream.fileno(): (down, up)}
        for direction in (up, down):
            direction.refresh()
        self.update_interest()

    def set_linger_zero(self) -> None:
        """Make closing send RST instead of FIN (what ``reset_peer`` needs)."""
        for sock in (self.client, self.upstream):
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)

    # -- events ------------------------------------------------------------------------------

    def on_event(self, fd: int, mask: int) -> None:
        if self.closed:
            return
        if not self.directions:
            self._established()
            return
        reading, writing = self._by_fd[fd]
        if mask & (EPOLLOUT | EPOLLERRS) and (writing.pending if writing.mode is FAST else writing.wants_write()):
            writing.on_writable()
        if not self.closed and mask & (EPOLLIN | EPOLLERRS) and reading.wants_read():
            reading.on_readable()
        if not self.closed:
            self.update_interest()

    def on_error(self) -> None:
        self.close()

    def update_interest(self) -> None:
        """Watch exactly the events the directions need (unwatched fds raise no HUP storms)."""
        if self.closed or not self.directions:
            return
        masks = self._masks
        for fd, (reading, writing) in self._by_fd.items():
            # The fast path's tests inline: this runs after every event of every connection.
            if writing.mode is FAST:
                mask = EPOLLOUT if writing.pending else 0
            else:
                mask = EPOLLOUT if writing.wants_write() else 0
            if reading.mode is FAST:
                if not (reading.eof or reading.pending or reading.want_toxic):
                    mask |= EPOLLIN
            elif reading.wants_read():
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
            self._dial_timer.cancel()
        self.proxy.connections.discard(self)
        socks = [s for s in (self.client, self.upstream) if s is not None]
        for sock in socks:
            self.relay.unregister(sock.fileno())
        if rst:
            self.set_linger_zero()
        else:
            for sock in socks:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
        for direction in self.directions.values():
            direction.release()
        for sock in socks:
            sock.close()


class Direction:
    """One direction of a connection: ``src`` bytes to ``dst``, fast or through toxics."""

    def __init__(self, conn: Connection, name: str, src: socket.socket, dst: socket.socket):
        self.conn, self.name, self.src, self.dst = conn, name, src, dst
        self.src_fd, self.dst_fd = src.fileno(), dst.fileno()
        self.relay = conn.relay
        self.toxics = conn.proxy.toxics
        self.chain_ref = self.toxics.ref(name)
        self.mode = FAST
        self.eof = False
        self.pending = 0
        self.want_toxic = False
        self.generation = -1
        """The chain generation this direction last looked at; another one means "re-read it"."""
        self._pipe: tuple[int, int] | None = None
        self._leftover: memoryview | None = None
        self.toxic: ToxicPath | None = None
        self.rolls: dict[tuple[str, int], bool] = {}
        self.stats = conn.proxy.stats[name]

    # -- what the loop watches ---------------------------------------------------------------

    def wants_read(self) -> bool:
        if self.mode is FAST:
            return not (self.eof or self.pending or self.want_toxic)
        if self.mode is TOXIC:
            assert self.toxic is not None
            return self.toxic.wants_read()
        return False

    def wants_write(self) -> bool:
        if self.mode is FAST:
            return self.pending > 0
        if self.mode is TOXIC:
            assert self.toxic is not None
            return self.toxic.wants_write()
        return False

    def on_readable(self) -> None:
        if self.mode is FAST and self.generation != self.chain_ref.state[0]:
            self.refresh()
        if self.mode is FAST:
            if not (self.want_toxic or self.pending):
                self.pump()
        elif self.mode is TOXIC:
            assert self.toxic is not None
            self.toxic.on_readable()

    def on_writable(self) -> None:
        if self.mode is FAST:
            self.flush()
        elif self.mode is TOXIC:
            assert self.toxic is not None
            self.toxic.advance()

    # -- fast path ---------------------------------------------------------------------------

    def pump(self) -> None:
        """Move what the source has; stop reading while bytes wait that the sink won't take.

        A few rounds per wake-up: under bulk load that saves an epoll round trip per read.
        """
        for _ in range(8):
            moved = self._pump_once()
            if moved < _BULK_READ or self.pending or self.mode is not FAST or self.want_toxic:
                return

    def _pump_once(self) -> int:
        pipe = self._pipe
        if _HAVE_SPLICE and pipe is None:
            pool = self.relay.pipes
            pipe = pool.pop() if pool else self.relay.take_pipe()
        try:
            if pipe is not None:
                n = os.splice(self.src_fd, pipe[1], _PIPE_SIZE, flags=_SPLICE_FLAGS)
            else:
                n = self.src.recv_into(self.relay.copy_buffer)
        except (BlockingIOError, InterruptedError):
            n = -1
        except OSError:
            n = -2
        if n <= 0:
            if pipe is not None and self._pipe is None:
                self.relay.give_pipe(pipe)
            if n == -2:
                self.conn.close()
            elif n == 0:
                self.eof = True
                self._finish_if_flushed()
            return 0
        self.stats[0] += n
        self.relay.moved += n
        self.pending = n
        if pipe is not None:
            self._pipe = pipe
            self.flush()
        else:
            self._send_copied(n)
        return 0 if self.conn.closed else n

    def _send_copied(self, n: int) -> None:
        view = memoryview(self.relay.copy_buffer)[:n]
        try:
            m = self.dst.send(view)
        except (BlockingIOError, InterruptedError):
            m = 0
        except OSError:
            self.conn.close()
            return
        self.stats[1] += m
        self.pending = n - m
        if self.pending:
            # The shared buffer is the next direction's: keep only what the sink refused.
            self._leftover = memoryview(bytes(view[m:]))

    def flush(self) -> None:
        """Write what the pipe (or the leftover) holds to the destination, as far as it takes it."""
        try:
            if self._pipe is not None:
                m = os.splice(self._pipe[0], self.dst_fd, self.pending, flags=_SPLICE_FLAGS)
            else:
                assert self._leftover is not None
                m = self.dst.send(self._leftover)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.conn.close()
            return
        self.pending -= m
        self.stats[1] += m
        if self._leftover is not None:
            self._leftover = self._leftover[m:] if self.pending else None
        if not self.pending:
            if self._pipe is not None:
                self.relay.give_pipe(self._pipe)
                self._pipe = None
            if self.eof:
                self._finish_if_flushed()
            elif self.want_toxic:
                self.refresh()

    def _finish_if_flushed(self) -> None:
        if self.pending:
            return
        with contextlib.suppress(OSError):
            self.dst.shutdown(socket.SHUT_WR)
        self.finished()

    def finished(self) -> None:
        """The source's EOF reached the destination (loop thread)."""
        self.mode = DONE
        self._leave_toxic_path()
        self.conn.direction_finished()

    def _leave_toxic_path(self) -> None:
        if self.toxic is not None:
            self.toxic.release()
            self.toxic = None
            self.conn.proxy.toxic_directions[self.name].discard(self)

    # -- toxics ------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read this direction's toxic chain (loop thread): switch paths or tell the toxic path."""
        if self.conn.closed or self.mode is DONE:
            return
        generation, chain = self.toxics.state(self.name)
        self.generation = generation
        if self.mode is TOXIC:
            assert self.toxic is not None
            self.toxic.chain_changed()
            return
        if not self.any_active(chain):
            self.want_toxic = False
            return
        if self.pending:
            self.want_toxic = True
            return
        self.want_toxic = False
        self.mode = TOXIC
        self.conn.proxy.toxic_directions[self.name].add(self)
        self.toxic = ToxicPath(self)
        self.toxic.start()

    def is_active(self, toxic: Any) -> bool:
        """This direction's toxicity roll for a toxic version (rolled once per version)."""
        key = (toxic.uid, toxic.version)
        active = self.rolls.get(key)
        if active is None:
            active = self.rolls[key] = toxic.kind.roll(toxic.toxicity)
        return active

    def any_active(self, chain: tuple[Any, ...]) -> bool:
        """Whether any toxic in ``chain`` acts on this connection (rolls of gone toxics are forgotten).

        Only then does the direction leave the fast path: a toxic that lost its roll (or a
        noop) costs this connection nothing.
        """
        if len(self.rolls) > len(chain):
            keep = {(t.uid, t.version) for t in chain}
            self.rolls = {k: v for k, v in self.rolls.items() if k in keep}
        return any([self.is_active(t) for t in chain])

    def back_to_fast(self) -> None:
        """The toxic path drained with no toxic acting any more (loop thread): resume the fast path."""
        self._leave_toxic_path()
        if self.conn.closed or self.mode is not TOXIC:
            return
        self.mode = FAST
        self.refresh()

    def release(self) -> None:
        """The connection closed: give back the pipe and stop the toxic path's timers."""
        if self._pipe is not None:
            if self.pending:
                os.close(self._pipe[0])
                os.close(self._pipe[1])
            else:
                self.relay.give_pipe(self._pipe)
            self._pipe = None
        self._leftover = None
        self._leave_toxic_path()
