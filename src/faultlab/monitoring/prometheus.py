"""A run's Prometheus and Alertmanager: found on the machine, started, waited for, torn down.

:func:`find_binaries` looks the two programs up before anything starts (Debian's
``prometheus`` and ``prometheus-alertmanager`` packages; ``FAULTLAB_PROMETHEUS`` and
``FAULTLAB_ALERTMANAGER`` name others): a stack asking for monitoring on a machine without
them is an :class:`~faultlab.errors.InfrastructureError` (exit code 3) naming the packages.

:func:`bring_up` starts, beside a running stack, faultlab's :class:`~.receiver.Receiver`,
then Alertmanager, then Prometheus, each a supervised process on 127.0.0.1 labelled with the
run (its process group in the clean-up ledger, its log in ``<run_dir>/monitoring/services/``);
their data lives in ``<tmp>/faultlab-monitoring-<run id>-<random>/``, in the ledger and
removed at teardown. Their configuration files and a copy of the rules file are kept in
``<run_dir>/monitoring/`` as evidence. It returns once Prometheus has loaded the rules,
found the Alertmanager and scraped every target, so an alert raised by the drill's first
fault can reach faultlab. Everything is stopped when the block ends, whatever happened.

:class:`PromqlProbe` evaluates a scenario's PromQL conditions against that Prometheus on
a thread of its own, journals each evaluation and keeps the latest for the abort rule.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from faultlab.errors import InfrastructureError
from faultlab.hub import Hub
from faultlab.journal import JournalWriter, PromqlSample
from faultlab.model.stack import Monitoring
from faultlab.monitoring.config import Addresses, alertmanager_config, prometheus_config
from faultlab.monitoring.receiver import Receiver

if TYPE_CHECKING:
    from faultlab.engine.clock import Clock
    from faultlab.runtime.base import StackHandle
    from faultlab.runtime.ledger import Ledger
    from faultlab.runtime.supervisor import Service, Supervisor

__all__ = ["PACKAGES", "Binaries", "find_binaries", "tool_versions", "RunMonitoring", "bring_up",
           "query_value", "PromqlCondition", "PromqlProbe", "START_TIMEOUT_S"]

PACKAGES = {"prometheus": "prometheus", "alertmanager": "prometheus-alertmanager"}
"""The Debian package of each program."""

_NAMES = {"prometheus": ("prometheus",), "alertmanager": ("prometheus-alertmanager", "alertmanager")}
_OVERRIDES = {"prometheus": "FAULTLAB_PROMETHEUS", "alertmanager": "FAULTLAB_ALERTMANAGER"}

START_TIMEOUT_S = 30.0
"""How long Prometheus and Alertmanager have to come up (Prometheus sends its discovered
targets at most every 5 s, so finding the Alertmanager alone can take that long)."""


@dataclass(frozen=True)
class Binaries:
    """Where the two programs are."""

    prometheus: str
    alertmanager: str


def find_binaries() -> Binaries:
    """The Prometheus and Alertmanager programs on ``PATH`` (or named by the environment).

    Raises :class:`InfrastructureError` naming the Debian packages to install when either
    is missing, before anything has started.
    """
    found: dict[str, str] = {}
    missing: list[str] = []
    for program, names in _NAMES.items():
        override = os.environ.get(_OVERRIDES[program])
        if override:
            path = shutil.which(override)
            if path is None:
                raise InfrastructureError(f"{_OVERRIDES[program]}={override} is not an executable program")
            found[program] = path
            continue
        path = next((p for p in map(shutil.which, names) if p is not None), None)
        if path is None:
            missing.append(program)
        else:
            found[program] = path
    if missing:
        programs = " and ".join(" or ".join(_NAMES[m]) for m in missing)
        packages = " ".join(PACKAGES[m] for m in missing)
        raise InfrastructureError(
            f"the stack asks for monitoring (Prometheus and Alertmanager), and {programs} is not on PATH: "
            f"install the Debian package(s) {packages} (apt-get install {packages}), "
            f"or name the program with {' / '.join(_OVERRIDES[m] for m in missing)}"
        )
    return Binaries(found["prometheus"], found["alertmanager"])


def tool_versions(binaries: Binaries) -> dict[str, str]:
    """``{"prometheus": "2.42.0+ds", "alertmanager": "0.25.0"}`` from ``--version`` (what
    cannot be read is left out)."""
    versions = {}
    for name, path in (("prometheus", binaries.prometheus), ("alertmanager", binaries.alertmanager)):
        try:
            out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            continue
        first = (out.stdout or out.stderr).strip().splitlines()[:1]
        words = first[0].split() if first else []
        if "version" in words and words.index("version") + 1 < len(words):
            versions[name] = words[words.index("version") + 1]
    return versions


def query_value(client: Any, prometheus_url: str, query: str, timeout_s: float = 2.0) -> tuple[float | None, str]:
    """The one number ``query`` gives now (an instant query), or None and why not: no
    series, several series, not a number, Prometheus' own error."""
    import httpx

    try:
        response = client.get(f"{prometheus_url}/api/v1/query", params={"query": query}, timeout=timeout_s)
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if body.get("status") != "success":
        return None, f"{body.get('errorType', 'error')}: {body.get('error', 'the query failed')}"
    data = body.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        raw = result[1] if isinstance(result, list) and len(result) == 2 else None
    elif kind == "vector" and isinstance(result, list):
        if not result:
            return None, "no data (the query gave no series)"
        if len(result) > 1:
            return None, f"the query gave {len(result)} series; aggregate them to one (sum, max...)"
        raw = (result[0].get("value") or [None, None])[1]
    else:
        return None, f"the query gave a {kind}, not a number"
    try:
        value = float(str(raw))
    except ValueError:
        return None, f"not a number: {raw!r}"
    if value != value or value in (float("inf"), float("-inf")):
        return None, f"not a finite number: {raw}"
    return value, ""


@dataclass
class RunMonitoring:
    """The monitoring of one run, once it is up: where Prometheus and Alertmanager listen,
    the receiver (with the alerts received so far) and the section of the stack file."""

    spec: Monitoring
    prometheus_url: str
    alertmanager_url: str
    receiver: Receiver
    binaries: Binaries
    folder: Path
    supervisor: Supervisor | None = None
    data_dir: Path | None = None
    ledger_entry: str | None = None
    versions: dict[str, str] = field(default_factory=dict)

    def query(self, client: Any, query: str) -> tuple[float | None, str]:
        """The number ``query`` gives now (see :func:`query_value`)."""
        return query_value(client, self.prometheus_url, query)


def _json(url: str, client: Any) -> Any:
    response = client.get(url, timeout=1.0)
    response.raise_for_status()
    return response.json().get("data")


def _alertmanager_found(url: str, client: Any) -> bool:
    data = _json(f"{url}/api/v1/alertmanagers", client) or {}
    return bool(data.get("activeAlertmanagers"))


def _targets_up(url: str, client: Any, jobs: Sequence[str]) -> Any:
    from faultlab.runtime.waits import Observation

    targets = (_json(f"{url}/api/v1/targets", client) or {}).get("activeTargets") or []
    health = {t.get("labels", {}).get("job"): t for t in targets}
    waiting = [job for job in jobs if health.get(job, {}).get("health") != "up"]
    if not waiting:
        return Observation(True, f"{len(jobs)} targets up")
    shown = []
    for job in waiting:
        target = health.get(job)
        if target is None:
            shown.append(f"{job}: not discovered yet")
        else:
            error = target.get("lastError") or "not scraped yet"
            shown.append(f"{job} ({target.get('scrapeUrl', '?')}): {target.get('health')}, {error}")
    return Observation(False, "; ".join(shown))


def _start(supervisor: Supervisor, name: str, command: list[str]) -> Service:
    from faultlab.runtime.supervisor import ServiceSpec

    return supervisor.start(ServiceSpec(name=name, command=command, restart="no", restart_before_ready=False,
                                        stop_grace_s=5.0))


def _wait(service: Service, what: str, strategy: Any, deadline: Any) -> None:
    from faultlab.runtime.waits import wait_for

    def exited() -> str | None:
        if service.state in ("exited", "stopped"):
            return f"{service.name} exited with code {service.exit_code}"
        return None

    wait_for(strategy, deadline, what=what, poll_s=0.05, evidence=service.log_tail, give_up=exited)


def _data_dir(run_id: str, ledger: Ledger | None) -> tuple[Path, str | None]:
    path = Path(tempfile.gettempdir()) / f"faultlab-monitoring-{run_id}-{uuid.uuid4().hex[:8]}"
    entry = ledger.data_dir(path) if ledger is not None else None
    path.mkdir()
    return path, entry


@contextlib.contextmanager
def bring_up(spec: Monitoring, stack: StackHandle, *, run_id: str, journal: JournalWriter, binaries: Binaries,
             origin_wall: datetime | None, hub: Hub | None = None, ledger: Ledger | None = None,
             timeout_s: float = START_TIMEOUT_S) -> Iterator[RunMonitoring]:
    """Run Prometheus and Alertmanager beside ``stack`` for the block (see the module docstring).

    Raises :class:`InfrastructureError` (with the log tail or what was last seen) when either
    does not come up; whatever did start is stopped and removed first.
    """
    import httpx

    from faultlab.runtime.ports import LOOPBACK, free_ports
    from faultlab.runtime.supervisor import Supervisor
    from faultlab.runtime.waits import CallableWait, Deadline, HttpWait

    hub = hub or Hub()
    folder = stack.run_dir / "monitoring"
    folder.mkdir(parents=True, exist_ok=True)
    receiver = Receiver(run_id, journal=journal, origin_wall=origin_wall, hub=hub).start()
    running = RunMonitoring(spec, "", "", receiver, binaries, folder, versions=tool_versions(binaries))
    try:
        hub.subscribe(receiver.metrics.observe, events=["fault", "phase", "sample"])
        prometheus_port, alertmanager_port = free_ports(2)
        addresses = Addresses(services={name: stack.address(name) for name in spec.scrape},
                              alertmanager=f"{LOOPBACK}:{alertmanager_port}", receiver=receiver.address)
        running.prometheus_url = url = f"http://{LOOPBACK}:{prometheus_port}"
        running.alertmanager_url = f"http://{addresses.alertmanager}"
        rules = folder / "rules.yaml"
        shutil.copyfile(spec.rules, rules)
        (folder / "prometheus.yml").write_text(prometheus_config(spec, rules, addresses, run_id=run_id),
                                               encoding="utf-8")
        (folder / "alertmanager.yml").write_text(alertmanager_config(spec, addresses), encoding="utf-8")
        running.data_dir, running.ledger_entry = _data_dir(run_id, ledger)
        running.supervisor = supervisor = Supervisor(folder, run_id=run_id, ledger=ledger, observers=hub)
        deadline = Deadline(timeout_s)
        alertmanager = _start(supervisor, "alertmanager", [
            binaries.alertmanager, f"--config.file={folder / 'alertmanager.yml'}",
            f"--storage.path={running.data_dir / 'alertmanager'}",
            f"--web.listen-address={addresses.alertmanager}", "--cluster.listen-address=",
        ])
        _wait(alertmanager, "Alertmanager ready", HttpWait(f"{running.alertmanager_url}/-/ready"), deadline)
        prometheus = _start(supervisor, "prometheus", [
            binaries.prometheus, f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={running.data_dir / 'prometheus'}",
            f"--web.listen-address={LOOPBACK}:{prometheus_port}",
            # An alert that fired before Prometheus found the Alertmanager is otherwise sent
            # again only a minute later.
            f"--rules.alert.resend-delay={max(100, round(spec.evaluation_interval * 1000))}ms",
        ])
        _wait(prometheus, "Prometheus ready", HttpWait(f"{url}/-/ready"), deadline)
        jobs = [*spec.scrape, "faultlab"]
        with httpx.Client() as client:
            _wait(prometheus, "Prometheus finds the Alertmanager",
                  CallableWait(lambda: _alertmanager_found(url, client), "Prometheus' Alertmanager list"), deadline)
            _wait(prometheus, "Prometheus scrapes every target",
                  CallableWait(lambda: _targets_up(url, client, jobs), "Prometheus' targets"), deadline)
        journal.note(f"monitoring up: Prometheus {url}, Alertmanager {running.alertmanager_url}, "
                     f"the drill's metrics http://{receiver.address}/metrics")
        yield running
    finally:
        _tear_down(running, ledger)


def _tear_down(running: RunMonitoring, ledger: Ledger | None) -> None:
    """Stop both programs and the receiver, remove their data; raise at the end if a step failed."""
    failures: list[str] = []
    if running.supervisor is not None:
        try:
            running.supervisor.stop_all()
        except Exception as exc:  # noqa: BLE001 - every step runs; failures are raised together
            failures.append(f"stop Prometheus and Alertmanager: {exc}")
    running.receiver.stop()
    if running.data_dir is not None:
        shutil.rmtree(running.data_dir, ignore_errors=True)
        if running.data_dir.exists():
            failures.append(f"could not remove {running.data_dir}")
        elif ledger is not None and running.ledger_entry is not None:
            ledger.forget(running.ledger_entry)
    if failures:
        raise InfrastructureError("monitoring teardown incomplete: " + "; ".join(failures))


@dataclass(frozen=True)
class PromqlCondition:
    """One PromQL condition of a scenario: its ``name`` in the journal
    (``steady_state.promql[0]``), its ``query``, and ``ok(value)``: whether it holds."""

    name: str
    query: str
    ok: Callable[[float | None], bool]


class PromqlProbe:
    """Evaluates ``conditions`` against the run's Prometheus every ``interval_s`` on a thread
    of its own, journals each evaluation (a :class:`~faultlab.journal.PromqlSample`) and
    keeps the latest of each (:meth:`latest`), for the abort rule."""

    def __init__(self, monitoring: RunMonitoring, conditions: Sequence[PromqlCondition], *, interval_s: float,
                 journal: JournalWriter, clock: Clock | None = None):
        from faultlab.engine.clock import MonotonicClock

        self.monitoring = monitoring
        self.conditions = list(conditions)
        self.interval_s = interval_s
        self.journal = journal
        self.clock: Clock = clock or MonotonicClock()
        self._latest: dict[str, PromqlSample] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start evaluating (the first round at once); nothing to do without conditions."""
        if self.conditions and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="faultlab-promql", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop evaluating and wait for the round in progress. Idempotent."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)

    def latest(self, name: str) -> PromqlSample | None:
        """The latest evaluation of condition ``name``, if any."""
        with self._lock:
            return self._latest.get(name)

    def evaluate(self, client: Any) -> list[PromqlSample]:
        """One round: every condition once, journalled."""
        samples = []
        for condition in self.conditions:
            value, error = self.monitoring.query(client, condition.query)
            sample = PromqlSample(t=self.journal.t(), condition=condition.name, value=value,
                                  ok=condition.ok(value), error=error or None)
            with contextlib.suppress(ValueError):  # the journal closed: the run is over
                self.journal.write(sample)
            with self._lock:
                self._latest[condition.name] = sample
            samples.append(sample)
        return samples

    def _run(self) -> None:
        import httpx

        start = self.clock.now()
        k = 0
        with httpx.Client() as client:
            while not self._stop.is_set():
                if self.clock.sleep_until(start + k * self.interval_s, self._stop):
                    return
                self.evaluate(client)
                k = max(k + 1, int((self.clock.now() - start) / self.interval_s) + 1)

