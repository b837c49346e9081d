"""The Toxiproxy v2 HTTP API, answered the way the Go server answers.

Routes, status codes, JSON shapes, error bodies (``http.Error``: text/plain, JSON plus a
newline), the ``X-Toxiproxy-Request-Id`` header and the browser block all follow
``api.go`` of Toxiproxy v2.12. Each request runs on its own thread and never waits for the
data plane, so the API stays responsive while connections are under load.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import itertools
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from faultlab.proxy.loop import EXHAUSTED
from faultlab.proxy.proxy import ApiError, ProxyCollection
from faultlab.proxy.wire import WireError, decode_value, go_dumps

__all__ = ["TOXIPROXY_VERSION", "MAX_BODY", "ApiServer"]

log = logging.getLogger(__name__)

TOXIPROXY_VERSION = "2.12.0"
"""The Toxiproxy release whose API this server speaks."""

MAX_BODY = 1 << 20
"""Request bodies above this size are refused (400) without being read into memory."""

_TEXT = "text/plain; charset=utf-8"
_JSON = "application/json"
_counter = itertools.count()


@functools.cache
def _process_id() -> tuple[bytes, int]:
    return os.urandom(5), int.from_bytes(os.urandom(3), "big")


def request_id() -> str:
    """An id shaped like the ``xid`` Toxiproxy's logger puts in ``X-Toxiproxy-Request-Id``."""
    machine, start = _process_id()
    sequence = (start + next(_counter)) & 0xFFFFFF
    raw = int(time.time()).to_bytes(4, "big") + machine + sequence.to_bytes(3, "big")
    return base64.b32hexencode(raw).decode().lower().rstrip("=")


MAX_REQUEST_LINE = 65536
"""Longest request line: two names of the longest length, percent-encoded, fit with room to spare."""
MAX_HEADER_BYTES = 65536
MAX_HEADERS = 100
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VERSION = re.compile(rb"HTTP/([0-9])\.([0-9])")
_CONTROL_OR_SPACE = re.compile(rb"[\x00-\x20\x7f]")
_HEX = re.compile(rb"[0-9a-fA-F]{1,16}")
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")


class _BadRequest(Exception):
    """A request head the server refuses before routing (Go's net/http would too)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class _Headers:
    """Request headers by lower-case name (the subset of ``email.message.Message`` used here)."""

    def __init__(self, fields: dict[str, list[str]]):
        self._fields = fields

    def get(self, name: str, default: str = "") -> str:
        values = self._fields.get(name.lower())
        return values[0] if values else default


class _BodyTooLarge(Exception):
    """A body the server will not read (too large or malformed framing)."""


class _Metrics:
    """Toxiproxy's proxy metrics, read from the relay's counters at scrape time."""

    def __init__(self, proxies: ProxyCollection):
        self.proxies = proxies

    def collect(self) -> Any:
        received = CounterMetricFamily(
            "toxiproxy_proxy_received_bytes", "Number of bytes received from the source",
            labels=["direction", "proxy", "listener", "upstream"],
        )
        sent = CounterMetricFamily(
            "toxiproxy_proxy_sent_bytes", "Number of bytes sent to the destination",
            labels=["direction", "proxy", "listener", "upstream"],
        )
        connections = GaugeMetricFamily(
            "faultlab_proxy_connections", "Open client connections", labels=["proxy"]
        )
        for proxy in self.proxies.all():
            for direction, (got, put) in proxy.stats.items():
                labels = [direction, proxy.name, proxy.listen, proxy.upstream]
                received.add_metric(labels, got)
                sent.add_metric(labels, put)
            connections.add_metric([proxy.name], len(proxy.connections))
        yield received
        yield sent
        yield connections


class ApiServer(ThreadingHTTPServer):
    """The HTTP server; ``proxies`` is the collection it manages."""

    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], proxies: ProxyCollection):
        self.proxies = proxies
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_Metrics(proxies))
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, ApiHandler)

    def server_bind(self) -> None:
        super().server_bind()
        self._reserve_fd = _open_reserve()
        self._warned_at = -10.0

    def get_request(self) -> tuple[socket.socket, Any]:
        """Accept; out of descriptors, answer 503 on the reserve one instead of spinning on the backlog."""
        try:
            return self.socket.accept()
        except OSError as exc:
            if exc.errno not in EXHAUSTED or self._reserve_fd < 0:
                raise
            os.close(self._reserve_fd)
            self._reserve_fd = -1
            try:
                client, _ = self.socket.accept()
            except OSError:
                client = None
            if client is not None:
                with contextlib.suppress(OSError):
                    client.sendall(_OUT_OF_DESCRIPTORS)
                client.close()
            self._reserve_fd = _open_reserve()
            now = time.monotonic()
            if now - self._warned_at >= 10:
                self._warned_at = now
                log.warning("proxy API: answering 503, the process is out of descriptors (%s)", exc.strerror)
            raise

    def server_close(self) -> None:
        super().server_close()
        if self._reserve_fd >= 0:
            os.close(self._reserve_fd)
            self._reserve_fd = -1

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_idle_connections(self) -> None:
        """Cut keep-alive connections so their handler threads end (used when stopping)."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _open_reserve() -> int:
    try:
        return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return -1


_OUT_OF_DESCRIPTORS_TEXT = b"503 Service Unavailable: the proxy is out of file descriptors"
_OUT_OF_DESCRIPTORS = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(_OUT_OF_DESCRIPTORS_TEXT), _OUT_OF_DESCRIPTORS_TEXT)
)


class ApiHandler(BaseHTTPRequestHandler):
    """One HTTP connection of the API (keep-alive, like Go's server)."""

    protocol_version = "HTTP/1.1"
    timeout = 60
    server: ApiServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s - " + format, self.address_string(), *args)

    # -- the request head (strict: what Go's net/http refuses is refused here) ------------

    def handle_one_request(self) -> None:
        """Read one request head strictly, answer a bad one with a status line, else dispatch."""
        self._headers_buffer: list[bytes] = []
        self._body: bytes | None = None
        try:
            line = self.rfile.readline(MAX_REQUEST_LINE + 1)
            if line in (b"\r\n", b"\n"):  # RFC 9112 2.2: ignore one empty line before a request
                line = self.rfile.readline(MAX_REQUEST_LINE + 1)
            if not line:
                self.close_connection = True
                return
            try:
                if not self._parse_head(line):
                    self.close_connection = True  # the client went away mid-head
                    return
            except _BadRequest as bad:
                self._send_bad_request(bad.status, bad.reason)
                return
            self.dispatch()
            self.wfile.flush()
        except TimeoutError:
            self.close_connection = True

    def _parse_head(self, line: bytes) -> bool:
        """Parse the request line and headers into ``command``, ``path``, ``headers``.

        False if the connection ended before the head did; :class:`_BadRequest` for a head
        Go's server would refuse (malformed request line, unsupported version, a header
        line without a colon or with folding, too many or too large headers...).
        """
        self.command, self.path, self.request_version, self.requestline = "", "", "HTTP/1.1", ""
        if len(line) > MAX_REQUEST_LINE:
            raise _BadRequest(414, "request line too long")
        if not line.endswith(b"\n"):
            return False
        self._parse_request_line(line[:-2] if line.endswith(b"\r\n") else line[:-1])
        fields = self._read_fields()
        if fields is None:
            return False
        self.headers = _Headers(fields)  # type: ignore[assignment]
        self._check_framing(fields)
        return True

    def _parse_request_line(self, text: bytes) -> None:
        self.requestline = text.decode("latin-1")
        parts = text.split(b" ")
        if len(parts) != 3:
            raise _BadRequest(400, f"malformed HTTP request {self.requestline[:200]!r}")
        method, target, version = parts
        if not _TOKEN.fullmatch(method):
            raise _BadRequest(400, "invalid method")
        if not target or _CONTROL_OR_SPACE.search(target):
            raise _BadRequest(400, "invalid request target")
        matched = _VERSION.fullmatch(version)
        if matched is None:
            raise _BadRequest(400, f"malformed HTTP version {version.decode('latin-1')[:50]!r}")
        if matched.group(1) != b"1":
            raise _BadRequest(505, "unsupported protocol version")
        self.command, self.path = method.decode("ascii"), target.decode("latin-1")
        self.request_version = version.decode("ascii")

    def _read_fields(self) -> dict[str, list[str]] | None:
        """Header fields by lower-case name; None if the connection ended first."""
        fields: dict[str, list[str]] = {}
        size = lines = 0
        while True:
            raw = self.rfile.readline(MAX_HEADER_BYTES + 1)
            size += len(raw)
            lines += 1
            if size > MAX_HEADER_BYTES or lines > MAX_HEADERS + 1:
                raise _BadRequest(431, "request header fields too large")
            if not raw.endswith(b"\n"):
                return None
            header = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
            if not header:
                return fields
            if header[:1] in (b" ", b"\t"):
                raise _BadRequest(400, "malformed MIME header: obsolete line folding")
            name, colon, value = header.partition(b":")
            if not colon:
                raise _BadRequest(400, f"malformed MIME header line: {header.decode('latin-1')[:100]!r}")
            if not _TOKEN.fullmatch(name):
                raise _BadRequest(400, f"malformed MIME header: invalid name {name.decode('latin-1')[:100]!r}")
            value = value.strip(b" \t")
            if _CONTROL.search(value):
                raise _BadRequest(400, f"malformed MIME header: invalid value of {name.decode('ascii')}")
            fields.setdefault(name.decode("ascii").lower(), []).append(value.decode("latin-1"))

    def _check_framing(self, fields: dict[str, list[str]]) -> None:
        hosts = fields.get("host", [])
        if self.request_version == "HTTP/1.1" and not hosts:
            raise _BadRequest(400, "missing required Host header")
        if len(hosts) > 1:
            raise _BadRequest(400, "too many Host headers")
        encodings = fields.get("transfer-encoding")
        if encodings is not None and [e.lower() for e in encodings] != ["chunked"]:
            raise _BadRequest(501, "unsupported transfer encoding")
        if len(set(fields.get("content-length", []))) > 1:
            raise _BadRequest(400, "conflicting Content-Length headers")
        connection = ",".join(fields.get("connection", [])).lower()
        if "close" in connection:
            self.close_connection = True
        elif self.request_version == "HTTP/1.0":
            self.close_connection = "keep-alive" not in connection
        else:
            self.close_connection = False
        expect = fields.get("expect")
        if expect is not None:
            if [e.lower() for e in expect] != ["100-continue"]:
                raise _BadRequest(417, "unsupported Expect")
            if self.request_version == "HTTP/1.1":
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _send_bad_request(self, status: int, reason: str) -> None:
        """What Go's server writes for a request it cannot parse; the connection then closes."""
        self.close_connection = True
        text = f"{status} {HTTPStatus(status).phrase}"
        body = f"{text}: {reason}".encode("utf-8", "replace")
        self.wfile.write(
            f"HTTP/1.1 {text}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode() + body
        )
        with contextlib.suppress(OSError):
            self.wfile.flush()

    # -- responses ---------------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send(self, status: int, body: bytes = b"", content_type: str | None = _JSON,
             headers: dict[str, str] | None = None) -> None:
        self.send_response_only(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if content_type and status != 204:
            self.send_header("Content-Type", content_type)
        self.send_header("Date", formatdate(usegmt=True))
        if status != 204:
            self.send_header("Content-Length", str(len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        # One write for head and body: separate small writes meet Nagle and delayed ACKs.
        self._headers_buffer.append(b"\r\n")
        if body and self.command != "HEAD":
            self._headers_buffer.append(body)
        self.wfile.write(b"".join(self._headers_buffer))
        self._headers_buffer = []

    def send_error_body(self, status: int, text: str, headers: dict[str, str]) -> None:
        """What Go's ``http.Error`` writes."""
        self.send(status, (text + "\n").encode(), _TEXT, {**headers, "X-Content-Type-Options": "nosniff"})

    def send_api_error(self, error: ApiError, headers: dict[str, str]) -> None:
        self.send_error_body(error.status, go_dumps({"error": error.message, "status": error.status}), headers)

    def send_json(self, status: int, value: Any, headers: dict[str, str]) -> None:
        self.send(status, go_dumps(value).encode(), _JSON, headers)

    # -- requests ----------------------------------------------------------------------------

    def read_body(self) -> bytes:
        """The request body, read once (every request's body is consumed, keeping keep-alive in step)."""
        if self._body is None:
            self._body = self._read_body()
        return self._body

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            try:
                return self._read_chunked()
            except ValueError:
                self.close_connection = True
                raise _BodyTooLarge("http: invalid byte in chunk length") from None
        length = self.headers.get("Content-Length")
        if not length:
            return b""
        try:
            size = int(length)
        except ValueError:
            size = -1
        if size < 0:
            self.close_connection = True
            raise _BodyTooLarge("http: invalid Content-Length")
        if size > MAX_BODY:
            self.close_connection = True
            raise _BodyTooLarge("http: request body too large")
        return self.rfile.read(size)

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024).rstrip(b"\r\n")
            size_text = line.split(b";")[0].strip(b" \t")
            if not _HEX.fullmatch(size_text):
                raise ValueError("invalid chunk length")
            size = int(size_text, 16)
            if size == 0:
                while self.rfile.readline(1024).strip():
                    pass
                return b"".join(parts)
            total += size
            if total > MAX_BODY:
                self.close_connection = True
                raise _BodyTooLarge("http: request body too large")
            parts.append(self.rfile.read(size))
            if self.rfile.readline(8) not in (b"\r\n", b"\n"):
                raise ValueError("malformed chunk")

    def dispatch(self) -> None:
        self._body = None
        path = unquote(urlsplit(self.path).path)
        route = _match(path)
        if route is None:
            self._discard_body()
            self.send_error_body(404, "404 page not found", {})
            return
        handlers, args = route
        handler = handlers.get(self.command) or handlers.get("*")
        if handler is None:
            self._discard_body()
            self.send(405, b"", None)
            return
        headers = {"X-Toxiproxy-Request-Id": request_id()}
        if self.headers.get("User-Agent", "").startswith("Mozilla/"):
            self._discard_body()
            self.send_error_body(403, "User agent not allowed", headers)
            return
        try:
            self.read_body()
            handler(self, headers, *args)
        except ApiError as error:
            self.send_api_error(error, headers)
        except _BodyTooLarge as exc:
            self.send_api_error(ApiError(f"bad request body: {exc}", 400), headers)
        except Exception as exc:  # noqa: BLE001 - Go answers any other error with 500 and its text
            log.exception("proxy API request failed")
            self.send_api_error(ApiError(str(exc) or type(exc).__name__, 500), headers)

    def _discard_body(self) -> None:
        try:
            self.read_body()
        except (_BodyTooLarge, ValueError):
            self.close_connection = True

    # -- endpoints ---------------------------------------------------------------------------

    def proxy_index(self, headers: dict[str, str]) -> None:
        self.send_json(200, {p.name: p.to_wire() for p in self.server.proxies.all()}, headers)

    def proxy_create(self, headers: dict[str, str]) -> None:
        proxy = self.server.proxies.create_json(self.read_body())
        self.send_json(201, proxy.to_wire(), headers)

    def populate(self, headers: dict[str, str]) -> None:
        body = self.read_body()
        try:
            try:
                entries = decode_value(body)
            except WireError as exc:
                raise ApiError.bad_body(exc) from None
            applied, error = self.server.proxies.populate(entries)
        except ApiError as exc:
            applied, error = [], exc
        result: dict[str, Any] = {}
        if error is not None:
            result = {"error": error.message, "status": error.status}
        result["proxies"] = [p.to_wire() for p in applied] or None
        self.send_json(error.status if error else 201, result, headers)

    def proxy_show(self, headers: dict[str, str], name: str) -> None:
        self.send_json(200, self.server.proxies.get(name).to_wire(), headers)

    def proxy_update(self, headers: dict[str, str], name: str) -> None:
        body = self.read_body()
        proxy = self.server.proxies.update_json(name, body)
        self.send_json(200, proxy.to_wire(), headers)

    def proxy_delete(self, headers: dict[str, str], name: str) -> None:
        self.server.proxies.remove(name)
        self.send(204, b"", None, headers)

    def toxic_index(self, headers: dict[str, str], name: str) -> None:
        proxy = self.server.proxies.get(name)
        self.send_json(200, [t.to_wire() for t in proxy.toxics.all()], headers)

    def toxic_create(self, headers: dict[str, str], name: str) -> None:
        proxy = self.server.proxies.get(name)
        body = self.read_body()
        toxic = proxy.toxics.add_json(body)
        self.send_json(200, toxic.to_wire(), headers)

    def toxic_show(self, headers: dict[str, str], name: str, toxic: str) -> None:
        proxy = self.server.proxies.get(name)
        self.send_json(200, proxy.toxics.find(toxic).to_wire(), headers)

    def toxic_update(self, headers: dict[str, str], name: str, toxic: str) -> None:
        proxy = self.server.proxies.get(name)
        body = self.read_body()
        updated = proxy.toxics.update_json(toxic, body)
        self.send_json(200, updated.to_wire(), headers)

    def toxic_delete(self, headers: dict[str, str], name: str, toxic: str) -> None:
        proxy = self.server.proxies.get(name)
        proxy.toxics.remove(toxic)
        self.send(204, b"", None, headers)

    def reset(self, headers: dict[str, str]) -> None:
        self._discard_body()
        self.server.proxies.reset()
        self.send(204, b"", None, headers)

    def version(self, headers: dict[str, str]) -> None:
        body = f'{{"version": "{TOXIPROXY_VERSION}"}}\n'.encode()
        self.send(200, body, "application/json;charset=utf-8", headers)

    def metrics(self, headers: dict[str, str]) -> None:
        self._discard_body()
        self.send(200, generate_latest(self.server.registry), CONTENT_TYPE_LATEST, headers)


_ROUTES: list[tuple[re.Pattern[str], dict[str, Callable[..., None]]]] = [
    (re.compile(r"/reset"), {"POST": ApiHandler.reset}),
    (re.compile(r"/proxies"), {"GET": ApiHandler.proxy_index, "POST": ApiHandler.proxy_create}),
    (re.compile(r"/populate"), {"POST": ApiHandler.populate}),
    (re.compile(r"/proxies/([^/]+)"), {
        "GET": ApiHandler.proxy_show, "POST": ApiHandler.proxy_update,
        "PATCH": ApiHandler.proxy_update, "DELETE": ApiHandler.proxy_delete,
    }),
    (re.compile(r"/proxies/([^/]+)/toxics"), {"GET": ApiHandler.toxic_index, "POST": ApiHandler.toxic_create}),
    (re.compile(r"/proxies/([^/]+)/toxics/([^/]+)"), {
        "GET": ApiHandler.toxic_show, "POST": ApiHandler.toxic_update,
        "PATCH": ApiHandler.toxic_update, "DELETE": ApiHandler.toxic_delete,
    }),
    (re.compile(r"/version"), {"GET": ApiHandler.version}),
    (re.compile(r"/metrics"), {"*": ApiHandler.metrics}),
]


def _match(path: str) -> tuple[dict[str, Callable[..., None]], tuple[str, ...]] | None:
    for pattern, handlers in _ROUTES:
        found = pattern.fullmatch(path)
        if found:
            return handlers, found.groups()
    return None
