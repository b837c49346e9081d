"""The container tier (marked ``docker``): the stack in containers on a real Docker engine.

Every test here is skipped, with the reason, when the docker SDK is missing or no engine
answers at ``$DOCKER_HOST`` (the default socket otherwise); the check is one ping, so the
other tiers are not slowed down. The images are built once if this code's stack image is
missing (``faultlab images build``; CI builds them before the tests).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

import pytest


@functools.cache
def engine_problem() -> str | None:
    """Why the container tier cannot run here, or None."""
    from faultlab.runtime.engine import engine_url

    try:
        import testcontainers  # noqa: F401

        import docker
    except ImportError:
        return "the docker SDK and testcontainers are not installed (pip install 'faultlab[docker]')"
    try:
        client = docker.DockerClient(base_url=engine_url(), timeout=5)
        client.ping()
        client.close()
    except Exception as exc:  # noqa: BLE001 - any failure means there is no engine to test with
        return f"no Docker engine answers at {engine_url()} ({type(exc).__name__})"
    return None


@pytest.fixture(autouse=True)
def _needs_an_engine() -> None:
    problem = engine_problem()
    if problem:
        pytest.skip(f"container tier: {problem}")


@pytest.fixture(scope="session")
def docker_client() -> Iterator[Any]:
    """The engine, with this code's stack image built."""
    problem = engine_problem()
    if problem:
        pytest.skip(f"container tier: {problem}")
    from faultlab.runtime.engine import connect
    from faultlab.runtime.images import build_images, stack_image

    client = connect()
    try:
        client.images.get(stack_image())
    except Exception:  # noqa: BLE001 - not built yet: build it now, once
        build_images(client, log=lambda line: None)
    yield client
    client.close()
