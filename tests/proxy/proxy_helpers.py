"""Helpers shared by the fault proxy tests (upstream servers, sockets, timing)."""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Callable

import httpx


class Upstream:
    """A TCP server on 127.0.0.1:0 running ``handle(conn)`` per client on its own thread."""

    def __init__(self, handle: Callable[[socket.socket], None]):
        self.handle = handle
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=1024)
        self.port = self.sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.accepted: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)
            thread = threading.Thread(target=self._run, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _run(self, conn: socket.socket) -> None:
        try:
            self.handle(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        for conn in list(self.accepted):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._acceptor.join(5)
        for thread in self._threads:
            thread.join(5)


def echo(conn: socket.socket) -> None:
    """Echo until EOF, then close."""
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        data = conn.recv(65536)
        if not data:
            return
        conn.sendall(data)


def port_of(listen: str) -> int:
    return int(listen.rsplit(":", 1)[1])


def make_proxy(api: httpx.Client, name: str, upstream: str, **extra: object) -> int:
    """Create a proxy on 127.0.0.1:0 and return its port."""
    response = api.post("/proxies", json={"name": name, "listen": "127.0.0.1:0", "upstream": upstream, **extra})
    assert response.status_code == 201, response.text
    return port_of(response.json()["listen"])


def add_toxic(api: httpx.Client, proxy: str, **toxic: object) -> dict[str, object]:
    response = api.post(f"/proxies/{proxy}/toxics", json=toxic)
    assert response.status_code == 200, response.text
    return response.json()


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = []
    while size:
        data = sock.recv(min(size, 1 << 20))
        if not data:
            raise EOFError("connection closed early")
        chunks.append(data)
        size -= len(data)
    return b"".join(chunks)


def round_trip(sock: socket.socket, payload: bytes = b"ping") -> float:
    """Seconds for ``payload`` to come back from an echo upstream."""
    start = time.perf_counter()
    sock.sendall(payload)
    assert recv_exactly(sock, len(payload)) == payload
    return time.perf_counter() - start


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.005)
    return predicate()


class EpollEcho:
    """An echo server on one epoll thread (hundreds of clients without hundreds of threads)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=1024)
        self.sock.setblocking(False)
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        ep = select.epoll()
        ep.register(self.sock.fileno(), select.EPOLLIN)
        conns: dict[int, socket.socket] = {}
        while not self._stop.is_set():
            for fd, _ in ep.poll(0.05):
                if fd == self.sock.fileno():
                    while True:
                        try:
                            c, _ = self.sock.accept()
                        except BlockingIOError:
                            break
                        conns[c.fileno()] = c
                        ep.register(c.fileno(), select.EPOLLIN)
                    continue
                c = conns[fd]
                try:
                    data = c.recv(65536)
                    if data:
                        c.setblocking(True)
                        c.sendall(data)
                        c.setblocking(False)
                except OSError:
                    data = b""
                if not data:
                    ep.unregister(fd)
                    c.close()
                    del conns[fd]
        for c in conns.values():
            c.close()
        ep.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def round_all(socks: list[socket.socket], timeout: float = 30.0) -> int:
    """A 64-byte round trip on every socket at once (echo upstream); returns how many failed."""
    message = b"r" * 64
    poller = select.epoll()
    by_fd = {s.fileno(): s for s in socks}
    got: dict[int, int] = {}
    failed = 0
    for s in socks:
        s.setblocking(False)
        try:
            s.send(message)
        except OSError:
            failed += 1
            continue
        got[s.fileno()] = 0
        poller.register(s.fileno(), select.EPOLLIN)
    deadline = time.monotonic() + timeout
    while got and time.monotonic() < deadline:
        for fd, _ in poller.poll(0.2):
            try:
                data = by_fd[fd].recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if data:
                got[fd] += len(data)
            if not data or got[fd] >= len(message):
                failed += 0 if data and got[fd] == len(message) else 1
                poller.unregister(fd)
                del got[fd]
    poller.close()
    return failed + len(got)
