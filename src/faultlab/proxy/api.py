"""The Toxiproxy v2 HTTP API, answered the way the Go server answers.

Routes, status codes, JSON shapes, error bodies (``http.Error``: text/plain, JSON plus a
newline), the ``X-Toxiproxy-Request-Id`` header and the browser block all follow
``api.go`` of Toxiproxy v2.12. Each request runs on its own thread and never waits for the
data plane, so the API stays responsive while connections are under load.
"""

from __future__ import annotations

import base64
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
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

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
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class ApiHandler(BaseHTTPRequestHandler):
    """One HTTP connection of the API (keep-alive, like Go's server)."""

    protocol_version = "HTTP/1.1"
    timeout = 60
    server: ApiServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s - " + format, self.address_string(), *args)

    def __getattr__(self, name: str) -> Any:
        # Every method (PATCH, PUT, PROPFIND...) is routed, so unknown ones get Go's 404/405, not 501.
        if name.startswith("do_"):
            return self.dispatch
        raise AttributeError(name)

    # -- responses ---------------------------------------------------------------------------

    def setup(self) -> None:
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

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
        cached = getattr(self, "_body", None)
        if cached is None:
            cached = self._body = self._read_body()
        return cached

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
            line = self.rfile.readline(1024).strip()
            size = int(line.split(b";")[0] or b"0", 16)
            if size == 0:
                while self.rfile.readline(1024).strip():
                    pass
                return b"".join(parts)
            total += size
            if total > MAX_BODY:
                self.close_connection = True
                raise _BodyTooLarge("http: request body too large")
            parts.append(self.rfile.read(size))
            self.rfile.readline(8)

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
        body = ('{"version": "%s"}\n' % TOXIPROXY_VERSION).encode()
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
