"""Drills on the trading stack with its real monitoring: FT-01 and FT-23 run end to end with
Debian's Prometheus and Alertmanager beside the stack, and a stack that asks for them on a
machine without them stops before anything starts.

The FT-01 run is scenarios/ft-01-db-freeze.yaml on stacks/trading-monitored.yaml, shortened
to 35 s (the same fault at the same time: the hold after it still fits), with two PromQL
conditions added as instruments: a steady-state one on the services being up, and an abort
one on faultlab's own ``faultlab_fault_active``, which can only be evaluated if the run's
Prometheus scraped the drill's metrics.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest
import yaml

from faultlab.analysis import analyse
from faultlab.journal import Alert, FaultEvent, PromqlSample, read_run
from faultlab.runtime.ledger import RUN_LABEL
from installed import needs_monitoring

ROOT = Path(__file__).resolve().parents[2]


def _run(scenario: Path, tmp_path: Path, env: dict[str, str] | None = None,
         timeout: float = 300) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "faultlab", "run", str(scenario), "--reports", str(tmp_path / "reports"),
               "--state-dir", str(tmp_path / "state")]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env)


def _run_dir(tmp_path: Path) -> Path:
    [journal] = (tmp_path / "reports").glob("*/*/journal.jsonl")
    return journal.parent


def _nothing_left(run_id: str, tmp_path: Path) -> None:
    """No process labelled with the run, no monitoring or PostgreSQL data, no ledger entry left."""
    left = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(RUN_LABEL) == run_id and proc.status() != psutil.STATUS_ZOMBIE:
                left.append(proc.cmdline())
        except psutil.Error:
            continue
    assert left == []
    temp = Path(tempfile.gettempdir())
    assert list(temp.glob(f"faultlab-monitoring-{run_id}-*")) == []
    assert list(temp.glob(f"faultlab-pgdata-{run_id}-*")) == []
    # a ledger is deleted once every entry in it was forgotten (its resource gone)
    assert [ledger.read_text() for ledger in (tmp_path / "state").glob("runs/*.json")] == []


def _ft01_monitored(tmp_path: Path) -> Path:
    scenario = yaml.safe_load((ROOT / "scenarios" / "ft-01-db-freeze.yaml").read_text())
    scenario["stack"] = str(ROOT / "stacks" / "trading-monitored.yaml")
    scenario["duration"] = "35s"
    scenario["steady_state"]["promql"] = [{"query": 'min(up{job=~"gateway|router|exchange"})', "min": 1}]
    scenario["abort_when"]["promql"] = [{"query": "max(faultlab_fault_active) or vector(0)", "above": 1,
                                         "for": "1s"}]
    path = tmp_path / "ft-01-monitored.yaml"
    path.write_text(yaml.safe_dump(scenario, sort_keys=False))
    return path


@pytest.mark.processes
@needs_monitoring
def test_ft01_the_database_alert_reaches_faultlab_within_the_stated_resolution_of_readiness(tmp_path: Path) -> None:
    result = _run(_ft01_monitored(tmp_path), tmp_path)
    assert result.returncode in (0, 1), result.stdout + result.stderr
    run_dir = _run_dir(tmp_path)
    run = read_run(run_dir)
    assert run.status == "completed" and run.problems == ()
    alerts = [r for r in run.of(Alert) if r.name == "DatabaseUnreachable"]
    assert [r.status for r in alerts] == ["firing", "resolved"]
    firing = alerts[0]
    assert firing.labels["job"] == "gateway" and firing.labels["severity"] == "page"
    assert firing.active_t is not None and firing.active_wall and firing.t >= firing.active_t - 0.05

    a = analyse(run)
    m = a.monitoring
    assert m is not None and m.resolution_s == pytest.approx(1.5)
    readiness, alert = m.readiness_detection, m.alert_detection
    assert readiness.measured and alert.measured, (readiness, alert)
    assert readiness.value is not None and alert.value is not None and readiness.resolution is not None
    later = alert.value - readiness.value
    print(f"FT-01 detection: readiness {readiness.value:.3f} s (±{readiness.resolution:.3f}), first alert "
          f"{m.alert_name} {alert.value:.3f} s (resolution {m.resolution_s:.3f}), alert later by {later:.3f} s")
    assert -readiness.resolution <= later <= m.resolution_s
    assert a.detection == alert and m.alert_name in ("DatabaseUnreachable", "OrderIntakeFailing")
    assert a.tools.get("prometheus") and a.tools.get("alertmanager")
    database = next(x for x in m.faults[0].alerts if x.name == "DatabaseUnreachable")
    assert database.detect_s is not None and database.detect_s - readiness.value <= m.resolution_s

    # faultlab's own metrics, scraped by the run's Prometheus, show the fault while it was in effect
    fault = {e.event: e.t for e in run.of(FaultEvent)}
    drill = [s for s in run.of(PromqlSample) if s.condition == "abort_when.promql[0]"]
    assert {s.value for s in drill if fault["active"] + 1.5 < s.t < fault["reverted"]} == {1.0}
    assert {s.value for s in drill if s.t < fault["active"]} == {0.0}
    assert all(s.ok for s in drill)
    steady = [s for s in run.of(PromqlSample) if s.condition == "steady_state.promql[0]"]
    assert steady and all(s.ok and s.value == 1.0 for s in steady)

    report = (run_dir / "report.md").read_text()
    assert "Detection by the first alert (judged against the target)" in report
    assert "Detection by polling the readiness endpoint (for comparison)" in report
    assert (run_dir / "monitoring" / "services" / "prometheus.log").is_file()
    _nothing_left(run.header.run_id, tmp_path)


@pytest.mark.processes
@needs_monitoring
def test_ft23_the_silent_exchange_is_seen_by_the_execution_delay_alert_and_nothing_else(tmp_path: Path) -> None:
    result = _run(ROOT / "scenarios" / "ft-23-exchange-silent.yaml", tmp_path)
    assert result.returncode in (0, 1), result.stdout + result.stderr
    run_dir = _run_dir(tmp_path)
    run = read_run(run_dir)
    assert run.status == "completed" and run.problems == ()
    assert {r.name for r in run.of(Alert)} == {"ExecutionDelayHigh"}
    a = analyse(run)
    m = a.monitoring
    assert m is not None
    [fault] = m.faults
    assert [x.name for x in fault.alerts] == ["ExecutionDelayHigh"]
    assert not fault.readiness_changed and fault.only_by == "ExecutionDelayHigh"
    active = next(f for f in a.faults if f.fault_id == "timeline[0]")
    assert all(s.ready for s in run.monitor if active.active_t is not None and s.t >= active.active_t
               and active.reverted_t is not None and s.t <= active.reverted_t)
    assert a.detection.measured and a.detection_signal == "alert ExecutionDelayHigh"
    print(f"FT-23 detection by ExecutionDelayHigh: {a.detection.value:.3f} s (resolution {m.resolution_s:.3f} s); "
          f"readiness: {m.readiness_detection.value} ({m.readiness_signal})")
    assert next(v for v in a.verdicts if v.target == "detect_within").met
    report = (run_dir / "report.md").read_text()
    assert ("was detected only by the alert ExecutionDelayHigh: no other alert fired, and the readiness endpoint "
            "stayed ready while it lasted.") in report
    assert "exchange_silent" in report
    _nothing_left(run.header.run_id, tmp_path)


def test_a_stack_asking_for_monitoring_without_the_programs_stops_before_anything_starts(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("FAULTLAB_PROMETHEUS", "FAULTLAB_ALERTMANAGER")}
    env["PATH"] = str(empty)
    result = _run(ROOT / "scenarios" / "ft-23-exchange-silent.yaml", tmp_path, env=env, timeout=120)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "apt-get install prometheus prometheus-alertmanager" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "reports").exists() and not (tmp_path / "state").exists()
    left = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(RUN_LABEL, "").startswith("FT-23-"):
                left.append(proc.cmdline())
        except psutil.Error:
            continue
    assert left == []
