"""Reaching a Docker engine: which one (``DOCKER_HOST``), whether it answers, and where the
ports it publishes can be reached from here.

``DOCKER_HOST`` (or the default socket) names the engine, exactly as for the docker command
and the docker SDK: ``unix:///var/run/docker.sock``, ``unix:///other/docker.sock``,
``tcp://build-host:2375``, ``ssh://user@host``. A container port is published on the
engine's host, so the harness reaches it at :func:`published_address`: ``127.0.0.1`` for an
engine on this machine (a unix socket), else the engine's host name, and in every case
``$FAULTLAB_DOCKER_ADDRESS`` when set (an engine in another network namespace, a tunnel).
Ports are published on that address when it is an IP address, else on every interface of
the engine's host (:func:`bind_address`).

The docker SDK is imported when an engine is reached, never with this module.
"""

from __future__ import annotations

import ipaddress
import os
import urllib.parse
from typing import Any

from faultlab.errors import InfrastructureError

__all__ = ["ADDRESS_VARIABLE", "DEFAULT_ENGINE", "engine_url", "published_address", "bind_address", "connect",
           "docker_sdk"]

ADDRESS_VARIABLE = "FAULTLAB_DOCKER_ADDRESS"
"""Where the harness reaches the engine's published ports, when the default is wrong."""

DEFAULT_ENGINE = "unix:///var/run/docker.sock"


def engine_url(docker_host: str | None = None) -> str:
    """The engine to use: ``docker_host``, else ``$DOCKER_HOST``, else the default socket."""
    return docker_host or os.environ.get("DOCKER_HOST") or DEFAULT_ENGINE


def published_address(docker_host: str | None = None) -> str:
    """The host at which the harness reaches ports the engine publishes."""
    override = os.environ.get(ADDRESS_VARIABLE)
    if override:
        return override
    url = urllib.parse.urlparse(engine_url(docker_host))
    if url.scheme in ("unix", "npipe", "") or not url.hostname:
        return "127.0.0.1"
    return "127.0.0.1" if url.hostname == "localhost" else url.hostname


def bind_address(address: str) -> str:
    """The host IP the engine publishes ports on: ``address`` itself when it is an IP
    address (loopback for a local engine), else every interface (``0.0.0.0``)."""
    try:
        ipaddress.IPv4Address(address)
    except ValueError:
        return "0.0.0.0"
    return address


def docker_sdk() -> Any:
    """The ``docker`` package, or a clear error when it is not installed."""
    try:
        import docker
    except ImportError as exc:
        raise InfrastructureError(
            "the docker runtime needs the docker SDK and testcontainers: pip install 'faultlab[docker]'"
        ) from exc
    return docker


def connect(docker_host: str | None = None, *, timeout_s: float = 120.0) -> Any:
    """A ``docker.DockerClient`` for the engine, checked to answer; InfrastructureError
    (exit code 3) saying which engine did not, and how to start one, otherwise."""
    docker = docker_sdk()
    url = engine_url(docker_host)
    try:
        client = docker.DockerClient(base_url=url, timeout=int(timeout_s))
        client.ping()
    except Exception as exc:  # noqa: BLE001 - the SDK raises many kinds; each means "no engine"
        raise InfrastructureError(
            f"no Docker engine answers at {url}: {type(exc).__name__}: {exc}. Start one (dockerd), or point "
            "DOCKER_HOST at one"
        ) from exc
    return client
