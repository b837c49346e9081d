"""Edge cases of the API: attribute ranges, huge numbers, name sizes, malformed HTTP.

Each one gets a clear 4xx (a Toxiproxy-shaped 400 for request bodies, a status line Go's
net/http would write for a malformed head), never a 500, a hang or a dead connection, and
the API keeps answering afterwards.
"""

from __future__ import annotations

import socket
import time
from urllib.parse import quote

import httpx
import pytest
from proxy_helpers import add_toxic, make_proxy, recv_exactly, round_trip, wait_for

from faultlab.proxy import ProxyServer
from faultlab.proxy.proxy import MAX_NAME_BYTES
from faultlab.proxy.toxics import MAX_MS, MAX_US

# -- attribute ranges ------------------------------------------------------------------------

OUT_OF_RANGE = [
    ("latency", "latency", MAX_MS + 1, f"between 0 and {MAX_MS} (ms)"),
    ("latency", "jitter", MAX_MS + 1, f"between 0 and {MAX_MS} (ms)"),
    ("latency", "latency", -1, f"between 0 and {MAX_MS} (ms)"),
    ("slow_close", "delay", MAX_MS + 1, f"between 0 and {MAX_MS} (ms)"),
    ("timeout", "timeout", MAX_MS + 1, f"between 0 and {MAX_MS} (ms)"),
    ("timeout", "timeout", -5, f"between 0 and {MAX_MS} (ms)"),
    ("reset_peer", "timeout", MAX_MS + 1, f"between 0 and {MAX_MS} (ms)"),
    ("slicer", "delay", MAX_US + 1, f"between 0 and {MAX_US} (µs)"),
    ("slicer", "average_size", 0, "between 1 and 9223372036854775807 (bytes)"),
    ("bandwidth", "rate", -1, "between 0 and 9223372036854775807 (KB/s)"),
    ("limit_data", "bytes", -1, "between 0 and 9223372036854775807 (bytes)"),
]


def error_message(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    body = response.json()
    assert body["status"] == response.status_code
    return str(body["error"])


@pytest.mark.parametrize(("kind", "key", "value", "range_text"), OUT_OF_RANGE)
def test_attribute_out_of_range_is_a_400_naming_field_and_range(
    api: httpx.Client, kind: str, key: str, value: int, range_text: str
) -> None:
    make_proxy(api, "p", "127.0.0.1:1")
    attributes = {key: value, **({"average_size": 10} if kind == "slicer" and key == "delay" else {})}
    response = api.post("/proxies/p/toxics", json={"type": kind, "name": "t", "attributes": attributes})
    assert response.status_code == 400
    message = error_message(response)
    assert message == f"bad request body: attributes.{key} must be {range_text}, got {value}"
    assert api.get("/proxies/p/toxics").json() == []
    assert api.get("/version").status_code == 200


def test_an_update_out_of_range_is_refused_and_changes_nothing(api: httpx.Client) -> None:
    make_proxy(api, "p", "127.0.0.1:1")
    add_toxic(api, "p", type="latency", name="l", attributes={"latency": 10, "jitter": 2})
    response = api.patch("/proxies/p/toxics/l", json={"attributes": {"latency": 10**15}})
    assert response.status_code == 400
    assert "attributes.latency must be between 0 and" in error_message(response)
    assert api.get("/proxies/p/toxics/l").json()["attributes"] == {"latency": 10, "jitter": 2}


def test_slicer_variation_above_average_names_both_fields(api: httpx.Client) -> None:
    make_proxy(api, "p", "127.0.0.1:1")
    response = api.post("/proxies/p/toxics", json={"type": "slicer", "attributes": {"average_size": 10,
                                                                                    "size_variation": 11}})
    assert response.status_code == 400
    assert error_message(response) == ("bad request body: attributes.size_variation must not be greater than "
                                       "attributes.average_size (10 bytes), got 11")


@pytest.mark.parametrize("toxic", [
    {"type": "latency", "attributes": {"latency": MAX_MS}},
    {"type": "latency", "attributes": {"latency": MAX_MS, "jitter": MAX_MS}},
    {"type": "slicer", "attributes": {"average_size": 1, "delay": MAX_US}},
    {"type": "bandwidth", "attributes": {"rate": 0}},
])
def test_the_longest_delays_hold_data_and_removal_delivers_it(api: httpx.Client, echo_upstream, sockets,
                                                               toxic: dict[str, object]) -> None:
    """At the top of its range a toxic holds the data (the relay does not die on an overflow),
    and removing it delivers everything at once; the connection then works as before."""
    port = make_proxy(api, "p", echo_upstream.address)
    sock = sockets(port)
    assert round_trip(sock) < 1
    created = add_toxic(api, "p", **toxic)
    payload = b"0123456789" * 10
    sock.sendall(payload)
    sock.settimeout(0.3)
    received = b""
    try:
        while len(received) < len(payload):
            data = sock.recv(4096)
            if not data:
                break
            received += data
    except TimeoutError:
        pass
    assert len(received) < len(payload), "a 292-year toxic let everything through"
    assert api.get("/version").status_code == 200
    assert api.delete(f"/proxies/p/toxics/{created['name']}").status_code == 204
    sock.settimeout(2)
    received += recv_exactly(sock, len(payload) - len(received))
    assert received == payload
    assert round_trip(sock) < 1


def test_the_longest_timeout_never_fires_and_removal_closes(api: httpx.Client, echo_upstream, sockets) -> None:
    port = make_proxy(api, "p", echo_upstream.address)
    add_toxic(api, "p", type="timeout", attributes={"timeout": MAX_MS})
    sock = sockets(port)
    sock.sendall(b"x")
    sock.settimeout(0.3)
    with pytest.raises(TimeoutError):
        sock.recv(1)
    assert api.delete("/proxies/p/toxics/timeout_downstream").status_code == 204
    sock.settimeout(2)
    assert sock.recv(1) == b""


def test_the_longest_slow_close_holds_the_close_until_removed(api: httpx.Client, upstreams, sockets) -> None:
    port = make_proxy(api, "p", upstreams(lambda conn: conn.sendall(b"bye")).address)
    add_toxic(api, "p", type="slow_close", attributes={"delay": MAX_MS})
    sock = sockets(port)
    assert recv_exactly(sock, 3) == b"bye"
    sock.settimeout(0.3)
    with pytest.raises(TimeoutError):
        sock.recv(1)
    assert api.delete("/proxies/p/toxics/slow_close_downstream").status_code == 204
    sock.settimeout(2)
    assert sock.recv(1) == b""


# -- numbers too long for Python's int() --------------------------------------------------------

HUGE = b"9" * 5000


def test_an_integer_over_4300_digits_is_a_400_not_a_500(api: httpx.Client) -> None:
    make_proxy(api, "p", "127.0.0.1:1")
    response = api.post("/proxies/p/toxics", content=b'{"type":"latency","attributes":{"latency":' + HUGE + b"}}")
    assert response.status_code == 400
    message = error_message(response)
    assert message.startswith("bad request body: json: cannot unmarshal number 99999")
    assert message.endswith("(5000 digits) into Go struct field LatencyToxic.attributes.latency of type int64")
    response = api.post("/proxies/p/toxics", content=b'{"type":"latency","toxicity":-' + HUGE + b"}")
    assert response.status_code == 400
    assert "ToxicWrapper.toxicity of type float32" in error_message(response)
    response = api.post("/proxies", content=b'{"name":' + HUGE + b',"upstream":"x:1"}')
    assert response.status_code == 400
    assert error_message(response) == ("bad request body: json: cannot unmarshal number into Go struct field "
                                       "Proxy.name of type string")
    response = api.post("/populate", content=HUGE)
    assert response.status_code == 400
    assert api.get("/version").status_code == 200


def test_a_huge_integer_in_an_ignored_key_is_ignored_like_go(api: httpx.Client) -> None:
    response = api.post("/proxies", content=b'{"name":"q","listen":"127.0.0.1:0","upstream":"x:1","n":' + HUGE + b"}")
    assert response.status_code == 201


# -- names ---------------------------------------------------------------------------------------


def test_the_longest_name_can_be_created_read_and_deleted(api: httpx.Client) -> None:
    name = "€" * (MAX_NAME_BYTES // 3) + "n" * (MAX_NAME_BYTES % 3)  # 1024 bytes, 9 per char in a URL
    assert len(name.encode()) == MAX_NAME_BYTES
    make_proxy(api, name, "127.0.0.1:1")
    toxic = add_toxic(api, name, type="latency", name=name)
    assert toxic["name"] == name
    url = f"/proxies/{quote(name, safe='')}"
    assert api.get(url).json()["name"] == name
    assert api.get(f"{url}/toxics/{quote(name, safe='')}").json()["name"] == name
    assert api.delete(f"{url}/toxics/{quote(name, safe='')}").status_code == 204
    assert api.delete(url).status_code == 204
    assert api.get("/proxies").json() == {}


@pytest.mark.parametrize("name", ["x" * (MAX_NAME_BYTES + 1), "é" * 513, "x" * 100_000],
                         ids=["1025-bytes", "513-two-byte-chars", "100000-chars"])
def test_a_name_too_long_is_refused_at_once(api: httpx.Client, name: str) -> None:
    response = api.post("/proxies", json={"name": name, "listen": "127.0.0.1:0", "upstream": "x:1"})
    assert response.status_code == 400
    size = len(name.encode())
    assert error_message(response) == f"bad request body: name must be at most {MAX_NAME_BYTES} bytes long, got {size}"
    response = api.post("/populate", json=[{"name": "ok", "upstream": "x:1", "listen": "127.0.0.1:0"},
                                           {"name": name, "upstream": "x:1"}])
    assert response.status_code == 400  # populate answers JSON, as Toxiproxy's does
    assert response.json() == {"error": f"bad request body: name must be at most {MAX_NAME_BYTES} bytes long, "
                                        f"got {size} at proxy 2", "status": 400, "proxies": None}
    make_proxy(api, "p", "127.0.0.1:1")
    response = api.post("/proxies/p/toxics", json={"type": "latency", "name": name})
    assert response.status_code == 400 and "name must be at most" in error_message(response)
    assert sorted(api.get("/proxies").json()) == ["p"]
    assert api.get("/proxies/p/toxics").json() == []


@pytest.mark.parametrize("name", ["a/b", ".", ".."])
def test_a_name_no_url_can_address_is_refused(api: httpx.Client, name: str) -> None:
    response = api.post("/proxies", json={"name": name, "listen": "127.0.0.1:0", "upstream": "x:1"})
    assert response.status_code == 400
    assert error_message(response) == "bad request body: name must not contain '/' nor be '.' or '..'"


# -- malformed HTTP ------------------------------------------------------------------------------


def raw_exchange(server: ProxyServer, request: bytes) -> bytes:
    """Send ``request`` and read the answer until the server closes (it must, after an error)."""
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(request)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


@pytest.mark.parametrize(("request_bytes", "status", "reason"), [
    (b"GET /proxies\r\n\r\n", b"400 Bad Request", b"malformed HTTP request"),
    (b"GET /proxies HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n", b"400 Bad Request", b"malformed MIME header line"),
    (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", b"400 Bad Request", b"malformed HTTP request"),
    (b"hello\r\n\r\n", b"400 Bad Request", b"malformed HTTP request"),
    (b"GET  /proxies HTTP/1.1\r\nHost: x\r\n\r\n", b"400 Bad Request", b"malformed HTTP request"),
    (b"G(T /proxies HTTP/1.1\r\nHost: x\r\n\r\n", b"400 Bad Request", b"invalid method"),
    (b"GET /proxies HTTP/1.x\r\nHost: x\r\n\r\n", b"400 Bad Request", b"malformed HTTP version"),
    (b"GET /proxies HTTP/2.0\r\nHost: x\r\n\r\n", b"505 HTTP Version Not Supported", b"unsupported protocol"),
    (b"GET /proxies HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n", b"400 Bad Request", b"line folding"),
    (b"GET /proxies HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n", b"400 Bad Request", b"invalid name"),
    (b"GET /proxies HTTP/1.1\r\n\r\n", b"400 Bad Request", b"missing required Host header"),
    (b"GET /proxies HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", b"400 Bad Request", b"too many Host headers"),
    (b"POST /proxies HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", b"501 Not Implemented",
     b"unsupported transfer encoding"),
    (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b"414 Request-URI Too Long", b"too long"),
    (b"GET /proxies HTTP/1.1\r\nHost: x\r\n" + b"X-A: 1\r\n" * 200 + b"\r\n", b"431 Request Header Fields Too Large",
     b"too large"),
], ids=["no-version", "header-without-colon", "tls-hello", "one-word", "two-spaces", "bad-method", "bad-version",
        "http-2", "folding", "space-in-name", "no-host", "two-hosts", "gzip-encoding", "long-line", "many-headers"])
def test_a_malformed_request_head_gets_a_status_line_and_the_api_keeps_answering(
    server: ProxyServer, api: httpx.Client, request_bytes: bytes, status: bytes, reason: bytes
) -> None:
    answer = raw_exchange(server, request_bytes)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 " + status + b"\r\n"), answer[:200]
    assert b"Connection: close" in head
    assert body.startswith(status + b": ") and reason in body, body
    assert api.get("/version").status_code == 200


def test_http_1_0_without_host_and_one_leading_empty_line_are_fine(server: ProxyServer) -> None:
    answer = raw_exchange(server, b"GET /version HTTP/1.0\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and answer.endswith(b'{"version": "2.12.0"}\n')
    answer = raw_exchange(server, b"\r\nGET /version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n")


def test_keep_alive_serves_several_requests_on_one_connection(server: ProxyServer) -> None:
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        for _ in range(3):
            sock.sendall(b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = b""
            while not answer.endswith(b"\n}\n") and b'"2.12.0"}\n' not in answer:
                answer += sock.recv(4096)
            assert answer.startswith(b"HTTP/1.1 200 OK\r\n")


def test_expect_100_continue_gets_its_interim_answer(server: ProxyServer) -> None:
    body = b'{"name":"c","listen":"127.0.0.1:0","upstream":"x:1"}'
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(b"POST /proxies HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n"
                     % len(body))
        assert sock.recv(4096).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        answer = b""
        deadline = time.monotonic() + 5
        while b'"toxics":[]}' not in answer and time.monotonic() < deadline:
            answer += sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 201 Created\r\n")


def test_a_negative_chunk_size_is_refused_not_read_to_eof(server: ProxyServer) -> None:
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(b"POST /proxies HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\n")
        head = sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 400 ")
    assert wait_for(lambda: httpx.get(server.url + "/version").status_code == 200)
