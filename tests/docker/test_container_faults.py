"""Every container-level fault, and the database faults, on the trading stack running in
containers: each takes effect, its revert undoes it, and a second revert is harmless."""

from __future__ import annotations

import http.client
import json
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from container_tier import ROOT, leftovers

from faultlab.engine.context import FaultContext, Jobs
from faultlab.engine.run import new_run_id
from faultlab.journal import JournalWriter, RunHeader
from faultlab.loader import load_stack
from faultlab.plugin import load_plugin
from faultlab.registry import fault_kinds
from faultlab.runtime.docker import DockerRuntime
from faultlab.runtime.ledger import Ledger

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def running(tmp_path_factory, docker_client):
    """The trading stack in containers, brought up once for every fault, with a journal, a
    ledger and the service events it published."""
    tmp = tmp_path_factory.mktemp("containers")
    run_id = new_run_id("docker-faults")
    ledger = Ledger(run_id, state_dir=tmp / "state")
    stack = load_stack(ROOT / "stacks" / "trading.yaml", runtime="docker")
    journal = JournalWriter.open(tmp / "run", RunHeader(run_id=run_id), origin=time.monotonic())
    events: list[dict[str, Any]] = []
    with DockerRuntime().bring_up(stack, tmp / "run", ledger=ledger, observers=[lambda **e: events.append(e)]) as up:
        plugin = load_plugin(stack.plugin)
        yield up, journal, Jobs(up, journal, plugin=plugin), plugin, ledger, events
    journal.close()
    assert leftovers(docker_client, run_id) == []
    assert ledger.entries == [], "the teardown left ledger entries"
    assert {p.name for p in (tmp / "run" / "services").iterdir()} >= {"db.log", "gateway.log", "faultlab-proxy.log"}


def _context(running, fault_id: str) -> tuple[FaultContext, list[float]]:
    up, journal, jobs, plugin, *_ = running
    marks: list[float] = []
    ctx = FaultContext(fault_id=fault_id, stack=up, plugin=plugin, journal=journal, jobs=jobs, for_s=30.0)
    ctx.mark_active = lambda: marks.append(time.monotonic())
    return ctx, marks


def _apply(running, kind: str, target: str, check_during, check_after, **params) -> None:
    fault = fault_kinds.get(kind)()
    ctx, marks = _context(running, f"timeline[{len(kind)}]")
    validated = fault.validate_params(params)
    injected = None
    try:
        injected = fault.inject(ctx, target, validated)
        assert marks, f"{kind} never said when it took effect"
        assert check_during() is not False, f"{kind} had no effect"
    finally:
        fault.revert(ctx, target, validated, injected if injected is not None else ctx.kept)
    fault.revert(ctx, target, validated, injected if injected is not None else ctx.kept)
    assert check_after() is not False, f"{kind} was not undone"
    left = [e for e in running[4].entries if e["kind"] != "docker_run"]
    assert left == [], f"{kind} left ledger entries: {left}"


def _get(up, service: str, path: str = "/health/live", timeout: float = 1.0) -> int:
    host, port = up.address(service).split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    finally:
        conn.close()


def _fails(call) -> bool:
    try:
        call()
    except (OSError, http.client.HTTPException):
        return True
    return False


def _wait_ready(up, service: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if _get(up, service, "/health/ready") == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.1)
    pytest.fail(f"{service} not ready again within {timeout} s")


def _toxics(up, link: str) -> list[str]:
    return [t["name"] for t in httpx.get(f"{up.proxy_api}/proxies/{link}/toxics").json()]


def _connect(up, user: str | None = None, timeout: int = 2):
    return psycopg.connect(up.dsn("db", user=user), connect_timeout=timeout, autocommit=True)


def _chains(up, service: str) -> str:
    from faultlab.runtime.containers import run_in_namespace

    container = up.network(service).container
    return run_in_namespace(up.client, up.image, container, "iptables -S", labels=up.labels("filter", service))


def test_every_part_runs_in_a_container_labelled_with_the_run(running, docker_client):
    up, *_ = running
    containers = docker_client.containers.list(filters={"label": f"faultlab.run={up.run_id}"})
    assert sorted(c.labels["faultlab.service"] for c in containers) == [
        "db", "exchange", "faultlab-proxy", "gateway", "router"]
    assert all(c.status == "running" for c in containers)
    assert [n.name for n in docker_client.networks.list(filters={"label": f"faultlab.run={up.run_id}"})] == [
        up.network_name]
    assert up.address("gateway").startswith("127.0.0.1:"), "ports are published on loopback only"
    if docker_client.info()["CgroupDriver"] == "cgroupfs":  # each container weighed like its processes
        host = {c.labels["faultlab.service"]: c.attrs["HostConfig"] for c in containers}
        weights = {name: (config["CgroupParent"], config["CpuShares"]) for name, config in host.items()}
        assert weights["db"] == ("/", 4096) and weights["gateway"] == ("/", 1024), weights
    outcome = running[3].canary(up)(2.0)
    assert outcome.ok, outcome
    assert up.database("db").server_version().startswith("16")


def test_pause_freezes_the_container_and_unpause_continues_it(running):
    up = running[0]
    container = up.service("exchange")
    _apply(running, "process_pause", "exchange",
           lambda: (container.state == "paused" and _fails(lambda: _get(up, "exchange"))) or pytest.fail(
               container.state),
           lambda: (container.state == "running" and _get(up, "exchange") == 200) or pytest.fail(container.state))


def test_kill_crashes_the_process_and_docker_restarts_it_by_policy(running):
    up, *_, events = running
    gateway = up.service("gateway")
    before = gateway.restart_count
    _apply(running, "process_kill", "gateway", lambda: None, lambda: None)
    deadline = time.monotonic() + 20
    while gateway.restart_count == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gateway.restart_count == before + 1, "docker's restart policy did not restart the gateway"
    _wait_ready(up, "gateway")
    seen = [(e["kind"], e.get("exit_code")) for e in events if e.get("service") == "gateway"]
    assert ("exited", 137) in seen and ("restarted", None) in seen, seen


def test_process_restart_stops_the_container_and_starts_it_again(running):
    up = running[0]
    container = up.service("router").container
    container.reload()
    started = container.attrs["State"]["StartedAt"]
    _apply(running, "process_restart", "router", lambda: None, lambda: None, grace="2s")
    container.reload()
    assert container.attrs["State"]["StartedAt"] != started and container.status == "running"
    _wait_ready(up, "router")


def _reach_from_proxy(up, service: str, port: int) -> bool:
    script = f"import socket; socket.create_connection(({service!r}, {port}), 1).close()"
    return up.proxy.container.exec_run(["python", "-c", script]).exit_code == 0


def test_network_disconnect_takes_the_service_off_its_network_and_back(running):
    up = running[0]
    _apply(running, "network_disconnect", "exchange",
           lambda: (not _reach_from_proxy(up, "exchange", 8000) and _fails(lambda: _get(up, "exchange")))
           or pytest.fail("still reachable"),
           lambda: (_reach_from_proxy(up, "exchange", 8000) and _get(up, "exchange") == 200)
           or pytest.fail("not back"))
    _wait_ready(up, "router")


def test_packet_filter_drop_blackholes_the_service_then_the_rules_go(running):
    up = running[0]

    def dropped() -> None:
        assert "FAULTLAB-" in _chains(up, "exchange")
        start = time.monotonic()
        assert _fails(lambda: _get(up, "exchange", timeout=1.0))
        assert time.monotonic() - start >= 0.9, "a drop must time out, not be refused"

    _apply(running, "packet_filter", "exchange", dropped,
           lambda: ("FAULTLAB-" not in _chains(up, "exchange") and _get(up, "exchange") == 200)
           or pytest.fail("rules left"), action="drop", direction="in")


def test_packet_filter_reject_refuses_at_once(running):
    up = running[0]

    def refused() -> None:
        assert not _reach_from_proxy(up, "gateway", 8000)
        start = time.monotonic()
        assert _fails(lambda: _get(up, "gateway", timeout=3.0))
        assert time.monotonic() - start < 1.0, "a reject must be answered at once"

    _apply(running, "packet_filter", "gateway", refused, lambda: _get(up, "gateway") == 200, action="reject",
           direction="in")
    _wait_ready(up, "gateway")


def test_packet_filter_with_a_probability_loses_a_share_of_the_packets(running):
    up = running[0]

    def lossy() -> None:
        failed = sum(_fails(lambda: _get(up, "exchange", timeout=0.5)) for _ in range(40))
        assert 0 < failed < 40, f"{failed} of 40 requests failed"

    _apply(running, "packet_filter", "exchange", lossy, lambda: _get(up, "exchange") == 200, probability="30%",
           direction="in")


def test_link_partition_goes_through_the_proxy_in_its_container(running):
    up = running[0]
    host, port = up.link_address("router-exchange").split(":")

    def get_through_link() -> int:
        conn = http.client.HTTPConnection(host, int(port), timeout=2)
        try:
            conn.request("GET", "/health/live")
            return conn.getresponse().status
        finally:
            conn.close()

    _apply(running, "partition", "router-exchange", lambda: _fails(get_through_link) or pytest.fail("link up"),
           lambda: get_through_link() == 200)


def test_db_freeze_pauses_the_postgres_container(running):
    up = running[0]
    database = up.database("db")

    def frozen() -> None:
        database.container.reload()
        assert database.container.status == "paused"
        with pytest.raises(psycopg.OperationalError):
            _connect(up, timeout=1).close()

    _apply(running, "db_stall", "db", frozen, lambda: _connect(up).close(), mode="freeze")


def test_db_lock_holds_an_exclusive_lock_on_the_tables(running):
    up = running[0]

    def locked() -> bool:
        with _connect(up) as conn:
            return bool(conn.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE c.relname = 'orders' AND l.mode = 'AccessExclusiveLock' AND l.granted").fetchone()[0])

    _apply(running, "db_stall", "db", lambda: locked() or pytest.fail("no lock"),
           lambda: not locked() or pytest.fail("lock left"), mode="lock", tables=["orders"])


def test_db_network_stall_puts_toxics_on_every_link_into_the_database(running):
    up = running[0]
    links = up.links_to("db")
    _apply(running, "db_stall", "db",
           lambda: all(len(_toxics(up, link)) == 2 for link in links) or pytest.fail("missing toxics"),
           lambda: all(_toxics(up, link) == [] for link in links) or pytest.fail("toxics left"), mode="network")


def test_db_read_only_refuses_writes_then_allows_them(running):
    up = running[0]

    def setting() -> str:
        with _connect(up) as conn:
            return conn.execute("SHOW default_transaction_read_only").fetchone()[0]

    _apply(running, "db_read_only", "db", lambda: setting() == "on" or pytest.fail(setting()),
           lambda: setting() == "off" or pytest.fail(setting()))


def test_db_connection_exhaustion_takes_every_free_connection(running):
    up = running[0]
    user = up.stack.services["db"].postgres.user

    def refused() -> None:
        with pytest.raises(psycopg.OperationalError):
            _connect(up, user=user).close()

    _apply(running, "db_connection_exhaustion", "db", refused, lambda: _connect(up, user=user).close())


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_db_restart_restarts_the_server_in_its_container_and_keeps_the_data(running, mode):
    up = running[0]
    database = up.database("db")
    with _connect(up) as conn:
        orders = conn.execute("SELECT count(*) FROM orders").fetchone()[0]
        conn.execute("CREATE TABLE IF NOT EXISTS restart_marker (n int)")
        conn.execute("INSERT INTO restart_marker VALUES (1)")
    database.container.reload()
    started = database.container.attrs["State"]["StartedAt"]
    _apply(running, "db_restart", "db", lambda: None, lambda: _connect(up).close(), mode=mode)
    database.container.reload()
    assert database.container.attrs["State"]["StartedAt"] != started, "the server did not restart"
    with _connect(up) as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] >= orders
        assert conn.execute("SELECT count(*) FROM restart_marker").fetchone()[0] >= 1
    _wait_ready(up, "gateway")


def test_the_batch_job_runs_in_a_container_and_a_crash_is_resumed(running):
    up, journal, jobs, *_ = running
    jobs.start("batch")
    _apply(running, "job_crash", "batch", lambda: None, lambda: None, signal="SIGKILL", at_progress="20%")
    assert jobs.wait_all(120), "the rerun batch did not finish"
    events = [json.loads(line) for line in (Path(up.run_dir) / "journal.jsonl").read_text().splitlines()]
    batch = [e for e in events if e.get("type") == "job"]
    assert any(e["event"] == "failed" and e["detail"].get("crashed_by_fault") for e in batch), batch
    assert [e["event"] for e in batch].count("started") == 2, batch
    assert batch[-1]["event"] == "finished", batch
    names = [p.name for p in up.processes]
    assert names[:2] == ["job-batch", "job-batch-2"], names
    assert all(p.role == "job" for p in up.processes[:2])


def test_a_service_reaches_another_by_its_interpolated_address(running):
    """`${link.NAME}` is the proxy's listener on the run's network; the harness side is its
    published port; both lead to the same service."""
    up = running[0]
    values = up.interpolation_values("router")
    assert values["link.router-exchange"] == "faultlab-proxy:20002"
    assert values["host"] == "0.0.0.0" and values["run_dir"] == "/faultlab/run"
    assert _reach_from_proxy(up, "exchange", int(values["service.exchange"].split(":")[1]))
    with socket.create_connection(tuple(up.link_address("router-exchange").split(":")), timeout=2):  # type: ignore[arg-type]
        pass
