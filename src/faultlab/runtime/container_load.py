"""Locust's distributed mode in containers: the load of a scenario with ``load.workers`` on
the docker runtime.

:class:`ContainerLoadDriver` is a :class:`~faultlab.engine.load.LoadDriver` (load faults
change its users through locust's web API as usual) whose master and workers run in
containers of the stack image on the run's network, so the load can come from wherever the
engine is, and more workers add more machines' worth of load when the engine is remote:

- the locustfile's folder (its ``*.py``) and faultlab's request recorder are copied into
  each container (``/faultlab/load``): nothing of this machine's file system is mounted;
- the workers send their requests to the service's own address on the run's network (the
  load host, given as the harness reaches it, is translated: ``http://gateway:8000``);
- the master's web API is published on the engine's host for the harness;
- every worker appends its requests to ``requests.jsonl`` in the run's volume (single
  ``O_APPEND`` writes); when the load stops, the file is copied out into the run directory;
- request times are on the run's clock: an engine on this machine shares its monotonic
  clock (the same kernel ``boot_id``); for a remote engine the clock's offset is measured
  once through the proxy's container, to within the time an ``exec`` takes (tens of ms).
"""

from __future__ import annotations

import contextlib
import io
import tarfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faultlab.engine.load import RECORDER_PATH, LoadDriver, LoadSpec
from faultlab.errors import ServiceFailed
from faultlab.runtime.images import RUN_DIR

if TYPE_CHECKING:
    from faultlab.runtime.containers import ContainerService, DockerStack

__all__ = ["ContainerLoadDriver", "MASTER", "LOAD_DIR"]

MASTER = "faultlab-locust-master"
LOAD_DIR = "/faultlab/load"
WEB_PORT = 8089
MASTER_PORT = 5557
REQUESTS = f"{RUN_DIR}/requests.jsonl"
BOOT_ID = "/proc/sys/kernel/random/boot_id"


class ContainerLoadDriver(LoadDriver):
    """A locust master and ``spec.workers`` workers in containers of a docker stack."""

    def __init__(self, spec: LoadSpec, *, stack: DockerStack, origin: float):
        super().__init__(spec, run_dir=stack.run_dir, origin=origin, processes=stack)
        self.stack = stack
        self.clock_offset_s: float | None = None
        self.master_container: Any = None
        self._collected = False

    @property
    def api(self) -> str:
        """Base URL of the master's published web API."""
        if self.web_port is None:
            raise RuntimeError("load is not started")
        return f"http://{self.stack.engine_address}:{self.web_port}"

    def _files(self) -> dict[str, bytes]:
        locustfile = Path(self.spec.locustfile).resolve()
        if not locustfile.is_file():
            raise ServiceFailed(f"locustfile {locustfile} not found")
        files = {f"{LOAD_DIR}/{p.name}": p.read_bytes() for p in sorted(locustfile.parent.glob("*.py"))}
        files[f"{LOAD_DIR}/faultlab_recorder.py"] = RECORDER_PATH.read_bytes()
        return files

    def engine_clock_offset(self) -> float:
        """The engine's monotonic clock minus this machine's (0 on this machine's kernel)."""
        proxy = self.stack.proxy
        assert proxy is not None
        theirs = bytes(proxy.container.exec_run(["cat", BOOT_ID]).output or b"").strip()
        with contextlib.suppress(OSError):
            if theirs and theirs == Path(BOOT_ID).read_bytes().strip():
                return 0.0
        before = time.monotonic()
        output = proxy.container.exec_run(["python", "-c", "import time; print(time.monotonic())"]).output
        after = time.monotonic()
        return float(bytes(output).strip()) - (before + after) / 2

    def start(self, *, timeout_s: float = 30.0) -> None:
        """Start the master and the workers in containers and wait until locust swarms."""
        from faultlab.runtime.containers import ContainerService

        if self.master is not None:
            raise RuntimeError("load was already started")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.requests_file.touch()
        files = self._files()
        self.clock_offset_s = self.engine_clock_offset()
        env = {
            **self.spec.env,
            "FAULTLAB_REQUESTS_FILE": REQUESTS,
            "FAULTLAB_ORIGIN_MONOTONIC": repr(self.origin + self.clock_offset_s),
            "FAULTLAB_ACK_FIELD": self.spec.ack_field or "",
            "PYTHONPATH": LOAD_DIR,
        }
        base = ["python", "-m", "locust", "-f", f"{LOAD_DIR}/{Path(self.spec.locustfile).name},"
                                                f"{LOAD_DIR}/faultlab_recorder.py"]
        (self.web_port,) = self.stack._fresh_ports(1)
        master_args = [
            "--host", self.stack.inside_url(self.spec.host), "--users", str(self.spec.users),
            "--spawn-rate", str(self.spec.spawn_rate), "--autostart", "--autoquit", "0",
            "--web-host", "0.0.0.0", "--web-port", str(WEB_PORT), "--exit-code-on-error", "0",
            "--master", "--master-bind-host", "0.0.0.0", "--master-bind-port", str(MASTER_PORT),
            "--expect-workers", str(self.spec.workers),
        ]
        if self.spec.run_time_s is not None:
            master_args += ["--run-time", f"{max(1, round(self.spec.run_time_s))}s"]
        container = self.stack.create(MASTER, role="load", command=[*base, *master_args, *self.spec.extra_args,
                                                                    *self.spec.user_classes],
                                      env=env, ports={WEB_PORT: self.web_port}, files=files)
        self.web_port = _host_port(container, WEB_PORT)
        self.master_container = container
        self.master = self._track(ContainerService(self.stack, MASTER, container, role="load", stop_grace_s=10.0))
        for n in range(self.spec.workers):
            name = f"faultlab-locust-worker-{n + 1}"
            worker = self.stack.create(name, role="load", env=env, files=files, command=[
                *base, "--worker", "--master-host", MASTER, "--master-port", str(MASTER_PORT),
                *self.spec.extra_args, *self.spec.user_classes])
            self.workers.append(self._track(ContainerService(self.stack, name, worker, role="load",
                                                             stop_grace_s=10.0)))
        try:
            self.wait_swarming(timeout_s=timeout_s)
        except Exception:
            self.stop()
            raise

    def _track(self, process: ContainerService) -> ContainerService:
        self.stack.processes.append(process)
        return process

    def stop(self, *, grace_s: float = 10.0) -> None:
        """Stop the master (it tells the workers to quit), then the workers, then copy the
        requests they recorded into the run directory. Idempotent."""
        super().stop(grace_s=grace_s)
        if self.master_container is not None and not self._collected:
            self._collected = True
            self._collect()

    def _collect(self) -> None:
        stream, _ = self.master_container.get_archive(REQUESTS)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = tar.extractfile(Path(REQUESTS).name)
            data = member.read() if member is not None else b""
        with open(self.requests_file, "ab") as out:
            out.write(data)


def _host_port(container: Any, port: int) -> int:
    container.reload()
    bindings = container.attrs["HostConfig"]["PortBindings"][f"{port}/tcp"]
    return int(bindings[0]["HostPort"])
