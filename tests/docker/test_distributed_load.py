"""Locust's distributed mode with its master and workers in containers on the run's network:
the workers load the service by its own address there, every request is recorded on the
run's clock, and the users can be changed mid-run as a load fault does."""

from __future__ import annotations

import json
import time

import pytest
from container_tier import ROOT

from faultlab.engine.load import LoadSpec
from faultlab.engine.run import new_run_id
from faultlab.loader import load_stack
from faultlab.plugin import load_plugin
from faultlab.runtime.container_load import ContainerLoadDriver
from faultlab.runtime.docker import DockerRuntime
from faultlab.runtime.ledger import Ledger

pytestmark = pytest.mark.docker


def test_master_and_workers_in_containers_record_every_request(tmp_path, docker_client):
    stack = load_stack(ROOT / "stacks" / "trading.yaml", runtime="docker")
    plugin = load_plugin(stack.plugin)
    run_id = new_run_id("docker-load")
    ledger = Ledger(run_id, state_dir=tmp_path / "state")
    origin = time.monotonic()
    with DockerRuntime().bring_up(stack, tmp_path / "run", ledger=ledger) as up:
        spec = LoadSpec(locustfile=plugin.locustfile(), host=plugin.load_host(up), users=4, spawn_rate=10,
                        workers=2, env=plugin.load_env(up, None), ack_field=plugin.declaration.ack_field)
        load = up.load_driver(spec, origin=origin)
        assert isinstance(load, ContainerLoadDriver)
        started = time.monotonic() - origin
        with load:
            load.wait_users(4, timeout_s=30)
            stats = load.stats()
            assert stats.get("workers") and len(stats["workers"]) == 2, stats.get("workers")
            load.set_users(8, wait_s=30)
            time.sleep(3)
        ended = time.monotonic() - origin
        workers = [c for c in docker_client.containers.list(all=True, filters={"label": f"faultlab.run={run_id}"})
                   if c.labels.get("faultlab.role") == "load"]
        assert len(workers) == 3, "a master and two workers"
        assert load.clock_offset_s == 0.0, "an engine on this machine shares its monotonic clock"
        (master,) = [c for c in workers if c.labels["faultlab.service"] == "faultlab-locust-master"]
        command = master.attrs["Config"]["Cmd"]
        assert command[command.index("--host") + 1] == "http://gateway:8000", "the gateway by its own address"
    rows = [json.loads(line) for line in (tmp_path / "run" / "requests.jsonl").read_text().splitlines()]
    assert len(rows) > 20, f"only {len(rows)} requests were recorded"
    placed = [r for r in rows if r["name"] == "place_order"]
    assert placed and all(r["ok"] and r["ack"] for r in placed[:10]), placed[:3]
    assert all(started - 1 <= r["t"] <= ended + 1 for r in rows), (started, ended, rows[0]["t"], rows[-1]["t"])
    assert (tmp_path / "run" / "services" / "faultlab-locust-worker-1.log").exists()
