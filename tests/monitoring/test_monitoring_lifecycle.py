"""The run's Prometheus and Alertmanager on a small stack (one HTTP server of the standard
library serving a metrics file): cleaned up after ``kill -9`` of the harness, and stopped
when Prometheus refuses the rules. (A completed run's teardown is checked by the drills of
test_monitored_runs.py.)"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from faultlab.journal import read_run
from faultlab.runtime.ledger import RUN_LABEL
from installed import needs_monitoring

pytestmark = [pytest.mark.processes, needs_monitoring]

HERE = Path(__file__).resolve().parent
DRILL = HERE.parent / "drill"  # truth_plugin, the ground-truth stack's plugin
SCENARIO = HERE / "scenarios" / "truth-paused.yaml"


def _faultlab(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(DRILL) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-m", "faultlab", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _labelled(run_id: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(RUN_LABEL) == run_id and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def _monitoring_dirs(run_id: str) -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob(f"faultlab-monitoring-{run_id}-*"))


def test_kill_9_of_the_harness_then_cleanup_leaves_no_monitoring_behind(tmp_path: Path) -> None:
    reports, state = tmp_path / "reports", tmp_path / "state"
    proc = _faultlab("run", str(SCENARIO), "--reports", str(reports), "--state-dir", str(state))
    deadline = time.monotonic() + 120
    journal = None
    while time.monotonic() < deadline:
        found = list(reports.glob("*/*/journal.jsonl"))
        if found and "monitoring up" in found[0].read_text():
            journal = found[0]
            break
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    assert journal is not None, "the monitoring never came up"
    run_id = json.loads(journal.read_text().splitlines()[0])["run_id"]
    ledger = json.loads(next((state / "runs").glob("*.json")).read_text())
    kinds = [(e["kind"], e.get("name")) for e in ledger["entries"]]
    assert ("process_group", "alertmanager") in kinds and ("process_group", "prometheus") in kinds
    data_dirs = [Path(e["path"]) for e in ledger["entries"] if e["kind"] == "data_dir"]
    monitoring = [d for d in data_dirs if d.name.startswith(f"faultlab-monitoring-{run_id}-")]
    assert monitoring and all(d.is_dir() for d in monitoring)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    names = set()
    for p in _labelled(run_id):
        with contextlib.suppress(psutil.Error):
            names.add(Path(p.cmdline()[0]).name)
    assert {"prometheus", "prometheus-alertmanager"} <= names or {"prometheus", "alertmanager"} <= names, names

    cleaner = _faultlab("cleanup", "--state-dir", str(state))
    out, err = cleaner.communicate(timeout=120)
    assert cleaner.returncode == 0, (out, err)
    assert _labelled(run_id) == []
    assert not any(d.exists() for d in data_dirs)
    assert list((state / "runs").glob("*.json")) == []


def test_rules_prometheus_refuses_stop_the_run_as_an_infrastructure_error(tmp_path: Path) -> None:
    stack = (HERE / "stacks" / "truth-monitored.yaml").read_text()
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "metrics").write_text("truth_up 1\n")
    (tmp_path / "stack.yaml").write_text(stack.replace("truth-alerts.yaml", "bad-alerts.yaml"))
    (tmp_path / "bad-alerts.yaml").write_text(
        "groups:\n  - name: bad\n    rules:\n      - {alert: SvcDown, expr: 'up{job=\"svc\"} =='}\n")
    (tmp_path / "scenario.yaml").write_text(SCENARIO.read_text().replace("../stacks/truth-monitored.yaml",
                                                                        "stack.yaml"))
    proc = _faultlab("run", str(tmp_path / "scenario.yaml"), "--reports", str(tmp_path / "reports"),
                     "--state-dir", str(tmp_path / "state"))
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 3, out + err
    assert "prometheus exited" in err and "Traceback" not in err
    assert "parse error" in err  # Prometheus' own words, from its log tail
    [journal] = (tmp_path / "reports").glob("*/*/journal.jsonl")
    run = read_run(journal.parent)
    assert run.status == "failed"
    assert _labelled(run.header.run_id) == [] and _monitoring_dirs(run.header.run_id) == []
    assert list((tmp_path / "state" / "runs").glob("*.json")) == []
