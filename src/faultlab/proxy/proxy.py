"""The proxy model: proxies, their toxic chains, and the collection the API serves.

Semantics follow Toxiproxy v2.12 (``proxy.go``, ``proxy_collection.go``,
``toxic_collection.go``): listen addresses are resolved when bound and kept across
disable/enable, disabling closes the listener and every connection, changing ``listen``
or ``upstream`` restarts, toxics apply to live connections in creation order.
Every change here is quick: a toxic change waits only for the relay's loop to be between two
events, never for the connections themselves.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from faultlab.proxy.link import Connection, Direction, Listener
from faultlab.proxy.loop import Relay
from faultlab.proxy.toxics import TOXIC_TYPES, ToxicType
from faultlab.proxy.wire import Field, WireError, decode_into, decode_value, go_float32, json_kind

__all__ = ["ApiError", "Toxic", "ToxicCollection", "Proxy", "ProxyCollection", "DIRECTIONS", "MAX_NAME_BYTES",
           "check_name"]

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

_PROXY_FIELDS = [
    Field("name", "string"), Field("listen", "string"), Field("upstream", "string"), Field("enabled", "bool"),
]
_TOXIC_FIELDS = [
    Field("name", "string"), Field("type", "string"), Field("stream", "string"), Field("toxicity", "float32"),
]
_uids = itertools.count(1)
_SWEEP_BATCH = 64  # connections refreshed per loop round after a chain change


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


MAX_NAME_BYTES = 1024
"""The longest proxy or toxic name (UTF-8 bytes). Every name that can be created fits, percent-
encoded, in a request line the API accepts, so it can always be read and deleted too."""


def check_name(field_name: str, name: str, suffix: str = "") -> None:
    """ApiError 400 for a name no URL could address again: too long, with '/', or a dot segment."""
    size = len(name.encode("utf-8", "surrogatepass"))
    if size > MAX_NAME_BYTES:
        raise ApiError(f"bad request body: {field_name} must be at most {MAX_NAME_BYTES} bytes long, "
                       f"got {size}{suffix}", 400)
    if "/" in name or name in (".", ".."):
        raise ApiError(f"bad request body: {field_name} must not contain '/' nor be '.' or '..'{suffix}", 400)


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


class ChainRef:
    """One direction's ``state``: (generation, chain), replaced as one tuple on every change."""

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state: tuple[int, tuple[Toxic, ...]] = (0, ())


class ToxicCollection:
    """The toxic chains of one proxy, one per direction, in creation order.

    Each direction's chain is kept with a generation number in one tuple (a :class:`ChainRef`),
    replaced (never mutated) on every change, so the loop reads both without a lock and a
    direction can tell a changed chain by its number alone.
    """

    def __init__(self, proxy: Proxy):
        self.proxy = proxy
        self._lock = threading.Lock()
        self._refs = {d: ChainRef() for d in DIRECTIONS}

    def ref(self, direction: str) -> ChainRef:
        """The holder of a direction's (generation, chain): the same object for the proxy's life."""
        return self._refs[direction]

    def chain(self, direction: str) -> tuple[Toxic, ...]:
        """The current chain of a direction (an immutable snapshot; lock-free)."""
        return self._refs[direction].state[1]

    def state(self, direction: str) -> tuple[int, tuple[Toxic, ...]]:
        """The chain with its generation number (bumped on every change)."""
        return self._refs[direction].state

    def generation(self, direction: str) -> int:
        """The generation number of a direction's chain."""
        return self._refs[direction].state[0]

    def has_reset_peer(self) -> bool:
        """Whether a reset_peer toxic exists (new connections then close with RST, as Toxiproxy's)."""
        return any(t.kind.name == "reset_peer" for t in self.all())

    def all(self) -> list[Toxic]:
        """Upstream toxics first, then downstream, each in creation order (as Toxiproxy lists them)."""
        return [t for d in DIRECTIONS for t in self._refs[d].state[1]]

    def find(self, name: str) -> Toxic:
        for toxic in self.all():
            if toxic.name == name:
                return toxic
        raise ApiError(*TOXIC_NOT_FOUND)

    def _set(self, direction: str, chain: tuple[Toxic, ...]) -> None:
        ref = self._refs[direction]
        ref.state = (ref.state[0] + 1, chain)

    def add_json(self, body: bytes) -> Toxic:
        """Create a toxic from a request body, validating in Toxiproxy's order.

        Returns once the toxic holds on every live connection of the proxy.
        """
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
        check_name("name", name)
        kind = TOXIC_TYPES.get(type_name)
        if kind is None:
            raise ApiError(*INVALID_TOXIC_TYPE)
        raw_attrs = _object_key(value, "attributes") if isinstance(value, dict) else None
        with self._lock:
            if any(t.name == name for t in self.all()):
                raise ApiError(*TOXIC_EXISTS)
            attrs = _decode_attributes(kind, kind.defaults(), raw_attrs)
            toxic = Toxic(name, kind, stream, direction, fields["toxicity"], attrs)
            self._set(direction, self.chain(direction) + (toxic,))
        self.proxy.chain_changed(direction)
        return toxic

    def update_json(self, name: str, body: bytes) -> Toxic:
        """Merge a partial update (``attributes``, ``toxicity``) into an existing toxic."""
        with self._lock:
            old = self.find(name)
            try:
                value = decode_value(body)
                fields = decode_into({"toxicity": old.toxicity}, value, [_TOXIC_FIELDS[3]], "ToxicWrapper")
            except WireError as exc:
                raise ApiError.bad_body(exc) from None
            raw_attrs = _object_key(value, "attributes") if isinstance(value, dict) else None
            attrs = _decode_attributes(old.kind, old.attributes, raw_attrs)
            new = Toxic(old.name, old.kind, old.stream, old.direction, fields["toxicity"], attrs, old.uid,
                        old.version + 1)
            self._set(old.direction, tuple(new if t.uid == old.uid else t for t in self.chain(old.direction)))
        self.proxy.chain_changed(old.direction)
        return new

    def remove(self, name: str) -> None:
        """Remove a toxic; live connections flush what it held and carry on without it."""
        with self._lock:
            old = self.find(name)
            self._set(old.direction, tuple(t for t in self.chain(old.direction) if t.uid != old.uid))
        self.proxy.chain_changed(old.direction)

    def reset(self) -> None:
        """Remove every toxic."""
        changed = []
        with self._lock:
            for direction in DIRECTIONS:
                if self.chain(direction):
                    self._set(direction, ())
                    changed.append(direction)
        for direction in changed:
            self.proxy.chain_changed(direction)


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
    return family, sockaddr, format_address(str(sockaddr[0]), number)


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
        self.toxic_directions: dict[str, set[Direction]] = {d: set() for d in DIRECTIONS}
        """Live directions on the toxic path (loop thread only)."""
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
            self._listener = Listener(self.relay, self, sock)
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
        """Make a changed chain hold on every live connection, in one round of the loop.

        The new chain is already published; every direction compares its generation before
        it moves a byte read afterwards. This waits only until the loop is between two
        events (so no read already under way slips past the change), then returns: the
        toxic holds from here on, whatever the number of connections. The loop then sweeps
        the directions on the toxic path a few dozen at a time, so data a removed toxic held is
        flushed without stalling the others' traffic (and, for a toxic that acts on idle
        connections, every direction, so their clocks start).
        """
        self.relay.call(self._sweep_from_loop, direction)

    def _sweep_from_loop(self, direction: str) -> None:
        # Directions on the fast path notice the change before their next byte; only a toxic
        # that acts on an idle connection (timeout's clock) needs every one of them told now.
        if any(t.kind.acts_when_idle for t in self.toxics.chain(direction)):
            targets = [c.directions[direction] for c in self.connections if c.directions]
        else:
            targets = list(self.toxic_directions[direction])
        self._sweep(targets, 0, direction)

    def _sweep(self, targets: list[Direction], start: int, direction: str) -> None:
        generation = self.toxics.generation(direction)
        for target in targets[start : start + _SWEEP_BATCH]:
            if target.generation != generation and not target.conn.closed:
                target.refresh()
                target.conn.update_interest()
        if start + _SWEEP_BATCH < len(targets):
            self.relay.call_soon(self._sweep, targets, start + _SWEEP_BATCH, direction)


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
        check_name("name", fields["name"])
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
            fields: dict[str, Any] = {"listen": proxy.listen, "upstream": proxy.upstream, "enabled": proxy.enabled}
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
            if entries is None:
                entries = []
            else:
                raise ApiError(
                    f"bad request body: json: cannot unmarshal {json_kind(entries)} into Go value of type "
                    '[]struct { toxiproxy.Proxy; Enabled *bool "json:\\"enabled\\"" }',
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
            check_name("name", fields["name"], f" at proxy {index}")
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

