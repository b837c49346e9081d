"""After a ``kill -9`` of the harness in the middle of faults on a containerised stack,
``faultlab cleanup`` leaves no container, network, volume, iptables rule or process of the
run, and a second cleanup finds nothing. A normal teardown leaves nothing either."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from container_tier import ROOT, leftovers

from faultlab.engine.run import new_run_id
from faultlab.loader import load_stack
from faultlab.runtime.docker import DockerRuntime
from faultlab.runtime.ledger import RUN_LABEL, Ledger

pytestmark = pytest.mark.docker

SCENARIO = """\
id: KILL-01
title: The harness is killed while three faults hold the containerised stack
stack: {stack}
load: {{users: 2, spawn_rate: 2}}
canary: {{rate: 5/s, timeout: 1s}}
steady_state: {{success_rate: {{min: 0.5}}}}
timeline:
  - {{at: 1s, fault: packet_filter, target: exchange, for: 100s, action: drop, direction: in}}
  - {{at: 1s, fault: process_pause, target: router, for: 100s}}
  - {{at: 1s, fault: db_stall, target: db, for: 100s, mode: lock, tables: [accounts]}}
duration: 110s
"""


def _faultlab(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "faultlab", *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


def _journal(run_dir: Path) -> list[dict]:
    path = run_dir / "journal.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def _labelled(run_id: str) -> list[int]:
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(RUN_LABEL) == run_id and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc.pid)
        except psutil.Error:
            continue
    return found


def _host_rules_naming(bridge: str) -> list[str]:
    if shutil.which("iptables-save") is None:
        return []
    dump = subprocess.run(["iptables-save"], capture_output=True, text=True, check=False).stdout
    return [line for line in dump.splitlines() if bridge in line]


def test_cleanup_after_kill_9_mid_fault_leaves_nothing_of_the_run(tmp_path, docker_client):
    scenario = tmp_path / "kill.yaml"
    scenario.write_text(SCENARIO.format(stack=ROOT / "stacks" / "trading.yaml"))
    state, reports = tmp_path / "state", tmp_path / "reports"
    harness = subprocess.Popen(
        [sys.executable, "-m", "faultlab", "run", str(scenario), "--runtime", "docker", "--reports", str(reports),
         "--state-dir", str(state)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 150
        run_dir = None
        while time.monotonic() < deadline:
            runs = list((reports / "KILL-01").glob("KILL-01-*")) if (reports / "KILL-01").exists() else []
            run_dir = runs[0] if runs else None
            active = [r for r in _journal(run_dir) if r.get("event") == "active"] if run_dir else []
            if len(active) == 3:
                break
            assert harness.poll() is None, harness.stderr.read().decode() if harness.stderr else ""
            time.sleep(0.2)
        else:
            pytest.fail("the three faults never became active")
        assert run_dir is not None
        run_id = run_dir.name
        harness.kill()  # kill -9: no finally, no teardown
        harness.wait(timeout=10)
    finally:
        if harness.poll() is None:
            harness.kill()
    network = docker_client.networks.get(f"faultlab-{run_id}")
    bridge = f"br-{network.id[:12]}"
    assert len(leftovers(docker_client, run_id)) >= 7, "the kill left less behind than expected"
    assert _labelled(run_id), "the load generator should outlive the harness"
    assert _host_rules_naming(bridge), "the run's network should have host rules while it exists"

    cleaned = _faultlab("cleanup", "--state-dir", str(state))
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    out = cleaned.stdout
    assert "packet_filter: remove iptables chain FAULTLAB-" in out and " removed" in out, out
    assert "pg_session: terminate PostgreSQL backend" in out, out
    assert "docker_run: remove container faultlab-" in out and "docker_run: remove network" in out, out
    assert "docker_run: remove volume" in out, out
    assert leftovers(docker_client, run_id) == []
    deadline = time.monotonic() + 10
    while _labelled(run_id) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _labelled(run_id) == [], "a process of the run survived the cleanup"
    assert _host_rules_naming(bridge) == [], "iptables rules of the run's network are left on the host"
    assert list((state / "runs").glob("*.json")) == []

    again = _faultlab("cleanup", "--state-dir", str(state))
    assert again.returncode == 0 and "cleaned 0 run(s)" in again.stdout, again.stdout + again.stderr


def test_a_normal_teardown_removes_everything_and_keeps_the_logs(tmp_path, docker_client):
    stack = load_stack(ROOT / "stacks" / "trading.yaml", runtime="docker")
    run_id = new_run_id("teardown")
    ledger = Ledger(run_id, state_dir=tmp_path / "state")
    with DockerRuntime().bring_up(stack, tmp_path / "run", ledger=ledger) as up:
        assert [e["kind"] for e in ledger.entries] == ["docker_run"]
        assert up.database("db").is_running()
    assert leftovers(docker_client, run_id) == []
    assert ledger.entries == [] and ledger.close()
    logs = {p.name: p.read_text() for p in (tmp_path / "run" / "services").iterdir()}
    assert "gateway ready on 0.0.0.0:8000" in logs["gateway.log"]
    assert "database system is ready to accept connections" in logs["db.log"]


def test_teardown_after_a_failed_start_removes_what_did_start(tmp_path, docker_client):
    """A service that exits before it is ready fails the bring-up with its log as evidence;
    everything already started is removed."""
    from faultlab.errors import ServiceFailed

    text = (ROOT / "stacks" / "trading.yaml").read_text().replace(
        "command: [python, -m, tradingstack.router]", "command: [python, -c, \"print('router gives up'); exit(3)\"]")
    path = tmp_path / "stack.yaml"
    path.write_text(text.replace("plugin: tradingstack.plugin", ""))
    stack = load_stack(path, runtime="docker")
    run_id = new_run_id("failed-start")
    ledger = Ledger(run_id, state_dir=tmp_path / "state")
    with pytest.raises(ServiceFailed, match="router.*exited with code 3") as caught, \
            DockerRuntime().bring_up(stack, tmp_path / "run", ledger=ledger):
        pass
    assert "router gives up" in caught.value.evidence
    assert leftovers(docker_client, run_id) == []
    assert ledger.entries == []
