"""The ``local`` runtime, the embedded default: a stack as processes on 127.0.0.1.

:func:`bring_up` turns a validated :class:`~faultlab.model.stack.Stack` into running
parts and yields a :class:`LocalStack` describing where everything is:

- one fault-proxy server (:class:`faultlab.proxy.ProxyServer`, in this process) with one
  proxy per link, created through the Toxiproxy HTTP API like any client would;
- each built-in ``postgres`` service as a :class:`~faultlab.runtime.postgres.PostgresServer`
  in a fresh data directory ``<tmp>/faultlab-pgdata-<run id>-<random>/<service>`` on a free
  port (not inside the run directory: PostgreSQL runs as an unprivileged user when faultlab
  runs as root, and it must reach its data wherever the reports go; the random part keeps
  two runs given the same id, such as two test sessions on one machine, apart);
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
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faultlab.errors import InfrastructureError, ServiceFailed
from faultlab.model.stack import INTERPOLATION, Stack
from faultlab.runtime.ledger import Ledger
from faultlab.runtime.ports import free_ports
from faultlab.runtime.postgres import PostgresServer
from faultlab.runtime.supervisor import ServiceSpec, Supervisor
from faultlab.runtime.waits import Deadline, HttpWait, TcpWait, WaitStrategy, wait_for

__all__ = ["LocalStack", "bring_up", "interpolate", "proxy_client", "start_postgres"]

LOOPBACK = "127.0.0.1"


@dataclass
class LocalStack:
    """A stack brought up by the local runtime: addresses and handles of every part."""

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

    def address(self, service: str) -> str:
        """``127.0.0.1:PORT`` of a service itself, bypassing every proxy."""
        return f"{LOOPBACK}:{self.ports[service]}"

    def link_address(self, link: str) -> str:
        """``127.0.0.1:PORT`` of a link's proxy listener."""
        return f"{LOOPBACK}:{self.link_ports[link]}"

    def url(self, service: str, path: str = "") -> str:
        """``http://127.0.0.1:PORT{path}`` of a service."""
        return f"http://{self.address(service)}{path}"

    def dsn(self, service: str, *, database: str | None = None, user: str | None = None) -> str:
        """A libpq URL straight to a postgres service (the superuser unless ``user``)."""
        spec = self.stack.services[service].postgres
        if spec is None:
            raise KeyError(f"{service!r} is not a postgres service")
        return self.postgres[service].dsn(database or spec.database, user)

    def links_to(self, service: str) -> list[str]:
        """The links whose far end is ``service``."""
        return [name for name, link in self.stack.links.items() if link.to == service]

    def values(self, owner_port: int | None) -> dict[str, str]:
        """What each ``${...}`` stands for in this stack, for an owner with ``owner_port``."""
        values = {"run_dir": str(self.run_dir)}
        if self.stack.source is not None:
            values["stack_dir"] = str(Path(self.stack.source).parent)
        if owner_port is not None:
            values["port"] = str(owner_port)
        values.update({f"link.{name}": self.link_address(name) for name in self.link_ports})
        values.update({f"service.{name}": self.address(name) for name in self.ports})
        return values


def interpolate(text: str, values: dict[str, str]) -> str:
    """Replace ``${name}`` with ``values[name]`` and ``$$`` with ``$``."""

    def replace(match: Any) -> str:
        name = match.group(1)
        if name is None:
            return "$"
        return values[name]

    return INTERPOLATION.sub(replace, text)


def command_argv(command: list[str], values: dict[str, str]) -> list[str]:
    """The argv with interpolations; a leading ``python``/``python3`` is this interpreter,
    so a stack runs with the packages faultlab itself was installed with."""
    argv = [interpolate(arg, values) for arg in command]
    if argv and argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    return argv


def _ready_wait(stack: LocalStack, name: str) -> WaitStrategy | None:
    ready = stack.stack.services[name].ready
    if ready is None:
        return None
    if ready.http is not None:
        return HttpWait(stack.url(name, ready.http))
    return TcpWait(stack.ports[name], host=LOOPBACK)


def _start_postgres(local: LocalStack, name: str) -> None:
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
    service = local.stack.services[name]
    assert service.command is not None and local.supervisor is not None
    values = local.values(local.ports.get(name))
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


def proxy_client(api_url: str) -> Any:
    """A ``toxiproxy-python`` client pointed at ``api_url`` (it keeps host and port globally)."""
    from toxiproxy.server import Toxiproxy

    host, _, port = api_url.removeprefix("http://").rstrip("/").partition(":")
    client = Toxiproxy()
    client.update_api_consumer(host, int(port))
    return client


@contextlib.contextmanager
def bring_up(
    stack: Stack,
    run_dir: str | Path,
    *,
    ledger: Ledger | None = None,
    observers: tuple[Any, ...] = (),
) -> Iterator[LocalStack]:
    """Bring ``stack`` up under ``run_dir``; tear it all down when the block ends.

    ``observers`` see the supervisor's events (``kind=``, ``service=``, ...). Raises
    :class:`~faultlab.errors.InfrastructureError` (with the evidence it saw) when a part
    does not come up; whatever did come up is torn down first.
    """
    from faultlab.proxy import ProxyServer

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
            elif service.command is not None:
                _start_service(local, name)
            else:
                raise ServiceFailed(
                    f"service {name!r} has only an image; the local runtime runs commands "
                    "(use the docker runtime, or give it a `command`)"
                )
        yield local
    finally:
        teardown(local, proxy_server)


def teardown(local: LocalStack, proxy_server: Any) -> None:
    """Stop services, PostgreSQL and the proxy; remove data directories. Always completes;
    raises :class:`InfrastructureError` at the end if any step failed."""
    failures: list[str] = []
    if local.supervisor is not None:
        try:
            local.supervisor.stop_all()
        except Exception as exc:
            failures.append(str(exc))
    for name, server in local.postgres.items():
        try:
            server.stop(mode="fast")
        except Exception as exc:
            failures.append(f"postgres {name}: {exc}")
    try:
        proxy_server.stop()
    except Exception as exc:
        failures.append(f"proxy server: {exc}")
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
