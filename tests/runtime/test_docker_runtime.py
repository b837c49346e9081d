"""The docker runtime's parts that need no engine: its checks, where published ports are
reached, the packet filter's iptables commands, the kinds a runtime refuses, and the clear
exit-3 message when no engine answers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from faultlab.errors import InputError
from faultlab.loader import load_scenario, load_stack
from faultlab.runtime.docker import DockerRuntime, postgres_version
from faultlab.runtime.engine import bind_address, published_address

ROOT = Path(__file__).resolve().parents[2]

STACK = """\
name: small
runtime: {runtime}
services:
  db:
    postgres: {{database: app, user: app{version}}}
  {name}:
    image: example/api:1
    port: auto
"""

SCENARIO = """\
id: NET-01
title: A packet filter
stack: stack.yaml
canary: {rate: 10/s, timeout: 1s}
steady_state: {success_rate: {min: 0.99}}
timeline:
  - {at: 5s, fault: packet_filter, target: api, for: 5s, action: reject, probability: 50%}
duration: 30s
"""


def _problems(call, path: Path, **kwargs) -> list[str]:  # type: ignore[no-untyped-def]
    try:
        call(path, **kwargs)
    except InputError as exc:
        return [f"{p.line}: {p.path}: {p.message}" for p in exc.problems]
    return []


def test_an_image_service_runs_on_docker_and_the_runtimes_own_names_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text(STACK.format(runtime="docker", version="", name="api"))
    assert load_stack(path).services["api"].image == "example/api:1"
    path.write_text(STACK.format(runtime="docker", version="", name="faultlab-proxy"))
    assert _problems(load_stack, path) == [
        "7: services.faultlab-proxy: 'faultlab-proxy': names starting with 'faultlab-' are the docker runtime's "
        "own on the run's network; rename it"]


def test_a_postgres_version_the_image_does_not_hold_is_refused() -> None:
    running = postgres_version()
    assert running is not None and running.startswith("16"), running
    stack = load_stack(ROOT / "stacks" / "trading.yaml", runtime="docker")
    stack.services["db"].postgres.version = "15"  # type: ignore[union-attr]
    assert DockerRuntime.check(stack) == [(("services", "db", "postgres", "version"),
                                           f"the docker runtime runs PostgreSQL {running} (the pgserver wheel's, "
                                           "as the local runtime does), not 15")]
    stack.services["db"].postgres.version = "16"  # type: ignore[union-attr]
    assert DockerRuntime.check(stack) == []


def test_a_kind_below_the_proxy_is_refused_on_local_and_accepted_on_docker(tmp_path: Path) -> None:
    (tmp_path / "stack.yaml").write_text(STACK.format(runtime="docker", version="", name="api"))
    (tmp_path / "scenario.yaml").write_text(SCENARIO)
    step = load_scenario(tmp_path / "scenario.yaml").timeline[0]
    assert step.kind_params.action == "reject" and step.kind_params.probability == 0.5
    (tmp_path / "stack.yaml").write_text(STACK.format(runtime="local", version="", name="api").replace(
        "image: example/api:1", "command: [python, -m, http.server, \"${port}\"]"))
    assert _problems(load_scenario, tmp_path / "scenario.yaml") == [
        "7: timeline[0].fault: the local runtime of stack 'small' cannot run packet_filter: it lacks packet_filter "
        "(runtimes that can: docker)"]
    assert load_scenario(tmp_path / "scenario.yaml", runtime="docker").resolved_stack.runtime == "docker"
    refused = subprocess.run([sys.executable, "-m", "faultlab", "validate", str(tmp_path / "scenario.yaml")],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "cannot run packet_filter" in refused.stderr, refused.stderr
    accepted = subprocess.run([sys.executable, "-m", "faultlab", "validate", "--runtime", "docker",
                               str(tmp_path / "scenario.yaml")], capture_output=True, text=True, timeout=60)
    assert accepted.returncode == 0, accepted.stderr


@pytest.mark.parametrize("docker_host, override, address, bind", [
    (None, None, "127.0.0.1", "127.0.0.1"),
    ("unix:///tmp/other/docker.sock", None, "127.0.0.1", "127.0.0.1"),
    ("tcp://localhost:2375", None, "127.0.0.1", "127.0.0.1"),
    ("tcp://build-7.example:2376", None, "build-7.example", "0.0.0.0"),
    ("ssh://ops@10.0.0.5", None, "10.0.0.5", "10.0.0.5"),
    ("unix:///tmp/other/docker.sock", "10.231.77.2", "10.231.77.2", "10.231.77.2"),
])
def test_where_the_harness_reaches_published_ports(monkeypatch: pytest.MonkeyPatch, docker_host: str | None,
                                                   override: str | None, address: str, bind: str) -> None:
    for name, value in (("DOCKER_HOST", docker_host), ("FAULTLAB_DOCKER_ADDRESS", override)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert published_address() == address
    assert bind_address(address) == bind


def test_the_packet_filter_is_one_chain_jumped_to_from_input_and_output() -> None:
    from faultlab.runtime.containers import filter_script, unfilter_script

    drop = filter_script("FAULTLAB-t0", "drop", "both", 1.0)
    assert drop == ("set -e && iptables -N FAULTLAB-t0 && iptables -A FAULTLAB-t0 -j DROP && "
                    "iptables -I INPUT 1 ! -i lo -j FAULTLAB-t0 && iptables -I OUTPUT 1 ! -o lo -j FAULTLAB-t0")
    lossy = filter_script("FAULTLAB-t1", "reject", "out", 0.25)
    assert "-p tcp -m statistic --mode random --probability 0.250000 -j REJECT --reject-with tcp-reset" in lossy
    assert "! -p tcp -m statistic --mode random --probability 0.250000 -j REJECT" in lossy
    assert "INPUT" not in lossy and "OUTPUT 1 ! -o lo" in lossy
    undo = unfilter_script("FAULTLAB-t1")
    assert "iptables -D INPUT ! -i lo -j FAULTLAB-t1" in undo
    assert undo.endswith("! iptables -S FAULTLAB-t1 >/dev/null 2>&1")


def test_no_engine_is_a_clear_infrastructure_error(tmp_path: Path) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    for command in (["images", "list"], ["stack", "up", str(ROOT / "stacks" / "trading.yaml"), "--runtime", "docker",
                                         "--run-dir", str(tmp_path / "run")]):
        result = subprocess.run([sys.executable, "-m", "faultlab", *command], capture_output=True, text=True,
                                timeout=60, env={**env, "FAULTLAB_STATE_DIR": str(tmp_path / "state")})
        assert result.returncode == 3, result.stderr
        assert f"no Docker engine answers at unix://{tmp_path}/no-engine.sock" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
    assert not list((tmp_path / "state" / "runs").glob("*.json")), "nothing was created, so nothing is in a ledger"


def test_the_loader_imports_no_docker_code_for_a_docker_stack() -> None:
    probe = ("import sys; from faultlab.loader import load_stack; load_stack(sys.argv[1], runtime='docker'); "
             "print(sorted(m for m in ('docker', 'testcontainers', 'psutil') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe, str(ROOT / "stacks" / "trading.yaml")],
                            capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"
