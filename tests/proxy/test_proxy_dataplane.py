"""Lifecycle and data plane: bind/disable/restart/delete, volume, concurrency, back-pressure.

Semantics from Toxiproxy's proxy_test.go and README; the "better than Toxiproxy" cases
(no API hang under load, no accept blocked by a dead upstream) are checked here too.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time

import httpx
import pytest
from proxy_helpers import EpollEcho, add_toxic, make_proxy, port_of, recv_exactly, round_trip, wait_for

from faultlab.proxy import ProxyServer


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


def closed_by_peer(sock: socket.socket) -> bool:
    sock.settimeout(2)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


def test_disable_refuses_and_cuts_then_enable_rebinds_same_port(api: httpx.Client, echo_upstream, sockets) -> None:
    port = make_proxy(api, "p", echo_upstream.address)
    live = sockets(port)
    round_trip(live)
    api.patch("/proxies/p", json={"enabled": False})
    assert refused(port), "a disabled proxy closes its listener (ECONNREFUSED)"
    assert closed_by_peer(live), "and every live connection"
    assert api.patch("/proxies/p", json={"enabled": True}).json()["listen"] == f"127.0.0.1:{port}"
    assert round_trip(sockets(port)) < 1


def test_changing_upstream_restarts_and_drops_connections(api: httpx.Client, upstreams, sockets) -> None:
    first = upstreams(lambda c: c.sendall(b"1") or c.recv(1))
    second = upstreams(lambda c: c.sendall(b"2") or c.recv(1))
    port = make_proxy(api, "p", first.address)
    live = sockets(port)
    assert live.recv(1) == b"1"
    response = api.patch("/proxies/p", json={"upstream": second.address})
    assert response.json()["listen"] == f"127.0.0.1:{port}"
    assert closed_by_peer(live)
    assert sockets(port).recv(1) == b"2"


def test_changing_listen_moves_the_listener(api: httpx.Client, echo_upstream, sockets) -> None:
    port = make_proxy(api, "p", echo_upstream.address)
    live = sockets(port)
    round_trip(live)
    new_port = port_of(api.patch("/proxies/p", json={"listen": "127.0.0.1:0"}).json()["listen"])
    assert new_port != port and refused(port)
    assert closed_by_peer(live)
    assert round_trip(sockets(new_port)) < 1


def test_same_listen_by_hostname_is_not_a_change(api: httpx.Client, echo_upstream, sockets) -> None:
    port = make_proxy(api, "p", echo_upstream.address)
    live = sockets(port)
    api.patch("/proxies/p", json={"listen": f"localhost:{port}"})
    assert round_trip(live) < 1, "localhost:PORT resolves to the bound address: no restart (2.12, #631)"


def test_delete_closes_listener_and_connections(api: httpx.Client, echo_upstream, sockets) -> None:
    port = make_proxy(api, "p", echo_upstream.address)
    live = sockets(port)
    round_trip(live)
    assert api.delete("/proxies/p").status_code == 204
    assert refused(port)
    assert closed_by_peer(live)


def test_reset_rebinds_disabled_proxies_on_their_port(api: httpx.Client, echo_upstream, sockets) -> None:
    port = make_proxy(api, "p", echo_upstream.address)
    api.patch("/proxies/p", json={"enabled": False})
    api.post("/reset")
    assert round_trip(sockets(port)) < 1


def test_down_upstream_accepts_then_closes(api: httpx.Client, sockets) -> None:
    dead = socket.create_server(("127.0.0.1", 0))
    dead_port = dead.getsockname()[1]
    dead.close()
    port = make_proxy(api, "p", f"127.0.0.1:{dead_port}")
    assert closed_by_peer(sockets(port)), "the client sees EOF, not ECONNREFUSED (Toxiproxy #265)"


def test_unresolvable_upstream_closes_the_client(api: httpx.Client, sockets) -> None:
    port = make_proxy(api, "p", "no-such-host.invalid:80")
    assert closed_by_peer(sockets(port))


def test_a_dead_upstream_blocks_no_accept(api: httpx.Client, echo_upstream, sockets, monkeypatch) -> None:
    from faultlab.proxy import link

    monkeypatch.setattr(link, "DIAL_TIMEOUT", 0.3)
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(0)
    fillers = []
    try:
        for _ in range(4):  # fill the accept queue: further SYNs are dropped, connects hang
            f = socket.socket()
            f.setblocking(False)
            f.connect_ex(blackhole.getsockname())
            fillers.append(f)
        stuck = make_proxy(api, "stuck", f"127.0.0.1:{blackhole.getsockname()[1]}")
        fine = make_proxy(api, "fine", echo_upstream.address)
        hanging = [sockets(stuck) for _ in range(5)]
        start = time.perf_counter()
        assert round_trip(sockets(fine)) < 1
        assert api.get("/proxies").status_code == 200
        assert time.perf_counter() - start < 1
        assert all(closed_by_peer(s) for s in hanging), "a dial that never completes gives up (DIAL_TIMEOUT)"
    finally:
        for f in fillers:
            f.close()
        blackhole.close()


def test_256_mb_byte_exact(api: httpx.Client, echo_upstream, sockets) -> None:
    port = make_proxy(api, "p", echo_upstream.address)
    sock = sockets(port, timeout=60)
    block = hashlib.sha256(b"seed").digest() * (1 << 15)  # 1 MiB, not uniform
    total = 256 << 20
    sent_hash = hashlib.sha256()

    def send() -> None:
        for i in range(total // len(block)):
            chunk = i.to_bytes(4, "big") + block[4:]
            sent_hash.update(chunk)
            sock.sendall(chunk)
        sock.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send)
    sender.start()
    got_hash = hashlib.sha256()
    received = 0
    buffer = bytearray(1 << 20)
    while True:
        n = sock.recv_into(buffer)
        if not n:
            break
        got_hash.update(memoryview(buffer)[:n])
        received += n
    sender.join()
    assert received == total
    assert got_hash.hexdigest() == sent_hash.hexdigest()


@pytest.fixture
def epoll_echo():
    server = EpollEcho()
    yield server
    server.close()


def test_500_concurrent_connections(server: ProxyServer, api: httpx.Client, epoll_echo, sockets) -> None:
    port = make_proxy(api, "p", epoll_echo.address)
    conns = [sockets(port, timeout=10) for _ in range(500)]
    for i, conn in enumerate(conns):
        conn.sendall(b"%05d" % i)
    for i, conn in enumerate(conns):
        assert recv_exactly(conn, 5) == b"%05d" % i
    assert wait_for(lambda: len(server.proxies.get("p").connections) == 500)
    metrics = api.get("/metrics").text
    assert 'faultlab_proxy_connections{proxy="p"} 500.0' in metrics


def _fill(sock: socket.socket, limit: int) -> int:
    """Send until the socket would block (or ``limit`` bytes); return bytes accepted."""
    sock.setblocking(False)
    chunk = b"z" * (1 << 20)
    sent = 0
    idle_since = time.monotonic()
    while sent < limit and time.monotonic() - idle_since < 0.5:
        try:
            sent += sock.send(chunk)
            idle_since = time.monotonic()
        except BlockingIOError:
            time.sleep(0.01)
    return sent


@pytest.mark.parametrize("toxic", [None, {"type": "latency", "stream": "upstream", "attributes": {"latency": 1}}])
def test_back_pressure_never_buffers_the_stream(api: httpx.Client, upstreams, sockets, toxic) -> None:
    release = threading.Event()
    upstream = upstreams(lambda conn: release.wait(10))
    port = make_proxy(api, "p", upstream.address)
    if toxic:
        add_toxic(api, "p", **toxic)
    sock = sockets(port)
    try:
        accepted = _fill(sock, 512 << 20)
        # socket buffers on both hops + the relay's 1 MiB pipe (or the 16 MiB toxic queue)
        assert accepted < 80 << 20, f"{accepted >> 20} MiB accepted from a sender nobody reads"
    finally:
        release.set()


def test_removing_toxics_under_load_never_hangs_the_api(api: httpx.Client, upstreams, sockets) -> None:
    release = threading.Event()
    upstream = upstreams(lambda conn: release.wait(10))
    port = make_proxy(api, "p", upstream.address)
    try:
        for round_ in range(3):
            add_toxic(api, "p", type="latency", name="l", stream="upstream", attributes={"latency": 50})
            add_toxic(api, "p", type="timeout", name="t", attributes={"timeout": 0})
            add_toxic(api, "p", type="bandwidth", name="b", stream="upstream", attributes={"rate": 1})
            flooders = [sockets(port) for _ in range(10)]
            for s in flooders:
                _fill(s, 4 << 20)
            start = time.perf_counter()
            for name in ("b", "l", "t"):
                assert api.delete(f"/proxies/p/toxics/{name}", timeout=2).status_code == 204
            assert api.post("/reset", timeout=2).status_code == 204
            if round_ == 2:
                assert api.delete("/proxies/p", timeout=2).status_code == 204
            assert time.perf_counter() - start < 1.0
    finally:
        release.set()


def test_embedded_server_stops_every_thread(echo_upstream) -> None:
    before = set(threading.enumerate())
    with ProxyServer(host="127.0.0.1", port=0) as srv, httpx.Client(base_url=srv.url) as api:
        port = make_proxy(api, "p", echo_upstream.address)
        add_toxic(api, "p", type="latency", attributes={"latency": 1})
        conn = socket.create_connection(("127.0.0.1", port))
        round_trip(conn)
    conn.close()
    assert wait_for(lambda: set(threading.enumerate()) <= before | set(echo_upstream._threads), timeout=3), \
        set(threading.enumerate()) - before
    assert refused(port)


def test_portable_path_without_splice_or_epoll(monkeypatch, echo_upstream) -> None:
    """The copy path and the selectors loop used where Linux's splice/epoll are missing."""
    from faultlab.proxy import link, loop

    monkeypatch.setattr(link, "_HAVE_SPLICE", False)
    monkeypatch.setattr(loop, "_new_poller", loop._SelectorPoller)
    with ProxyServer(host="127.0.0.1", port=0) as srv, httpx.Client(base_url=srv.url) as api:
        port = make_proxy(api, "p", echo_upstream.address)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            payload = hashlib.sha256(b"x").digest() * (1 << 17)  # 4 MiB
            sender = threading.Thread(target=sock.sendall, args=(payload,))
            sender.start()
            assert recv_exactly(sock, len(payload)) == payload
            sender.join()
            add_toxic(api, "p", type="latency", attributes={"latency": 50})
            assert round_trip(sock) >= 0.05
            api.delete("/proxies/p/toxics/latency_downstream")
            assert wait_for(lambda: round_trip(sock) < 0.04, timeout=2)


def test_half_close_is_propagated(api: httpx.Client, upstreams, sockets) -> None:
    """Deliberate deviation: Toxiproxy closes both sockets when one side finishes sending,
    which loses the answer of request-then-shutdown protocols; the half-close is passed on."""

    def answer_after_eof(conn: socket.socket) -> None:
        request = b""
        while data := conn.recv(4096):
            request += data
        conn.sendall(b"got " + request)

    port = make_proxy(api, "p", upstreams(answer_after_eof).address)
    for toxic in (None, {"type": "latency", "stream": "upstream", "attributes": {"latency": 10}}):
        if toxic:
            add_toxic(api, "p", **toxic)
        sock = sockets(port)
        sock.sendall(b"question")
        sock.shutdown(socket.SHUT_WR)
        assert recv_exactly(sock, 12) == b"got question"
        assert sock.recv(1) == b""


def test_stream_stays_exact_while_toxics_come_and_go(api: httpx.Client, echo_upstream, sockets) -> None:
    """Switching live directions between the fast path and the toxic path loses, duplicates
    and reorders nothing."""
    port = make_proxy(api, "p", echo_upstream.address)
    sock = sockets(port, timeout=30)
    total = 96 << 20
    block = hashlib.sha256(b"switch").digest() * (1 << 13)  # 256 KiB
    sent_hash = hashlib.sha256()
    done = threading.Event()

    def send() -> None:
        for i in range(total // len(block)):
            chunk = i.to_bytes(4, "big") + block[4:]
            sent_hash.update(chunk)
            sock.sendall(chunk)
        sock.shutdown(socket.SHUT_WR)

    def churn() -> None:
        toxics = [
            {"type": "latency", "name": "lu", "stream": "upstream", "attributes": {"latency": 1}},
            {"type": "bandwidth", "name": "bd", "attributes": {"rate": 100_000}},
            {"type": "slicer", "name": "sd", "attributes": {"average_size": 16384, "size_variation": 1000}},
        ]
        while not done.is_set():
            for toxic in toxics:
                api.post("/proxies/p/toxics", json=toxic)
                time.sleep(0.01)
            for toxic in toxics:
                api.delete(f"/proxies/p/toxics/{toxic['name']}")
                time.sleep(0.01)
            cycles.append(received_so_far[0])

    cycles: list[int] = []
    received_so_far = [0]
    sender = threading.Thread(target=send)
    churner = threading.Thread(target=churn)
    sender.start()
    churner.start()
    try:
        got_hash = hashlib.sha256()
        received = 0
        buffer = bytearray(1 << 20)
        while n := sock.recv_into(buffer):
            got_hash.update(memoryview(buffer)[:n])
            received += n
            received_so_far[0] = received
    finally:
        done.set()
        sender.join()
        churner.join()
    assert len([c for c in cycles if c < total]) >= 2, f"toxics churned while data flowed: {cycles}"
    assert received == total
    assert got_hash.hexdigest() == sent_hash.hexdigest()
