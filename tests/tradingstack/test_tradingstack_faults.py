"""The stack under a frozen database, and the nightly batch crashed and resumed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from tradingstack.drill import check_integrity, place_canary_order

pytestmark = pytest.mark.processes

_SRC = str(Path(__file__).resolve().parents[2] / "src")


def _signal_all(pids, signum):
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def test_db_stall_not_ready_within_a_second_and_orders_fail_fast(stack):
    client = httpx.Client(base_url=stack.gateway_url, timeout=10)
    assert client.get("/health/ready").status_code == 200
    assert place_canary_order(stack.gateway_url, timeout=2).ok
    pids = stack.postgres.pids()
    assert len(pids) > 1
    try:
        _signal_all(pids, signal.SIGSTOP)
        frozen = time.monotonic()
        while client.get("/health/ready").status_code == 200:
            assert time.monotonic() - frozen < 1.0, "still ready a second after the freeze"
            time.sleep(0.02)
        detected = time.monotonic() - frozen
        body = client.get("/health/ready").json()
        assert body["ready"] is False and "database_unreachable" in body["alerts"]
        started = time.perf_counter()
        response = client.post("/orders", json={"client_order_id": "during-stall", "account": 2, "symbol": "T",
                                                "side": "buy", "type": "market", "quantity": 1})
        answered = time.perf_counter() - started
        assert response.status_code in (503, 504), response.text
        assert response.json()["error"] in ("database_timeout", "database_unavailable", "circuit_open")
        assert answered < 3.5, answered
        # Once the circuit is open, the answer is immediate.
        started = time.perf_counter()
        again = client.post("/orders", json={"client_order_id": "during-stall-2", "account": 2, "symbol": "T",
                                             "side": "buy", "type": "market", "quantity": 1})
        assert again.status_code in (503, 504) and time.perf_counter() - started < 3.5
        assert client.get("/health/live").status_code == 200
    finally:
        _signal_all(pids, signal.SIGCONT)
    assert detected < 1.0
    thawed = time.monotonic()
    while not place_canary_order(stack.gateway_url, timeout=1).ok:
        assert time.monotonic() - thawed < 10, "no recovery within 10 s of the thaw"
        time.sleep(0.1)
    assert client.get("/health/ready").status_code == 200
    client.close()


def _populate(dsn: str, orders: int) -> None:
    """Orders with their executions, through the stack's own stored functions."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            "SELECT place_order('b' || g, 1 + g %% 50, s.symbol, CASE WHEN g %% 3 = 0 THEN 'sell' ELSE 'buy' END, "
            "'market', 1 + g %% 17, NULL, NULL, 0.05) "
            "FROM generate_series(1, %s) g, LATERAL (SELECT symbol FROM symbols ORDER BY symbol "
            "OFFSET g %% 40 LIMIT 1) s", (orders,))
        conn.execute("SELECT record_fill('E' || id, id, quantity, 10 + (id % 97) * 0.37, "
                     "'2026-11-24 15:00:00+00'::timestamptz + id * interval '1 ms') "
                     "FROM orders WHERE status = 'accepted' ORDER BY id")


def _batch(dsn: str, **env) -> subprocess.Popen:
    full = {**os.environ, "PYTHONPATH": _SRC, "DATABASE_URL": dsn, "BATCH_DATE": "2026-11-24",
            "BATCH_WINDOW": "60", **{k: str(v) for k, v in env.items()}}
    return subprocess.Popen([sys.executable, "-m", "tradingstack.batch"], env=full, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _snapshot(dsn: str):
    with psycopg.connect(dsn) as conn:
        return (conn.execute("SELECT id, cash, buying_power FROM accounts ORDER BY id").fetchall(),
                conn.execute("SELECT account_id, symbol, quantity, available FROM positions "
                             "ORDER BY account_id, symbol").fetchall(),
                conn.execute("SELECT count(*) FROM executions WHERE settled_run IS NULL").fetchone()[0])


def test_batch_killed_halfway_and_resumed_equals_uninterrupted_run(postgres):
    from tradingstack.schema import apply

    postgres.create_role("trading")
    postgres.create_database("template_day", owner="trading")
    template = postgres.dsn("template_day", "trading")
    apply(template, accounts=50)
    _populate(template, 2000)
    for name in ("clean", "crashed"):
        postgres.create_database(name, owner="trading", template="template_day")
    clean, crashed = postgres.dsn("clean", "trading"), postgres.dsn("crashed", "trading")

    out, _ = _batch(clean, BATCH_CHUNK=100).communicate(timeout=60)
    assert '"event": "finished"' in out, out

    runner = _batch(crashed, BATCH_CHUNK=50, BATCH_CHUNK_PAUSE=0.03)
    try:
        deadline = time.monotonic() + 30
        while True:
            with psycopg.connect(crashed, autocommit=True) as conn:
                row = conn.execute("SELECT processed, total FROM batch_runs").fetchone()
            if row and row[0] >= row[1] // 2:
                break
            assert time.monotonic() < deadline and runner.poll() is None, "batch never got halfway"
            time.sleep(0.02)
        runner.send_signal(signal.SIGKILL)
    finally:
        runner.kill()
        runner.wait(10)
    with psycopg.connect(crashed) as conn:
        status, processed, total = conn.execute("SELECT status, processed, total FROM batch_runs").fetchone()
    assert status == "running" and 0 < processed < total == 2000

    out, _ = _batch(crashed, BATCH_CHUNK=50).communicate(timeout=60)
    assert '"event": "resume"' in out and '"event": "finished"' in out, out
    assert _snapshot(crashed) == _snapshot(clean)
    assert _snapshot(clean)[2] == 0
    with psycopg.connect(crashed) as conn:
        chunks, attempts, margin = conn.execute(
            "SELECT (SELECT sum(executions) FROM batch_chunks), attempts, margin_s FROM batch_runs").fetchone()
    assert chunks == 2000 and attempts == 2 and 0 < margin < 60
    out, _ = _batch(crashed).communicate(timeout=60)
    assert '"processed": 2000' in out and _snapshot(crashed) == _snapshot(clean)
    assert check_integrity(crashed, []) == []
    assert check_integrity(clean, []) == []


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_silent_exchange_raises_the_execution_delay_alert(stack_factory):
    stack = stack_factory(service_env={"gateway": {"EXEC_DELAY_ALERT": "0.5", "MONITOR_INTERVAL": "0.2"}})
    assert httpx.post(stack.exchange_url + "/admin/mode", json={"silent": True}).json()["silent"] is True
    result = place_canary_order(stack.gateway_url, timeout=2)
    assert result.ok
    started = time.monotonic()
    _wait_for(lambda: "execution_delay" in httpx.get(stack.gateway_url + "/health/ready").json()["alerts"], 5,
              "the execution-delay alert")
    assert time.monotonic() - started < 3
    httpx.post(stack.exchange_url + "/admin/mode", json={"silent": False})
    _wait_for(lambda: "execution_delay" not in httpx.get(stack.gateway_url + "/health/ready").json()["alerts"], 10,
              "the alert to clear")
    assert check_integrity(stack.dsn, [result.ack], settle_s=0) == []


def test_price_drop_sets_off_stop_orders_and_a_crashed_exchange_fills_nothing_twice(stack):
    with httpx.Client(base_url=stack.gateway_url, timeout=5) as client:
        price = httpx.get(stack.exchange_url + "/prices").json()["XOM"]
        coids = [f"stop-{i}" for i in range(20)]
        for i, coid in enumerate(coids):
            body = {"client_order_id": coid, "account": 1 + i, "symbol": "XOM", "side": "sell", "type": "stop",
                    "quantity": 10, "price": round(price * (0.93 + i * 0.002), 2)}
            assert client.post("/orders", json=body).status_code == 201
        _wait_for(lambda: _count_sql(stack.dsn, "SELECT count(*) FROM orders WHERE status = 'sent'") == 20, 10,
                  "stops resting at the exchange")
        stack.kill("exchange")  # SIGKILL: the restarted exchange replays its journal
        stack.start_service("exchange")
        httpx.post(stack.exchange_url + "/admin/price", json={"symbol": "XOM", "move_pct": -9})
        _wait_for(lambda: _count_sql(stack.dsn, "SELECT count(*) FROM orders WHERE status = 'filled'") == 20, 15,
                  "the stop cascade to be recorded")
    metrics = httpx.get(stack.exchange_url + "/metrics").text
    assert "exchange_fills_total 20" in metrics
    assert _count_sql(stack.dsn, "SELECT count(*) FROM executions") == 20
    assert check_integrity(stack.dsn, coids, settle_s=0) == []


def _count_sql(dsn: str, sql: str) -> int:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql).fetchone()[0]


def _recovery_after_db_restart(stack) -> float:
    """Seconds from the database accepting connections again to the first acknowledged order."""
    assert place_canary_order(stack.gateway_url, timeout=2).ok
    stack.postgres.stop(mode="fast")
    down_until = time.monotonic() + 2.0
    with httpx.Client(timeout=1) as client:
        while time.monotonic() < down_until:
            place_canary_order(stack.gateway_url, timeout=1, client=client)
            time.sleep(0.05)
        stack.postgres.start()
        back = time.monotonic()
        while not place_canary_order(stack.gateway_url, timeout=1, client=client).ok:
            assert time.monotonic() - back < 40, "never recovered"
            time.sleep(0.05)
    return time.monotonic() - back


def test_weak_profile_recovers_measurably_slower_from_a_database_restart(stack_factory):
    # Three restarts each: the weak profile recovers when a backoff-delayed retry happens to
    # come after the restart, so one restart alone can land early (0.02 s once in CI).
    strong_stack = stack_factory(with_router=False)
    strong = [_recovery_after_db_restart(strong_stack) for _ in range(3)]
    weak_stack = stack_factory(with_router=False, env={"TRADINGSTACK_PROFILE": "weak"})
    weak = [_recovery_after_db_restart(weak_stack) for _ in range(3)]
    print(f"recovery after a database restart: strong {strong}, weak {weak}")
    assert max(strong) < 1.5, strong
    assert sum(weak) / 3 > max(strong) + 0.5, (strong, weak)


def test_concurrent_starters_apply_the_schema_once(postgres):
    from concurrent.futures import ThreadPoolExecutor

    from tradingstack.schema import MIGRATIONS, apply

    postgres.create_role("trading")
    postgres.create_database("trading", owner="trading")
    dsn = postgres.dsn("trading", "trading")
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: apply(dsn, accounts=20), range(4)))
    versions = tuple(version for version, _sql in MIGRATIONS)
    assert versions[0] == 1 and sorted(map(tuple, results)) == [(), (), (), versions]
    assert _count_sql(dsn, "SELECT count(*) FROM accounts") == 20
    assert _count_sql(dsn, "SELECT count(*) FROM schema_migrations") == len(MIGRATIONS)


def test_lock_on_the_order_table_gives_clear_errors_and_not_ready_then_recovers(stack):
    client = httpx.Client(base_url=stack.gateway_url, timeout=10)
    assert place_canary_order(stack.gateway_url, timeout=2).ok
    holder = psycopg.connect(stack.dsn)
    try:
        holder.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
        answers = []
        for i in range(3):
            started = time.perf_counter()
            response = client.post("/orders", json={"client_order_id": f"locked-{i}", "account": 4, "symbol": "T",
                                                    "side": "buy", "type": "market", "quantity": 1})
            answers.append((response.status_code, response.json().get("error"), time.perf_counter() - started))
        assert all(status == 504 and error == "database_timeout" and took < 3.0
                   for status, error, took in answers), answers
        ready = client.get("/health/ready")
        assert ready.status_code == 503 and "order_intake_failing" in ready.json()["alerts"]
    finally:
        holder.rollback()
        holder.close()
    _wait_for(lambda: place_canary_order(stack.gateway_url, timeout=1).ok, 10, "intake to recover")
    _wait_for(lambda: client.get("/health/ready").status_code == 200, 5, "ready again")
    client.close()


def test_read_only_database_refuses_writes_cleanly_and_serves_reads(stack):
    with psycopg.connect(stack.postgres.dsn(), autocommit=True) as admin:
        admin.execute("ALTER DATABASE trading SET default_transaction_read_only = on")
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'trading' "
                      "AND pid <> pg_backend_pid()")
    client = httpx.Client(base_url=stack.gateway_url, timeout=10)
    try:
        for i in range(3):
            response = client.post("/orders", json={"client_order_id": f"ro-{i}", "account": 4, "symbol": "T",
                                                    "side": "buy", "type": "market", "quantity": 1})
            assert response.status_code == 503 and response.json()["error"] == "database_read_only", response.text
        assert client.get("/accounts/4").status_code == 200
        ready = client.get("/health/ready")
        assert ready.status_code == 503
        assert {"order_intake_failing", "database_read_only"} <= set(ready.json()["alerts"])
    finally:
        with psycopg.connect(stack.postgres.dsn(), autocommit=True) as admin:
            admin.execute("ALTER DATABASE trading RESET default_transaction_read_only")
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'trading' "
                          "AND pid <> pg_backend_pid()")
    _wait_for(lambda: place_canary_order(stack.gateway_url, timeout=1).ok, 10, "writes to be accepted again")
    client.close()
