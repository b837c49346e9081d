"""The load driver: locust in its own processes, recording every request.

Locust runs as a separate process (never imported here: it monkey-patches the standard
library) with the user's locustfile plus faultlab's recorder plugin
(:mod:`faultlab.engine.locust_recorder`, loaded with ``-f locustfile,recorder``), which
appends every request to ``<run_dir>/requests.jsonl`` with times on the run's origin.

It starts like a headless run (``--autostart --autoquit 0`` with the run time, users and
spawn rate given) but keeps locust's web API on a free port of 127.0.0.1, so the number of
users can be changed mid-run (load spikes) through locust's own ``POST /swarm``. With
``workers > 0`` it runs locust's distributed mode: one ``--master`` and that many
``--worker`` processes on 127.0.0.1. Each process is started through the stack's runtime
(:meth:`faultlab.runtime.base.StackHandle.start_process`: supervised, labelled with the run,
logs in ``<run_dir>/services/``), stopped with SIGTERM then SIGKILL.

Locustfiles with a ``LoadTestShape`` drive the user count themselves; ``set_users`` then
restarts the shape (locust's behaviour), so load spikes should not be combined with a shape.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faultlab.errors import ServiceFailed
from faultlab.hub import Hub, Observer
from faultlab.runtime.base import ProcessStarter, ServiceControl
from faultlab.runtime.ports import free_ports
from faultlab.runtime.supervisor import ServiceSpec, Supervisor
from faultlab.runtime.waits import CallableWait, Deadline, Observation, wait_for

__all__ = ["LoadSpec", "LoadDriver", "RECORDER_PATH"]

RECORDER_PATH = Path(__file__).with_name("locust_recorder.py")
"""The recorder plugin, passed to locust next to the locustfile."""


@dataclass(frozen=True)
class LoadSpec:
    """What load to drive: locustfile, target host, users, spawn rate, run time, workers.

    ``run_time_s`` None runs until :meth:`LoadDriver.stop`. ``user_classes`` picks classes
    of the locustfile by name (all by default); ``ack_field`` is the JSON field holding the
    acknowledged id in successful responses (the stack plugin's declaration says which;
    None: only what the locustfile passes as ``context={"ack": ...}``).
    """

    locustfile: str | os.PathLike[str]
    host: str
    users: int
    spawn_rate: float
    run_time_s: float | None = None
    workers: int = 0
    user_classes: Sequence[str] = ()
    ack_field: str | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    extra_args: Sequence[str] = ()


class LoadDriver:
    """Runs one :class:`LoadSpec` with locust; a context manager that stops it.

    ``origin`` is the run's origin on ``time.monotonic()`` (CLOCK_MONOTONIC), so request
    times agree with the journal's. ``processes`` starts the locust processes: the running
    stack (:class:`~faultlab.runtime.base.StackHandle`), so its runtime and ledger own them;
    by default the driver makes its own supervisor (whose ``service`` events go to
    ``observers``).
    """

    def __init__(
        self,
        spec: LoadSpec,
        *,
        run_dir: str | os.PathLike[str],
        origin: float,
        processes: ProcessStarter | None = None,
        python: str = sys.executable,
        observers: Hub | Iterable[Observer] = (),
    ):
        if spec.workers < 0:
            raise ValueError("workers must be 0 (one local process) or more")
        self.spec = spec
        self.run_dir = Path(run_dir)
        self.origin = origin
        self.python = python
        self.processes: ProcessStarter = processes or Supervisor(self.run_dir, observers=observers)
        self.requests_file = self.run_dir / "requests.jsonl"
        self.web_port: int | None = None
        self.master_port: int | None = None
        self.master: ServiceControl | None = None
        self.workers: list[ServiceControl] = []

    @property
    def api(self) -> str:
        """Base URL of locust's web API (on the master)."""
        if self.web_port is None:
            raise RuntimeError("load is not started")
        return f"http://127.0.0.1:{self.web_port}"

    def _env(self) -> dict[str, str]:
        import faultlab

        src = str(Path(faultlab.__file__).resolve().parent.parent)
        path = os.environ.get("PYTHONPATH", "")
        return {
            **self.spec.env,
            "FAULTLAB_REQUESTS_FILE": str(self.requests_file),
            "FAULTLAB_ORIGIN_MONOTONIC": repr(self.origin),
            "FAULTLAB_ACK_FIELD": self.spec.ack_field or "",
            "PYTHONPATH": src + (os.pathsep + path if path else ""),
            "PYTHONUNBUFFERED": "1",
        }

    def _base_command(self) -> list[str]:
        locustfile = Path(self.spec.locustfile).resolve()
        if not locustfile.is_file():
            raise ServiceFailed(f"locustfile {locustfile} not found")
        return [self.python, "-m", "locust", "-f", f"{locustfile},{RECORDER_PATH}"]

    def start(self, *, timeout_s: float = 30.0) -> None:
        """Start locust (master and workers when distributed) and wait until it is swarming
        (:meth:`wait_users` waits for the initial users when that matters)."""
        if self.master is not None:
            raise RuntimeError("load was already started")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.requests_file.touch()
        self.web_port, self.master_port = free_ports(2)
        base = self._base_command()
        env = self._env()
        master_args = [
            "--host", self.spec.host,
            "--users", str(self.spec.users),
            "--spawn-rate", str(self.spec.spawn_rate),
            "--autostart", "--autoquit", "0",
            "--web-host", "127.0.0.1", "--web-port", str(self.web_port),
            "--exit-code-on-error", "0",
        ]
        if self.spec.run_time_s is not None:
            master_args += ["--run-time", f"{max(1, round(self.spec.run_time_s))}s"]
        if self.spec.workers:
            master_args += ["--master", "--master-bind-host", "127.0.0.1",
                            "--master-bind-port", str(self.master_port),
                            "--expect-workers", str(self.spec.workers)]
        name = "locust-master" if self.spec.workers else "locust"
        self.master = self.processes.start_process(ServiceSpec(
            name, [*base, *master_args, *self.spec.extra_args, *self.spec.user_classes],
            env=env, restart="no", stop_signal=signal.SIGTERM, stop_grace_s=10.0,
        ))
        for n in range(self.spec.workers):
            self.workers.append(self.processes.start_process(ServiceSpec(
                f"locust-worker-{n + 1}",
                [*base, "--worker", "--master-host", "127.0.0.1", "--master-port", str(self.master_port),
                 *self.spec.extra_args, *self.spec.user_classes],
                env=env, restart="no", stop_signal=signal.SIGTERM, stop_grace_s=10.0,
            )))
        try:
            self.wait_swarming(timeout_s=timeout_s)
        except Exception:
            self.stop()
            raise

    def stats(self, *, timeout_s: float = 2.0) -> dict[str, Any]:
        """Locust's live numbers (``state``, ``user_count``, ``total_rps``, ``workers``...)."""
        import httpx  # pulls in rich: not at import time

        response = httpx.get(f"{self.api}/stats/requests", timeout=timeout_s)
        response.raise_for_status()
        return response.json()

    def _give_up(self) -> str | None:
        for service in [self.master, *self.workers]:
            if service is not None and service.state in ("exited", "stopped"):
                return f"{service.name} exited with {service.exit_code}"
        return None

    def _wait(self, description: str, accept: Callable[[dict[str, Any]], bool], timeout_s: float) -> Observation:
        def check() -> Observation:
            data = self.stats(timeout_s=1.0)
            return Observation(accept(data), f"state {data.get('state')}, {data.get('user_count')} users")

        return wait_for(CallableWait(check, description), Deadline(timeout_s), poll_s=0.1, give_up=self._give_up,
                        evidence=lambda: self.master.log_tail() if self.master else "")

    def wait_swarming(self, *, timeout_s: float = 30.0) -> Observation:
        """Wait until locust is spawning or running users (workers connected, if any)."""
        return self._wait("locust swarming", lambda d: d.get("state") in ("spawning", "running"), timeout_s)

    def wait_users(self, users: int, *, timeout_s: float = 30.0) -> Observation:
        """Wait until locust reports exactly ``users`` users."""
        return self._wait(
            f"locust at {users} users",
            lambda d: d.get("user_count") == users and d.get("state") in ("spawning", "running"),
            timeout_s,
        )

    def set_users(self, users: int, spawn_rate: float | None = None, *, wait_s: float | None = None) -> None:
        """Change the number of users now (``POST /swarm``); optionally wait until reached."""
        import httpx

        rate = spawn_rate if spawn_rate is not None else self.spec.spawn_rate
        try:
            response = httpx.post(f"{self.api}/swarm", data={"user_count": users, "spawn_rate": rate}, timeout=5.0)
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ServiceFailed(f"could not change locust to {users} users: {exc}",
                                evidence=self.master.log_tail() if self.master else "") from exc
        if not body.get("success", False):
            raise ServiceFailed(f"locust refused {users} users: {body.get('message')}")
        if wait_s:
            self.wait_users(users, timeout_s=wait_s)

    def wait(self, timeout_s: float | None = None) -> int | None:
        """Wait for locust to finish its run time; the master's exit code (None: still running)."""
        if self.master is None:
            return None
        code = self.master.wait_exited(timeout_s if timeout_s is not None else 1e9)
        return code

    def stop(self, *, grace_s: float = 10.0) -> None:
        """Stop the master first (it tells the workers to quit), then the workers. Idempotent."""
        for service in [self.master, *self.workers]:
            if service is not None:
                service.stop(grace_s=grace_s)

    def __enter__(self) -> LoadDriver:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
