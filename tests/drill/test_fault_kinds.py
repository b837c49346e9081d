"""Every built-in fault kind against the running trading stack: it takes effect, its revert
undoes it, and a second revert is harmless (the engine reverts again at teardown)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import psutil
import psycopg
import pytest

from faultlab.engine.context import FaultContext, Jobs
from faultlab.journal import JournalWriter, RunHeader
from faultlab.loader import load_stack
from faultlab.plugin import load_plugin
from faultlab.registry import fault_kinds
from faultlab.runtime.ledger import Ledger
from faultlab.runtime.local import bring_up

pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    """The trading stack, brought up once for every fault kind, with a journal and a ledger."""
    tmp = tmp_path_factory.mktemp("faults")
    ledger = Ledger("fault-kinds", state_dir=tmp / "state")
    stack = load_stack(ROOT / "stacks" / "trading.yaml")
    journal = JournalWriter.open(tmp / "run", RunHeader(run_id="fault-kinds"), origin=time.monotonic())
    with bring_up(stack, tmp / "run", ledger=ledger) as local:
        plugin = load_plugin(stack.plugin)
        yield local, journal, Jobs(local, journal, plugin=plugin), plugin, ledger
    journal.close()


def _context(running, fault_id: str, load=None, base_users: int = 0,
             for_s: float | None = None) -> tuple[FaultContext, list[float]]:
    local, journal, jobs, plugin, _ = running
    marks: list[float] = []
    ctx = FaultContext(fault_id=fault_id, stack=local, plugin=plugin, journal=journal, jobs=jobs,
                       load=load, base_users=base_users, for_s=for_s)
    ctx.mark_active = lambda: marks.append(time.monotonic())
    return ctx, marks


def _apply(running, kind: str, target: str, check_during, check_after, load=None, base_users=0, for_s=30.0,
           **params):
    fault = fault_kinds.get(kind)()
    ctx, marks = _context(running, f"test-{kind}", load, base_users, for_s)
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
    _assert_ledger_clean(running, kind)


def _assert_ledger_clean(running, kind: str) -> None:
    assert all(e["kind"] in ("process_group", "data_dir") for e in running[4].entries), \
        f"{kind} left ledger entries: {running[4].entries}"


def _order_latency(local) -> float:
    start = time.monotonic()
    body = {"client_order_id": f"t-{time.monotonic_ns()}", "account": 1, "symbol": "AAPL", "side": "buy",
            "type": "market", "quantity": 1}
    httpx.post(local.url("gateway", "/orders"), json=body, timeout=10)
    return time.monotonic() - start


def _toxics(local, link: str) -> list[str]:
    return [t["name"] for t in httpx.get(f"{local.proxy_api}/proxies/{link}/toxics").json()]


def _connect(local, service: str = "db", user: str | None = None, timeout: int = 2):
    return psycopg.connect(local.dsn(service, user=user), connect_timeout=timeout, autocommit=True)


def test_latency_slows_the_link_and_is_removed(running):
    local = running[0]
    _apply(running, "latency", "gateway-db",
           lambda: _order_latency(local) >= 0.2,
           lambda: _toxics(local, "gateway-db") == [], latency="100ms", stream="both")


@pytest.mark.parametrize("kind, params", [
    ("stall", {}), ("bandwidth", {"rate": "100KB/s"}), ("reset_peer", {"timeout": "10ms"}),
    ("slow_close", {"delay": "100ms"}), ("limit_data", {"bytes": "1MB"}), ("slicer", {"average_size": 64}),
])
def test_toxic_faults_add_a_toxic_per_direction_and_remove_it(running, kind, params):
    local = running[0]
    streams = 2 if params.get("stream", "both" if kind == "stall" else "downstream") == "both" else 1
    _apply(running, kind, "router-exchange",
           lambda: len(_toxics(local, "router-exchange")) == streams or pytest.fail(_toxics(local, "router-exchange")),
           lambda: _toxics(local, "router-exchange") == [] or pytest.fail("toxic left"), **params)


def test_partition_refuses_connections_then_accepts_again(running):
    import socket

    local = running[0]
    host, port = local.link_address("router-exchange").split(":")

    def refused() -> None:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((host, int(port)), timeout=1).close()

    _apply(running, "partition", "router-exchange", refused,
           lambda: socket.create_connection((host, int(port)), timeout=1).close())


def test_db_freeze_stops_every_postgres_process(running):
    database = running[0].database("db")

    def statuses() -> set[str]:
        return {psutil.Process(pid).status() for pid in database.pids()}

    _apply(running, "db_stall", "db", lambda: statuses() <= {psutil.STATUS_STOPPED, psutil.STATUS_ZOMBIE}
           or pytest.fail(str(statuses())),
           lambda: psutil.STATUS_STOPPED not in statuses() or pytest.fail(str(statuses())), mode="freeze")


def test_db_lock_holds_an_exclusive_lock_on_the_tables(running):
    local = running[0]

    def locked() -> bool:
        with _connect(local) as conn:
            return bool(conn.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                "WHERE c.relname = 'orders' AND l.mode = 'AccessExclusiveLock' AND l.granted").fetchone()[0])

    _apply(running, "db_stall", "db", lambda: locked() or pytest.fail("no lock"),
           lambda: not locked() or pytest.fail("lock left"), mode="lock", tables=["orders"])


def test_db_network_stall_puts_toxics_on_every_link_into_the_database(running):
    local = running[0]
    links = local.links_to("db")
    _apply(running, "db_stall", "db",
           lambda: all(len(_toxics(local, link)) == 2 for link in links) or pytest.fail("missing toxics"),
           lambda: all(_toxics(local, link) == [] for link in links) or pytest.fail("toxics left"), mode="network")


def test_db_read_only_refuses_writes_then_allows_them(running):
    local = running[0]

    def setting() -> str:
        with _connect(local) as conn:
            return conn.execute("SHOW default_transaction_read_only").fetchone()[0]

    _apply(running, "db_read_only", "db", lambda: setting() == "on" or pytest.fail(setting()),
           lambda: setting() == "off" or pytest.fail(setting()))


def test_db_connection_exhaustion_takes_every_free_connection(running):
    local = running[0]
    user = local.stack.services["db"].postgres.user

    def refused() -> None:
        with pytest.raises(psycopg.OperationalError):
            _connect(local, user=user).close()

    _apply(running, "db_connection_exhaustion", "db", refused, lambda: _connect(local, user=user).close())


def test_db_connection_exhaustion_also_takes_the_slot_of_a_session_on_its_way_out(running):
    """A session closed just before the fault (the previous test's, in a full run) keeps
    its slot until its backend has exited, which takes a moment longer under load. Here
    that backend is held (SIGSTOP) and let go the moment the fault says it took effect:
    the fault must take the slot it gives back before it counts as injected."""
    import os
    import signal

    local = running[0]
    user = local.stack.services["db"].postgres.user
    leaving = _connect(local, user=user)
    backend = psutil.Process(leaving.info.backend_pid)
    os.kill(backend.pid, signal.SIGSTOP)
    try:
        leaving.close()
        fault = fault_kinds.get("db_connection_exhaustion")()
        ctx, _ = _context(running, "test-exhaustion-leaving")
        params = fault.validate_params({})

        def took_effect() -> None:
            os.kill(backend.pid, signal.SIGCONT)
            backend.wait(timeout=10)

        ctx.mark_active = took_effect
        try:
            fault.inject(ctx, "db", params)
            with pytest.raises(psycopg.OperationalError, match="connection slots are reserved|too many clients"):
                _connect(local, user=user).close()
        finally:
            fault.revert(ctx, "db", params, ctx.kept)
    finally:
        if backend.is_running():
            os.kill(backend.pid, signal.SIGCONT)
    _connect(local, user=user).close()


def test_db_restart_brings_a_new_postmaster_that_answers(running):
    local = running[0]
    before = local.database("db").pids()[0]
    _apply(running, "db_restart", "db", lambda: local.database("db").pids()[:1] not in ([], [before])
           or pytest.fail("same postmaster"), lambda: _connect(local).close(), mode="fast")
    httpx.get(local.url("gateway", "/health/ready"), timeout=5)


def _wait_ready(local, service: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(local.url(service, "/health/ready"), timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail(f"{service} not ready again within {timeout} s")


def test_process_kill_and_restart_bring_a_new_process(running):
    local = running[0]
    for kind in ("process_kill", "process_restart"):
        before = local.service("gateway").pid
        _apply(running, kind, "gateway", lambda: None, lambda: None)
        _wait_ready(local, "gateway")
        assert local.service("gateway").pid != before


def test_process_pause_stops_the_service_and_continues_it(running):
    local = running[0]
    service = local.service("exchange")
    _apply(running, "process_pause", "exchange",
           lambda: psutil.Process(service.pid).status() == psutil.STATUS_STOPPED or pytest.fail("running"),
           lambda: psutil.Process(service.pid).status() != psutil.STATUS_STOPPED or pytest.fail("stopped"))


def test_load_spike_and_shape_change_the_number_of_users(running):
    from faultlab.engine.load import LoadDriver, LoadSpec

    local, journal, _, plugin, _ = running
    spec = LoadSpec(locustfile=plugin.locustfile(), host=plugin.load_host(local), users=2, spawn_rate=10,
                    env=plugin.load_env(local, None))
    with LoadDriver(spec, run_dir=local.run_dir, origin=journal.origin, processes=local) as load:
        load.wait_users(2)
        _apply(running, "load_spike", "trading", lambda: load.wait_users(6, timeout_s=20),
               lambda: load.wait_users(2, timeout_s=20), load=load, base_users=2, multiplier=3)
        _apply(running, "load_shape", "trading", lambda: load.wait_users(8, timeout_s=20),
               lambda: load.wait_users(2, timeout_s=20), load=load, base_users=2, shape="opening_rush",
               peak_multiplier=4)


def test_job_crash_kills_the_batch_and_reruns_it(running):
    local, journal, jobs, _, _ = running
    jobs.start("batch")
    _apply(running, "job_crash", "batch", lambda: None, lambda: None, signal="SIGKILL")
    assert jobs.wait_all(90), "the rerun batch did not finish"
    events = [json.loads(line) for line in (local.run_dir / "journal.jsonl").read_text().splitlines()]
    batch = [e for e in events if e.get("type") == "job"]
    assert any(e["event"] == "failed" and e["detail"].get("crashed_by_fault") for e in batch), batch
    assert [e["event"] for e in batch].count("started") == 2, batch
    assert batch[-1]["event"] == "finished", batch


def test_a_lock_that_fails_half_way_is_undone_with_what_the_fault_kept(running):
    """db_stall in mode lock opens its session, and writes it to the ledger, before it locks:
    a table that does not exist makes the lock fail after that. The fault hands its result to
    the engine first (``ctx.keep``), so the revert closes the session and forgets the entry."""
    from faultlab.errors import FaultError
    from faultlab.faults.database import Stalled

    local, ledger = running[0], running[4]
    fault = fault_kinds.get("db_stall")()
    ctx, marks = _context(running, "test-lock-half-way")
    params = fault.validate_params({"mode": "lock", "tables": ["orders", "no_such_table"]})
    with pytest.raises(FaultError, match="could not lock orders, no_such_table"):
        fault.inject(ctx, "db", params)
    kept = ctx.kept
    assert isinstance(kept, Stalled) and kept.lock is not None and kept.lock.conn is not None
    backend = kept.lock.conn.info.backend_pid
    assert not marks, "a lock that failed said it took effect"
    assert [e["backend_pid"] for e in ledger.entries if e["kind"] == "pg_session"] == [backend]

    fault.revert(ctx, "db", params, kept)
    fault.revert(ctx, "db", params, kept)
    with _connect(local) as conn:
        left = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (backend,)).fetchone()[0]
    assert left == 0, f"the half-way session {backend} is still open"
    _assert_ledger_clean(running, "db_stall")
