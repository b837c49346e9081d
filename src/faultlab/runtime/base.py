"""The seam between faultlab and a runtime: what a running stack offers, whichever runtime runs it.

A runtime (``local``: processes on 127.0.0.1; ``docker``: containers) is a :class:`Runtime`
subclass registered under its name in the ``faultlab.runtimes`` entry-point group, exactly as a
third-party runtime would be; the stack file's ``runtime:`` names it (``local`` by default).
:meth:`Runtime.bring_up` yields a :class:`StackHandle`, and faults, probes, jobs, the load
generator, the engine and drill plugins use only that handle::

    StackHandle                          (one per running stack)
      runtime                            the runtime's registered name ("local")
      stack: Stack                       the validated stack file
      run_dir: Path                      the run directory (logs under services/)
      proxy_api: str                     the fault proxy's Toxiproxy v2 API; every link runs through it
      ledger: Ledger | None              the run's clean-up ledger
      address(service) -> "host:port"    a service itself, as the harness reaches it (no proxy)
      link_address(link) -> "host:port"  a link's proxy listener, as the harness reaches it
      url(service, path="") -> str       "http://" + address + path
      dsn(service, database=, user=)     a libpq URL to a built-in PostgreSQL (superuser by default)
      links_to(service) -> [link]        the links whose far end is the service
      interpolation_values(owner)        what each ${...} means to a process the runtime starts
      service(name) -> ServiceControl    a service's process or container
      database(name) -> DatabaseControl  a built-in PostgreSQL service
      network(service) -> NetworkControl a service's own network, below the fault proxy
      start_process(spec) -> ServiceControl   a job (or the load generator), supervised by the runtime
      load_driver(spec, origin=) -> LoadDriver the load generator, its processes where the runtime
                                         runs them (by default through start_process)
      tool_versions() -> {tool: version}  what the runtime itself runs on ({"docker": "20.10.24"})

    ServiceControl                       name, state, pid (None: not running or not known),
                                         exit_code, kill(sig), pause(), resume(),
                                         restart(grace_s=, sig=), stop(grace_s=, sig=),
                                         wait_exited(timeout), log_tail(lines)
    DatabaseControl                      name, database, user, dsn(database=, user=),
                                         server_version(), is_running(), freeze(), thaw(),
                                         stop(mode), start()
    NetworkControl                       service, disconnect(), reconnect(),
                                         filter_packets(filter_id, action=, direction=,
                                         probability=), unfilter_packets(filter_id)

What a runtime cannot do is not an ``isinstance`` check in a fault: the handle's default for
each control raises :meth:`StackHandle.unsupported`, a :class:`~faultlab.errors.FaultError`
naming the runtime; and a runtime lists its :data:`CAPABILITIES` so that the loader refuses,
before anything starts, a fault kind whose ``requires`` it lacks (``faultlab kinds`` shows
which runtimes run each kind).

This module imports no process, network or container code: the loader reads a runtime's
class attributes without bringing anything up.
"""

from __future__ import annotations

import abc
import signal
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from faultlab.errors import FaultError
from faultlab.model.stack import INTERPOLATION, Stack

if TYPE_CHECKING:
    from faultlab.engine.load import LoadDriver, LoadSpec
    from faultlab.hub import Hub, Observer
    from faultlab.runtime.ledger import Ledger
    from faultlab.runtime.supervisor import ServiceSpec

__all__ = [
    "CAPABILITIES",
    "DatabaseControl",
    "Finding",
    "NetworkControl",
    "ProcessStarter",
    "ProxyOnlyStack",
    "Runtime",
    "ServiceControl",
    "StackHandle",
    "interpolate",
    "proxy_client",
]

CAPABILITIES: Mapping[str, str] = {
    "proxy": "link faults: toxics and outages through the fault proxy's Toxiproxy API",
    "service_control": "kill, pause, resume and restart a service",
    "database_control": "freeze, thaw, stop and start a built-in PostgreSQL server",
    "database_sql": "superuser SQL on a built-in PostgreSQL (locks, settings, connections)",
    "service_network": "take a service off its network and back, below the fault proxy",
    "packet_filter": "drop or reject a service's packets in its own network namespace (iptables)",
}
"""What a runtime may offer a fault kind, by name (a kind's ``requires`` names them)."""

Finding = tuple[tuple[str | int, ...], str]
"""A problem a runtime finds in a stack file: the YAML path and the message."""


def interpolate(text: str, values: Mapping[str, str]) -> str:
    """Replace ``${name}`` with ``values[name]`` and ``$$`` with ``$``."""

    def replace(match: Any) -> str:
        name = match.group(1)
        if name is None:
            return "$"
        return values[name]

    return INTERPOLATION.sub(replace, text)


def proxy_client(api_url: str) -> Any:
    """A ``toxiproxy-python`` client pointed at ``api_url`` (it keeps host and port globally)."""
    from toxiproxy.server import Toxiproxy

    host, _, port = api_url.removeprefix("http://").rstrip("/").partition(":")
    client = Toxiproxy()
    client.update_api_consumer(host, int(port))
    return client


class ServiceControl(Protocol):
    """A running service (a process group locally, a container on docker) or a process
    started with :meth:`StackHandle.start_process`.

    ``state`` is one of ``starting``, ``running``, ``paused``, ``backoff``, ``exited`` (will
    not be restarted) and ``stopped`` (by :meth:`stop`). ``kill`` is a crash as far as the
    restart policy is concerned; ``stop`` is the operator's and is never followed by a
    restart (``sig`` asks it to stop, SIGKILL follows after ``grace_s``). ``pause`` and
    ``resume`` freeze and continue every process of the service. The methods that act
    return the pid they hit when the runtime knows it.
    """

    @property
    def name(self) -> str: ...

    @property
    def state(self) -> str: ...

    @property
    def pid(self) -> int | None: ...

    @property
    def exit_code(self) -> int | None: ...

    def kill(self, sig: int = signal.SIGKILL) -> int | None: ...

    def pause(self) -> int | None: ...

    def resume(self) -> int | None: ...

    def restart(self, *, grace_s: float | None = None, sig: int | None = None) -> None: ...

    def stop(self, *, grace_s: float | None = None, sig: int | None = None) -> int | None: ...

    def wait_exited(self, timeout: float) -> int | None: ...

    def log_tail(self, lines: int = 40) -> str: ...


class DatabaseControl(Protocol):
    """A built-in PostgreSQL service of the running stack.

    ``freeze`` stops every server process (SIGSTOP locally, ``docker pause`` in a
    container) and returns once they are stopped; ``thaw`` continues them and is harmless
    when nothing is frozen, including after a freeze that failed half way (it continues
    whatever was stopped). ``stop(mode)`` shuts the server down (``fast``: clean;
    ``immediate``: crash-like, recovery at the next start); ``start`` starts it again.
    """

    @property
    def name(self) -> str: ...

    @property
    def database(self) -> str: ...

    @property
    def user(self) -> str: ...

    def dsn(self, *, database: str | None = None, user: str | None = None) -> str: ...

    def server_version(self) -> str | None: ...

    def is_running(self) -> bool: ...

    def freeze(self) -> None: ...

    def thaw(self) -> None: ...

    def stop(self, mode: str = "fast") -> None: ...

    def start(self) -> None: ...


class NetworkControl(Protocol):
    """A service's own network connection, below the fault proxy (a container's network
    interface on docker): a partition at the network level, every peer unreachable, not only
    the links. ``reconnect`` is harmless when the service is connected.

    ``filter_packets`` (capability ``packet_filter``) drops or rejects the service's packets
    in its own network namespace: ``action`` ``drop`` (silently) or ``reject`` (a TCP reset,
    else ICMP port unreachable), ``direction`` ``in``, ``out`` or ``both`` (loopback is never
    touched), ``probability`` the share of packets hit (below 1: packet loss). ``filter_id``
    names the filter (the caller's, chosen before the call) so that ``unfilter_packets``
    removes exactly it; removing one that is not there, or half there, is harmless. The
    runtime writes the filter to the ledger before it applies it.
    """

    @property
    def service(self) -> str: ...

    def disconnect(self) -> None: ...

    def reconnect(self) -> None: ...

    def filter_packets(self, filter_id: str, *, action: str = "drop", direction: str = "both",
                       probability: float = 1.0) -> None: ...

    def unfilter_packets(self, filter_id: str) -> None: ...


class ProcessStarter(Protocol):
    """Anything that starts supervised processes: a :class:`StackHandle`, or a supervisor."""

    def start_process(self, spec: ServiceSpec) -> ServiceControl: ...


class StackHandle(abc.ABC):
    """A stack brought up by a runtime (see the module docstring for the whole interface).

    A runtime's handle sets ``stack``, ``run_dir``, ``proxy_api`` and ``ledger`` and
    implements the addresses; each control it does not offer keeps the default here, which
    raises :meth:`unsupported`.
    """

    runtime: ClassVar[str] = "?"
    stack: Stack
    run_dir: Path
    proxy_api: str
    ledger: Ledger | None

    def unsupported(self, what: str) -> FaultError:
        """The error for something this runtime cannot do (``what``: "pause a service")."""
        return FaultError(f"the {self.runtime} runtime cannot {what}")

    @abc.abstractmethod
    def address(self, service: str) -> str:
        """``host:port`` of a service itself as the harness reaches it, bypassing every proxy."""

    @abc.abstractmethod
    def link_address(self, link: str) -> str:
        """``host:port`` of a link's proxy listener as the harness reaches it."""

    def url(self, service: str, path: str = "") -> str:
        """``http://host:port{path}`` of a service."""
        return f"http://{self.address(service)}{path}"

    def dsn(self, service: str, *, database: str | None = None, user: str | None = None) -> str:
        """A libpq URL straight to a postgres service (the superuser unless ``user``; the
        stack's database unless ``database``)."""
        return self.database(service).dsn(database=database, user=user)

    def links_to(self, service: str) -> list[str]:
        """The links whose far end is ``service``."""
        return [name for name, link in self.stack.links.items() if link.to == service]

    @abc.abstractmethod
    def interpolation_values(self, owner: str | None = None) -> dict[str, str]:
        """What each ``${...}`` stands for in a command or environment of ``owner`` (a
        service, or None for a job), as that process sees the stack."""

    def service(self, name: str) -> ServiceControl:
        """The running service ``name`` (a ``command`` or ``image`` service)."""
        raise self.unsupported(f"control the service {name!r}")

    def database(self, name: str) -> DatabaseControl:
        """The built-in PostgreSQL service ``name``."""
        raise self.unsupported(f"reach the database {name!r}")

    def network(self, service: str) -> NetworkControl:
        """The network connection of ``service`` itself (capabilities ``service_network`` and
        ``packet_filter``)."""
        raise self.unsupported(f"take {service!r} off its network (use a link fault such as `partition`)")

    def start_process(self, spec: ServiceSpec) -> ServiceControl:
        """Start ``spec`` (a job, the load generator) supervised by the runtime, labelled
        with the run and stopped at teardown. A leading ``python`` in its command is the
        runtime's Python with faultlab installed."""
        raise self.unsupported(f"start the process {spec.name!r}")

    def tool_versions(self) -> dict[str, str]:
        """Versions of what the runtime itself runs on, for the run's manifest (none by default)."""
        return {}

    def load_driver(self, spec: LoadSpec, *, origin: float) -> LoadDriver:
        """The load generator for ``spec`` (``origin``: the run's origin on the monotonic
        clock), its locust processes started where this runtime runs them: by default
        through :meth:`start_process`, writing ``requests.jsonl`` in the run directory."""
        from faultlab.engine.load import LoadDriver

        return LoadDriver(spec, run_dir=self.run_dir, origin=origin, processes=self)


class ProxyOnlyStack(StackHandle):
    """A fault proxy seen as a stack without services: link faults act on its proxies, and
    whatever needs a service or a database says it cannot (``who`` cannot ...; ``instead``).

    ``link_address(name)`` is ``listen(name)``, the proxy's listen address.
    """

    runtime: ClassVar[str] = "proxy-only"

    def __init__(self, proxy_api: str, listen: Callable[[str], str], *, who: str = "a fault proxy alone",
                 instead: str = "bring a stack up"):
        self.proxy_api = proxy_api
        self.ledger = None
        self.run_dir = Path.cwd()
        self.stack = Stack.model_construct(name="proxy-only", services={}, links={}, jobs={})
        self._listen = listen
        self._who = who
        self._instead = instead

    def unsupported(self, what: str) -> FaultError:
        return FaultError(f"{self._who} runs no services, so it cannot {what}; {self._instead}")

    def address(self, service: str) -> str:
        raise self.unsupported(f"give the address of service {service!r}")

    def link_address(self, link: str) -> str:
        return self._listen(link)

    def interpolation_values(self, owner: str | None = None) -> dict[str, str]:
        return {}


class Runtime(abc.ABC):
    """A way to bring stacks up, registered in ``faultlab.runtimes`` under ``name``.

    ``capabilities`` are the :data:`CAPABILITIES` it offers fault kinds; :meth:`check`
    finds what it cannot run in a stack file (before anything starts); :meth:`bring_up`
    yields the running stack and tears everything down when the block ends, whatever
    happened (``observers`` see its ``service`` events).
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    capabilities: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def lacks(cls, kind: Any, params: Any = None) -> frozenset[str]:
        """The capabilities fault kind ``kind`` needs (with ``params``, when known) that this
        runtime does not offer; empty when it runs the kind."""
        needed = kind.needs(params) if params is not None else frozenset(getattr(kind, "requires", ()))
        return frozenset(needed) - cls.capabilities

    @classmethod
    def supports(cls, kind: Any, params: Any = None) -> bool:
        """Whether this runtime runs fault kind ``kind`` (with ``params``, when known)."""
        return not cls.lacks(kind, params)

    @classmethod
    def check(cls, stack: Stack) -> list[Finding]:
        """What this runtime cannot run in ``stack``, as ``(yaml path, message)`` pairs."""
        return []

    @abc.abstractmethod
    def bring_up(
        self,
        stack: Stack,
        run_dir: str | Path,
        *,
        ledger: Ledger | None = None,
        observers: Hub | Iterable[Observer] = (),
    ) -> AbstractContextManager[StackHandle]:
        """Bring ``stack`` up under ``run_dir``; a context manager yielding its handle."""
