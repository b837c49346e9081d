"""The order router: outbox -> exchange, executions -> database, exactly once.

Run with ``python -m tradingstack.router`` (its own process, so it can be killed alone).
Four loops share one asyncpg pool and one HTTP session:

- *send*: reads unsent outbox entries in id order, sends new orders and cancels to the
  exchange in batches (timeout, retries with exponential backoff, a circuit breaker), then
  records the answers and marks the entries sent in one transaction. A crash between the two
  only means the batch is sent again; the exchange is idempotent on order id.
- *fills*: long-polls ``GET /fills?after=N`` and records each execution with
  ``record_fill`` (a no-op for an execution already recorded: keyed by execution id and by
  order id); the cursor is committed with the executions.
- *reconcile*: asks the exchange about orders sent a while ago and still open; records fills
  it missed and sends again what a restarted exchange forgot.
- *heartbeat*: once a second, the timestamp the gateway's readiness reads (and, once at
  start, its start time: the gateway's monitor sees a restart from it).

Environment (defaults for ``TRADINGSTACK_PROFILE=strong`` / ``weak``):

===========================  ==========  ======  ============================================
``DATABASE_URL``             required            libpq URL of the trading database
``EXCHANGE_URL``             required            e.g. ``http://127.0.0.1:9100``
``ROUTER_PORT``              unset               serve /health/live, /health/ready, /metrics
``ROUTER_HOST``              127.0.0.1           the address it serves them on (0.0.0.0 in a container)
``ROUTER_BATCH``             500                 outbox entries per exchange request
``ROUTER_POLL_MS``           20                  outbox poll period when idle
``EXCHANGE_TIMEOUT``         5.0 s       30 s    one exchange request (a slow link still delivers)
``ROUTER_BACKOFF_BASE``      0.05 s      2 s     retry backoff base (exchange and database)
``ROUTER_BACKOFF_MAX``       1.0 s       30 s    retry backoff cap
``ROUTER_CB_THRESHOLD``      3           0 (off) consecutive exchange failures opening the circuit
``RECONCILE_INTERVAL``       2.0 s               period of the reconcile loop
``RECONCILE_AGE``            3.0 s               age of a sent, open order before it is checked
``DB_CONNECT_TIMEOUT``       1.0 s       10 s    per database connection attempt
``DB_STATEMENT_TIMEOUT``     5.0 s       30 s    per statement
``LOG_LEVEL``                INFO                Python logging level
===========================  ==========  ======  ============================================
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    import aiohttp
    import asyncpg

__all__ = ["Router", "main"]

log = logging.getLogger("tradingstack.router")


class Router:
    """The router's loops and state."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram  # noqa: PLC0415

        from tradingstack.resilience import CircuitBreaker, profile, setting  # noqa: PLC0415

        env = os.environ
        self.database_url = env["DATABASE_URL"]
        self.exchange_url = env["EXCHANGE_URL"].rstrip("/")
        self.port = int(env["ROUTER_PORT"]) if env.get("ROUTER_PORT") else None
        self.host = env.get("ROUTER_HOST") or "127.0.0.1"
        self.profile = profile()
        self.batch = int(setting("ROUTER_BATCH", 500))
        self.poll = setting("ROUTER_POLL_MS", 20) / 1000
        self.exchange_timeout = setting("EXCHANGE_TIMEOUT", 5.0, 30.0)
        self.backoff_base = setting("ROUTER_BACKOFF_BASE", 0.05, 2.0)
        self.backoff_max = setting("ROUTER_BACKOFF_MAX", 1.0, 30.0)
        self.reconcile_interval = setting("RECONCILE_INTERVAL", 2.0)
        self.reconcile_age = setting("RECONCILE_AGE", 3.0)
        self.connect_timeout = setting("DB_CONNECT_TIMEOUT", 1.0, 10.0)
        self.statement_timeout = setting("DB_STATEMENT_TIMEOUT", 5.0, 30.0)
        # The longest one step of a loop may take: a pooled connection, a few statements and a
        # round trip to the exchange, with room to spare; past it the step is cancelled and retried.
        self.step_timeout = 3 * (self.connect_timeout + self.statement_timeout) + self.exchange_timeout

        self.pool: asyncpg.Pool | None = None
        self.http: aiohttp.ClientSession | None = None
        self.reconcile_after = 0
        self.exchange_ok_at = 0.0
        self.db_ok_at = 0.0
        r = self.registry = CollectorRegistry()
        self.sent = Counter("router_orders_sent", "Outbox entries delivered to the exchange", ["kind"], registry=r)
        self.fills = Counter("router_executions_recorded", "Executions recorded (new only)", ["via"], registry=r)
        self.duplicates = Counter("router_executions_duplicate", "Executions seen again and ignored", registry=r)
        self.errors = Counter("router_errors", "Failures by dependency", ["dependency"], registry=r)
        self.circuit = Gauge("router_exchange_circuit_state", "0 closed, 1 half-open, 2 open", registry=r)
        self.batch_seconds = Histogram("router_send_batch_seconds", "Exchange round trip of one batch",
                                       registry=r)
        self.exec_delay = Histogram("router_execution_delay_seconds", "Order acceptance to recorded execution",
                                    buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 300),
                                    registry=r)
        self.resent = Counter("router_orders_resent", "Orders sent again after the exchange forgot them",
                              registry=r)
        self.transitions = Counter("router_exchange_circuit_transitions", "Exchange circuit breaker transitions "
                                   "by the state entered", ["to"], registry=r)
        for state in CircuitBreaker.STATES:
            self.transitions.labels(state)  # at zero from the start, so the first transition shows
        self.breaker = CircuitBreaker("exchange", int(setting("ROUTER_CB_THRESHOLD", 3, 0)),
                                      self.backoff_base, self.backoff_max, on_change=self._circuit_changed)

    def _circuit_changed(self, state: str) -> None:
        self.transitions.labels(state).inc()
        self.circuit.set({"closed": 0, "half_open": 1, "open": 2}[state])
        log.info("exchange circuit %s", state)

    # -- plumbing -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Wait for the schema, open the pool and the HTTP session."""
        import aiohttp  # noqa: PLC0415
        import asyncpg  # noqa: PLC0415

        from tradingstack.resilience import backoff_delay  # noqa: PLC0415
        from tradingstack.schema import apply_async  # noqa: PLC0415

        attempt = 0
        while True:
            try:
                await apply_async(self.database_url, connect_timeout=self.connect_timeout)
                self.pool = await asyncpg.create_pool(
                    self.database_url, min_size=1, max_size=4, timeout=self.connect_timeout,
                    command_timeout=self.statement_timeout, reset=_keep_session,
                    server_settings={"statement_timeout": str(int(self.statement_timeout * 1000)),
                                     "application_name": "tradingstack.router"})
                # Its start time, so the gateway's monitor sees a restart the supervisor hid.
                await self.pool.execute(
                    "INSERT INTO router_state (name, value) VALUES ('started', clock_timestamp()::text) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value")
                break
            except Exception as exc:  # noqa: BLE001  (keep trying until the database is there)
                log.warning("database not available yet: %s", exc)
                await asyncio.sleep(backoff_delay(attempt, 0.1, 2.0))
                attempt += 1
        self.http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.exchange_timeout),
            connector=aiohttp.TCPConnector(limit=8, force_close=False))

    async def stop(self) -> None:
        """Close the HTTP session and the pool."""
        if self.http is not None:
            await self.http.close()
        if self.pool is not None:
            self.pool.terminate()

    @property
    def _session(self) -> aiohttp.ClientSession:
        if self.http is None:
            raise RuntimeError("the router's HTTP session is not open: start() first")
        return self.http

    @contextlib.asynccontextmanager
    async def _conn(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection that is dropped, not handed back, when a statement times out.

        A stalled link leaves the connection mid-statement and may never answer the cancel
        request; waiting for that would starve the pool long after the fault is gone.
        """
        if self.pool is None:
            raise RuntimeError("the router's database pool is not open: start() first")
        async with self.pool.acquire(timeout=self.connect_timeout + self.statement_timeout) as conn:
            try:
                yield conn
            except (TimeoutError, asyncio.CancelledError):
                conn.terminate()
                raise

    async def _exchange(self, method: str, path: str, payload=None, timeout: float | None = None):
        import aiohttp  # noqa: PLC0415

        self.breaker.check()
        try:
            # orjson both ways: batches of hundreds of orders and fills are the router's main cost.
            kwargs: dict[str, Any] = ({"data": orjson.dumps(payload), "headers": _JSON_HEADERS}
                                      if payload is not None else {})
            if timeout is not None:
                kwargs["timeout"] = aiohttp.ClientTimeout(total=timeout)
            async with self._session.request(method, self.exchange_url + path, **kwargs) as resp:
                if resp.status >= 500:
                    raise aiohttp.ClientResponseError(resp.request_info, (), status=resp.status)
                body = await resp.json(loads=orjson.loads)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            self.breaker.failure()
            self.errors.labels("exchange").inc()
            raise
        self.breaker.success()
        self.exchange_ok_at = time.monotonic()
        self.circuit.set(self.breaker.code)
        return body

    async def _retrying(self, name: str, step):
        """Run ``step()`` forever with backoff between failures; returns when cancelled.

        A step that takes longer than ``step_timeout`` is cancelled (its connection dropped) and
        retried, and any other error is logged with its traceback and retried too: a loop that
        hung or died here would stop the router's work without a word (in one quarterly drill,
        FT-03 left 2,280 orders unsent after a fast database restart while the heartbeat went on)."""
        import aiohttp  # noqa: PLC0415
        import asyncpg  # noqa: PLC0415

        from tradingstack.resilience import CircuitOpen, backoff_delay  # noqa: PLC0415

        failures = 0
        while True:
            try:
                async with asyncio.timeout(self.step_timeout):
                    idle = await step()
                failures = 0
                if idle:
                    await asyncio.sleep(idle)
            except asyncio.CancelledError:
                raise
            except CircuitOpen as exc:
                self.circuit.set(self.breaker.code)
                await asyncio.sleep(max(self.poll, min(exc.retry_after, self.backoff_max)))
            except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
                await asyncio.sleep(0.01)
            except (aiohttp.ClientError, TimeoutError, OSError, asyncpg.PostgresError,
                    asyncpg.InterfaceError, ValueError) as exc:
                if isinstance(exc, (asyncpg.PostgresError, asyncpg.InterfaceError)):
                    self.errors.labels("database").inc()
                self.circuit.set(self.breaker.code)
                log.warning("%s: %s: %s", name, type(exc).__name__, exc)
                await asyncio.sleep(backoff_delay(failures, self.backoff_base, self.backoff_max))
                failures += 1
            except Exception:  # noqa: BLE001 - a loop that dies silently stops the router's work for good
                self.errors.labels("unexpected").inc()
                log.exception("%s: unexpected error; the loop goes on", name)
                await asyncio.sleep(backoff_delay(failures, self.backoff_base, self.backoff_max))
                failures += 1

    # -- the loops --------------------------------------------------------------------------------

    async def send_step(self) -> float:
        """Deliver one batch of outbox entries; returns how long to idle (0 when busy)."""
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT x.id, x.kind, o.id AS order_id, o.symbol, o.side, o.type, o.quantity, o.limit_price, "
                "o.stop_price FROM outbox x JOIN orders o ON o.id = x.order_id WHERE x.sent_at IS NULL "
                "ORDER BY x.id LIMIT $1", self.batch)
        self.db_ok_at = time.monotonic()
        if not rows:
            return self.poll
        news = [r for r in rows if r["kind"] == "new"]
        cancels = [r for r in rows if r["kind"] == "cancel"]
        started = time.monotonic()
        new_results, cancel_results = [], []
        if news:
            payload = {"orders": [{"order_id": r["order_id"], "symbol": r["symbol"], "side": r["side"],
                                   "type": r["type"], "quantity": r["quantity"],
                                   "limit_price": _f(r["limit_price"]), "stop_price": _f(r["stop_price"])}
                                  for r in news]}
            new_results = (await self._exchange("POST", "/orders", payload))["results"]
        if cancels:
            cancel_results = (await self._exchange(
                "POST", "/cancels", {"order_ids": [r["order_id"] for r in cancels]}))["results"]
        self.batch_seconds.observe(time.monotonic() - started)
        async with self._conn() as conn, conn.transaction():
            fills = [r["fill"] for r in new_results + cancel_results if r["status"] == "filled" and r.get("fill")]
            closing = [r["order_id"] for r in new_results if r["status"] in ("rejected", "cancelled")]
            closing += [r["order_id"] for r in cancel_results if r["status"] in ("cancelled", "unknown")]
            sent_ids = [r["order_id"] for r in new_results if r["status"] == "resting"]
            await _lock_accounts(conn, [int(f["order_id"]) for f in fills] + closing + sent_ids)
            await self._record(conn, fills, "send", locked=True)
            if sent_ids:
                await conn.execute("UPDATE orders SET status = 'sent', sent_at = coalesce(sent_at, clock_timestamp()) "
                                   "WHERE id = ANY($1::bigint[]) AND status IN ('accepted', 'sent')", sent_ids)
            for r in new_results:
                if r["status"] in ("rejected", "cancelled"):
                    await conn.execute("SELECT close_order($1, $2, $3)", r["order_id"], r["status"],
                                       r.get("reason") or f"{r['status']} by the exchange")
            for r in cancel_results:
                if r["status"] in ("cancelled", "unknown"):
                    await conn.execute("SELECT close_order($1, 'cancelled', 'cancelled on request')", r["order_id"])
            await conn.execute("UPDATE outbox SET sent_at = clock_timestamp(), attempts = attempts + 1 "
                               "WHERE id = ANY($1::bigint[])", [r["id"] for r in rows])
        self.sent.labels("new").inc(len(news))
        self.sent.labels("cancel").inc(len(cancels))
        return 0.0 if len(rows) == self.batch else self.poll

    async def fills_step(self) -> float:
        """Catch up with the exchange's fill log (long poll); returns how long to idle."""
        async with self._conn() as conn:
            cursor = await conn.fetchval("SELECT value FROM router_state WHERE name = 'fill_cursor'")
        epoch, _, seq = (cursor or ":0").partition(":")
        # Immediate fills come back in the send answer (and again on a resend after a crash).
        body = await self._exchange("GET", f"/fills?after={int(seq)}&wait=1&limit=5000&deferred_only=1",
                                    timeout=self.exchange_timeout + 1.5)
        if body["epoch"] != epoch:
            if cursor is not None and int(seq):
                log.warning("exchange epoch changed (%s -> %s): reading its fills from the start",
                            epoch, body["epoch"])
            body = await self._exchange("GET", "/fills?after=0&limit=5000&deferred_only=1")
        async with self._conn() as conn, conn.transaction():
            await self._record(conn, body["fills"], "poll")
            await conn.execute(
                "INSERT INTO router_state (name, value) VALUES ('fill_cursor', $1) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value", f"{body['epoch']}:{body['last_seq']}")
        return 0.0

    async def heartbeat_step(self) -> float:
        """Write the heartbeat the gateway's readiness reads."""
        async with self._conn() as conn:
            await conn.execute(
                "INSERT INTO router_state (name, value) VALUES ('heartbeat', clock_timestamp()::text) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value")
        self.db_ok_at = time.monotonic()
        return 1.0

    async def reconcile_step(self) -> float:
        """Check a page of orders sent a while ago that are still open (pages wrap around)."""
        async with self._conn() as conn:
            rows = await conn.fetch(
                "SELECT id FROM orders WHERE status = 'sent' "
                "AND sent_at < clock_timestamp() - make_interval(secs => $1) "
                "AND id > $2 ORDER BY id LIMIT 2000", self.reconcile_age, self.reconcile_after)
        self.reconcile_after = rows[-1]["id"] if len(rows) == 2000 else 0
        if rows:
            body = await self._exchange("POST", "/orders/status", {"order_ids": [r["id"] for r in rows]})
            fills = [r["fill"] for r in body["results"] if r["status"] == "filled" and r.get("fill")]
            unknown = [r["order_id"] for r in body["results"] if r["status"] == "unknown"]
            async with self._conn() as conn, conn.transaction():
                await self._record(conn, fills, "reconcile")
                if unknown:
                    # The exchange lost them (restarted without a journal): send them again.
                    await conn.execute(
                        "INSERT INTO outbox (order_id, kind) SELECT id, 'new' FROM orders o "
                        "WHERE id = ANY($1::bigint[]) AND status = 'sent' "
                        "AND NOT EXISTS (SELECT 1 FROM outbox x WHERE x.order_id = o.id AND x.sent_at IS NULL)",
                        unknown)
                    self.resent.inc(len(unknown))
        return self.reconcile_interval

    async def _record(self, conn, fills: list[dict], via: str, *, locked: bool = False) -> None:
        if not fills:
            return
        if not locked:
            await _lock_accounts(conn, [int(f["order_id"]) for f in fills])
        rows = await conn.fetch(
            "SELECT f.exec_id, record_fill(f.exec_id, f.order_id, f.quantity, f.price, f.executed_at) AS new, "
            "extract(epoch FROM clock_timestamp() - o.created_at)::float8 AS delay "
            "FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::numeric[], $5::timestamptz[]) "
            "WITH ORDINALITY AS f(exec_id, order_id, quantity, price, executed_at, n) "
            "JOIN orders o ON o.id = f.order_id ORDER BY o.account_id, f.n",
            [f["exec_id"] for f in fills], [int(f["order_id"]) for f in fills],
            [int(f["quantity"]) for f in fills], [Decimal(str(f["price"])) for f in fills],
            [datetime.fromisoformat(f["executed_at"]) for f in fills])
        new = [r for r in rows if r["new"]]
        self.fills.labels(via).inc(len(new))
        self.duplicates.inc(len(rows) - len(new))
        for r in new:
            self.exec_delay.observe(max(0.0, r["delay"]))

    # -- health ------------------------------------------------------------------------------------

    def create_app(self):
        """Health and metrics endpoints of the router."""
        from aiohttp import web  # noqa: PLC0415
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest  # noqa: PLC0415

        async def live(request):
            return web.json_response({"live": True})

        async def ready(request):
            now = time.monotonic()
            db_ok = self.db_ok_at and now - self.db_ok_at < 3.0
            body = {"ready": bool(db_ok), "exchange_circuit": self.breaker.state,
                    "exchange_last_ok_age_s": round(now - self.exchange_ok_at, 3) if self.exchange_ok_at else None}
            return web.json_response(body, status=200 if db_ok else 503)

        async def metrics(request):
            self.circuit.set(self.breaker.code)
            return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

        app = web.Application()
        app.router.add_get("/health/live", live)
        app.router.add_get("/health/ready", ready)
        app.router.add_get("/metrics", metrics)
        return app


async def _lock_accounts(conn, order_ids: list[int]) -> None:
    """Lock the accounts of ``order_ids`` in the schema's lock order (see tradingstack.schema)."""
    if order_ids:
        await conn.execute("SELECT lock_order_accounts($1::bigint[])", order_ids)


async def _keep_session(conn) -> None:
    """Pool reset hook that does nothing: the router leaves no session state behind."""


_JSON_HEADERS = {"Content-Type": "application/json"}


def _f(value) -> float | None:
    return None if value is None else float(value)


async def serve() -> None:
    """Run the router until SIGTERM or SIGINT."""
    from aiohttp import web  # noqa: PLC0415

    router = Router()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner = None
    if router.port:
        runner = web.AppRunner(router.create_app(), access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, router.host, router.port).start()
    await router.start()
    print("router running", flush=True)
    tasks = [asyncio.create_task(router._retrying("send", router.send_step)),
             asyncio.create_task(router._retrying("fills", router.fills_step)),
             asyncio.create_task(router._retrying("reconcile", router.reconcile_step)),
             asyncio.create_task(router._retrying("heartbeat", router.heartbeat_step))]
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if runner is not None:
            await runner.cleanup()
        await router.stop()


def main() -> int:
    """Entry point of ``python -m tradingstack.router``."""
    from tradingstack.resilience import run  # noqa: PLC0415

    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(name)s %(message)s")
    run(serve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
