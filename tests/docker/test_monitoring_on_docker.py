"""A stack's monitoring beside containers: FT-23 on the docker runtime, with Debian's
Prometheus and Alertmanager on the host scraping the services through their published ports.

The same scenario runs on local processes in tests/monitoring/test_monitored_runs.py; here
the exchange, gateway and router are containers, so what is checked is that the run's
Prometheus reaches them where the docker runtime publishes them, that the alert travels
from their metrics to faultlab, and that nothing of either is left afterwards.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from container_tier import ROOT, leftovers

from faultlab.analysis import analyse
from faultlab.journal import Alert, read_run
from installed import needs_monitoring

pytestmark = [pytest.mark.docker, needs_monitoring]


def test_ft23_on_containers_the_execution_delay_alert_reaches_faultlab(tmp_path: Path, docker_client) -> None:
    scenario = ROOT / "scenarios" / "ft-23-exchange-silent.yaml"
    result = subprocess.run([sys.executable, "-m", "faultlab", "run", str(scenario), "--runtime", "docker",
                             "--reports", str(tmp_path / "reports"),
                             "--state-dir", str(tmp_path / "state")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode in (0, 1), result.stdout + result.stderr
    (run_dir,) = (tmp_path / "reports" / "FT-23").iterdir()
    run = read_run(run_dir)
    assert run.status == "completed" and run.problems == (), run.end
    assert run.header.stack["runtime"] == "docker"

    # the alert comes from the gateway's metrics: Prometheus scraped the container
    assert {r.name for r in run.of(Alert)} == {"ExecutionDelayHigh"}
    a = analyse(run)
    assert a.tools.get("prometheus") and a.tools.get("docker")
    m = a.monitoring
    assert m is not None
    [fault] = m.faults
    assert [x.name for x in fault.alerts] == ["ExecutionDelayHigh"] and fault.only_by == "ExecutionDelayHigh"
    assert a.detection.measured and a.detection_signal == "alert ExecutionDelayHigh"
    print(f"FT-23 on docker: detected by ExecutionDelayHigh in {a.detection.value:.3f} s "
          f"(resolution {m.resolution_s:.3f} s)")
    assert next(v for v in a.verdicts if v.target == "detect_within").met

    assert leftovers(docker_client, run_dir.name) == []
    assert list(Path(tempfile.gettempdir()).glob(f"faultlab-monitoring-{run_dir.name}-*")) == []
    assert not list((tmp_path / "state" / "runs").glob("*.json")), "the ledger is closed after a clean run"
