"""The ``local`` runtime, the embedded default: a stack as processes on 127.0.0.1.

:class:`LocalRuntime` is registered as ``local`` in the ``faultlab.runtimes`` entry points.
:func:`bring_up` turns a validated :class:`~faultlab.model.stack.Stack` into running
parts and yields a :class:`LocalStack` (a :class:`~faultlab.runtime.base.StackHandle`)
describing where everything is:

- one fault-proxy server (:class:`faultlab.proxy.ProxyServer`, in this process) with one
  proxy per link, created through the Toxiproxy HTTP API like any client would;
- each built-in ``postgres`` service as a :class:`~faultlab.runtime.postgres.PostgresServer`
  in a fresh data directory ``<tmp>/faultlab-pgdata-<run id>-<random>/<service>`` on a free
  port (not inside the run directory: PostgreSQL runs as an unprivileged user when faultlab
  runs as root, and it must reach its data wherever the reports go; the random part keeps
  two runs given the same id, such as two test sessions on one machine, apart), controlled
  through a :class:`LocalDatabase` (freeze = SIGSTOP of every server process);
- each ``command`` service as a supervised subprocess in its own process group, with the
  stack's restart policy and its output in ``<run_dir>/services/<name>.log``.

Services start in the order the stack file lists them, each ready before the next starts.
A service's restart policy applies once it is ready: a service whose process exits before
it became ready fails the bring-up at that first exit, with its log tail as evidence,
rather than being restarted until its readiness timeout runs out.
Each readiness wait has the service's own ``ready.timeout``, counted from its start (a
built-in PostgreSQL service has its server's own start timeout). Every process and data directory is
written to the run's clean-up ledger before it exists, and teardown always runs: on
leaving the context, on an exception, on Ctrl-C.

The process, PostgreSQL and proxy modules are imported when a stack comes up, not with this
module: the loader reads :class:`LocalRuntime`'s class attributes without them.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from faultlab.errors import FaultError, InfrastructureError, ServiceFailed
from faultlab.model.stack import Stack
from faultlab.runtime.base import Finding, Runtime, ServiceControl, StackHandle, interpolate, proxy_client

if TYPE_CHECKING:
    from faultlab.hub import Hub, Observer
    from faultlab.runtime.ledger import Ledger
    from faultlab.runtime.postgres import PostgresServer
    from faultlab.runtime.supervisor import Service, ServiceSpec, Supervisor
    from faultlab.runtime.waits import WaitStrategy

__all__ = ["LocalRuntime", "LocalStack", "LocalDatabase", "bring_up", "interpolate", "proxy_client",
           "start_postgres"]

LOOPBACK = "127.0.0.1"


class LocalRuntime(Runtime):
    """Services as supervised processes on 127.0.0.1, PostgreSQL from the pgserver wheel or
    system binaries, the fault proxy in this process."""

    name: ClassVar[str] = "local"
    summary: ClassVar[str] = "processes on 127.0.0.1 (embedded PostgreSQL, in-process fault proxy)"
    capabilities: ClassVar[frozenset[str]] = frozenset(
        {"proxy", "service_control", "database_control", "database_sql"}
    )

    @classmethod
    def check(cls, stack: Stack) -> list[Finding]:
        return [
            (("services", name), f"service {name!r} has only an `image`; the local runtime runs a `command` "
                                 "(give it one, or use the docker runtime)")
            for name, service in stack.services.items()
            if service.postgres is None and service.command is None
        ]

    def bring_up(
        self,
        stack: Stack,
        run_dir: str | Path,
        *,
        ledger: Ledger | None = None,
        observers: Hub | Iterable[Observer] = (),
    ) -> contextlib.AbstractContextManager[LocalStack]:
        return bring_up(stack, run_dir, ledger=ledger, observers=observers)


@dataclass
class LocalStack(StackHandle):
    """A stack brought up by the local runtime: addresses and handles of every part."""

    runtime: ClassVar[str] = "local"

    stack: Stack
    run_dir: Path
    proxy_api: str
    ports: dict[str, int]
    link_ports: dict[str, int]
    postgres: dict[str, PostgresServer] = field(default_factory=dict)
    supervisor: Supervisor | None = None
    ledger: Ledger | None = None
    postgres_entries: dict[str, str] = field(default_factory=dict)
    data_root: Path | None = None
    databases: dict[str, LocalDatabase] = field(default_factory=dict)

    def address(self, service: str) -> str:
        """``127.0.0.1:PORT`` of a service itself, bypassing every proxy."""
        return f"{LOOPBACK}:{self.ports[service]}"

    def link_address(self, link: str) -> str:
        """``127.0.0.1:PORT`` of a link's proxy listener."""
        return f"{LOOPBACK}:{self.link_ports[link]}"

    def interpolation_values(self, owner: str | None = None) -> dict[str, str]:
        """What each ``${...}`` stands for in this stack, for ``owner`` (its ``${port}``)."""
        values = {"run_dir": str(self.run_dir), "host": LOOPBACK}
        if self.stack.source is not None:
            values["stack_dir"] = str(Path(self.stack.source).parent)
        if owner is not None and owner in self.ports:
            values["port"] = str(self.ports[owner])
        values.update({f"link.{name}": self.link_address(name) for name in self.link_ports})
        values.update({f"service.{name}": self.address(name) for name in self.ports})
        return values

    def service(self, name: str) -> ServiceControl:
        """The supervised process group of ``command`` service ``name``."""
        service = self.stack.services.get(name)
        if service is None or service.command is None:
            raise FaultError(f"{name!r} is not a command service of stack {self.stack.name!r}")
        if self.supervisor is None or name not in self.supervisor.services:
            raise FaultError(f"service {name!r} is not running (the stack is not up)")
        return self.supervisor[name]

    def database(self, name: str) -> LocalDatabase:
        """The built-in PostgreSQL service ``name``."""
        database = self.databases.get(name)
        if database is None:
            if name in self.stack.services and self.stack.services[name].postgres is not None:
                raise FaultError(f"postgres service {name!r} is not running (the stack is not up)")
            raise FaultError(f"{name!r} is not a postgres service of stack {self.stack.name!r}")
        return database

    def start_process(self, spec: ServiceSpec) -> Service:
        """Start ``spec`` under the stack's supervisor (a leading ``python`` is this interpreter)."""
        import dataclasses

        if self.supervisor is None:
            raise self.unsupported(f"start {spec.name!r}: its processes are not supervised (the stack is not up)")
        command = list(spec.command)
        if command and command[0] in ("python", "python3"):
            command[0] = sys.executable
        return self.supervisor.start(dataclasses.replace(spec, command=command))


class LocalDatabase:
    """A built-in PostgreSQL server run by the local runtime (a
    :class:`~faultlab.runtime.base.DatabaseControl`).

    ``freeze`` SIGSTOPs the postmaster (no new backends) and then every child, one by one:
    each PostgreSQL child calls setsid(), so signalling the postmaster's group is not enough.
    Every pid is written to the ledger before any is stopped, so ``faultlab cleanup``
    continues them after a ``kill -9``; ``thaw`` continues whatever was stopped.
    """

    def __init__(self, local: LocalStack, name: str):
        spec = local.stack.services[name].postgres
        assert spec is not None
        self.local = local
        self.name = name
        self.database = spec.database
        self.user = spec.user
        self._lock = threading.Lock()
        self._frozen: list[tuple[int, str | None]] = []

    @property
    def server(self) -> PostgresServer:
        """The server process this database runs in."""
        return self.local.postgres[self.name]

    def dsn(self, *, database: str | None = None, user: str | None = None) -> str:
        """A libpq URL (the superuser unless ``user``; the stack's database unless ``database``)."""
        return self.server.dsn(database or self.database, user)

    def pids(self) -> list[int]:
        """The server's processes (postmaster first), empty when it is not running."""
        return list(self.server.pids())

    def is_running(self) -> bool:
        """Whether the server runs."""
        return self.server.postmaster_pid is not None

    def server_version(self) -> str | None:
        """``SHOW server_version``, or None when it cannot be read."""
        from faultlab.runtime.postgres import server_version

        return server_version(self.dsn())

    def freeze(self) -> None:
        """Stop every server process (SIGSTOP) and return once the kernel shows them stopped."""
        import psutil

        pids = self.server.pids()
        if not pids:
            raise FaultError(f"postgres {self.name!r} is not running")
        ledger = self.local.ledger
        with self._lock:
            for pid in pids:  # every pid is in the ledger before any is stopped
                try:
                    start_time = psutil.Process(pid).create_time()
                except psutil.Error:
                    continue
                self._frozen.append((pid, ledger.stopped_process(pid, start_time) if ledger is not None else None))
            for pid, _ in self._frozen:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
            stopped = [pid for pid, _ in self._frozen]
        _wait_stopped(stopped)

    def thaw(self) -> None:
        """Continue every process :meth:`freeze` stopped; harmless when none is."""
        with self._lock:
            frozen, self._frozen = self._frozen, []
        for pid, entry in reversed(frozen):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
            if entry is not None and self.local.ledger is not None:
                self.local.ledger.forget(entry)

    def stop(self, mode: str = "fast") -> None:
        """Shut the server down (``fast``, ``immediate`` or ``smart``)."""
        self.server.stop(mode=mode)

    def start(self) -> None:
        """Start the server again (its process group goes to the ledger)."""
        start_postgres(self.local, self.name)


def _wait_stopped(pids: list[int], timeout_s: float = 0.2) -> None:
    import psutil

    deadline = time.monotonic() + timeout_s
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                if psutil.Process(pid).status() in (psutil.STATUS_STOPPED, psutil.STATUS_ZOMBIE):
                    break
            except psutil.Error:
                break
            time.sleep(0.001)


def command_argv(command: list[str], values: dict[str, str]) -> list[str]:
    """The argv with interpolations; a leading ``python``/``python3`` is this interpreter,
    so a stack runs with the packages faultlab itself was installed with."""
    argv = [interpolate(arg, values) for arg in command]
    if argv and argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    return argv


def _ready_wait(stack: LocalStack, name: str) -> WaitStrategy | None:
    from faultlab.runtime.waits import HttpWait, TcpWait

    ready = stack.stack.services[name].ready
    if ready is None:
        return None
    if ready.http is not None:
        return HttpWait(stack.url(name, ready.http))
    return TcpWait(stack.ports[name], host=LOOPBACK)


def _start_postgres(local: LocalStack, name: str) -> None:
    from faultlab.runtime.postgres import PostgresServer

    spec = local.stack.services[name].postgres
    assert spec is not None
    if local.data_root is None:
        run_id = local.ledger.run_id if local.ledger is not None else "run"
        data_root = Path(tempfile.gettempdir()) / f"faultlab-pgdata-{run_id}-{uuid.uuid4().hex[:8]}"
        if local.ledger is not None:
            local.ledger.data_dir(data_root)
        data_root.mkdir()  # never an existing one: it would be another run's
        local.data_root = data_root
    data_dir = local.data_root / name
    server = PostgresServer(
        data_dir, port=local.ports[name], settings={"max_connections": spec.max_connections}
    )
    local.postgres[name] = server
    local.databases[name] = LocalDatabase(local, name)
    if local.ledger is not None:
        local.postgres_entries[name] = local.ledger.process_group(f"postgres:{name}")
    start_postgres(local, name)
    if spec.user != server.superuser:
        server.create_role(spec.user)
    server.create_database(spec.database, owner=spec.user)


def start_postgres(local: LocalStack, name: str) -> None:
    """(Re)start a postgres service's server and record its process group in the ledger."""
    server = local.postgres[name]
    server.start()
    entry = local.postgres_entries.get(name)
    if entry is not None and local.ledger is not None and server.postmaster_pid is not None:
        import psutil

        local.ledger.update(
            entry, pgid=server.postmaster_pid, start_time=psutil.Process(server.postmaster_pid).create_time()
        )


def _start_service(local: LocalStack, name: str) -> None:
    from faultlab.runtime.supervisor import ServiceSpec
    from faultlab.runtime.waits import Deadline, wait_for

    service = local.stack.services[name]
    assert service.command is not None and local.supervisor is not None
    values = local.interpolation_values(name)
    env = {key: interpolate(value, values) for key, value in service.env.items()}
    env.setdefault("PYTHONUNBUFFERED", "1")
    spec = ServiceSpec(
        name=name,
        command=command_argv(service.command, values),
        env=env,
        cwd=str(local.run_dir),
        restart=service.restart,
        restart_before_ready=service.ready is None,
    )
    running = local.supervisor.start(spec)
    strategy = _ready_wait(local, name)
    if strategy is None or service.ready is None:
        return

    def exited() -> str | None:
        if running.state == "exited":
            return f"process exited with code {running.exit_code} before it became ready"
        return None

    wait_for(strategy, Deadline(service.ready.timeout), what=f"service {name!r} ready ({strategy})",
             evidence=running.log_tail, give_up=exited)
    if not running.mark_ready():
        raise ServiceFailed(f"service {name!r} exited with code {running.exit_code} as it became ready",
                            evidence=running.log_tail())


def _create_proxies(local: LocalStack) -> None:
    client = proxy_client(local.proxy_api)
    for name, link in local.stack.links.items():
        client.create(
            upstream=local.address(link.to), name=name, listen=local.link_address(name), enabled=True
        )


@contextlib.contextmanager
def bring_up(
    stack: Stack,
    run_dir: str | Path,
    *,
    ledger: Ledger | None = None,
    observers: Hub | Iterable[Observer] = (),
) -> Iterator[LocalStack]:
    """Bring ``stack`` up under ``run_dir``; tear it all down when the block ends.

    ``observers`` (a :class:`~faultlab.hub.Hub` or plain callables) see the supervisor's
    ``service`` events. Raises :class:`~faultlab.errors.InfrastructureError` (with the
    evidence it saw) when a part does not come up; whatever did come up is torn down first.
    """
    from faultlab.proxy import ProxyServer
    from faultlab.runtime.ports import free_ports
    from faultlab.runtime.supervisor import Supervisor

    problems = LocalRuntime.check(stack)
    if problems:
        raise ServiceFailed("; ".join(message for _, message in problems))
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    port_owners = [n for n, s in stack.services.items() if s.postgres is not None or s.port is not None]
    fresh = iter(free_ports(len(port_owners) + len(stack.links)))
    ports = {}
    for name in port_owners:
        port = stack.services[name].port
        ports[name] = port if isinstance(port, int) else next(fresh)
    link_ports = {name: next(fresh) for name in stack.links}

    proxy_server = ProxyServer(host=LOOPBACK, port=0)
    proxy_server.start()
    supervisor = Supervisor(run_dir, run_id=ledger.run_id if ledger else "", ledger=ledger, observers=observers)
    local = LocalStack(stack, run_dir, proxy_server.url, ports, link_ports, supervisor=supervisor, ledger=ledger)
    try:
        _create_proxies(local)
        for name, service in stack.services.items():
            if service.postgres is not None:
                _start_postgres(local, name)
            else:
                _start_service(local, name)
        yield local
    finally:
        teardown(local, proxy_server)


def _attempt(failures: list[str], what: str, step: Callable[[], object]) -> None:
    try:
        step()
    except Exception as exc:
        failures.append(f"{what}{exc}")


def teardown(local: LocalStack, proxy_server: Any) -> None:
    """Stop services, PostgreSQL and the proxy; remove data directories. Always completes;
    raises :class:`InfrastructureError` at the end if any step failed."""
    failures: list[str] = []
    for name, database in local.databases.items():
        _attempt(failures, f"postgres {name}: could not continue it: ", database.thaw)  # frozen, it would not stop
    if local.supervisor is not None:
        _attempt(failures, "", local.supervisor.stop_all)
    for name, server in local.postgres.items():
        _attempt(failures, f"postgres {name}: ", functools.partial(server.stop, mode="fast"))
    _attempt(failures, "proxy server: ", proxy_server.stop)
    data_root = local.data_root
    if data_root is not None and data_root.exists():
        shutil.rmtree(data_root, ignore_errors=True)
        if data_root.exists():
            failures.append(f"could not remove {data_root}")
    if local.ledger is not None and not failures:
        for entry in local.ledger.entries:
            if entry["kind"] in ("process_group", "data_dir"):
                local.ledger.forget(entry["id"])
    if failures:
        raise InfrastructureError("teardown incomplete: " + "; ".join(failures))
