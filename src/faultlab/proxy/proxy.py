"""The proxy model: proxies, their toxic chains, and the collection the API serves.

Semantics follow Toxiproxy v2.12 (``proxy.go``, ``proxy_collection.go``,
``toxic_collection.go``): listen addresses are resolved when bound and kept across
disable/enable, disabling closes the listener and every connection, changing ``listen``
or ``upstream`` restarts, toxics apply to live connections in creation order.
Every change here is quick: the data plane is told, never waited for.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from faultlab.proxy.link import Connection, Listener
from faultlab.proxy.loop import Relay
from faultlab.proxy.toxics import TOXIC_TYPES, ToxicType
from faultlab.proxy.wire import Field, WireError, decode_into, decode_value, go_float32

__all__ = ["ApiError", "Toxic", "ToxicCollection", "Proxy", "ProxyCollection", "DIRECTIONS"]

DIRECTIONS = ("upstream", "downstream")


class ApiError(Exception):
    """An error the API reports as ``{"error": message, "status": status}``."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.message = message
        self.status = status

    @classmethod
    def bad_body(cls, exc: Exception) -> ApiError:
        """``bad request body: <decoder message>`` (400)."""
        return cls(f"bad request body: {exc}", 400)


PROXY_NOT_FOUND = ("proxy not found", 404)
PROXY_EXISTS = ("proxy already exists", 409)
INVALID_STREAM = ("stream was invalid, can be either upstream or downstream", 400)
INVALID_TOXIC_TYPE = ("invalid toxic type", 400)
TOXIC_EXISTS = ("toxic already exists", 409)
TOXIC_NOT_FOUND = ("toxic not found", 404)

_PROXY_FIELDS = [Field("name", "string"), Field("listen", "string"), Field("upstream", "string"), Field("enabled", "bool")]
_TOXIC_FIELDS = [Field("name", "string"), Field("type", "string"), Field("stream", "string"), Field("toxicity", "float32")]
_uids = itertools.count(1)


@dataclass
class Toxic:
    """A toxic as the API knows it. Replaced (new ``version``), never mutated, on update."""

    name: str
    kind: ToxicType
    stream: str
    direction: str
    toxicity: float
    attributes: dict[str, int]
    uid: str = field(default_factory=lambda: f"t{next(_uids)}")
    version: int = 0

    def to_wire(self) -> dict[str, Any]:
        """The JSON object, in Go's key order."""
        return {
            "attributes": dict(self.attributes),
            "name": self.name,
            "type": self.kind.name,
            "stream": self.stream,
            "toxicity": go_float32(self.toxicity),
        }


def _decode_attributes(kind: ToxicType, current: dict[str, int], value: Any) -> dict[str, int]:
    attrs = dict(current)
    try:
        decode_into(attrs, value, list(kind.fields), kind.struct_name, "attributes.")
    except WireError as exc:
        raise ApiError.bad_body(exc) from None
    problem = kind.validate(attrs)
    if problem:
        raise ApiError(f"bad request body: {problem}", 400)
    return attrs


def _object_key(body: dict[str, Any], key: str) -> Any:
    found = None
    for name, value in body.items():
        if name.lower() == key:
            found = value
    return found


class ToxicCollection:
    """The toxic chains of one proxy, one per direction, in creation order."""

    def __init__(self, proxy: Proxy):
        self.proxy = proxy
        self._lock = threading.Lock()
        self._chains: dict[str, tuple[Toxic, ...]] = {d: () for d in DIRECTIONS}
        self._generation = {d: 0 for d in DIRECTIONS}

    def chain(self, direction: str) -> tuple[Toxic, ...]:
        """The current chain of a direction (an immutable snapshot; lock-free)."""
        return self._chains[direction]

    def snapshot(self, direction: str) -> tuple[int, tuple[Toxic, ...]]:
        """The chain with its generation number (bumped on every change)."""
        with self._lock:
            return self._generation[direction], self._chains[direction]

    def has_reset_peer(self) -> bool:
        """Whether a reset_peer toxic exists (new connections then close with RST, as Toxiproxy's)."""
        return any(t.kind.name == "reset_peer" for d in DIRECTIONS for t in self._chains[d])

    def all(self) -> list[Toxic]:
        """Upstream toxics first, then downstream, each in creation order (as Toxiproxy lists them)."""
        return [t for d in DIRECTIONS for t in self._chains[d]]

    def find(self, name: str) -> Toxic:
        for toxic in self.all():
            if toxic.name == name:
                return toxic
        raise ApiError(*TOXIC_NOT_FOUND)

    def _set(self, direction: str, chain: tuple[Toxic, ...]) -> None:
        with self._lock:
            self._chains[direction] = chain
            self._generation[direction] += 1
        self.proxy.chain_changed(direction)

    def add_json(self, body: bytes) -> Toxic:
        """Create a toxic from a request body, validating in Toxiproxy's order."""
        try:
            value = decode_value(body)
            fields = decode_into({"stream": "downstream", "toxicity": 1.0}, value, _TOXIC_FIELDS, "ToxicWrapper")
        except WireError as exc:
            raise ApiError.bad_body(exc) from None
        stream = fields["stream"]
        direction = stream.lower()
        if direction not in DIRECTIONS:
            raise ApiError(*INVALID_STREAM)
        type_name = fields.get("type", "")
        name = fields.get("name") or f"{type_name}_{stream}"
        kind = TOXIC_TYPES.get(type_name)
        if kind is None:
            raise ApiError(*INVALID_TOXIC_TYPE)
        if any(t.name == name for t in self.all()):
            raise ApiError(*TOXIC_EXISTS)
        raw_attrs = _object_key(value, "attributes") if isinstance(value, dict) else None
        attrs = _decode_attributes(kind, kind.defaults(), raw_attrs)
        toxic = Toxic(name, kind, stream, direction, fields["toxicity"], attrs)
        self._set(direction, self._chains[direction] + (toxic,))
        return toxic

    def update_json(self, name: str, body: bytes) -> Toxic:
        """Merge a partial update (``attributes``, ``toxicity``) into an existing toxic."""
        old = self.find(name)
        try:
            value = decode_value(body)
            fields = decode_into({"toxicity": old.toxicity}, value, [_TOXIC_FIELDS[3]], "ToxicWrapper")
        except WireError as exc:
            raise ApiError.bad_body(exc) from None
        raw_attrs = _object_key(value, "attributes") if isinstance(value, dict) else None
        attrs = _decode_attributes(old.kind, old.attributes, raw_attrs)
        new = Toxic(old.name, old.kind, old.stream, old.direction, fields["toxicity"], attrs, old.uid, old.version + 1)
        chain = tuple(new if t.uid == old.uid else t for t in self._chains[old.direction])
        self._set(old.direction, chain)
        return new

    def remove(self, name: str) -> None:
        """Remove a toxic; live connections flush what it held and carry on without it."""
        old = self.find(name)
        self._set(old.direction, tuple(t for t in self._chains[old.direction] if t.uid != old.uid))

    def reset(self) -> None:
        """Remove every toxic."""
        for direction in DIRECTIONS:
            if self._chains[direction]:
                self._set(direction, ())


def split_host_port(address: str) -> tuple[str, str]:
    """Go's ``net.SplitHostPort``; raises ValueError with Go's wording."""
    if address.startswith("["):
        end = address.find("]")
        if end < 0:
            raise ValueError(f"address {address}: missing ']' in address")
        host, rest = address[1:end], address[end + 1 :]
        if not rest.startswith(":"):
            raise ValueError(f"address {address}: missing port in address")
        return host, rest[1:]
    if ":" not in address:
        raise ValueError(f"address {address}: missing port in address")
    host, _, port = address.rpartition(":")
    if ":" in host:
        raise ValueError(f"address {address}: too many colons in address")
    return host, port


def format_address(host: str, port: int) -> str:
    """``host:port`` as Go's ``net.TCPAddr.String`` writes it."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _port_number(port: str) -> int:
    if port == "":
        return 0
    if port.isdigit():
        number = int(port)
        if number > 65535:
            raise ValueError(f"address {port}: invalid port")
        return number
    try:
        return socket.getservbyname(port, "tcp")
    except OSError:
        raise ValueError(f"lookup tcp/{port}: unknown port") from None


def resolve_listen(listen: str) -> tuple[int, tuple[Any, ...], str]:
    """Resolve a listen address like ``net.ResolveTCPAddr``: (family, sockaddr, Go string)."""
    if listen == "":
        # Go would listen on every interface; an unset address stays on loopback here.
        host, port = "127.0.0.1", "0"
    else:
        host, port = split_host_port(listen)
    number = _port_number(port)
    if host in ("", "0.0.0.0", "::"):
        if socket.has_ipv6:
            return socket.AF_INET6, ("::", number), format_address("::", number)
        return socket.AF_INET, ("0.0.0.0", number), format_address("0.0.0.0", number)
    if host == "localhost":
        return socket.AF_INET, ("127.0.0.1", number), format_address("127.0.0.1", number)
    try:
        infos = socket.getaddrinfo(host, number, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise ValueError(f"lookup {host}: no such host") from None
    infos.sort(key=lambda info: info[0] != socket.AF_INET)
    family, _, _, _, sockaddr = infos[0]
    return family, sockaddr, format_address(sockaddr[0], number)


def _go_errno(exc: OSError) -> str:
    text = os.strerror(exc.errno) if exc.errno else str(exc)
    return text[:1].lower() + text[1:]


class Proxy:
    """One proxy: a listen address, an upstream, an enabled flag and its toxics.

    ``connections`` and the listener belong to the relay's loop thread.
    """

    def __init__(self, relay: Relay, name: str, listen: str, upstream: str):
        self.relay = relay
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.toxics = ToxicCollection(self)
        self.connections: set[Connection] = set()
        self.stats: dict[str, list[int]] = {d: [0, 0] for d in DIRECTIONS}
        self._listener: Listener | None = None
        self._lock = threading.RLock()

    def to_wire(self) -> dict[str, Any]:
        """The JSON object, in Go's key order, with its toxics."""
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [t.to_wire() for t in self.toxics.all()],
        }

    def upstream_address(self) -> tuple[str, int | str]:
        """(host, port) to dial; an unparsable upstream yields one that fails to resolve."""
        try:
            host, port = split_host_port(self.upstream)
        except ValueError:
            return self.upstream, 0
        return (host or "127.0.0.1"), (int(port) if port.isdigit() else port)

    def start(self) -> None:
        """Bind the listen address (resolving it) and accept; ApiError 500 with Go's text if not."""
        with self._lock:
            if self.enabled:
                return
            try:
                family, sockaddr, shown = resolve_listen(self.listen)
            except ValueError as exc:
                raise ApiError(f"listen tcp: {exc}", 500) from None
            sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                sock.bind(sockaddr)
                sock.listen(4096)
            except OSError as exc:
                sock.close()
                raise ApiError(f"listen tcp {shown}: bind: {_go_errno(exc)}", 500) from None
            port = sock.getsockname()[1]
            self.listen = format_address(sockaddr[0], port)
            self._listener = self.relay.call(Listener, self.relay, self, sock)
            self.enabled = True

    def stop(self) -> None:
        """Close the listener (new clients are refused) and every live connection."""
        with self._lock:
            if not self.enabled:
                return
            self.enabled = False
            listener, self._listener = self._listener, None
            self.relay.call(self._stop_in_loop, listener)

    def _stop_in_loop(self, listener: Listener | None) -> None:
        if listener is not None:
            listener.close()
        for conn in list(self.connections):
            conn.close()

    def differs(self, listen: str, upstream: str) -> bool:
        """Whether ``listen``/``upstream`` name another endpoint (hostnames resolved, :0 always new)."""
        if upstream != self.upstream:
            return True
        try:
            _, sockaddr, shown = resolve_listen(listen)
        except ValueError:
            return listen != self.listen
        if sockaddr[1] == 0:
            return True
        return listen != self.listen and shown != self.listen

    def update(self, listen: str, upstream: str, enabled: bool) -> None:
        """Apply a PATCH: a new endpoint restarts the proxy, ``enabled`` starts or stops it."""
        with self._lock:
            if self.differs(listen, upstream):
                self.stop()
                self.listen, self.upstream = listen, upstream
            if enabled != self.enabled:
                if enabled:
                    self.start()
                else:
                    self.stop()

    def chain_changed(self, direction: str) -> None:
        """Tell every live connection that ``direction``'s chain changed.

        Waits only for the loop to switch paths and poke the toxic threads (it never blocks),
        so data sent after the API answered meets the new chain, as with Toxiproxy.
        """
        self.relay.call(self._refresh_in_loop, direction)

    def _refresh_in_loop(self, direction: str) -> None:
        for conn in list(self.connections):
            if conn.directions:
                conn.directions[direction].refresh()
                conn.update_interest()


class ProxyCollection:
    """All proxies of one server, by name."""

    def __init__(self, relay: Relay):
        self.relay = relay
        self.lock = threading.RLock()
        self._proxies: dict[str, Proxy] = {}

    def all(self) -> list[Proxy]:
        """Proxies sorted by name (Go marshals maps with sorted keys)."""
        with self.lock:
            return [self._proxies[n] for n in sorted(self._proxies)]

    def get(self, name: str) -> Proxy:
        """The proxy called ``name``, or ApiError 404 ``proxy not found``."""
        with self.lock:
            proxy = self._proxies.get(name)
        if proxy is None:
            raise ApiError(*PROXY_NOT_FOUND)
        return proxy

    def create_json(self, body: bytes) -> Proxy:
        """POST /proxies."""
        try:
            fields = decode_into({"enabled": True}, decode_value(body), _PROXY_FIELDS, "Proxy")
        except WireError as exc:
            raise ApiError.bad_body(exc) from None
        if not fields.get("name"):
            raise ApiError("missing required field: name", 400)
        if not fields.get("upstream"):
            raise ApiError("missing required field: upstream", 400)
        proxy = Proxy(self.relay, fields["name"], fields.get("listen", ""), fields["upstream"])
        self.add(proxy, fields["enabled"])
        return proxy

    def add(self, proxy: Proxy, enabled: bool) -> None:
        """Add a new proxy (409 if the name is taken; nothing is kept if it cannot bind)."""
        with self.lock:
            if proxy.name in self._proxies:
                raise ApiError(*PROXY_EXISTS)
            if enabled:
                proxy.start()
            self._proxies[proxy.name] = proxy

    def update_json(self, name: str, body: bytes) -> Proxy:
        """PATCH (or POST) /proxies/{name}."""
        with self.lock:
            proxy = self.get(name)
            fields = {"listen": proxy.listen, "upstream": proxy.upstream, "enabled": proxy.enabled}
            try:
                decode_into(fields, decode_value(body), _PROXY_FIELDS[1:], "Proxy")
            except WireError as exc:
                raise ApiError.bad_body(exc) from None
            proxy.update(fields["listen"], fields["upstream"], fields["enabled"])
            return proxy

    def remove(self, name: str) -> None:
        """Stop a proxy and forget it."""
        with self.lock:
            proxy = self.get(name)
            del self._proxies[name]
        proxy.stop()

    def clear(self) -> None:
        """Stop and forget every proxy."""
        with self.lock:
            proxies, self._proxies = list(self._proxies.values()), {}
        for proxy in proxies:
            proxy.stop()

    def reset(self) -> None:
        """POST /reset: enable every proxy and remove every toxic."""
        with self.lock:
            for proxy in self.all():
                proxy.start()
                proxy.toxics.reset()

    def populate(self, entries: Any) -> tuple[list[Proxy], ApiError | None]:
        """POST /populate (and ``--config``): validate all, then apply one by one, not atomically.

        Returns the proxies applied so far and the error that stopped it, if any.
        """
        if not isinstance(entries, list):
            kind = "object" if isinstance(entries, dict) else type(entries).__name__
            kind = {"str": "string", "int": "number", "float": "number", "bool": "bool", "NoneType": "null"}.get(kind, kind)
            if entries is None:
                entries = []
            else:
                raise ApiError(
                    "bad request body: json: cannot unmarshal "
                    f"{kind} into Go value of type []struct {{ toxiproxy.Proxy; Enabled *bool \"json:\\\"enabled\\\"\" }}",
                    400,
                )
        decoded = []
        for index, entry in enumerate(entries, start=1):
            try:
                fields = decode_into({}, entry, _PROXY_FIELDS, "Proxy")
            except WireError as exc:
                raise ApiError.bad_body(exc) from None
            if not fields.get("name"):
                raise ApiError(f"missing required field: name at proxy {index}", 400)
            if not fields.get("upstream"):
                raise ApiError(f"missing required field: upstream at proxy {index}", 400)
            fields.setdefault("enabled", True)
            fields.setdefault("listen", "")
            decoded.append(fields)
        applied: list[Proxy] = []
        with self.lock:
            for fields in decoded:
                try:
                    applied.append(self._add_or_replace(fields))
                except ApiError as exc:
                    return applied, exc
        return applied, None

    def _add_or_replace(self, fields: dict[str, Any]) -> Proxy:
        existing = self._proxies.get(fields["name"])
        if existing is not None:
            if not existing.differs(fields["listen"], fields["upstream"]):
                return existing
            existing.stop()
        proxy = Proxy(self.relay, fields["name"], fields["listen"], fields["upstream"])
        if fields["enabled"]:
            proxy.start()
        self._proxies[proxy.name] = proxy
        return proxy

