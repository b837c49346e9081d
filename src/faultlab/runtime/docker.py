"""The ``docker`` runtime: the same stack file, every part in a container.

:class:`DockerRuntime` is registered as ``docker`` in the ``faultlab.runtimes`` entry points;
a stack runs on it with ``runtime: docker`` in its file or ``--runtime docker`` on the
command line. This module holds what the loader needs (the class attributes and the static
checks) and imports no docker code: bringing a stack up is
:mod:`faultlab.runtime.containers`, and ``faultlab cleanup``'s part is
:mod:`faultlab.runtime.docker_cleaners`.

What it runs, on the engine ``DOCKER_HOST`` names (see :mod:`faultlab.runtime.engine`),
every container, network and volume labelled ``faultlab.run=<run id>``:

- one network per run, ``faultlab-<run id>``; each service joins it under its own name;
- the fault proxy (``faultlab proxy serve``) in a container on that network: every link's
  listener is there, so services reach ``${link.NAME}`` as ``faultlab-proxy:PORT``;
- each ``command`` service in faultlab's stack image (``faultlab images build``), each
  ``image`` service in its own image; a built-in ``postgres`` service in the stack image
  (PostgreSQL from the pgserver wheel, as the local runtime runs it) with its data in a
  volume; jobs in the stack image, with the run's volume as ``${run_dir}``;
- every port a service, link or the proxy API has is published on the engine's host
  (127.0.0.1 for an engine on this machine) for the harness: probes, canary, load.

Container-level faults: pause (cgroup freezer), kill (the restart policy then applies, as
docker's own ``restart:``), network disconnect and reconnect, packet filters with iptables
in the container's network namespace (from a helper container with NET_ADMIN joined to it).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from faultlab.model.stack import Stack
from faultlab.runtime.base import CAPABILITIES, Finding, Runtime, StackHandle

if TYPE_CHECKING:
    from faultlab.hub import Hub, Observer
    from faultlab.runtime.ledger import Ledger

__all__ = ["DockerRuntime", "RUN_LABEL", "ROLE_LABEL", "SERVICE_LABEL", "RESERVED_PREFIX", "postgres_version"]

RUN_LABEL = "faultlab.run"
"""Label on every container, network and volume of a run: its run id."""
ROLE_LABEL = "faultlab.role"
"""What a container is: service, postgres, proxy, job, load, filter."""
SERVICE_LABEL = "faultlab.service"
"""The stack's name for a container (a service, a job's run, a locust process)."""
RESERVED_PREFIX = "faultlab-"
"""Names on a run's network that belong to faultlab (``faultlab-proxy``...)."""


def postgres_version() -> str | None:
    """``16.2``: the PostgreSQL the stack image runs (the pgserver wheel installed here), read
    from its ``pg_config.h`` without importing it; None when it cannot be told."""
    import importlib.util

    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        return None
    header = Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "include" / "pg_config.h"
    with contextlib.suppress(OSError):
        found = re.search(r'#define PG_VERSION "([^"]+)"', header.read_text(encoding="utf-8", errors="replace"))
        if found:
            return found.group(1)
    return None


class DockerRuntime(Runtime):
    """Every service, the fault proxy, PostgreSQL and jobs in containers on one network per
    run, through testcontainers and the docker SDK; images built locally."""

    name: ClassVar[str] = "docker"
    summary: ClassVar[str] = ("containers on a Docker engine ($DOCKER_HOST), one network per run, images "
                              "built locally (`faultlab images build`)")
    capabilities: ClassVar[frozenset[str]] = frozenset(CAPABILITIES)

    @classmethod
    def check(cls, stack: Stack) -> list[Finding]:
        found: list[Finding] = []
        for section, names in (("services", stack.services), ("jobs", stack.jobs)):
            for name in names:
                if name.startswith(RESERVED_PREFIX):
                    found.append(((section, name), f"{name!r}: names starting with {RESERVED_PREFIX!r} are the "
                                                   "docker runtime's own on the run's network; rename it"))
        running = postgres_version()
        for name, service in stack.services.items():
            wanted = service.postgres.version if service.postgres is not None else None
            if wanted is not None and running is not None and running.split(".")[0] != wanted.split(".")[0]:
                found.append((("services", name, "postgres", "version"),
                              f"the docker runtime runs PostgreSQL {running} (the pgserver wheel's, as the local "
                              f"runtime does), not {wanted}"))
        return found

    def bring_up(
        self,
        stack: Stack,
        run_dir: str | Path,
        *,
        ledger: Ledger | None = None,
        observers: Hub | Iterable[Observer] = (),
    ) -> contextlib.AbstractContextManager[StackHandle]:
        from faultlab.runtime.containers import bring_up

        return bring_up(stack, run_dir, ledger=ledger, observers=observers)
