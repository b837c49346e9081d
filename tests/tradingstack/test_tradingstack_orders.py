"""Order intake against the real stack: idempotency, crashes, exchange outage, integrity."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import psycopg
import pytest

from tradingstack.drill import check_integrity, place_canary_order, wait_settled

pytestmark = pytest.mark.processes


def _order(coid: str, **overrides) -> dict:
    return {"client_order_id": coid, "account": 7, "symbol": "KO", "side": "buy", "type": "market",
            "quantity": 3, **overrides}


def _count(dsn: str, sql: str, *params):
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql, params).fetchone()[0]


def test_same_client_order_id_twice_creates_one_order(stack):
    with httpx.Client(base_url=stack.gateway_url, timeout=5) as client:
        first = client.post("/orders", json=_order("dup-1"))
        second = client.post("/orders", json=_order("dup-1"))
        other = client.post("/orders", json=_order("dup-1", quantity=4))
    assert first.status_code == 201 and second.status_code == 200
    assert first.json()["order_id"] == second.json()["order_id"]
    assert other.status_code == 409 and other.json()["error"] == "client_order_id_conflict"
    assert _count(stack.dsn, "SELECT count(*) FROM orders WHERE client_order_id = 'dup-1'") == 1
    assert _count(stack.dsn, "SELECT count(*) FROM outbox") == 1


def test_concurrent_duplicates_create_one_order_each(stack):
    coids = [f"race-{i}" for i in range(10)]

    async def burst():
        async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=10) as client:
            calls = [client.post("/orders", json=_order(c, account=1 + i % 5))
                     for i, c in enumerate(coids) for _ in range(8)]
            return await asyncio.gather(*calls)

    responses = asyncio.run(burst())
    assert sorted({r.status_code for r in responses}) == [200, 201]
    by_coid: dict[str, set[int]] = {}
    for r in responses:
        by_coid.setdefault(r.json()["client_order_id"], set()).add(r.json()["order_id"])
    assert all(len(ids) == 1 for ids in by_coid.values()) and len(by_coid) == 10
    assert sum(r.status_code == 201 for r in responses) == 10
    assert _count(stack.dsn, "SELECT count(*) FROM orders") == 10
    wait_settled(stack.dsn, 10)
    assert check_integrity(stack.dsn, coids) == []


def test_risk_check_rejects_and_cancel_releases(stack):
    with httpx.Client(base_url=stack.gateway_url, timeout=5) as client:
        too_big = client.post("/orders", json=_order("big", symbol="NVDA", quantity=1_000_000))
        assert too_big.status_code == 422 and too_big.json()["reason"] == "insufficient buying power"
        assert client.post("/orders", json=_order("big", symbol="NVDA", quantity=1_000_000)).status_code == 422
        short = client.post("/orders", json=_order("short", side="sell", quantity=5000))
        assert short.status_code == 422 and short.json()["reason"] == "insufficient position"
        assert client.post("/orders", json={"client_order_id": "x"}).status_code == 400
        for bad in ({"client_order_id": "nul\u0000"}, {"account": 2**63}, {"symbol": "K\u0000"}):
            refused = client.post("/orders", json=_order("bad", **bad))
            assert refused.status_code == 400 and refused.json()["error"] == "invalid_order", bad
        resting = client.post("/orders", json=_order("rest", type="limit", price=1.0)).json()
        before = client.get("/accounts/7").json()["buying_power"]
        assert client.delete(f"/orders/{resting['order_id']}").status_code == 202
        deadline = time.monotonic() + 10
        while client.get(f"/orders/{resting['order_id']}").json()["status"] != "cancelled":
            assert time.monotonic() < deadline, "cancel not confirmed"
            time.sleep(0.05)
        assert client.get("/accounts/7").json()["buying_power"] == pytest.approx(before + 3.0)
        assert client.delete(f"/orders/{resting['order_id']}").status_code == 409
    assert check_integrity(stack.dsn, ["rest"]) == []


def test_concurrent_orders_share_commits_and_each_is_acknowledged_after_its_own(stack):
    import asyncpg

    coids = [f"group-{i}" for i in range(200)]

    async def burst():
        # Each acknowledgement is checked from another connection the moment it arrives: the
        # order must already be committed, with its outbox entry.
        unseen = []
        async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=10,
                                     limits=httpx.Limits(max_connections=200)) as client:
            checker = await asyncpg.connect(stack.dsn)
            lock = asyncio.Lock()

            async def place(i: int, coid: str):
                response = await client.post("/orders", json=_order(coid, account=1 + i % 50))
                async with lock:
                    found = await checker.fetchval(
                        "SELECT count(*) FROM orders o JOIN outbox x ON x.order_id = o.id "
                        "WHERE o.client_order_id = $1", coid)
                if response.status_code == 201 and found != 1:
                    unseen.append(coid)
                return response

            try:
                responses = await asyncio.gather(*(place(i, c) for i, c in enumerate(coids)))
            finally:
                await checker.close()
        return responses, unseen

    responses, unseen = asyncio.run(burst())
    assert [r.status_code for r in responses] == [201] * 200
    assert unseen == []
    assert [r.json()["client_order_id"] for r in responses] == coids
    assert len({r.json()["order_id"] for r in responses}) == 200
    metrics = httpx.get(stack.gateway_url + "/metrics").text
    commits = _metric(metrics, "gateway_order_batch_size_count")
    assert _metric(metrics, "gateway_order_batch_size_sum") == 200
    assert commits <= 50, f"200 concurrent orders took {commits:g} commits (4 or more orders each expected)"
    assert _count(stack.dsn, "SELECT count(*) FROM orders WHERE client_order_id LIKE 'group-%%'") == 200
    assert _count(stack.dsn, "SELECT count(*) FROM outbox WHERE kind = 'new'") == 200
    wait_settled(stack.dsn, 20)
    assert check_integrity(stack.dsn, coids) == []


def test_groups_reusing_client_order_ids_in_opposite_orders_do_not_deadlock(stack):
    """Two groups insert the same ids for different accounts, listed in opposite orders."""
    import asyncpg

    sql = ("SELECT batch_index, status, created FROM place_orders($1::text[], $2::bigint[], $3::text[], "
           "$4::text[], $5::text[], $6::bigint[], $7::numeric[], $8::numeric[], 0.05)")

    def group(coids: list[str], first_account: int) -> list:
        n = len(coids)
        return [coids, list(range(first_account, first_account + n)), ["KO"] * n, ["buy"] * n,
                ["market"] * n, [1] * n, [None] * n, [None] * n]

    async def rounds():
        a, b = await asyncpg.connect(stack.dsn), await asyncpg.connect(stack.dsn)
        try:
            for r in range(10):
                coids = [f"rev-{r}-{i:02d}" for i in range(32)]
                # Listed in opposite orders, each group would wait on the other's unique-index
                # entries: a deadlock PostgreSQL breaks after deadlock_timeout (1 s) with an error.
                first, second = await asyncio.gather(a.fetch(sql, *group(coids, 1), timeout=5),
                                                     b.fetch(sql, *group(coids[::-1], 100), timeout=5))
                assert [row["batch_index"] for row in first] == sorted(row["batch_index"] for row in first)
                assert sum(row["created"] for row in first + second) == 32
        finally:
            await a.close()
            await b.close()

    asyncio.run(rounds())


def _metric(text: str, name: str) -> float:
    return next(float(line.split()[1]) for line in text.splitlines() if line.startswith(name + " "))


async def _load(url: str, seconds: float, workers: int, acked: list[str], errors: list[str],
                until: asyncio.Event | None = None) -> None:
    deadline = time.monotonic() + seconds

    async def worker(n: int):
        async with httpx.AsyncClient(base_url=url, timeout=3) as client:
            while time.monotonic() < deadline and not (until is not None and until.is_set()):
                coid = f"burst-{n}-{uuid.uuid4().hex[:12]}"
                body = _order(coid, account=1 + n, symbol=("T", "KO", "PFE", "VZ")[n % 4],
                              side="buy" if n % 2 else "sell")
                try:
                    response = await client.post("/orders", json=body)
                except httpx.HTTPError as exc:
                    errors.append(type(exc).__name__)
                    await asyncio.sleep(0.02)
                    continue
                if response.status_code in (200, 201):
                    acked.append(coid)
                else:
                    errors.append(str(response.status_code))

    await asyncio.gather(*(worker(n) for n in range(workers)))


def test_gateway_sigkill_mid_burst_loses_no_acknowledged_order(stack):
    acked: list[str] = []
    errors: list[str] = []

    async def scenario():
        load = asyncio.create_task(_load(stack.gateway_url, 30.0, 8, acked, errors, until=done))
        # mid-burst: once orders are flowing (a loaded machine needs longer than an idle one)
        deadline = time.monotonic() + 15.0
        while len(acked) <= 20 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        stack.kill("gateway")
        killed_at = len(acked)
        await asyncio.to_thread(stack.start_service, "gateway")
        deadline = time.monotonic() + 15.0
        while len(acked) <= killed_at + 20 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        done.set()
        await load
        return killed_at

    done = asyncio.Event()
    killed_at = asyncio.run(scenario())
    assert killed_at > 20 and len(acked) > killed_at, (killed_at, len(acked))
    assert errors, "the kill should have cut some requests"
    assert wait_settled(stack.dsn, 20)["settled"]
    assert check_integrity(stack.dsn, acked) == []
    with psycopg.connect(stack.dsn) as conn:
        statuses = dict(conn.execute("SELECT status, count(*) FROM orders WHERE client_order_id = ANY(%s) "
                                     "GROUP BY status", (acked,)).fetchall())
    assert set(statuses) <= {"filled", "rejected"} and sum(statuses.values()) == len(set(acked))


def test_exchange_down_orders_queue_then_drain_exactly_once(stack_factory):
    stack = stack_factory(service_env={"gateway": {"OUTBOX_AGE_ALERT": "0.5", "MONITOR_INTERVAL": "0.2"}})
    stack.kill("exchange")
    with httpx.Client(base_url=stack.gateway_url, timeout=5) as client:
        coids = [f"queued-{i}" for i in range(60)]
        for i, coid in enumerate(coids):
            response = client.post("/orders", json=_order(coid, account=1 + i % 10))
            assert response.status_code == 201, response.text
        deadline = time.monotonic() + 10
        while True:
            ready = client.get("/health/ready").json()
            if "outbox_backlog_age" in ready["alerts"] and ready.get("outbox_backlog") == 60:
                break
            assert time.monotonic() < deadline, f"backlog alert never raised: {ready}"
            time.sleep(0.1)
        assert ready["exchange_link"] == "degraded"
        assert client.post("/orders", json=_order("still-open", account=11)).status_code == 201
        coids.append("still-open")
    assert _count(stack.dsn, "SELECT count(*) FROM executions") == 0
    stack.start_service("exchange")
    assert wait_settled(stack.dsn, 30)["settled"]
    assert _count(stack.dsn, "SELECT count(*) FROM executions WHERE order_id IN "
                             "(SELECT id FROM orders WHERE client_order_id LIKE 'queued-%%')") == 60
    assert _count(stack.dsn, "SELECT count(DISTINCT order_id) FROM executions") == 61
    assert check_integrity(stack.dsn, coids) == []


def test_router_crash_backlog_drains_on_restart(stack):
    stack.kill("router")
    with httpx.Client(base_url=stack.gateway_url, timeout=5) as client:
        coids = []
        for i in range(30):
            result = place_canary_order(stack.gateway_url, timeout=2, account=1 + i, client=client)
            assert result.ok and result.ack, result
            coids.append(result.ack)
    stack.start_service("router")
    assert wait_settled(stack.dsn, 20)["settled"]
    assert check_integrity(stack.dsn, coids) == []


def test_integrity_check_reports_lost_and_mismatch(stack):
    with httpx.Client(base_url=stack.gateway_url, timeout=5) as client:
        assert client.post("/orders", json=_order("real")).status_code == 201
    wait_settled(stack.dsn, 10)
    with psycopg.connect(stack.dsn, autocommit=True) as conn:
        conn.execute("UPDATE accounts SET buying_power = buying_power + 1 WHERE id = 3")
    kinds = {v.kind for v in check_integrity(stack.dsn, ["real", "ghost"])}
    assert kinds == {"lost", "cash_mismatch"}


def test_the_exported_end_state_gives_the_live_check_s_answers_and_every_order_s_outcome(stack, tmp_path):
    """The integrity check re-performed offline on the exported end state (what `faultlab
    verify --recompute` runs) finds what the SQL check finds on the live database."""
    from tradingstack.endstate import check_state, export_state

    with httpx.Client(base_url=stack.gateway_url, timeout=5) as client:
        assert client.post("/orders", json=_order("real")).status_code == 201
        assert client.post("/orders", json={**_order("resting"), "type": "limit", "price": 1.0}).status_code == 201
    wait_settled(stack.dsn, 10)
    with psycopg.connect(stack.dsn, autocommit=True) as conn:
        conn.execute("UPDATE accounts SET buying_power = buying_power + 1 WHERE id = 3")
        conn.execute("UPDATE positions SET quantity = quantity - 2 WHERE account_id = 4 AND symbol = 'MSFT'")
    live = sorted((v.kind, v.detail) for v in check_integrity(stack.dsn, ["real", "resting", "ghost"]))
    export_state(stack.dsn, tmp_path / "state")
    found, outcomes = check_state(tmp_path / "state", ["real", "resting", "ghost"], ["timed-out", "real"])
    assert sorted((f.kind, f.detail) for f in found) == live
    assert {kind for kind, _ in live} == {"lost", "cash_mismatch", "settled_position_mismatch", "position_mismatch"}
    assert outcomes == {"real": "executed", "resting": "resting", "ghost": "absent", "timed-out": "absent"}
