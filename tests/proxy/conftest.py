"""Fixtures for the fault proxy tests: a server on a free port, upstreams, clients.

Everything listens on 127.0.0.1 with port 0, and every server, thread and socket a test
starts is stopped when it ends.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator

import httpx
import pytest
from proxy_helpers import Upstream, echo

from faultlab.proxy import ProxyServer


@pytest.fixture
def server() -> Iterator[ProxyServer]:
    with ProxyServer(host="127.0.0.1", port=0) as srv:
        yield srv


@pytest.fixture
def api(server: ProxyServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


@pytest.fixture
def upstreams() -> Iterator[Callable[[Callable[[socket.socket], None]], Upstream]]:
    made: list[Upstream] = []

    def make(handle: Callable[[socket.socket], None] = echo) -> Upstream:
        upstream = Upstream(handle)
        made.append(upstream)
        return upstream

    yield make
    for upstream in made:
        upstream.close()


@pytest.fixture
def echo_upstream(upstreams: Callable[..., Upstream]) -> Upstream:
    return upstreams(echo)


@pytest.fixture
def sockets() -> Iterator[Callable[[int], socket.socket]]:
    """Connect to a proxy port; every socket is closed at the end."""
    made: list[socket.socket] = []

    def connect(port: int, timeout: float = 5.0) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        made.append(sock)
        return sock

    yield connect
    for sock in made:
        sock.close()

