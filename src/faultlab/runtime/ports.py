"""Free TCP ports on 127.0.0.1, for services started with ``port: auto``.

A port found free can be taken by someone else before the service binds it; there is no
way around that for a child process. This module narrows the window: it asks the kernel
(bind to port 0, release), never hands the same port out twice in one harness, and
:func:`start_on_free_port` retries a start that lost the race.
"""

from __future__ import annotations

import errno
import socket
import threading
from collections.abc import Callable
from typing import TypeVar

__all__ = ["LOOPBACK", "free_port", "free_ports", "start_on_free_port", "is_port_in_use"]

LOOPBACK = "127.0.0.1"
T = TypeVar("T")

_handed_out: set[int] = set()
_lock = threading.Lock()


def free_port(host: str = LOOPBACK) -> int:
    """A port on ``host`` that was free a moment ago and not handed out before."""
    return free_ports(1, host)[0]


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """``count`` distinct free ports, all held at once while choosing so none repeats."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        with _lock:
            attempts = 0
            while len(ports) < count:
                attempts += 1
                if attempts > count * 50:
                    raise OSError(errno.EADDRINUSE, f"could not find {count} free ports on {host}")
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                held.append(sock)
                sock.bind((host, 0))
                port = sock.getsockname()[1]
                if port in _handed_out:
                    continue
                ports.append(port)
            _handed_out.update(ports)
    finally:
        for sock in held:
            sock.close()
    return ports


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
