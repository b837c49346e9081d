"""Runtimes come in through the ``faultlab.runtimes`` entry points; a stack file's ``runtime:``
is checked against them, and a fault kind its runtime cannot run is refused at its entry."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path
from typing import ClassVar

import pytest

from faultlab.errors import InputError
from faultlab.loader import load_any, load_plan, load_scenario, load_stack
from faultlab.model import DrillPlan
from faultlab.registry import fault_kinds, runtimes
from faultlab.runtime.base import CAPABILITIES, Runtime

STACK = """\
name: small
runtime: {runtime}
services:
  db:
    postgres: {{database: app, user: app}}
  api:
    command: [python, -m, http.server, "${{port}}"]
    port: auto
links:
  api-db: {{from: api, to: db}}
"""

SCENARIO = """\
id: RT-01
title: A runtime that cannot freeze
stack: stack.yaml
canary: {{rate: 10/s, timeout: 1s}}
steady_state: {{success_rate: {{min: 0.99}}}}
timeline:
  - {{at: 5s, fault: db_stall, target: db, for: 5s, mode: {mode}}}
duration: 30s
"""


class ProxyOnlyRuntime(Runtime):
    """A runtime that offers link faults only, as a third party might register one."""

    name: ClassVar[str] = "proxy-only"
    summary: ClassVar[str] = "links through the fault proxy, nothing else"
    capabilities: ClassVar[frozenset[str]] = frozenset({"proxy"})

    def bring_up(self, stack, run_dir, *, ledger=None, observers=()):  # type: ignore[no-untyped-def]
        raise NotImplementedError


@pytest.fixture
def proxy_only(monkeypatch: pytest.MonkeyPatch) -> type[Runtime]:
    monkeypatch.setitem(runtimes._load(), ProxyOnlyRuntime.name, ProxyOnlyRuntime)
    return ProxyOnlyRuntime


def _problems(call, path: Path) -> list[str]:  # type: ignore[no-untyped-def]
    try:
        call(path)
    except InputError as exc:
        return [f"{p.line}: {p.path}: {p.message}" for p in exc.problems]
    return []


def test_local_and_docker_are_the_runtimes_and_local_the_default() -> None:
    assert runtimes.names() == ["docker", "local"]
    assert runtimes.source("local") == "faultlab.runtime.local:LocalRuntime" and runtimes.broken == {}
    assert runtimes.source("docker") == "faultlab.runtime.docker:DockerRuntime"
    local, docker = runtimes.get("local"), runtimes.get("docker")
    assert local.capabilities <= set(CAPABILITIES) and docker.capabilities == set(CAPABILITIES)
    assert all(docker.supports(kind) for _, kind in fault_kinds.items()), "the docker runtime runs every kind"
    below_the_proxy = {name for name, kind in fault_kinds.items() if not local.supports(kind)}
    assert below_the_proxy == {"network_disconnect", "packet_filter"}, "local processes share one network"


def test_a_stack_without_runtime_runs_locally(tmp_path: Path) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text(STACK.format(runtime="local").replace("runtime: local\n", ""))
    assert load_stack(path).runtime == "local"


def test_an_unknown_runtime_is_refused_at_its_line_with_the_nearest_name(tmp_path: Path) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text(STACK.format(runtime="lokal"))
    assert _problems(load_stack, path) == [
        "2: runtime: unknown runtime 'lokal'; did you mean 'local'? known: docker, local"]


def test_a_runtime_that_cannot_run_a_service_says_so_before_anything_starts(tmp_path: Path) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text(STACK.format(runtime="local").replace("command: [python, -m, http.server, \"${port}\"]",
                                                          "image: example/api:1"))
    (problem,) = _problems(load_stack, path)
    assert problem.startswith("7: services.api: service 'api' has only an `image`; the local runtime runs a")


def test_a_kind_the_runtime_lacks_is_refused_at_its_timeline_entry(tmp_path: Path, proxy_only: type[Runtime]) -> None:
    (tmp_path / "stack.yaml").write_text(STACK.format(runtime=proxy_only.name))
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(SCENARIO.format(mode="freeze"))
    assert _problems(load_scenario, scenario) == [
        "7: timeline[0].fault: the proxy-only runtime of stack 'small' cannot run db_stall: it lacks "
        "database_control (runtimes that can: docker, local)"
    ]
    scenario.write_text(SCENARIO.format(mode="network"))  # stalls the links: the proxy is enough
    assert load_scenario(scenario).timeline[0].kind_params.mode == "network"


def test_kinds_shows_the_runtimes_of_each_kind(proxy_only: type[Runtime]) -> None:
    from faultlab.cli.validate import _kind_rows, _runtime_rows

    rows = {row["kind"]: row for row in _kind_rows()}
    assert rows["latency"]["runtimes"] == ["docker", "local", "proxy-only"]
    assert rows["db_restart"]["runtimes"] == ["docker", "local"]
    assert rows["db_restart"]["requires"] == ["database_control"]
    assert rows["packet_filter"]["runtimes"] == ["docker"] and rows["packet_filter"]["requires"] == ["packet_filter"]
    assert rows["load_spike"]["requires"] == [] and "proxy-only" in rows["load_spike"]["runtimes"]
    assert [r["runtime"] for r in _runtime_rows()] == ["docker", "local", "proxy-only"]


def test_faultlab_kinds_and_validate_on_the_command_line(tmp_path: Path) -> None:
    kinds = subprocess.run([sys.executable, "-m", "faultlab", "kinds", "--json"], capture_output=True, text=True,
                           timeout=60, check=True)
    by_kind = {row["kind"]: row["runtimes"] for row in json.loads(kinds.stdout)}
    assert by_kind["partition"] == ["docker", "local"] and by_kind["network_disconnect"] == ["docker"]
    table = subprocess.run([sys.executable, "-m", "faultlab", "kinds"], capture_output=True, text=True,
                           timeout=60, check=True)
    assert "RUNTIMES" in table.stdout and "local: processes on 127.0.0.1" in table.stdout
    assert "docker: containers on a Docker engine" in table.stdout
    path = tmp_path / "stack.yaml"
    path.write_text(STACK.format(runtime="dokcer"))
    refused = subprocess.run([sys.executable, "-m", "faultlab", "validate", str(path)], capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == 2, refused.stderr
    assert "runtime: unknown runtime 'dokcer'" in refused.stderr and "Traceback" not in refused.stderr


PLAN = """\
title: one scenario
environment: a test
scenarios: [scenario.yaml]
"""


class ImagesRuntime(Runtime):
    """A runtime that runs `image:` services and offers every capability (a stand-in for docker)."""

    name: ClassVar[str] = "images"
    summary: ClassVar[str] = "containers"
    capabilities: ClassVar[frozenset[str]] = frozenset(CAPABILITIES)

    def bring_up(self, stack, run_dir, *, ledger=None, observers=()):  # type: ignore[no-untyped-def]
        raise NotImplementedError


@pytest.fixture
def images(monkeypatch: pytest.MonkeyPatch) -> type[Runtime]:
    monkeypatch.setitem(runtimes._load(), ImagesRuntime.name, ImagesRuntime)
    return ImagesRuntime


def _image_only(tmp_path: Path) -> Path:
    path = tmp_path / "stack.yaml"
    path.write_text(STACK.format(runtime="local").replace("command: [python, -m, http.server, \"${port}\"]",
                                                          "image: example/api:1"))
    return path


def test_the_runtime_override_judges_the_stack_before_its_own_runtime_refuses_it(
        tmp_path: Path, images: type[Runtime]) -> None:
    path = _image_only(tmp_path)
    assert _problems(load_stack, path), "the file says local, which cannot run an image"
    stack = load_stack(path, runtime=images.name)
    assert stack.runtime == "images"
    (tmp_path / "scenario.yaml").write_text(SCENARIO.format(mode="freeze"))
    assert load_scenario(tmp_path / "scenario.yaml", runtime=images.name).resolved_stack.runtime == "images"
    (tmp_path / "plan.yaml").write_text(PLAN)
    plan = load_plan(tmp_path / "plan.yaml", runtime=images.name)
    assert [s.resolved_stack.runtime for s in plan.resolved_scenarios] == ["images"]
    assert isinstance(load_any(tmp_path / "plan.yaml", runtime=images.name), DrillPlan)


def test_the_override_also_decides_which_fault_kinds_are_refused(tmp_path: Path, proxy_only: type[Runtime]) -> None:
    (tmp_path / "stack.yaml").write_text(STACK.format(runtime="local"))
    (tmp_path / "scenario.yaml").write_text(SCENARIO.format(mode="freeze"))
    assert load_scenario(tmp_path / "scenario.yaml").resolved_stack.runtime == "local"
    assert _problems(functools.partial(load_scenario, runtime=proxy_only.name), tmp_path / "scenario.yaml") == [
        "7: timeline[0].fault: the proxy-only runtime of stack 'small' cannot run db_stall: it lacks "
        "database_control (runtimes that can: " + ", ".join(
            n for n, cls in runtimes.items() if "database_control" in cls.capabilities) + ")"
    ]
    (tmp_path / "plan.yaml").write_text(PLAN)
    assert any("cannot run db_stall" in p for p in _problems(functools.partial(load_plan, runtime=proxy_only.name),
                                                              tmp_path / "plan.yaml"))


def test_an_unknown_override_is_refused_by_its_option(tmp_path: Path) -> None:
    (tmp_path / "stack.yaml").write_text(STACK.format(runtime="local"))
    with pytest.raises(InputError) as caught:
        load_stack(tmp_path / "stack.yaml", runtime="lokal")
    (problem,) = caught.value.problems
    assert str(problem).startswith("--runtime: unknown runtime 'lokal'; did you mean 'local'?")


def test_validate_and_run_take_the_override_on_the_command_line(tmp_path: Path) -> None:
    path = _image_only(tmp_path)
    refused = subprocess.run([sys.executable, "-m", "faultlab", "validate", str(path)], capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode == 2 and "has only an `image`" in refused.stderr
    unknown = subprocess.run([sys.executable, "-m", "faultlab", "validate", "--runtime", "lokal", str(path)],
                             capture_output=True, text=True, timeout=60)
    assert unknown.returncode == 2 and "--runtime: unknown runtime 'lokal'" in unknown.stderr, unknown.stderr
    (tmp_path / "scenario.yaml").write_text(SCENARIO.format(mode="freeze"))
    run = subprocess.run([sys.executable, "-m", "faultlab", "run", "--runtime", "lokal",
                          str(tmp_path / "scenario.yaml")], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "--runtime: unknown runtime 'lokal'" in run.stderr, run.stderr
