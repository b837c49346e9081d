"""Supervised service processes with docker-like restart policies.

Each service runs in its own session and process group (``start_new_session``), so a
signal reaches the service and every child it started. Output (stdout and stderr) goes to
``<run_dir>/services/<name>.log``. When the process exits, the supervisor restarts it as
its policy says (``no``, ``on-failure``, ``always``, ``unless-stopped``) with docker's
backoff: 100 ms doubling up to a ceiling, reset once a start has stayed up for a while.
A ``kill`` is a crash as far as the policy is concerned; ``stop`` is the operator's and is
never followed by a restart. A spec with ``restart_before_ready=False`` is not restarted
when its process exits before :meth:`Service.mark_ready`: a service that cannot start
fails its start-up at the first exit instead of running a crash loop. A paused
(SIGSTOPped) group is always continued before it is terminated.

Every change is published as a ``service`` event (``kind=..., service=..., **details``) to
the supervisor's :class:`~faultlab.hub.Hub`, whose observers are called with keyword
arguments only; an observer's exception is logged.
"""

from __future__ import annotations

import enum
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from faultlab.errors import ServiceFailed
from faultlab.hub import Hub, Observer

__all__ = ["RestartPolicy", "ServiceSpec", "Service", "Supervisor", "kill_process_group", "group_members"]

log = logging.getLogger(__name__)


class RestartPolicy(enum.StrEnum):
    """Docker's restart policies. ``unless-stopped`` behaves as ``always`` within one run."""

    NO = "no"
    ON_FAILURE = "on-failure"
    ALWAYS = "always"
    UNLESS_STOPPED = "unless-stopped"

    def wants_restart(self, exit_code: int) -> bool:
        """Whether a process that exited with ``exit_code`` (negative: signal) is restarted."""
        if self is RestartPolicy.NO:
            return False
        if self is RestartPolicy.ON_FAILURE:
            return exit_code != 0
        return True


@dataclass(frozen=True)
class ServiceSpec:
    """How to run one service. ``max_restarts`` (None = unlimited) bounds restarts;
    ``restart_before_ready=False`` holds the policy back until :meth:`Service.mark_ready`."""

    name: str
    command: Sequence[str]
    env: Mapping[str, str] | None = None
    cwd: str | os.PathLike[str] | None = None
    restart: RestartPolicy | str = RestartPolicy.NO
    max_restarts: int | None = None
    restart_before_ready: bool = True
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 10.0
    backoff_reset_after_s: float = 10.0
    stop_signal: int = signal.SIGTERM
    stop_grace_s: float = 5.0
    inherit_env: bool = True
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def policy(self) -> RestartPolicy:
        """The restart policy as an enum."""
        return RestartPolicy(self.restart)


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    members = []
    for proc in psutil.process_iter(["status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE or os.getpgid(proc.pid) != pgid:
                continue
        except (ProcessLookupError, psutil.Error):
            continue
        members.append(proc.pid)
    return members


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # zombies keep the group "existing" until their (possibly non-reaping) parent waits
    return bool(group_members(pgid))


def kill_process_group(pgid: int, *, grace_s: float = 5.0, sig: int = signal.SIGTERM) -> bool:
    """Signal a whole group (continuing it first, in case it is stopped), then SIGKILL
    whatever is left after ``grace_s``. True when the group is gone."""
    for s in (sig, signal.SIGCONT):
        try:
            os.killpg(pgid, s)
        except ProcessLookupError:
            return True
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if not _group_alive(pgid):
            return True
        time.sleep(0.02)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        if not _group_alive(pgid):
            return True
        time.sleep(0.01)
    return not _group_alive(pgid)


class Service:
    """A supervised service: its current process, state, restarts and log.

    ``state`` is one of ``starting``, ``running``, ``paused``, ``backoff``, ``exited``
    (will not be restarted), ``stopped`` (by :meth:`stop`).
    """

    def __init__(
        self,
        spec: ServiceSpec,
        log_path: Path,
        notify: Callable[..., None],
        env_label: Mapping[str, str],
        ledger: Any = None,
    ):
        self.spec = spec
        self._ledger = ledger
        self._ledger_entry: str | None = None
        self._paused_entry: str | None = None
        self.name = spec.name
        self.log_path = log_path
        self._notify = notify
        self._env_label = dict(env_label)
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._stopping = False
        self._state = "starting"
        self.restart_count = 0
        self.exit_codes: list[int] = []
        self.start_time: float | None = None
        self._started_mono = 0.0
        self._consecutive_failures = 0
        self._ready = False
        self._monitor: threading.Thread | None = None
        self._started = threading.Event()

    def __repr__(self) -> str:
        return f"<Service {self.name} {self.state} pid={self.pid} restarts={self.restart_count}>"

    @property
    def state(self) -> str:
        """The service's current state."""
        return self._state

    @property
    def pid(self) -> int | None:
        """The current process id (also its process group id), None when not running."""
        proc = self._proc
        return proc.pid if proc is not None and proc.returncode is None else None

    @property
    def pgid(self) -> int | None:
        """The process group id of the current process."""
        return self.pid

    @property
    def exit_code(self) -> int | None:
        """The last exit code (negative: killed by that signal), None if never exited."""
        return self.exit_codes[-1] if self.exit_codes else None

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = dict(os.environ) if self.spec.inherit_env else {}
        env.update(self.spec.env or {})
        env.update(self._env_label)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self._ledger is not None and self._ledger_entry is None:
            self._ledger_entry = self._ledger.process_group(self.name)
        with open(self.log_path, "ab") as out:
            out.write(f"--- faultlab: starting {self.name} (start #{self.restart_count + 1}) ---\n".encode())
            out.flush()
            try:
                proc = subprocess.Popen(
                    list(self.spec.command),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    cwd=self.spec.cwd,
                    start_new_session=True,
                    close_fds=True,
                )
            except OSError as exc:
                raise ServiceFailed(f"{self.name}: could not start {list(self.spec.command)!r}: {exc}") from exc
        try:
            self.start_time = psutil.Process(proc.pid).create_time()
        except psutil.Error:
            self.start_time = None
        self._proc = proc
        if self._ledger is not None and self._ledger_entry is not None:
            self._ledger.update(self._ledger_entry, pgid=proc.pid, start_time=self.start_time)
        self._started_mono = time.monotonic()
        self._state = "running"
        return proc

    def _start(self, kind: str = "started", **details: Any) -> None:
        with self._lock:
            proc = self._spawn()
        self._notify(kind=kind, service=self.name, pid=proc.pid, restart_count=self.restart_count,
                     start_time=self.start_time, **details)
        self._monitor = threading.Thread(target=self._supervise, name=f"faultlab-supervise-{self.name}", daemon=True)
        self._monitor.start()

    def _supervise(self) -> None:
        while True:
            proc = self._proc
            assert proc is not None
            code = proc.wait()
            ran_s = time.monotonic() - self._started_mono
            if not self._stopping:
                # leftovers of the group (children of the service) must not outlive it
                kill_process_group(proc.pid, grace_s=0.0, sig=signal.SIGKILL)
            with self._lock:
                self.exit_codes.append(code)
                stopping = self._stopping
                before_ready = not self._ready and not self.spec.restart_before_ready
                if before_ready and not stopping:
                    self._state = "exited"
            self._notify(kind="exited", service=self.name, pid=proc.pid, exit_code=code, ran_s=ran_s,
                         by_operator=stopping)
            if stopping:
                return
            if before_ready:
                self._notify(kind="gave_up", service=self.name, restart_count=self.restart_count, exit_code=code,
                             reason="exited before it became ready")
                return
            policy = self.spec.policy
            if not policy.wants_restart(code):
                self._state = "exited"
                return
            if self.spec.max_restarts is not None and self.restart_count >= self.spec.max_restarts:
                self._state = "exited"
                self._notify(kind="gave_up", service=self.name, restart_count=self.restart_count, exit_code=code)
                return
            if ran_s >= self.spec.backoff_reset_after_s:
                self._consecutive_failures = 0
            delay = min(self.spec.backoff_initial_s * (2 ** self._consecutive_failures), self.spec.backoff_max_s)
            self._consecutive_failures += 1
            self._state = "backoff"
            self._notify(kind="restarting", service=self.name, delay_s=delay, exit_code=code,
                         restart_count=self.restart_count + 1)
            if self._wake.wait(delay) and self._stopping:
                self._state = "stopped"
                return
            self._wake.clear()
            with self._lock:
                if self._stopping:
                    self._state = "stopped"
                    return
                self.restart_count += 1
                try:
                    spawned = self._spawn()
                except ServiceFailed as exc:
                    self._state = "exited"
                    self._notify(kind="failed", service=self.name, error=str(exc))
                    return
            self._notify(kind="restarted", service=self.name, pid=spawned.pid, restart_count=self.restart_count,
                         start_time=self.start_time)

    def mark_ready(self) -> bool:
        """Say the service came up: from now on its restart policy applies in full.

        False when the process had already exited before it was marked ready (a spec with
        ``restart_before_ready=False`` then stays ``exited``)."""
        with self._lock:
            self._ready = True
            return self._state != "exited"

    def _signal_group(self, sig: int) -> int:
        with self._lock:
            pid = self.pid
            if pid is None:
                raise ServiceFailed(f"{self.name} is not running (state {self.state})")
            os.killpg(pid, sig)
            return pid

    def kill(self, sig: int = signal.SIGKILL) -> int:
        """Send ``sig`` to the whole group as a crash would; the restart policy then applies.

        A paused group is continued too, so the signal takes effect. Returns the pid hit.
        """
        pid = self._signal_group(sig)
        if self._state == "paused":
            os.killpg(pid, signal.SIGCONT)
            self._state = "running"
            self._forget_paused()
        self._notify(kind="killed", service=self.name, pid=pid, signal=signal.Signals(sig).name)
        return pid

    def pause(self) -> int:
        """SIGSTOP the whole group (freeze) and wait (up to 1 s) until the kernel shows the
        leader stopped, so the caller can journal when the freeze took effect; :meth:`resume`
        continues it."""
        with self._lock:
            pid = self.pid
            if pid is None:
                raise ServiceFailed(f"{self.name} is not running (state {self.state})")
            if self._ledger is not None and self._paused_entry is None:
                self._paused_entry = self._ledger.stopped_process(pid, self.start_time, group=True)
            os.killpg(pid, signal.SIGSTOP)
        self._state = "paused"
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            try:
                if psutil.Process(pid).status() in (psutil.STATUS_STOPPED, psutil.STATUS_TRACING_STOP):
                    break
            except psutil.Error:
                break
            time.sleep(0.001)
        self._notify(kind="paused", service=self.name, pid=pid)
        return pid

    def resume(self) -> int | None:
        """SIGCONT the whole group; harmless when it is not paused or not running."""
        try:
            pid = self._signal_group(signal.SIGCONT)
        except (ServiceFailed, ProcessLookupError):
            return None
        self._forget_paused()
        was_paused = self._state == "paused"
        if was_paused:
            self._state = "running"
            self._notify(kind="resumed", service=self.name, pid=pid)
        return pid

    def _forget_paused(self) -> None:
        with self._lock:
            if self._ledger is not None and self._paused_entry is not None:
                self._ledger.forget(self._paused_entry)
                self._paused_entry = None

    def restart(self, *, grace_s: float | None = None, sig: int | None = None) -> None:
        """Stop the current process (``sig``, default the spec's stop signal, then SIGKILL
        after ``grace_s``) and start a fresh one, whatever the policy."""
        self.stop(grace_s=grace_s, sig=sig)
        with self._lock:
            self._stopping = False
            self._wake.clear()
            self.restart_count += 1
        self._start("restarted", by_operator=True)

    def stop(self, *, grace_s: float | None = None, sig: int | None = None) -> int | None:
        """Stop for good: ``sig`` (default the spec's stop signal, SIGTERM) to the continued
        group, SIGKILL after ``grace_s``; no restart follows. Idempotent. Returns the last
        exit code."""
        with self._lock:
            self._stopping = True
            self._wake.set()
            proc = self._proc
        grace = self.spec.stop_grace_s if grace_s is None else grace_s
        if proc is not None and proc.poll() is None:
            kill_process_group(proc.pid, grace_s=grace, sig=self.spec.stop_signal if sig is None else sig)
            try:
                proc.wait(timeout=max(grace, 0) + 5.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._monitor is not None and self._monitor is not threading.current_thread():
            self._monitor.join(timeout=10.0)
        self._forget_paused()
        if self._ledger is not None and self._ledger_entry is not None:
            self._ledger.forget(self._ledger_entry)
            self._ledger_entry = None
        if self._state != "stopped":
            self._state = "stopped"
            self._notify(kind="stopped", service=self.name, exit_code=self.exit_code)
        return self.exit_code

    def wait_exited(self, timeout: float) -> int | None:
        """Wait until the current process exits; its exit code, or None on timeout."""
        proc = self._proc
        if proc is None:
            return self.exit_code
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def log_tail(self, lines: int = 40) -> str:
        """The last ``lines`` lines of the service's log (evidence for errors)."""
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(0, os.SEEK_END)
                size = fh.tell()
                fh.seek(max(0, size - 64 * 1024))
                data = fh.read()
        except OSError:
            return ""
        return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


class Supervisor:
    """Starts and supervises the services of one run; a context manager that stops them all.

    ``run_id`` labels every process (environment variable ``FAULTLAB_RUN_ID``) so
    ``faultlab cleanup`` can find them after the harness is killed. With a ``ledger``
    (:class:`faultlab.runtime.ledger.Ledger`) each service's process group is recorded
    before it is spawned and forgotten once stopped. ``observers`` (a
    :class:`~faultlab.hub.Hub` or plain callables) see every ``service`` event, such as
    ``started``/``restarted`` with ``pid`` and ``start_time``.
    """

    def __init__(
        self,
        run_dir: str | os.PathLike[str],
        *,
        run_id: str = "",
        ledger: Any = None,
        observers: Hub | Iterable[Observer] = (),
    ):
        self.run_dir = Path(run_dir)
        self.ledger = ledger
        self.run_id = run_id or (ledger.run_id if ledger is not None else "")
        self.services: dict[str, Service] = {}
        self.hub = Hub.of(observers)

    def subscribe(self, observer: Observer) -> None:
        """Add an observer, called as ``observer(event="service", kind=..., service=..., **details)``."""
        self.hub.subscribe(observer, events=["service"])

    def _notify(self, **kwargs: Any) -> None:
        self.hub.publish("service", **kwargs)

    def start(self, spec: ServiceSpec) -> Service:
        """Start a service (its first process) and supervise it from now on."""
        if spec.name in self.services and self.services[spec.name].state not in ("stopped", "exited"):
            raise ServiceFailed(f"service {spec.name!r} is already running")
        label = {"FAULTLAB_RUN_ID": self.run_id, "FAULTLAB_SERVICE": spec.name} if self.run_id else {}
        service = Service(spec, self.run_dir / "services" / f"{spec.name}.log", self._notify, label, self.ledger)
        service._start()
        self.services[spec.name] = service
        return service

    def start_process(self, spec: ServiceSpec) -> Service:
        """Same as :meth:`start` (so a supervisor can stand where a stack starts processes)."""
        return self.start(spec)

    def __getitem__(self, name: str) -> Service:
        return self.services[name]

    def stop_all(self, *, grace_s: float | None = None) -> None:
        """Stop every service, in reverse start order (continuing paused ones first)."""
        errors = []
        for service in reversed(list(self.services.values())):
            try:
                service.stop(grace_s=grace_s)
            except Exception as exc:
                errors.append(f"{service.name}: {exc}")
        if errors:
            raise ServiceFailed("could not stop every service: " + "; ".join(errors))

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_all()
