"""Bringing a stack up in containers: the docker runtime's :func:`bring_up` and its handle.

:func:`bring_up` turns a validated stack into containers on the engine ``DOCKER_HOST`` names
(see :mod:`faultlab.runtime.docker` for the whole picture) and yields a :class:`DockerStack`,
the :class:`~faultlab.runtime.base.StackHandle` that faults, probes, jobs and the load use:

- the run is written to the ledger (``docker_run``: the engine and the run id) before the
  first resource exists, and every container, network and volume carries the label
  ``faultlab.run=<run id>``, so ``faultlab cleanup`` finds them all after a ``kill -9``
  (testcontainers' Ryuk reaper is off: faultlab's labels and ledger do its job);
- containers are created through testcontainers (``DockerContainer`` on a testcontainers
  ``Network``) and controlled with the docker SDK;
- services start in the order of the stack file, each ready before the next, with its own
  ``ready.timeout`` counted from its start; a container that exits before it is ready fails
  the bring-up with its log as evidence. Its ``restart`` policy is docker's own, switched on
  once it is ready (a crash loop before that would only hide the first error);
- every service's output is written to ``<run_dir>/services/<name>.log`` when the stack is
  torn down (and a job's when it ends);
- teardown removes everything, always: on leaving the block, on an exception, on Ctrl-C.

What the harness reaches (probes, canary, the load generator, SQL of the database faults)
it reaches through ports published on the engine's host; what runs in a container reaches
the others by name on the run's network: ``${link.NAME}`` is ``faultlab-proxy:PORT``,
``${service.NAME}`` is ``NAME:PORT``, ``${run_dir}`` is the run's volume.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, cast

from testcontainers.core.config import testcontainers_config
from testcontainers.core.container import DockerContainer
from testcontainers.core.network import Network

from faultlab.errors import FaultError, InfrastructureError, InputError, Problem, ServiceFailed
from faultlab.hub import Hub, Observer
from faultlab.model.stack import Stack
from faultlab.runtime.base import ServiceControl, StackHandle, interpolate, proxy_client
from faultlab.runtime.docker import RESERVED_PREFIX, ROLE_LABEL, RUN_LABEL, SERVICE_LABEL, DockerRuntime
from faultlab.runtime.engine import bind_address, connect, docker_sdk, engine_url, published_address
from faultlab.runtime.images import PGDATA, POSTGRES_ENTRYPOINT, RUN_DIR, STACK_DIR, require_stack_image
from faultlab.runtime.ledger import RUN_LABEL as ENV_RUN_LABEL
from faultlab.runtime.ports import LOOPBACK, free_ports
from faultlab.runtime.waits import CallableWait, Deadline, HttpWait, Observation, wait_for

if TYPE_CHECKING:
    from faultlab.engine.load import LoadDriver, LoadSpec
    from faultlab.runtime.ledger import Ledger
    from faultlab.runtime.supervisor import ServiceSpec, Supervisor

__all__ = ["DockerStack", "ContainerService", "ContainerDatabase", "ContainerNetwork", "bring_up", "teardown",
           "run_in_namespace", "filter_script", "unfilter_script", "AUTO_PORT", "PROXY_ALIAS"]

AUTO_PORT = 8000
"""The port a ``port: auto`` service listens on in its container (each has its own address)."""
POSTGRES_PORT = 5432
PROXY_API_PORT = 8474
LINK_PORT_BASE = 20000
PROXY_ALIAS = f"{RESERVED_PREFIX}proxy"
POSTGRES_START_TIMEOUT_S = 60.0
_STOP_SIGNALS = {"smart": "SIGTERM", "fast": "SIGINT", "immediate": "SIGQUIT"}

CGROUP_PARENT_VARIABLE = "FAULTLAB_DOCKER_CGROUP_PARENT"
"""Where the run's containers go in the CPU hierarchy (an engine with the cgroupfs driver).

By default the engine puts every container in one ``docker`` group, which the kernel weighs
like a single process against every process outside it: while the harness, its load
generator or anything else on the machine wants the CPU, a whole containerised stack gets
the share of one process, where the same stack run locally gets one share per process, and
its latency is the machine's load, not the drill's. So each container of a run goes to the
top of the hierarchy (``/``), weighed like the processes it runs (:data:`CPU_WEIGHTS`).
``$FAULTLAB_DOCKER_CGROUP_PARENT`` names another parent; empty keeps the engine's own. With
the systemd driver the engine's own placement (a scope per container) is kept."""

CPU_WEIGHT = 1024
"""The kernel's weight of one ordinary process (``cpu.shares``)."""
CPU_WEIGHTS = {"postgres": 4 * CPU_WEIGHT}
"""A PostgreSQL server keeps several processes busy (backends, WAL writer, checkpointer)."""

# faultlab's labels, ledger and `faultlab cleanup` reap what a run leaves; Ryuk's image cannot
# be pulled where no registry is reachable, and a reaper would kill a stack another process runs.
testcontainers_config.ryuk_disabled = True


class _Container(DockerContainer):
    """A testcontainers container whose ports are published on one host IP, not every interface."""

    def with_published_port(self, port: int, host_ip: str, host_port: int) -> _Container:
        cast(dict[str, Any], self.ports)[f"{port}/tcp"] = (host_ip, host_port)
        return self


def _errors() -> Any:
    return docker_sdk().errors


class ContainerService:
    """A service, job or locust process running as a container (a
    :class:`~faultlab.runtime.base.ServiceControl`).

    ``kill`` signals the container's main process from inside (docker-init is PID 1), so
    the container exits as after a crash and docker's restart policy applies; ``docker
    kill`` would count as an operator's stop. ``pause`` is the cgroup freezer. ``pid`` is
    None: the process is the engine's, perhaps on another machine.
    """

    def __init__(self, stack: DockerStack, name: str, container: Any, *, role: str,
                 stop_signal: int = signal.SIGTERM, stop_grace_s: float = 5.0):
        self.stack = stack
        self.name = name
        self.container = container
        self.role = role
        self.stop_signal = stop_signal
        self.stop_grace_s = stop_grace_s
        self._stopped = False
        self._lock = threading.Lock()
        self._logs_saved = False

    def __repr__(self) -> str:
        return f"<ContainerService {self.name} {self.state}>"

    def _status(self) -> str:
        try:
            self.container.reload()
        except _errors().NotFound:
            return "removed"
        return str(self.container.status)

    @property
    def state(self) -> str:
        """``starting``, ``running``, ``paused``, ``backoff`` (docker restarts it),
        ``exited`` or ``stopped`` (by :meth:`stop`)."""
        status = self._status()
        if self._stopped and status in ("exited", "dead", "removed", "created"):
            return "stopped"
        return {"created": "starting", "restarting": "backoff", "dead": "exited", "removed": "exited"}.get(
            status, status)

    @property
    def pid(self) -> int | None:
        return None

    @property
    def exit_code(self) -> int | None:
        """The last exit code, None while it never exited."""
        if self._status() in ("exited", "dead"):
            return int(self.container.attrs["State"]["ExitCode"])
        return None

    @property
    def restart_count(self) -> int:
        """How often docker restarted it (its restart policy)."""
        self._status()
        return int(self.container.attrs.get("RestartCount", 0))

    def _main_process_signal(self, sig: int) -> None:
        result = self.container.exec_run(["sh", "-c", f"kill -{int(sig)} $(cat /proc/1/task/1/children)"])
        if result.exit_code != 0:
            raise FaultError(f"could not signal {self.name}'s process in its container (state {self.state}): "
                             + (result.output or b"").decode(errors="replace").strip())

    def kill(self, sig: int = signal.SIGKILL) -> int | None:
        """Send ``sig`` to the service's process as a crash would; a paused container is
        unpaused first so that the signal takes effect."""
        with self._lock:
            if self._status() == "paused":
                self.container.unpause()
            if self._status() != "running":
                raise FaultError(f"{self.name} is not running (state {self.state})")
            try:
                self._main_process_signal(sig)
            except _errors().APIError as exc:
                raise FaultError(f"could not kill {self.name}: {exc}") from exc
        return None

    def pause(self) -> int | None:
        """Freeze every process of the container (cgroup freezer)."""
        with self._lock:
            try:
                self.container.pause()
            except _errors().APIError as exc:
                raise FaultError(f"could not pause {self.name} (state {self.state}): {exc}") from exc
        return None

    def resume(self) -> int | None:
        """Unfreeze it; harmless when it is not paused or not running."""
        with self._lock:
            if self._status() == "paused":
                self.container.unpause()
        return None

    def restart(self, *, grace_s: float | None = None, sig: int | None = None) -> None:
        """Stop it (``sig``, SIGKILL after ``grace_s``) and start it again, whatever its policy."""
        self.stop(grace_s=grace_s, sig=sig)
        with self._lock:
            self._stopped = False
            try:
                self.container.start()
            except _errors().APIError as exc:
                raise FaultError(f"could not start {self.name} again: {exc}") from exc

    def stop(self, *, grace_s: float | None = None, sig: int | None = None) -> int | None:
        """Stop it for good (no restart follows): ``sig`` (default its stop signal) to the
        unpaused container, SIGKILL after ``grace_s``. Idempotent; the last exit code."""
        grace = self.stop_grace_s if grace_s is None else grace_s
        with self._lock:
            self._stopped = True
            status = self._status()
            if status == "paused":
                self.container.unpause()
            if status in ("running", "paused", "restarting"):
                with contextlib.suppress(_errors().APIError):
                    self.container.kill(signal=int(sig if sig is not None else self.stop_signal))
                if self.wait_exited(grace) is None:
                    with contextlib.suppress(_errors().APIError):
                        self.container.kill()
                    self.wait_exited(10.0)
        self.save_log()
        return self.exit_code

    def wait_exited(self, timeout: float) -> int | None:
        """Wait until the container has exited; its exit code, or None on timeout."""
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            status = self._status()
            if status in ("exited", "dead", "removed"):
                return self.exit_code if status != "removed" else None
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines the container wrote."""
        try:
            return bytes(self.container.logs(tail=lines)).decode(errors="replace")
        except _errors().APIError:
            return ""

    def save_log(self) -> None:
        """Write everything the container wrote to ``<run_dir>/services/<name>.log`` (once)."""
        if self._logs_saved:
            return
        try:
            data = bytes(self.container.logs())
        except _errors().APIError:
            return
        path = self.stack.run_dir / "services" / f"{self.name}.log"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self._logs_saved = True


class ContainerDatabase:
    """A built-in PostgreSQL service in a container (a
    :class:`~faultlab.runtime.base.DatabaseControl`).

    ``freeze`` pauses the container (every server process, through the cgroup freezer);
    ``stop`` signals the postmaster (SIGINT fast, SIGQUIT immediate) and the container ends
    with it; ``start`` starts the container again on the same data volume (after an
    immediate stop, PostgreSQL recovers) and the same published port.
    """

    def __init__(self, stack: DockerStack, name: str, container: Any):
        spec = stack.stack.services[name].postgres
        assert spec is not None
        self.stack = stack
        self.name = name
        self.database = spec.database
        self.user = spec.user
        self.container = container
        self._lock = threading.Lock()

    def dsn(self, *, database: str | None = None, user: str | None = None) -> str:
        """A libpq URL through the published port (the superuser unless ``user``)."""
        return f"postgresql://{user or 'postgres'}@{self.stack.address(self.name)}/{database or self.database}"

    def _status(self) -> str:
        try:
            self.container.reload()
        except _errors().NotFound:
            return "removed"
        return str(self.container.status)

    def is_running(self) -> bool:
        """Whether the server's container runs (paused counts as running)."""
        return self._status() in ("running", "paused")

    def server_version(self) -> str | None:
        """``SHOW server_version``, or None when it cannot be read."""
        from faultlab.runtime.postgres import server_version

        return server_version(self.dsn())

    def freeze(self) -> None:
        """Pause the container: every server process stops at once."""
        with self._lock:
            if self._status() != "running":
                raise FaultError(f"postgres {self.name!r} is not running (container {self._status()})")
            try:
                self.container.pause()
            except _errors().APIError as exc:
                raise FaultError(f"could not pause postgres {self.name!r}: {exc}") from exc

    def thaw(self) -> None:
        """Unpause it; harmless when it is not paused."""
        with self._lock:
            if self._status() == "paused":
                self.container.unpause()

    def stop(self, mode: str = "fast") -> None:
        """Shut the server down (``fast``, ``immediate`` or ``smart``) and wait for its container to end."""
        if mode not in _STOP_SIGNALS:
            raise ValueError(f"unknown stop mode {mode!r}; known: {', '.join(_STOP_SIGNALS)}")
        self.thaw()
        with self._lock:
            if self._status() not in ("running", "restarting"):
                return
            try:
                self.container.kill(signal=_STOP_SIGNALS[mode])
            except _errors().APIError as exc:
                raise FaultError(f"could not stop postgres {self.name!r}: {exc}") from exc
            deadline = time.monotonic() + 30.0
            while self._status() not in ("exited", "dead") and time.monotonic() < deadline:
                time.sleep(0.02)
            if self._status() not in ("exited", "dead"):
                self.container.kill()

    def start(self) -> None:
        """Start the server's container again and wait until it answers."""
        with self._lock:
            if self._status() not in ("running", "paused"):
                try:
                    self.container.start()
                except _errors().APIError as exc:
                    raise ServiceFailed(f"could not start postgres {self.name!r} again: {exc}") from exc
        self.wait_ready(Deadline(POSTGRES_START_TIMEOUT_S))

    def wait_ready(self, deadline: Deadline) -> Observation:
        """Wait until ``SELECT 1`` answers through the published port."""
        import psycopg

        def check() -> Observation:
            try:
                with psycopg.connect(self.dsn(database="postgres"), connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
            except psycopg.Error as exc:
                return Observation(False, str(exc).strip() or type(exc).__name__)
            return Observation(True, "SELECT 1 answered")

        def exited() -> str | None:
            status = self._status()
            if status in ("exited", "dead", "removed"):
                return f"its container {status} (exit code {self.container.attrs['State'].get('ExitCode')})"
            return None

        return wait_for(CallableWait(check, f"postgres {self.name} answers"), deadline, poll_s=0.1,
                        what=f"postgres {self.name!r} ready", give_up=exited,
                        evidence=lambda: bytes(self.container.logs(tail=40)).decode(errors="replace"))


def filter_script(chain: str, action: str, direction: str, probability: float) -> str:
    """The shell commands that put a packet filter in place (one chain per filter)."""
    chance = "" if probability >= 1.0 else f"-m statistic --mode random --probability {probability:.6f} "
    if action == "drop":
        rules = [f"iptables -A {chain} {chance}-j DROP"]
    else:
        rules = [f"iptables -A {chain} -p tcp {chance}-j REJECT --reject-with tcp-reset",
                 f"iptables -A {chain} ! -p tcp {chance}-j REJECT"]
    jumps = []
    if direction in ("in", "both"):
        jumps.append(f"iptables -I INPUT 1 ! -i lo -j {chain}")
    if direction in ("out", "both"):
        jumps.append(f"iptables -I OUTPUT 1 ! -o lo -j {chain}")
    return " && ".join(["set -e", f"iptables -N {chain}", *rules, *jumps])


def unfilter_script(chain: str) -> str:
    """The shell commands that remove a packet filter, whatever part of it is in place."""
    return "; ".join([
        f"while iptables -D INPUT ! -i lo -j {chain} 2>/dev/null; do :; done",
        f"while iptables -D OUTPUT ! -o lo -j {chain} 2>/dev/null; do :; done",
        f"iptables -F {chain} 2>/dev/null",
        f"iptables -X {chain} 2>/dev/null",
        f"! iptables -S {chain} >/dev/null 2>&1",
    ])


def run_in_namespace(client: Any, image: str, container: Any, script: str, *, labels: dict[str, str]) -> str:
    """Run ``script`` as root with NET_ADMIN in ``container``'s network namespace (a helper
    container of ``image`` joined to it, removed afterwards); its output, or FaultError."""
    helper = client.containers.run(
        image, ["sh", "-c", script], detach=True, network_mode=f"container:{container.id}", cap_add=["NET_ADMIN"],
        labels=labels, entrypoint=[],
    )
    try:
        result = helper.wait(timeout=30)
        output = bytes(helper.logs()).decode(errors="replace")
    finally:
        with contextlib.suppress(_errors().APIError):
            helper.remove(force=True)
    if result.get("StatusCode") != 0:
        raise FaultError(f"iptables in {container.name}'s network namespace failed", evidence=output[-2000:])
    return output


class ContainerNetwork:
    """A service's connection to the run's network, and packet filters in its namespace (a
    :class:`~faultlab.runtime.base.NetworkControl`).

    Filters are put in place from a helper container with NET_ADMIN joined to the service's
    network namespace, made when the service's network is first asked for (before any fault
    times its effect), so that a filter is one quick ``exec``; it is made again when the
    service restarted since (a restarted container has a new namespace).
    """

    def __init__(self, stack: DockerStack, service: str, container: Any):
        self.stack = stack
        self.service = service
        self.container = container
        self._filters: dict[str, str] = {}
        self._lock = threading.Lock()
        self._helper: Any = None
        self._helper_of: str | None = None
        with contextlib.suppress(FaultError, _errors().APIError):
            self._namespace_helper()

    def _connected(self) -> bool:
        self.container.reload()
        return self.stack.network_name in (self.container.attrs["NetworkSettings"]["Networks"] or {})

    def disconnect(self) -> None:
        """Take the container off the run's network (its published ports go with it)."""
        try:
            self.stack.docker_network.disconnect(self.container, force=True)
        except _errors().APIError as exc:
            raise FaultError(f"could not disconnect {self.service}: {exc}") from exc

    def reconnect(self) -> None:
        """Connect it again under its own name; harmless when it is connected."""
        with self._lock:
            if not self._connected():
                self.stack.docker_network.connect(self.container, aliases=[self.service])

    def filter_packets(self, filter_id: str, *, action: str = "drop", direction: str = "both",
                       probability: float = 1.0) -> None:
        """Put a packet filter in place (in the ledger first); see NetworkControl."""
        chain = f"FAULTLAB-{filter_id}"[:28]
        with self._lock:
            ledger = self.stack.ledger
            if ledger is not None and filter_id not in self._filters:
                self._filters[filter_id] = ledger.record(
                    "packet_filter", engine=self.stack.engine_url, container=self.container.id, chain=chain,
                    image=self.stack.image, run_id=self.stack.run_id)
            try:
                self._namespace(filter_script(chain, action, direction, probability))
            except FaultError:
                self._namespace(unfilter_script(chain))
                raise

    def unfilter_packets(self, filter_id: str) -> None:
        """Remove the filter ``filter_id`` (whatever part of it is there)."""
        chain = f"FAULTLAB-{filter_id}"[:28]
        with self._lock:
            self.container.reload()
            if self.container.status == "running":
                self._namespace(unfilter_script(chain))
            entry = self._filters.pop(filter_id, None)
            if entry is not None and self.stack.ledger is not None:
                self.stack.ledger.forget(entry)

    def _namespace_helper(self) -> Any:
        self.container.reload()
        if self.container.status != "running":
            raise FaultError(f"{self.service} is not running (container {self.container.status})")
        started = str(self.container.attrs["State"].get("StartedAt"))
        if self._helper is not None:
            try:
                self._helper.reload()
                if self._helper.status == "running" and self._helper_of == started:
                    return self._helper
            except _errors().NotFound:
                pass
            with contextlib.suppress(_errors().APIError):
                self._helper.remove(force=True)
        self._helper = self.stack.client.containers.run(
            self.stack.image, ["sleep", "infinity"], detach=True, init=True, entrypoint=[],
            network_mode=f"container:{self.container.id}", cap_add=["NET_ADMIN"],
            labels=self.stack.labels("filter", f"{self.service}-net"))
        self._helper_of = started
        return self._helper

    def _namespace(self, script: str) -> str:
        result = self._namespace_helper().exec_run(["sh", "-c", script])
        output = (result.output or b"").decode(errors="replace")
        if result.exit_code != 0:
            raise FaultError(f"iptables in {self.service}'s network namespace failed", evidence=output[-2000:])
        return output


class DockerStack(StackHandle):
    """A stack brought up by the docker runtime: its containers, network and addresses."""

    runtime: ClassVar[str] = "docker"

    def __init__(self, stack: Stack, run_dir: Path, *, client: Any, run_id: str, image: str,
                 ledger: Ledger | None, hub: Hub):
        self.stack = stack
        self.run_dir = run_dir
        self.ledger = ledger
        self.client = client
        self.run_id = run_id
        self.image = image
        self.hub = hub
        self.engine_url = engine_url()
        self.engine_address = published_address()
        self.bind_ip = bind_address(self.engine_address)
        self.network_name = f"{RESERVED_PREFIX}{run_id}"
        self.docker_network: Any = None
        self.proxy_api = ""
        self.ports: dict[str, int] = {}
        self.inner_ports: dict[str, int] = {}
        self.link_ports: dict[str, int] = {}
        self.inner_link_ports: dict[str, int] = {}
        self.containers: dict[str, ContainerService] = {}
        self.databases: dict[str, ContainerDatabase] = {}
        self.processes: list[ContainerService] = []
        self.volumes: list[str] = []
        self.proxy: ContainerService | None = None
        self.harness: Supervisor | None = None
        self._networks: dict[str, ContainerNetwork] = {}
        self._stack_files: dict[str, bytes] | None = None
        self._tc_network: Network | None = None
        self.cgroup_parent = _cgroup_parent(client)

    # --- addresses ---------------------------------------------------------------------

    def address(self, service: str) -> str:
        """``HOST:PORT`` of a service's published port, as the harness reaches it."""
        return f"{self.engine_address}:{self.ports[service]}"

    def link_address(self, link: str) -> str:
        """``HOST:PORT`` of a link's published proxy listener."""
        return f"{self.engine_address}:{self.link_ports[link]}"

    def interpolation_values(self, owner: str | None = None) -> dict[str, str]:
        """What each ``${...}`` stands for in a container on the run's network (``${host}``, the
        address to listen on, is every interface of the container's own namespace)."""
        values = {"run_dir": RUN_DIR, "host": "0.0.0.0"}
        if self.stack.source is not None:
            values["stack_dir"] = STACK_DIR
        if owner is not None and owner in self.inner_ports:
            values["port"] = str(self.inner_ports[owner])
        values.update({f"link.{name}": f"{PROXY_ALIAS}:{port}" for name, port in self.inner_link_ports.items()})
        values.update({f"service.{name}": f"{name}:{port}" for name, port in self.inner_ports.items()})
        return values

    def tool_versions(self) -> dict[str, str]:
        """The Docker engine's version (and where it is, when not on this machine's socket)."""
        try:
            found = str(self.client.version().get("Version", ""))
        except _errors().APIError:
            return {}
        return {"docker": found} if found else {}

    def inside_url(self, url: str) -> str:
        """A harness-side URL (a published port) as seen from the run's network."""
        parsed = urllib.parse.urlsplit(url)
        hostport = f"{parsed.hostname}:{parsed.port}"
        for name in self.ports:
            if self.address(name) == hostport:
                return urllib.parse.urlunsplit(parsed._replace(netloc=f"{name}:{self.inner_ports[name]}"))
        for name in self.link_ports:
            if self.link_address(name) == hostport:
                inner = f"{PROXY_ALIAS}:{self.inner_link_ports[name]}"
                return urllib.parse.urlunsplit(parsed._replace(netloc=inner))
        return url

    # --- controls ----------------------------------------------------------------------

    def service(self, name: str) -> ServiceControl:
        """The container of ``command`` or ``image`` service ``name``."""
        service = self.stack.services.get(name)
        if service is None or service.postgres is not None:
            raise FaultError(f"{name!r} is not a command or image service of stack {self.stack.name!r}")
        if name not in self.containers:
            raise FaultError(f"service {name!r} is not running (the stack is not up)")
        return self.containers[name]

    def database(self, name: str) -> ContainerDatabase:
        """The container of the built-in PostgreSQL service ``name``."""
        if name not in self.databases:
            if name in self.stack.services and self.stack.services[name].postgres is not None:
                raise FaultError(f"postgres service {name!r} is not running (the stack is not up)")
            raise FaultError(f"{name!r} is not a postgres service of stack {self.stack.name!r}")
        return self.databases[name]

    def network(self, service: str) -> ContainerNetwork:
        """The network connection of service (or postgres service) ``service``."""
        if service not in self._networks:
            container = (self.databases[service].container if service in self.databases
                         else self.containers[service].container if service in self.containers else None)
            if container is None:
                raise FaultError(f"{service!r} is not a running service of stack {self.stack.name!r}")
            self._networks[service] = ContainerNetwork(self, service, container)
        return self._networks[service]

    def start_process(self, spec: ServiceSpec) -> ContainerService:
        """Run ``spec`` (a job) in a container of the stack image on the run's network, with
        the run's volume as ``${run_dir}``; ``python`` is the image's, with faultlab."""
        env = {**(spec.env or {}), "PYTHONUNBUFFERED": "1"}
        container = self.create(spec.name, role=str(spec.labels.get("role", "job")), command=list(spec.command),
                                env=env, restart=str(spec.restart), working_dir=RUN_DIR)
        process = ContainerService(self, spec.name, container, role="job", stop_signal=spec.stop_signal,
                                   stop_grace_s=spec.stop_grace_s)
        self.processes.append(process)
        return process

    def load_driver(self, spec: LoadSpec, *, origin: float) -> LoadDriver:
        """Locust on the harness's host through the published ports; in distributed mode
        (``workers``) master and workers in containers on the run's network."""
        from faultlab.engine.load import LoadDriver
        from faultlab.runtime.container_load import ContainerLoadDriver

        if spec.workers:
            return ContainerLoadDriver(spec, stack=self, origin=origin)
        return LoadDriver(spec, run_dir=self.run_dir, origin=origin, processes=self.harness_processes())

    def harness_processes(self) -> Supervisor:
        """A supervisor for processes the harness runs beside the stack (locust), in the ledger."""
        from faultlab.runtime.supervisor import Supervisor

        if self.harness is None:
            self.harness = Supervisor(self.run_dir, run_id=self.run_id, ledger=self.ledger, observers=self.hub)
        return self.harness

    # --- making containers -------------------------------------------------------------

    def labels(self, role: str, name: str) -> dict[str, str]:
        """The labels of a container of this run."""
        return {RUN_LABEL: self.run_id, ROLE_LABEL: role, SERVICE_LABEL: name}

    def create(self, name: str, *, role: str, image: str | None = None, command: list[str] | None = None,
               env: dict[str, str] | None = None, ports: dict[int, int] | None = None, restart: str = "no",
               working_dir: str | None = RUN_DIR, entrypoint: list[str] | None = None,
               volumes: dict[str, str] | None = None, stop_signal: str | None = None,
               files: dict[str, bytes] | None = None, alias: str | None = None) -> Any:
        """Create and start a container of this run on its network (through testcontainers);
        a published port somebody took meanwhile is chosen again."""
        wanted = dict(ports or {})
        for attempt in range(5):
            tc = _Container(image or self.image, command=cast(Any, command),
                            name=f"{RESERVED_PREFIX}{self.run_id}-{name}",
                            env={**(env or {}), ENV_RUN_LABEL: self.run_id, "FAULTLAB_SERVICE": name},
                            network=self._tc_network, network_aliases=[alias or name])
            for inner, outer in wanted.items():
                tc.with_published_port(inner, self.bind_ip, outer)
            for volume, path in {self.run_volume: RUN_DIR, **(volumes or {})}.items():
                tc.with_volume_mapping(volume, path, "rw")
            for path, data in (files or {}).items():
                tc.with_copy_into_container(data, path)
            options: dict[str, Any] = {"labels": self.labels(role, name), "init": True, **self.cpu_placement(role)}
            if restart != "no":
                options["restart_policy"] = {"Name": restart}
            if working_dir is not None:
                options["working_dir"] = working_dir
            if entrypoint is not None:
                options["entrypoint"] = entrypoint
            if stop_signal is not None:
                options["stop_signal"] = stop_signal
            tc.with_kwargs(**options)
            try:
                tc.start()
            except _errors().APIError as exc:
                self._remove_named(f"{RESERVED_PREFIX}{self.run_id}-{name}")
                if attempt < 4 and _port_taken(exc):
                    wanted = dict(zip(wanted, self._fresh_ports(len(wanted)), strict=True))
                    continue
                raise ServiceFailed(f"could not start the container of {name}: {exc}") from exc
            if wanted != (ports or {}):
                self._ports_moved(name, wanted)
            return tc.get_wrapped_container()
        raise AssertionError("unreachable")

    def cpu_placement(self, role: str) -> dict[str, Any]:
        """Where a container's processes compete for the CPU (see :data:`CGROUP_PARENT_VARIABLE`)."""
        if self.cgroup_parent is None:
            return {}
        return {"cgroup_parent": self.cgroup_parent, "cpu_shares": CPU_WEIGHTS.get(role, CPU_WEIGHT)}

    def _ports_moved(self, name: str, wanted: dict[int, int]) -> None:
        """Record host ports chosen again because the first ones were taken."""
        if name in self.inner_ports:
            self.ports[name] = wanted[self.inner_ports[name]]
        if name == PROXY_ALIAS:
            for link, inner in self.inner_link_ports.items():
                self.link_ports[link] = wanted[inner]
            self.proxy_api = f"http://{self.engine_address}:{wanted[PROXY_API_PORT]}"

    def _remove_named(self, name: str) -> None:
        with contextlib.suppress(_errors().NotFound, _errors().APIError):
            self.client.containers.get(name).remove(force=True)

    def _fresh_ports(self, count: int) -> list[int]:
        return free_ports(count, host=self.bind_ip if self.bind_ip.startswith("127.") else LOOPBACK)

    @property
    def run_volume(self) -> str:
        """The run's volume: ``${run_dir}`` in every container."""
        return f"{RESERVED_PREFIX}{self.run_id}-run"

    def stack_files(self) -> dict[str, bytes]:
        """The stack file's folder (files a service started as ``${stack_dir}/...`` needs)."""
        if self._stack_files is None:
            self._stack_files = {}
            folder = Path(str(self.stack.source)).parent if self.stack.source is not None else None
            if folder is not None:
                files = [p for p in sorted(folder.rglob("*")) if p.is_file() and "__pycache__" not in p.parts
                         and not any(part.startswith(".") for part in p.relative_to(folder).parts)]
                if len(files) > 500 or sum(p.stat().st_size for p in files) > 50_000_000:
                    raise ServiceFailed(f"the stack's folder {folder} is too big to copy into the containers "
                                        "that use ${stack_dir} (more than 500 files or 50 MB)")
                self._stack_files = {f"{STACK_DIR}/{p.relative_to(folder).as_posix()}": p.read_bytes()
                                     for p in files}
        return self._stack_files

    def uses_stack_dir(self, name: str) -> bool:
        """Whether service ``name``'s command or environment names ``${stack_dir}``."""
        service = self.stack.services[name]
        return any("${stack_dir}" in text for text in [*(service.command or []), *service.env.values()])


def _cgroup_parent(client: Any) -> str | None:
    if CGROUP_PARENT_VARIABLE in os.environ:
        return os.environ[CGROUP_PARENT_VARIABLE] or None
    try:
        driver = client.info().get("CgroupDriver")
    except _errors().APIError:
        return None
    return "/" if driver == "cgroupfs" else None


def _port_taken(exc: Exception) -> bool:
    text = str(exc).lower()
    return "port is already allocated" in text or "address already in use" in text


# --- bringing the stack up ---------------------------------------------------------------


def _plan_ports(docker: DockerStack) -> None:
    stack = docker.stack
    owners = [n for n, s in stack.services.items() if s.has_port]
    fresh = iter(docker._fresh_ports(len(owners) + len(stack.links) + 1))
    for name in owners:
        service = stack.services[name]
        docker.inner_ports[name] = (POSTGRES_PORT if service.postgres is not None
                                    else service.port if isinstance(service.port, int) else AUTO_PORT)
        docker.ports[name] = next(fresh)
    for index, name in enumerate(stack.links):
        docker.inner_link_ports[name] = LINK_PORT_BASE + index
        docker.link_ports[name] = next(fresh)
    docker.proxy_api = f"http://{docker.engine_address}:{next(fresh)}"


def _start_proxy(docker: DockerStack) -> None:
    api_port = int(docker.proxy_api.rsplit(":", 1)[1])
    ports = {PROXY_API_PORT: api_port}
    ports.update({docker.inner_link_ports[name]: docker.link_ports[name] for name in docker.stack.links})
    container = docker.create(PROXY_ALIAS, role="proxy", command=["faultlab", "proxy", "serve", "--host", "0.0.0.0",
                                                                  "--port", str(PROXY_API_PORT)], ports=ports)
    docker.proxy = ContainerService(docker, PROXY_ALIAS, container, role="proxy")
    wait_for(HttpWait(f"{docker.proxy_api}/version"), Deadline(30.0), what="the fault proxy's API",
             evidence=docker.proxy.log_tail, give_up=_gave_up(docker.proxy))
    client = proxy_client(docker.proxy_api)
    for name, link in docker.stack.links.items():
        client.create(upstream=f"{link.to}:{docker.inner_ports[link.to]}", name=name,
                      listen=f"0.0.0.0:{docker.inner_link_ports[name]}", enabled=True)


def _gave_up(process: ContainerService) -> Callable[[], str | None]:
    def exited() -> str | None:
        state = process.state
        if state in ("exited", "stopped"):
            return f"its container exited with code {process.exit_code} before it became ready"
        return None

    return exited


def _tcp_ready(docker: DockerStack, name: str) -> Observation:
    """Whether ``name``'s port accepts connections on the run's network (from the proxy's
    container: a published port is accepted by docker's own proxy before the service listens)."""
    assert docker.proxy is not None
    port = docker.inner_ports[name]
    script = f"import socket; socket.create_connection(({name!r}, {port}), 1).close()"
    result = docker.proxy.container.exec_run(["python", "-c", script])
    if result.exit_code == 0:
        return Observation(True, f"{name}:{port} accepts connections")
    return Observation(False, (result.output or b"").decode(errors="replace").strip().splitlines()[-1:][0]
                       if result.output else f"exit code {result.exit_code}")


def _start_service(docker: DockerStack, name: str) -> None:
    service = docker.stack.services[name]
    values = docker.interpolation_values(name)
    env = {key: interpolate(value, values) for key, value in service.env.items()}
    env.setdefault("PYTHONUNBUFFERED", "1")
    command = [interpolate(arg, values) for arg in service.command] if service.command else None
    ports = {docker.inner_ports[name]: docker.ports[name]} if name in docker.ports else {}
    early_restart = service.ready is None and service.restart != "no"
    container = docker.create(
        name, role="service", image=service.image, command=command, env=env, ports=ports,
        restart=service.restart if early_restart else "no",
        working_dir=RUN_DIR if service.image is None else None,
        files=docker.stack_files() if docker.uses_stack_dir(name) else None,
    )
    running = ContainerService(docker, name, container, role="service")
    docker.containers[name] = running
    if service.ready is None:
        return
    if service.ready.http is not None:
        strategy: Any = HttpWait(docker.url(name, service.ready.http))
    else:
        strategy = CallableWait(lambda: _tcp_ready(docker, name), f"TCP connect {name}:{docker.inner_ports[name]}")
    wait_for(strategy, Deadline(service.ready.timeout), what=f"service {name!r} ready ({strategy})",
             evidence=running.log_tail, give_up=_gave_up(running))
    if service.restart != "no":
        container.update(restart_policy={"Name": service.restart})
        if running.state in ("exited", "stopped"):
            raise ServiceFailed(f"service {name!r} exited with code {running.exit_code} as it became ready",
                                evidence=running.log_tail())


def _start_postgres(docker: DockerStack, name: str) -> None:
    spec = docker.stack.services[name].postgres
    assert spec is not None
    volume = f"{RESERVED_PREFIX}{docker.run_id}-{name}-data"
    docker.client.volumes.create(volume, labels=docker.labels("postgres", name))
    docker.volumes.append(volume)
    settings = {"max_connections": spec.max_connections, "shared_buffers": "128MB", "fsync": "on"}
    container = docker.create(
        name, role="postgres", entrypoint=[POSTGRES_ENTRYPOINT],
        command=[arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")],
        ports={POSTGRES_PORT: docker.ports[name]}, volumes={volume: PGDATA}, working_dir=None,
        stop_signal="SIGINT",
    )
    database = ContainerDatabase(docker, name, container)
    docker.databases[name] = database
    database.wait_ready(Deadline(POSTGRES_START_TIMEOUT_S))
    import psycopg
    from psycopg import sql

    with psycopg.connect(database.dsn(database="postgres"), autocommit=True, connect_timeout=10) as conn:
        if spec.user != "postgres" and not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s",
                                                        (spec.user,)).fetchone():
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(spec.user)))
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (spec.database,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(spec.database),
                                                                       sql.Identifier(spec.user)))


def _check_address(stack: Stack, address: str) -> None:
    """Published ports are reached at ``address``: loopback, or a host the stack allows."""
    if address.startswith("127.") or address == "localhost" or address in stack.allow_hosts:
        return
    where = str(stack.source) if stack.source is not None else "<stack>"
    raise InputError([Problem(where, 0, 0, "allow_hosts",
                              f"the Docker engine's ports are reached at {address}, which is not loopback: add it "
                              f"to `allow_hosts` of stack {stack.name!r} to let load and faults go there")])


class _Events:
    """Docker's container events of one run, as the hub's ``service`` events."""

    def __init__(self, docker: DockerStack):
        self.docker = docker
        self.stream: Any = None
        self.thread: threading.Thread | None = None
        self.started: set[str] = set()

    def start(self) -> None:
        since = int(time.time()) - 1
        self.stream = self.docker.client.events(
            decode=True, since=since, filters={"label": [f"{RUN_LABEL}={self.docker.run_id}"], "type": ["container"]})
        self.thread = threading.Thread(target=self._run, name="faultlab-docker-events", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with contextlib.suppress(Exception):  # the stream ends with an error when it is closed
            for event in self.stream:
                self._publish(event)

    def _publish(self, event: dict[str, Any]) -> None:
        attributes = event.get("Actor", {}).get("Attributes", {})
        service = attributes.get(SERVICE_LABEL)
        action = str(event.get("Action") or event.get("status") or "")
        if service is None:
            return
        if action == "start":
            kind = "restarted" if service in self.started else "started"
            self.started.add(service)
            self.docker.hub.publish("service", kind=kind, service=service)
        elif action == "die":
            code = attributes.get("exitCode")
            self.docker.hub.publish("service", kind="exited", service=service,
                                    exit_code=int(code) if code is not None else None)
        elif action in ("pause", "unpause"):
            self.docker.hub.publish("service", kind="paused" if action == "pause" else "resumed", service=service)
        elif action == "kill":
            number = attributes.get("signal")
            name = signal.Signals(int(number)).name if number and str(number).isdigit() else number
            self.docker.hub.publish("service", kind="killed", service=service, signal=name)

    def stop(self) -> None:
        if self.stream is not None:
            with contextlib.suppress(Exception):
                self.stream.close()
        if self.thread is not None:
            self.thread.join(timeout=5)


@contextlib.contextmanager
def bring_up(
    stack: Stack,
    run_dir: str | Path,
    *,
    ledger: Ledger | None = None,
    observers: Hub | Iterable[Observer] = (),
) -> Iterator[DockerStack]:
    """Bring ``stack`` up in containers under ``run_dir``; remove everything when the block ends.

    Raises :class:`~faultlab.errors.InfrastructureError` with evidence when no engine
    answers, the stack image of this code is missing (``faultlab images build``), or a part
    does not come up; whatever did come up is removed first.
    """
    problems = DockerRuntime.check(stack)
    if problems:
        raise ServiceFailed("; ".join(message for _, message in problems))
    address = published_address()
    _check_address(stack, address)
    client = connect()
    image = require_stack_image(client, engine_url())
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    run_id = ledger.run_id if ledger is not None else run_dir.name
    hub = Hub.of(observers)
    docker = DockerStack(stack, run_dir, client=client, run_id=run_id, image=image, ledger=ledger, hub=hub)
    entry = ledger.record("docker_run", engine=docker.engine_url, run_id=run_id) if ledger is not None else None
    events = _Events(docker)
    try:
        events.start()
        labels = docker.labels("network", stack.name)
        network = Network(docker_network_kw={"labels": labels})
        network.name = docker.network_name
        docker._tc_network = network.create()
        docker.docker_network = client.networks.get(docker.network_name)
        client.volumes.create(docker.run_volume, labels=docker.labels("volume", "run"))
        docker.volumes.append(docker.run_volume)
        _plan_ports(docker)
        _start_proxy(docker)
        for name, service in stack.services.items():
            if service.postgres is not None:
                _start_postgres(docker, name)
            else:
                _start_service(docker, name)
        yield docker
    finally:
        events.stop()
        teardown(docker, entry)


def _attempt(failures: list[str], what: str, step: Callable[[], object]) -> None:
    try:
        step()
    except Exception as exc:  # noqa: BLE001 - teardown goes on; every failure is reported at the end
        failures.append(f"{what}: {type(exc).__name__}: {exc}")


def teardown(docker: DockerStack, entry: str | None = None) -> None:
    """Stop the harness's own processes, save every container's log, remove the run's
    containers, network and volumes. Always completes; InfrastructureError at the end if
    anything is left."""
    failures: list[str] = []
    if docker.harness is not None:
        _attempt(failures, "harness processes", docker.harness.stop_all)
    for process in [*docker.containers.values(), *docker.processes,
                    *([docker.proxy] if docker.proxy is not None else [])]:
        _attempt(failures, f"log of {process.name}", process.save_log)
    for name, database in docker.databases.items():
        _attempt(failures, f"log of postgres {name}", functools.partial(_save_log, docker, name, database.container))
    label = {"label": f"{RUN_LABEL}={docker.run_id}"}
    for container in docker.client.containers.list(all=True, filters=label):
        _attempt(failures, f"container {container.name}", functools.partial(_remove_container, container))
    if docker.docker_network is not None:
        _attempt(failures, f"network {docker.network_name}", docker.docker_network.remove)
    for volume in docker.client.volumes.list(filters=label):
        _attempt(failures, f"volume {volume.name}", functools.partial(volume.remove, force=True))
    left = [c.name for c in docker.client.containers.list(all=True, filters=label)]
    left += [n.name for n in docker.client.networks.list(filters=label)]
    left += [v.name for v in docker.client.volumes.list(filters=label)]
    if left:
        failures.append(f"still there: {', '.join(left)}")
    if entry is not None and docker.ledger is not None and not failures:
        docker.ledger.forget(entry)
    if failures:
        raise InfrastructureError("teardown incomplete: " + "; ".join(failures))


def _remove_container(container: Any) -> None:
    with contextlib.suppress(_errors().NotFound):
        container.reload()
        if container.status == "paused":
            container.unpause()
        container.remove(force=True, v=True)


def _save_log(docker: DockerStack, name: str, container: Any) -> None:
    path = docker.run_dir / "services" / f"{name}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(container.logs()))

