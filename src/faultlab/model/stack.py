"""The stack document: which services run, how they start, which links join them."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    PlainValidator,
    PrivateAttr,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from faultlab.model.document import Document, resolve_path
from faultlab.model.types import Duration, Host, LocalText, ModuleName, Name, StrictModel, UrlPath, as_written
from faultlab.plugin.declaration import Declaration
from faultlab.registry import unknown_name_message

__all__ = [
    "Stack",
    "Service",
    "Postgres",
    "Readiness",
    "Link",
    "Job",
    "Monitor",
    "Monitoring",
    "Port",
    "RestartPolicy",
    "INTERPOLATION",
]

INTERPOLATION = re.compile(r"\$\$|\$\{([^}]*)\}")
"""``${port}``, ``${host}``, ``${link.NAME}``, ``${service.NAME}``, ``${run_dir}``, ``${stack_dir}``,
in a job ``${window}``; ``$$`` is a literal ``$``."""


def _port(value: Any) -> int | Literal["auto"]:
    if value == "auto":
        return "auto"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected 'auto' or a port number, got {value!r}")
    if not 1 <= value <= 65535:
        raise ValueError(f"port {value} is outside 1..65535; or write 'auto' to get a free one")
    return value


Port = Annotated[
    int | Literal["auto"],
    PlainValidator(_port),
    WithJsonSchema(
        {"anyOf": [{"const": "auto"}, {"type": "integer", "minimum": 1, "maximum": 65535}]}
    ),
]
"""``auto`` (the runtime picks a free port on 127.0.0.1) or a fixed port number."""

RestartPolicy = Literal["no", "on-failure", "always", "unless-stopped"]

Finding = tuple[tuple[str | int, ...], str]
"""A problem found by :meth:`Stack.check`: the YAML path and the message."""


def _command_list(value: Any) -> Any:
    if isinstance(value, str):
        example = ", ".join(value.split()[:3]) or "python, -m, app"
        raise ValueError(f"write the command as a list of arguments, like [{example}]")
    return value


def _env_text(value: Any) -> Any:
    # Numbers are accepted as their text (PORT: 8080); booleans are not: yes/no is ambiguous.
    if isinstance(value, dict):
        return {
            k: str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
            for k, v in value.items()
        }
    return value


Command = Annotated[list[str], BeforeValidator(_command_list), Field(min_length=1)]
"""An argv list; ``${...}`` is interpolated in every argument."""

Environment = Annotated[dict[str, str], BeforeValidator(_env_text)]
"""Environment variables; ``${...}`` is interpolated in every value."""


class Postgres(StrictModel):
    """A built-in PostgreSQL service (pgserver wheel or system binaries; a container on docker)."""

    database: str = Field(
        "postgres", min_length=1, max_length=63, description="database created at start"
    )
    user: str = Field("postgres", min_length=1, max_length=63, description="role created at start")
    version: str | None = Field(None, description="PostgreSQL major version (docker runtime)")
    max_connections: int = Field(100, ge=5, le=10000, description="server max_connections")


class Readiness(StrictModel):
    """How to tell a service is up: an HTTP path that answers 2xx, or an open TCP port."""

    http: UrlPath | None = Field(None, description="path polled on the service's port")
    tcp: Literal[True] | None = Field(
        None, description="true: ready once the port accepts connections"
    )
    timeout: Duration = Field(default=as_written("30s"), description="give up after this long")

    @model_validator(mode="after")
    def _one_check(self) -> Readiness:
        if (self.http is None) == (self.tcp is None):
            raise ValueError("give exactly one of `http: /path` or `tcp: true`")
        return self


class Service(StrictModel):
    """One service: a built-in ``postgres``, or a ``command`` and/or an ``image``."""

    postgres: Postgres | None = None
    command: Command | None = Field(None, description="argv; ${...} interpolated")
    image: str | None = Field(None, min_length=1, description="container image (docker runtime)")
    port: Port | None = Field(None, description="'auto' or a port number")
    env: Environment = Field(default_factory=dict, description="environment; ${...} interpolated")
    ready: Readiness | None = None
    restart: RestartPolicy = Field("no", description="docker's restart policies")

    @field_validator("restart", mode="before")
    @classmethod
    def _yaml_no(cls, value: Any) -> Any:
        return "no" if value is False else value

    @model_validator(mode="after")
    def _one_way_to_run(self) -> Service:
        if self.postgres is not None:
            extra = [k for k in ("command", "image") if getattr(self, k) is not None]
            if extra:
                raise ValueError(f"a postgres service has no {' or '.join(extra)}")
        elif self.command is None and self.image is None:
            raise ValueError("a service needs `postgres: {...}`, `command: [...]` or `image: ...`")
        return self

    @property
    def has_port(self) -> bool:
        """Whether other services can connect to it (a postgres service always has a port)."""
        return self.postgres is not None or self.port is not None

    @property
    def target_type(self) -> str:
        """``postgres`` for a built-in PostgreSQL service, else ``service`` (fault targets)."""
        return "postgres" if self.postgres is not None else "service"


class Link(StrictModel):
    """A connection from one service (or job) to another, routed through a fault proxy."""

    from_: Name = Field(alias="from", description="the service or job that connects")
    to: Name = Field(description="the service it connects to")


class Job(StrictModel):
    """A one-shot job (a nightly run, say), started by a ``{at, job: NAME}`` timeline entry.

    ``window`` is how long it may run; ``deadline`` is when, after its start, something
    depends on it being done (a service opening to customers, say), named by ``deadline_name``.
    A run reports each job's finish against both, and the margin left before the deadline.
    """

    command: Command = Field(description="argv; ${...} interpolated (${window} is the window in seconds)")
    env: Environment = Field(default_factory=dict, description="environment; ${...} interpolated")
    window: Duration | None = Field(
        None, description="the job must finish within this of its start"
    )
    deadline: Duration | None = Field(
        None, description="when, after the job's start, it must be done at the latest (margin = deadline - finish)"
    )
    deadline_name: LocalText | None = Field(
        None,
        description="what happens at the deadline, for the reports (like {en: the service opens, ja: サービス開始})",
    )

    @model_validator(mode="after")
    def _deadline_after_window(self) -> Job:
        if self.deadline is not None and self.window is not None and self.deadline < self.window:
            raise ValueError(
                f"`deadline` ({self.deadline:g} s) comes before the end of `window` ({self.window:g} s): "
                "the deadline counts from the job's start too"
            )
        if self.deadline_name is not None and self.deadline is None:
            raise ValueError("`deadline_name` names the `deadline`: give `deadline` too")
        return self


class Monitor(StrictModel):
    """The stack's own monitoring, which the harness watches to measure detection."""

    service: Name = Field(description="the service that serves the endpoints")
    ready: UrlPath = Field("/health/ready", description="readiness path (not 2xx: a problem is seen)")
    metrics: UrlPath | None = Field(None, description="Prometheus metrics path")
    scrape: dict[Name, UrlPath] = Field(
        default_factory=dict,
        description=(
            "other services' Prometheus metrics paths, scraped with the monitor's own "
            "(like {router: /metrics}); each series is labelled with its service"
        ),
    )


class Monitoring(StrictModel):
    """Real monitoring beside the stack: Prometheus scraping the services' metrics and
    evaluating the stack's alert rules, Alertmanager sending every alert to faultlab.

    faultlab runs both (Debian's ``prometheus`` and ``prometheus-alertmanager``) as supervised
    processes on 127.0.0.1 for the length of a run. Detection is then the time the first
    alert reached faultlab, with the resolution these intervals allow: an alert can reach
    faultlab up to ``scrape_interval + scrape_timeout + evaluation_interval + group_wait``
    after what it watches changed (the next scrape, that scrape's own time, the next
    evaluation, Alertmanager's wait).
    """

    rules: Path = Field(description="Prometheus alerting rules file (relative to the stack file)")
    scrape: dict[Name, UrlPath] = Field(
        min_length=1, description="the services Prometheus scrapes, each with its metrics path (gateway: /metrics)"
    )
    scrape_interval: Duration = Field(
        default=as_written("500ms"), description="how often Prometheus scrapes every service"
    )
    scrape_timeout: Duration | None = Field(
        None, description="how long one scrape may take (at most the scrape interval, which it is unless given)"
    )
    evaluation_interval: Duration = Field(
        default=as_written("500ms"), description="how often Prometheus evaluates the alert rules"
    )
    group_wait: Duration = Field(
        default=as_written("0s"), description="Alertmanager's wait before it sends a new alert"
    )
    group_interval: Duration = Field(
        default=as_written("500ms"), description="Alertmanager's wait before it sends a change (a resolution)"
    )

    _alerts: tuple[str, ...] = PrivateAttr(())

    _resolve_rules = field_validator("rules", mode="before")(resolve_path)

    @field_validator("scrape_interval", "evaluation_interval", "group_interval")
    @classmethod
    def _at_least_a_tenth(cls, value: float) -> float:
        if value < 0.1:
            raise ValueError(f"{value:g} s is too short: Prometheus and Alertmanager need at least 100ms")
        return value

    @model_validator(mode="after")
    def _timeout_within_interval(self) -> Monitoring:
        if self.scrape_timeout is not None and self.scrape_timeout > self.scrape_interval:
            raise ValueError(f"`scrape_timeout` ({self.scrape_timeout:g} s) is longer than `scrape_interval` "
                             f"({self.scrape_interval:g} s): Prometheus refuses that")
        if self.scrape_timeout is not None and self.scrape_timeout < 0.01:
            raise ValueError("`scrape_timeout` must be at least 10ms")
        return self

    @property
    def timeout(self) -> float:
        """How long one scrape may take: ``scrape_timeout``, else the scrape interval."""
        return self.scrape_timeout if self.scrape_timeout is not None else self.scrape_interval

    @property
    def alerts(self) -> tuple[str, ...]:
        """The alert names of the rules file (read by the loader)."""
        return self._alerts

    @property
    def resolution(self) -> float:
        """How long after what an alert watches changed the alert may reach faultlab: the wait
        for the next scrape, that scrape's own time, the wait for the next evaluation and
        Alertmanager's wait for a new alert (the delivery itself, milliseconds on loopback,
        comes on top)."""
        return self.scrape_interval + self.timeout + self.evaluation_interval + self.group_wait

    @property
    def resolved_resolution(self) -> float:
        """The same for an alert's resolution, which Alertmanager sends at its group interval."""
        return self.scrape_interval + self.timeout + self.evaluation_interval + self.group_interval


class Stack(Document):
    """A stack: services, the links between them (each through a fault proxy), and jobs."""

    name: Name
    runtime: Name = Field(
        "local",
        description=(
            "the runtime that brings the stack up: local (processes on 127.0.0.1, the default) "
            "or another registered one (see `faultlab kinds`)"
        ),
    )
    services: dict[Name, Service] = Field(min_length=1)
    links: dict[Name, Link] = Field(default_factory=dict)
    jobs: dict[Name, Job] = Field(default_factory=dict)
    monitor: Monitor | None = None
    monitoring: Monitoring | None = Field(
        None, description="Prometheus and Alertmanager beside the stack: detection from real alerts"
    )
    plugin: ModuleName | None = Field(
        None,
        description=(
            "python module of the system's drill plugin (its faultlab_* hooks); looked up on the "
            "python path, then in this stack file's folder"
        ),
    )
    allow_hosts: list[Host] = Field(
        default_factory=list, description="hosts besides loopback that load and faults may reach"
    )

    _declaration: Declaration | None = PrivateAttr(None)

    @property
    def declaration(self) -> Declaration:
        """The plugin's declaration, checked by the loader (an empty one without a plugin)."""
        return self._declaration or Declaration()

    def target_type(self, name: str) -> str | None:
        """What ``name`` is as a fault target: link, service, postgres, job, or None."""
        if name in self.services:
            return self.services[name].target_type
        if name in self.links:
            return "link"
        if name in self.jobs:
            return "job"
        return None

    def check(self) -> list[Finding]:
        """Problems a valid shape can still have, as ``(yaml path, message)`` pairs.

        Names used by links, the monitor and ``${...}`` interpolations must exist; a name
        may not be both a service and a link or job (a fault target must be unambiguous).
        """
        return [*self._name_clashes(), *self._link_problems(), *self._monitor_problems(),
                *self._monitoring_problems(), *self._texts_problems()]

    def _name_clashes(self) -> list[Finding]:
        found: list[Finding] = []
        for name in self.links:
            if name in self.services:
                found.append((("links", name), f"{name!r} is both a service and a link; rename one"))
        for name in self.jobs:
            if name in self.services or name in self.links:
                found.append((("jobs", name), f"{name!r} is also a service or link; rename one"))
        return found

    def _link_problems(self) -> list[Finding]:
        found: list[Finding] = []
        for name, link in self.links.items():
            if link.from_ not in self.services and link.from_ not in self.jobs:
                known = [*self.services, *self.jobs]
                message = unknown_name_message("service or job", link.from_, known)
                found.append((("links", name, "from"), message))
            if link.to not in self.services:
                message = unknown_name_message("service", link.to, self.services)
                found.append((("links", name, "to"), message))
            elif not self.services[link.to].has_port:
                message = f"service {link.to!r} has no `port`, so nothing can connect to it"
                found.append((("links", name, "to"), message))
            if link.from_ == link.to:
                found.append((("links", name), "a link joins two different services, not one to itself"))
        return found

    def _monitor_problems(self) -> list[Finding]:
        if self.monitor is None:
            return []
        found: list[Finding] = []
        if self.monitor.service not in self.services:
            found.append((("monitor", "service"), unknown_name_message("service", self.monitor.service, self.services)))
        for name in self.monitor.scrape:
            if name not in self.services:
                found.append((("monitor", "scrape", name), unknown_name_message("service", name, self.services)))
            elif self.services[name].port is None:
                found.append((("monitor", "scrape", name), f"service {name!r} has no `port` to scrape"))
        return found

    def _monitoring_problems(self) -> list[Finding]:
        if self.monitoring is None:
            return []
        found: list[Finding] = []
        for name in self.monitoring.scrape:
            if name not in self.services:
                message = unknown_name_message("service", name, self.services)
                found.append((("monitoring", "scrape", name), message))
            elif not self.services[name].has_port or self.services[name].postgres is not None:
                message = f"service {name!r} serves no metrics Prometheus could scrape: it has no `port`"
                if self.services[name].postgres is not None:
                    message = f"{name!r} is a built-in PostgreSQL service, which serves no Prometheus metrics"
                found.append((("monitoring", "scrape", name), message))
        return found

    def _texts_problems(self) -> list[Finding]:
        """The ``${...}`` in every command argument and environment value."""
        found: list[Finding] = []
        owners: list[tuple[str, str, Service | Job]] = [
            *(("services", name, service) for name, service in self.services.items()),
            *(("jobs", name, job) for name, job in self.jobs.items()),
        ]
        for section, name, owner in owners:
            has_port = isinstance(owner, Service) and owner.has_port
            job_window = owner.window is not None if isinstance(owner, Job) else None
            texts: list[Finding] = [((section, name, "command", i), arg) for i, arg in enumerate(owner.command or [])]
            texts += [((section, name, "env", key), value) for key, value in owner.env.items()]
            for path, text in texts:
                found.extend((path, message) for message in self._interpolation_problems(text, has_port, job_window))
        return found

    def _interpolation_problems(self, text: str, has_port: bool, job_window: bool | None = None) -> list[str]:
        """``job_window`` is None outside a job, else whether the job has a ``window``."""
        problems = []
        for match in _DOLLARS.finditer(text):
            if match["bare"] is not None:
                problems.append(_bare_dollar_message(match["bare"]))
            elif match["open"] is not None:
                problems.append(f"{match['open']!r} has no closing '}}': write {match['open']}}}")
            elif match["ref"] is not None:
                problems.extend(self._reference_problems(match["ref"], has_port, job_window))
        return problems

    def _reference_problems(self, ref: str, has_port: bool, job_window: bool | None) -> list[str]:
        kind, _, name = ref.partition(".")
        if ref == "port":
            return [] if has_port else ["${port} is used but this has no `port`"]
        if ref in ("run_dir", "stack_dir", "host"):
            return []
        if ref == "window":
            if job_window is None:
                return ["${window} is a job's window, and this is not a job"]
            return [] if job_window else ["${window} is used but this job has no `window`"]
        if kind == "link" and name:
            if name not in self.links:
                return [f"in ${{{ref}}}: {unknown_name_message('link', name, self.links)}"]
            return []
        if kind == "service" and name:
            if name not in self.services:
                return [f"in ${{{ref}}}: {unknown_name_message('service', name, self.services)}"]
            if not self.services[name].has_port:
                return [f"in ${{{ref}}}: service {name!r} has no `port`"]
            return []
        return [
            f"unknown interpolation ${{{ref}}}; use ${{port}}, ${{host}}, ${{link.NAME}}, "
            "${service.NAME}, ${run_dir}, ${stack_dir} or (in a job) ${window} (write $$ for a literal $)"
        ]


_DOLLARS = re.compile(
    r"\$\$|\$\{(?P<ref>[^}]*)\}|(?P<open>\$\{[^}]*)$|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_][A-Za-z0-9_-]*)?)"
)
"""Every ``$`` that means something: ``$$``, ``${ref}``, an unclosed ``${...``, or ``$name``
(almost surely a slip for ``${name}``)."""


def _bare_dollar_message(name: str) -> str:
    kind = name.partition(".")[0]
    if name in ("port", "host", "run_dir", "stack_dir", "window") or (kind in ("link", "service") and "." in name):
        return f"'${name}' is not interpolated: write ${{{name}}} (or $$ for a literal $)"
    return (
        f"'${name}' is not interpolated: faultlab knows ${{port}}, ${{host}}, ${{link.NAME}}, ${{service.NAME}}, "
        f"${{run_dir}}, ${{stack_dir}} and ${{window}}; write $${name} for a literal ${name}"
    )
