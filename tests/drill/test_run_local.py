"""The drill engine end to end on the local runtime: real processes, real PostgreSQL, the
real proxy. Ground truth, Ctrl-C, kill -9 and clean-up, bad input."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from faultlab.runtime.ledger import RUN_LABEL

pytestmark = pytest.mark.processes

HERE = Path(__file__).parent
SCENARIOS = HERE / "scenarios"


def _faultlab(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(HERE) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-m", "faultlab", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _journal(reports: Path) -> Path | None:
    found = sorted(reports.glob("*/*/journal.jsonl"))
    return found[0] if found else None


def _events(journal: Path) -> list[dict]:
    rows = []
    for line in journal.read_text().splitlines():
        with contextlib.suppress(ValueError):
            rows.append(json.loads(line))
    return rows


def _wait_for_active(reports: Path, count: int, proc: subprocess.Popen, timeout: float = 90.0) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        journal = _journal(reports)
        if journal is not None:
            active = [e for e in _events(journal) if e.get("type") == "fault" and e.get("event") == "active"]
            if len(active) >= count:
                return journal
        if proc.poll() is not None:
            raise AssertionError(f"faultlab exited early: {proc.communicate()}")
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"no {count} active faults within {timeout} s: {proc.communicate()}")


def _labelled(run_id: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(RUN_LABEL) == run_id and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def test_bad_scenario_stops_before_anything_starts(tmp_path):
    proc = _faultlab("run", str(SCENARIOS / "broken.yaml"), "--reports", str(tmp_path / "reports"),
                     "--state-dir", str(tmp_path / "state"))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, (out, err)
    assert "broken.yaml:7:21: timeline[0].fault: unknown fault kind 'process_paws'" in err
    assert "did you mean 'process_pause'" in err
    assert "Traceback" not in err
    assert not (tmp_path / "reports").exists()
    assert not (tmp_path / "state").exists()


def test_ground_truth_outage_is_measured_within_the_probe_interval(tmp_path, monkeypatch):
    """The service is SIGSTOPped at a known moment and continued at another; impact start and
    recovery point must land within the probe interval plus 50 ms of those moments."""
    from faultlab.analysis import analyse
    from faultlab.engine.run import run_scenario
    from faultlab.loader import load_scenario

    monkeypatch.syspath_prepend(str(HERE))
    result = run_scenario(load_scenario(SCENARIOS / "truth-pause.yaml"), reports_dir=tmp_path / "reports",
                          state_dir=tmp_path / "state")
    assert result.status == "completed"
    events = [e for e in _events(result.run_dir / "journal.jsonl") if e.get("type") == "fault"]
    stopped = next(e["t"] for e in events if e["event"] == "active")
    continued = next(e["t"] for e in events if e["event"] == "reverted")

    analysis = analyse(result.run_dir)
    tolerance = 0.05 + 0.05  # the canary's send interval (20/s) plus 50 ms
    assert analysis.impact_start.measured
    assert abs(analysis.impact_start.value - stopped) <= tolerance, (analysis.impact_start, stopped)
    assert analysis.recovery_point.measured
    assert abs(analysis.recovery_point.value - continued) <= tolerance, (analysis.recovery_point, continued)
    assert analysis.detection.measured and analysis.detection.value <= 0.1 + 0.05
    # The baseline begins after the warm-up (2 s of load) and ends where the fault began.
    journal = _events(result.run_dir / "journal.jsonl")
    t_load = next(e["t"] for e in journal if e.get("type") == "phase" and e["name"] == "load" and e["state"] == "begin")
    begun = next(e["t"] for e in journal if e.get("type") == "phase" and e["name"] == "baseline")
    assert 2.0 <= begun - t_load <= 2.2, (begun, t_load)
    assert analysis.baseline is not None and analysis.baseline.start == begun and analysis.baseline.met_steady_state


def test_ctrl_c_during_a_fault_reverts_it_and_exits_4(tmp_path):
    reports = tmp_path / "reports"
    proc = _faultlab("run", str(SCENARIOS / "truth-pause.yaml"), "--reports", str(reports),
                     "--state-dir", str(tmp_path / "state"))
    journal = _wait_for_active(reports, 1, proc)
    run_id = _events(journal)[0]["run_id"]
    paused = [p for p in _labelled(run_id) if p.status() == psutil.STATUS_STOPPED]
    assert paused, "the fault should hold a stopped process"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 4, (out, err)
    events = _events(journal)
    assert any(e.get("type") == "fault" and e.get("event") == "reverted" for e in events)
    assert events[-1]["type"] == "end" and events[-1]["status"] == "interrupted"
    assert _labelled(run_id) == []
    assert list((tmp_path / "state" / "runs").glob("*.json")) == []


def test_kill_9_then_cleanup_leaves_nothing(tmp_path):
    """A lock-holding session, a paused service, a link down, a running PostgreSQL with its
    data directory: after ``kill -9`` of the harness, ``faultlab cleanup`` removes them all."""
    reports, state = tmp_path / "reports", tmp_path / "state"
    proc = _faultlab("run", str(SCENARIOS / "trading-held-faults.yaml"), "--reports", str(reports),
                     "--state-dir", str(state))
    journal = _wait_for_active(reports, 3, proc)
    header = _events(journal)[0]
    run_id = header["run_id"]
    left = _labelled(run_id)
    assert any(p.status() == psutil.STATUS_STOPPED for p in left), "the paused exchange is stopped"
    ledger = json.loads(next((state / "runs").glob("*.json")).read_text())
    data_dirs = [Path(e["path"]) for e in ledger["entries"] if e["kind"] == "data_dir"]
    assert data_dirs and all(d.is_dir() for d in data_dirs)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    assert _labelled(run_id), "killed harness leaves its processes behind (what cleanup is for)"

    cleaner = _faultlab("cleanup", "--state-dir", str(state))
    out, err = cleaner.communicate(timeout=120)
    assert cleaner.returncode == 0, (out, err)
    assert "cleaned 1 run(s)" in out
    assert _labelled(run_id) == [], "no process of the run is left, stopped or not"
    assert not any(d.exists() for d in data_dirs), "the data directory is removed"
    assert list((state / "runs").glob("*.json")) == [], "the ledger is closed"
    postgres = [p for p in psutil.process_iter(["name", "cmdline"]) if p.info["name"] == "postgres"
                and any(str(d) in " ".join(p.info["cmdline"] or []) for d in data_dirs)]
    assert postgres == [], "no PostgreSQL (and so no lock-holding session) of the run is left"

    again = _faultlab("cleanup", "--state-dir", str(state))
    out, _ = again.communicate(timeout=60)
    assert again.returncode == 0 and "cleaned 0 run(s)" in out

    report = _faultlab("report", str(journal.parent))
    out, err = report.communicate(timeout=120)
    assert report.returncode == 1, (out, err)
    text = (journal.parent / "report.md").read_text()
    assert "crashed" in text.lower() and "no end record" in text


@pytest.mark.parametrize("command, document, says", [
    ("run", "stacks/trading.yaml", "this is a stack file, not a scenario; bring it up with `faultlab stack up"),
    ("drill", "scenarios/ft-01-db-freeze.yaml", "this is a scenario, not a drill plan; run it with `faultlab run"),
    ("stack", "drills/smoke.yaml", "this is a drill plan, not a stack file; run it with `faultlab drill"),
])
def test_a_document_of_another_kind_names_the_command_that_takes_it(tmp_path, command, document, says):
    root = HERE.parents[1]
    args = ["stack", "up"] if command == "stack" else [command]
    proc = _faultlab(*args, str(root / document), cwd=tmp_path)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, (out, err)
    assert says in err and "1 problem found" in err
    assert not (tmp_path / "reports").exists()
