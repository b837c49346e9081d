"""The docker runtime on another engine than the local one: ``DOCKER_HOST`` is honoured.

A second ``dockerd`` runs on its own socket in its own network namespace, joined to this
one by a veth pair (10.231.77.1 here, 10.231.77.2 there), as a machine on the network would
be: it has its own iptables, and the ports it publishes are reached at its address, not on
127.0.0.1 (``FAULTLAB_DOCKER_ADDRESS``). The stack image is copied to it with ``docker
save``/``load``, since no registry is reachable. Needs root, ``ip``, ``nsenter`` and ``dockerd``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from container_tier import ROOT, leftovers

from faultlab.engine.context import FaultContext
from faultlab.engine.run import new_run_id
from faultlab.errors import InputError
from faultlab.loader import load_stack
from faultlab.plugin import load_plugin
from faultlab.registry import fault_kinds
from faultlab.runtime.docker import DockerRuntime
from faultlab.runtime.ledger import Ledger

pytestmark = pytest.mark.docker

NAMESPACE = "fl-engine2"
HERE, THERE = "10.231.77.1", "10.231.77.2"


def _sh(*command: str) -> None:
    subprocess.run(command, check=True, capture_output=True, text=True)


def _stop(engine: subprocess.Popen[bytes] | None, folder: Path) -> None:
    if engine is not None and engine.poll() is None:
        engine.send_signal(signal.SIGTERM)
        try:
            engine.wait(timeout=30)
        except subprocess.TimeoutExpired:
            engine.kill()
            engine.wait(timeout=10)
    subprocess.run(["ip", "netns", "del", NAMESPACE], capture_output=True, check=False)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def second_engine(docker_client) -> Iterator[tuple[str, Any]]:
    """``unix://.../docker.sock`` of a second engine holding the stack image, and a client."""
    missing = [tool for tool in ("ip", "nsenter", "dockerd") if shutil.which(tool) is None]
    if os.geteuid() != 0 or missing:
        pytest.skip(f"a second engine needs root and {', '.join(missing) or 'nothing more'}")
    import docker
    from faultlab.runtime.images import stack_image

    subprocess.run(["ip", "netns", "del", NAMESPACE], capture_output=True, check=False)
    folder = Path(tempfile.mkdtemp(prefix="fl-e2-", dir="/tmp"))
    url = f"unix://{folder}/docker.sock"
    engine = None
    try:
        _sh("ip", "netns", "add", NAMESPACE)
        _sh("ip", "netns", "exec", NAMESPACE, "ip", "link", "set", "lo", "up")
        _sh("ip", "link", "add", "fl-e2h", "type", "veth", "peer", "name", "fl-e2d")
        _sh("ip", "link", "set", "fl-e2d", "netns", NAMESPACE)
        _sh("ip", "addr", "add", f"{HERE}/30", "dev", "fl-e2h")
        _sh("ip", "link", "set", "fl-e2h", "up")
        _sh("ip", "netns", "exec", NAMESPACE, "ip", "addr", "add", f"{THERE}/30", "dev", "fl-e2d")
        _sh("ip", "netns", "exec", NAMESPACE, "ip", "link", "set", "fl-e2d", "up")
        # nsenter, not `ip netns exec`: that one remounts /sys, and dockerd needs the cgroups under it
        with open(folder / "dockerd.log", "wb") as log:
            engine = subprocess.Popen(
                ["nsenter", f"--net=/var/run/netns/{NAMESPACE}", "dockerd", "--host", url, "--data-root",
                 str(folder / "data"), "--exec-root", str(folder / "exec"), "--pidfile", str(folder / "docker.pid"),
                 "--bip", "10.232.0.1/24", "--default-address-pool", "base=10.233.0.0/16,size=24"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                client = docker.DockerClient(base_url=url, timeout=600)
                client.ping()
                break
            except Exception:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline:
                    pytest.fail("the second dockerd did not start: " + (folder / "dockerd.log").read_text()[-2000:])
                time.sleep(0.5)
        client.images.load(docker_client.images.get(stack_image()).save(chunk_size=1 << 20, named=True))
        yield url, client
        client.close()
    finally:
        _stop(engine, folder)


@pytest.fixture
def on_second_engine(second_engine, monkeypatch) -> Any:
    url, client = second_engine
    monkeypatch.setenv("DOCKER_HOST", url)
    monkeypatch.setenv("FAULTLAB_DOCKER_ADDRESS", THERE)
    return client


def _stack(tmp_path: Path, allow: bool = True):
    text = (ROOT / "stacks" / "trading.yaml").read_text()
    path = tmp_path / "trading.yaml"
    path.write_text(text.replace("allow_hosts: []", f"allow_hosts: [{THERE}]" if allow else "allow_hosts: []"))
    return load_stack(path, runtime="docker")


def test_the_stack_runs_on_the_engine_docker_host_names(tmp_path, on_second_engine, docker_client):
    stack = _stack(tmp_path)
    run_id = new_run_id("engine2")
    ledger = Ledger(run_id, state_dir=tmp_path / "state")
    with DockerRuntime().bring_up(stack, tmp_path / "run", ledger=ledger) as up:
        assert [e["engine"] for e in ledger.entries if e["kind"] == "docker_run"] == [os.environ["DOCKER_HOST"]]
        assert len(leftovers(on_second_engine, run_id)) == 8, "5 containers, a network and 2 volumes"
        assert leftovers(docker_client, run_id) == [], "nothing of the run may land on the local engine"
        assert up.address("gateway").startswith(f"{THERE}:") and up.proxy_api.startswith(f"http://{THERE}:")
        plugin = load_plugin(stack.plugin)
        assert plugin.canary(up)(2.0).ok
        ctx = FaultContext(fault_id="timeline[0]", stack=up, plugin=plugin)
        freeze = fault_kinds.get("db_stall")()
        params = freeze.validate_params({"mode": "freeze"})
        stalled = freeze.inject(ctx, "db", params)
        try:
            assert not plugin.canary(up)(1.0).ok, "orders must fail while the remote database is frozen"
        finally:
            freeze.revert(ctx, "db", params, stalled)
        deadline = time.monotonic() + 20
        while not plugin.canary(up)(1.0).ok:
            assert time.monotonic() < deadline, "orders did not recover after the thaw"
            time.sleep(0.2)
    assert leftovers(on_second_engine, run_id) == []
    assert ledger.entries == []


def test_a_non_loopback_engine_must_be_allowed_by_the_stack(tmp_path, on_second_engine):
    stack = _stack(tmp_path, allow=False)
    run_id = new_run_id("engine2-refused")
    with pytest.raises(InputError, match=f"reached at {THERE}, which is not loopback: add it to `allow_hosts`"), \
            DockerRuntime().bring_up(stack, tmp_path / "run", ledger=Ledger(run_id, state_dir=tmp_path / "state")):
        pass
    assert leftovers(on_second_engine, run_id) == []


def test_cleanup_reaches_the_engine_the_ledger_names(tmp_path, on_second_engine, second_engine):
    """What a killed run left on the other engine is removed by `faultlab cleanup` run with
    no DOCKER_HOST at all: the ledger says which engine the run used."""
    import json

    run_id = new_run_id("engine2-left")
    on_second_engine.volumes.create(f"faultlab-{run_id}-run", labels={"faultlab.run": run_id})
    on_second_engine.networks.create(f"faultlab-{run_id}", labels={"faultlab.run": run_id})
    state = tmp_path / "state"
    (state / "runs").mkdir(parents=True)
    (state / "runs" / f"{run_id}.json").write_text(json.dumps({
        "schema": "faultlab.ledger/1", "run_id": run_id, "harness_pid": 2 ** 22 + 1, "harness_start_time": 0,
        "entries": [{"id": "e1", "kind": "docker_run", "engine": second_engine[0], "run_id": run_id}]}))
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "FAULTLAB_DOCKER_ADDRESS")}
    for _ in range(2):
        result = subprocess.run([sys.executable, "-m", "faultlab", "cleanup", "--state-dir", str(state)], env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
    assert leftovers(on_second_engine, run_id) == []
    assert "cleaned 0 run(s)" in result.stdout


def test_images_list_asks_the_engine_docker_host_names(on_second_engine):
    from faultlab.runtime.images import stack_image

    result = subprocess.run([sys.executable, "-m", "faultlab", "images", "list"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert os.environ["DOCKER_HOST"] in result.stdout and f"{stack_image()}" in result.stdout
