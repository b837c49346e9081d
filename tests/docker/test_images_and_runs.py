"""The images (built once, reused, a missing one named) and a whole scenario run through the
command line on the docker runtime, its load from locust workers in containers."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from container_tier import ROOT, leftovers

from faultlab.cli import main

pytestmark = pytest.mark.docker

SCENARIO = """\
id: DOCK-01
title: A short drill on containers, load from locust workers in containers
stack: {stack}
load: {{users: 4, spawn_rate: 4, workers: 2}}
canary: {{rate: 10/s, timeout: 1s}}
steady_state: {{success_rate: {{min: 0.9}}}}
timeline:
  - {{at: 3s, fault: packet_filter, target: exchange, for: 3s, action: reject}}
  - {{at: 8s, fault: process_kill, target: gateway}}
duration: 20s
hold: 2s
targets: {{lost_orders: 0, duplicate_executions: 0}}
settle: 3s
"""


def test_images_build_reuses_what_is_built(docker_client):
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "faultlab", "images", "build"], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "reused  faultlab/base:bookworm-" in result.stdout and "reused  faultlab/stack:" in result.stdout
    assert time.monotonic() - start < 60, "reusing the images must not build anything"


def test_a_missing_stack_image_is_exit_3_naming_the_command_that_builds_it(tmp_path, docker_client, monkeypatch,
                                                                          capsys):
    monkeypatch.setattr("faultlab.runtime.images.source_digest", lambda: "000000000000")
    monkeypatch.setenv("FAULTLAB_STATE_DIR", str(tmp_path / "state"))
    code = main(["stack", "up", str(ROOT / "stacks" / "trading.yaml"), "--runtime", "docker", "--run-dir",
                 str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 3, err
    assert "the docker image faultlab/stack:0.1.0-000000000000" in err and "run `faultlab images build`" in err


def test_a_scenario_runs_on_docker_from_the_command_line(tmp_path, docker_client):
    scenario = tmp_path / "dock.yaml"
    scenario.write_text(SCENARIO.format(stack=ROOT / "stacks" / "trading.yaml"))
    result = subprocess.run([sys.executable, "-m", "faultlab", "run", str(scenario), "--runtime", "docker",
                             "--reports", str(tmp_path / "reports"), "--state-dir", str(tmp_path / "state")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode in (0, 1), result.stdout + result.stderr
    (run_dir,) = (tmp_path / "reports" / "DOCK-01").iterdir()
    journal = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    assert journal[0]["stack"]["runtime"] == "docker"
    assert journal[-1]["type"] == "end" and journal[-1]["status"] == "completed", journal[-1]
    tools = next(r for r in journal if r["type"] == "tools")["tools"]
    assert tools["docker"] and tools["postgres"].startswith("16")
    events = [(r["fault_id"], r["event"]) for r in journal if r["type"] == "fault"]
    assert ("timeline[0]", "active") in events and ("timeline[0]", "reverted") in events
    assert ("timeline[1]", "active") in events
    requests = (run_dir / "requests.jsonl").read_text().splitlines()
    assert len(requests) > 20, "the workers in containers recorded the load"
    integrity = next(r for r in journal if r["type"] == "integrity")
    assert integrity["acknowledged"] > 0 and not integrity["violations"], integrity
    assert leftovers(docker_client, run_dir.name) == []
    assert not list((tmp_path / "state" / "runs").glob("*.json")), "the ledger is closed after a clean run"
