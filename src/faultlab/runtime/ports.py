"""Free TCP ports on 127.0.0.1, for services started with ``port: auto``.

A port found free can be taken by someone else before the service binds it; there is no
way around that for a child process. This module narrows the window. Ports are chosen
**outside the kernel's ephemeral range** (``/proc/sys/net/ipv4/ip_local_port_range``):
asking the kernel for port 0 hands out a port from that range, the same range every
outgoing connection draws its local port from, so under load (locust, connection pools)
a client socket could take the port before the service bound it (seen in CI: "address
already in use" for a gateway). A port below the range is only ever taken by another
listener. Each chosen port is checked free by binding it, none is handed out twice in one
harness, and :func:`start_on_free_port` retries a start that lost the race anyway.
"""

from __future__ import annotations

import collections
import errno
import random
import socket
import threading
from collections.abc import Callable
from typing import TypeVar

__all__ = ["LOOPBACK", "free_port", "free_ports", "start_on_free_port", "is_port_in_use",
           "ephemeral_range", "candidate_ports"]

LOOPBACK = "127.0.0.1"
T = TypeVar("T")

# The ports handed out lately: a start takes seconds, so remembering the last few thousand
# is enough to never give one port to two services starting at once.
_handed_out: collections.deque[int] = collections.deque(maxlen=4096)
_lock = threading.Lock()
_EPHEMERAL_FILE = "/proc/sys/net/ipv4/ip_local_port_range"
_LOWEST = 10000  # below: well-known and registered services people run on their machines


def ephemeral_range(path: str = _EPHEMERAL_FILE) -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (Linux default 32768-60999)."""
    try:
        with open(path, encoding="ascii") as handle:
            low, high = (int(part) for part in handle.read().split()[:2])
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


def candidate_ports(ephemeral: tuple[int, int] | None = None) -> range:
    """The ports handed out: the widest stretch above 10000 outside the ephemeral range."""
    low, high = ephemeral or ephemeral_range()
    below = range(_LOWEST, max(_LOWEST, low))
    above = range(min(high + 1, 65536), 65536)
    return below if len(below) >= len(above) else above


def free_port(host: str = LOOPBACK) -> int:
    """A port on ``host`` that was free a moment ago and not handed out before."""
    return free_ports(1, host)[0]


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """``count`` distinct free ports, all held at once while choosing so none repeats."""
    held: list[socket.socket] = []
    ports: list[int] = []
    pool = candidate_ports()
    try:
        with _lock:
            attempts = 0
            while len(ports) < count:
                attempts += 1
                if attempts > count * 50:
                    raise OSError(errno.EADDRINUSE, f"could not find {count} free ports on {host}")
                port = _pick(host, pool)
                if port in _handed_out or port in ports:
                    continue
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    sock.bind((host, port))
                except OSError:
                    sock.close()
                    continue
                held.append(sock)
                ports.append(port)
            _handed_out.extend(ports)
    finally:
        for sock in held:
            sock.close()
    return ports


def _pick(host: str, pool: range) -> int:
    """A random port of ``pool``, or one the kernel picks when the pool is empty."""
    if len(pool) > 0:
        return random.choice(pool)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def is_port_in_use(port: int, host: str = LOOPBACK) -> bool:
    """True when something already listens on (or holds) ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return True
        return False


def start_on_free_port(
    start: Callable[[int], T],
    *,
    attempts: int = 5,
    host: str = LOOPBACK,
    lost_race: Callable[[BaseException], bool] | None = None,
) -> T:
    """Call ``start(port)`` with a fresh free port, retrying when the port was taken meanwhile.

    ``lost_race(exc)`` says whether a failure means "the port was taken" (default: an
    ``OSError`` with ``EADDRINUSE``); other failures propagate at once.
    """
    def default_lost_race(exc: BaseException) -> bool:
        return isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE

    judge = lost_race or default_lost_race
    last: BaseException | None = None
    for _ in range(max(1, attempts)):
        port = free_port(host)
        try:
            return start(port)
        except BaseException as exc:
            if not judge(exc):
                raise
            last = exc
    assert last is not None
    raise last
