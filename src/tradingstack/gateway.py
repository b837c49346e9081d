"""The order gateway: HTTP JSON order intake in front of PostgreSQL (aiohttp + asyncpg).

Run with ``python -m tradingstack.gateway``. An order is acknowledged only after it is
committed in PostgreSQL together with its outbox entry (one stored-function call, one
transaction, ``synchronous_commit`` on); the router sends it on to the exchange.

Endpoints:

- ``POST /orders`` ``{"client_order_id", "account", "symbol", "side": buy|sell,
  "type": market|limit|stop, "quantity", "price"}`` (``price`` is the limit price of a limit
  order and the trigger of a stop order). 201 accepted; 200 the same order again (retry with
  the same ``client_order_id``, also under concurrent duplicates); 422 rejected by the risk
  check (persisted, so retries get the same answer); 409 same id, different order; 400 bad
  input; 429 over the admission limit; 503 database unavailable or circuit open; 504 the
  database did not answer within the request deadline. Errors are ``{"error", "detail"}``.
- ``GET /orders/{id}``, ``GET /orders/by-client/{client_order_id}``, ``DELETE /orders/{id}``
  (cancel request: 202, the router confirms it with the exchange; 409 if already closed).
- ``GET /accounts/{id}``: cash, buying power, positions.
- ``GET /health/live`` (the process answers), ``GET /health/ready`` (200/503; ready when the
  database answered a probe or a request within ``READY_STALE`` and order requests are not
  all failing: three or more in a row, the last under 2 s ago, as under a lock or with no
  free connection; the body also carries the exchange-link state from the outbox and order
  ages, the router heartbeat, batch progress and ``alerts``), ``GET /metrics`` (Prometheus).

Environment (defaults for ``TRADINGSTACK_PROFILE=strong`` / ``weak``):

==========================  ============  ==========  =======================================
``GATEWAY_PORT``            required                  listens on 127.0.0.1 only
``DATABASE_URL``            required                  libpq URL of the trading database
``TRADINGSTACK_PROFILE``    strong                    ``weak`` = slower recovery (see below)
``DB_CONNECT_TIMEOUT``      1.0 s         10 s        per connection attempt
``DB_STATEMENT_TIMEOUT``    1.5 s         30 s        server statement_timeout and client timeout
``DB_POOL_SIZE``            16            16          pooled connections
``DB_POOL_TIMEOUT``         1.0 s         30 s        waiting for a pooled connection
``REQUEST_TIMEOUT``         2.5 s         60 s        deadline of one request, retries included
``DB_RETRY_BACKOFF_BASE``   0.05 s        2 s         backoff after a lost connection / opening
``DB_RETRY_BACKOFF_MAX``    1.0 s         30 s        backoff cap
``CB_FAILURE_THRESHOLD``    5             1           consecutive DB failures that open the circuit
``ADMISSION_LIMIT``         256           0 (off)     concurrent order requests before 429
``ORDER_BATCH_MAX``         32                        most orders committed in one transaction
``ORDER_BATCH_FLUSHES``     2                         order commits under way at once
``READY_DB_TIMEOUT``        0.4 s                     bound of one readiness probe
``READY_INTERVAL``          0.1 s                     readiness probe period
``READY_STALE``             0.7 s                     not ready when no probe or request succeeded for this long
``MONITOR_INTERVAL``        1.0 s                     outbox / execution / batch statistics period
``OUTBOX_AGE_ALERT``        3.0 s                     oldest unsent outbox entry -> alert
``EXEC_DELAY_ALERT``        3.0 s                     oldest sent, unfilled market order -> alert
``ROUTER_STALE_ALERT``      3.0 s                     router heartbeat age -> alert
``MARKET_BUY_COLLAR``       0.05                      cash reserved above the last price
``SKIP_MIGRATIONS``         unset                     set to 1 to skip applying the schema
``LOG_LEVEL``               INFO                      Python logging level
==========================  ============  ==========  =======================================

The ``strong`` profile also closes the circuit as soon as a readiness probe succeeds again;
the ``weak`` profile waits out its (long) backoff.

Orders are committed in groups (:mod:`tradingstack.orderbatch`): while ``ORDER_BATCH_FLUSHES``
commits are under way, new orders wait for the next one and share it, so a busy gateway pays
one WAL flush for many orders; every order is still acknowledged only after its commit.
``ORDER_BATCH_MAX=1`` commits each order alone. An order with less than 0.1 s of its
``REQUEST_TIMEOUT`` left when a commit could take it gets a 504 and is not written. A failed
group counts one failed request per order towards readiness, while ``CB_FAILURE_THRESHOLD``
counts failed calls to the database (a group is one call).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from decimal import Decimal

import orjson

__all__ = ["GatewaySettings", "create_app", "main"]

log = logging.getLogger("tradingstack.gateway")

_ORDER_COLUMNS = ("id, client_order_id, account_id, symbol, side, type, quantity, limit_price, stop_price, "
                  "status, reason, cancel_requested, fill_price, created_at, sent_at, done_at")


# The orders of one group in one statement (one transaction, one commit); each row carries its
# order's 1-based position in the arrays (batch_index).
_PLACE_SQL = ("SELECT * FROM place_orders($1::text[], $2::bigint[], $3::text[], $4::text[], $5::text[], "
              "$6::bigint[], $7::numeric[], $8::numeric[], $9)")
_PLACE_FIELDS = ("client_order_id", "account", "symbol", "side", "type", "quantity", "limit_price", "stop_price")

_CANCEL_SQL = (
    "WITH flagged AS (UPDATE orders SET cancel_requested = true WHERE id = $1 AND status IN ('accepted', 'sent') "
    f"AND NOT cancel_requested RETURNING {_ORDER_COLUMNS}), "
    "queued AS (INSERT INTO outbox (order_id, kind) SELECT id, 'cancel' FROM flagged) "
    f"SELECT {_ORDER_COLUMNS} FROM flagged")

# Account and positions in one round trip (and one snapshot); positions as the JSON list the
# endpoint returns, in symbol order.
_ACCOUNT_SQL = (
    "SELECT a.id, a.cash, a.buying_power, (SELECT coalesce(json_agg(json_build_object("
    "'symbol', p.symbol, 'quantity', p.quantity, 'available', p.available) ORDER BY p.symbol), '[]')::text "
    "FROM positions p WHERE p.account_id = a.id AND (p.quantity <> 0 OR p.available <> 0)) AS positions "
    "FROM accounts a WHERE a.id = $1")


class GatewaySettings:
    """Every tunable of the gateway, read from the environment once at start."""

    def __init__(self) -> None:
        from tradingstack.resilience import profile, setting  # noqa: PLC0415

        self.port = int(os.environ["GATEWAY_PORT"])
        self.database_url = os.environ["DATABASE_URL"]
        self.profile = profile()
        self.connect_timeout = setting("DB_CONNECT_TIMEOUT", 1.0, 10.0)
        self.statement_timeout = setting("DB_STATEMENT_TIMEOUT", 1.5, 30.0)
        self.pool_size = int(setting("DB_POOL_SIZE", 16, 16))
        self.pool_timeout = setting("DB_POOL_TIMEOUT", 1.0, 30.0)
        self.request_timeout = setting("REQUEST_TIMEOUT", 2.5, 60.0)
        self.backoff_base = setting("DB_RETRY_BACKOFF_BASE", 0.05, 2.0)
        self.backoff_max = setting("DB_RETRY_BACKOFF_MAX", 1.0, 30.0)
        self.cb_threshold = int(setting("CB_FAILURE_THRESHOLD", 5, 1))
        self.admission_limit = int(setting("ADMISSION_LIMIT", 256, 0))
        self.batch_max = int(setting("ORDER_BATCH_MAX", 32))
        self.batch_flushes = int(setting("ORDER_BATCH_FLUSHES", 2))
        self.ready_db_timeout = setting("READY_DB_TIMEOUT", 0.4)
        self.ready_interval = setting("READY_INTERVAL", 0.1)
        self.ready_stale = setting("READY_STALE", 0.7)
        self.monitor_interval = setting("MONITOR_INTERVAL", 1.0)
        self.outbox_age_alert = setting("OUTBOX_AGE_ALERT", 3.0)
        self.exec_delay_alert = setting("EXEC_DELAY_ALERT", 3.0)
        self.router_stale_alert = setting("ROUTER_STALE_ALERT", 3.0)
        self.collar = setting("MARKET_BUY_COLLAR", 0.05)
        self.skip_migrations = os.environ.get("SKIP_MIGRATIONS", "") not in ("", "0")
        self.probe_closes_circuit = self.profile == "strong"


class _Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram  # noqa: PLC0415

        self.registry = r = CollectorRegistry()
        fine = (.001, .002, .005, .01, .02, .03, .05, .075, .1, .25, .5, 1, 2.5, 5, 10, 30, 60)
        self.requests = Counter("gateway_requests", "HTTP requests by endpoint and outcome",
                                ["endpoint", "outcome"], registry=r)
        self.latency = Histogram("gateway_request_seconds", "Request latency", ["endpoint"],
                                 buckets=fine, registry=r)
        self.inflight = Gauge("gateway_inflight_orders", "Order requests in progress", registry=r)
        self.batch_size = Histogram("gateway_order_batch_size", "Orders committed per transaction",
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=r)
        self.pool_size = Gauge("gateway_db_pool_size", "Open pooled connections", registry=r)
        self.pool_idle = Gauge("gateway_db_pool_idle", "Idle pooled connections", registry=r)
        self.pool_max = Gauge("gateway_db_pool_max", "Configured pool size", registry=r)
        self.db_up = Gauge("gateway_db_up", "1 when the last readiness probe succeeded", registry=r)
        self.ready = Gauge("gateway_ready", "1 when /health/ready reports ready", registry=r)
        self.circuit = Gauge("gateway_db_circuit_state", "0 closed, 1 half-open, 2 open", registry=r)
        self.outbox_backlog = Gauge("outbox_backlog", "Outbox entries not yet sent", registry=r)
        self.outbox_age = Gauge("outbox_oldest_age_seconds", "Age of the oldest unsent entry", registry=r)
        self.unfilled_age = Gauge("execution_oldest_pending_seconds",
                                  "Age of the oldest sent, unfilled market order", registry=r)
        self.router_age = Gauge("router_heartbeat_age_seconds", "Seconds since the router's heartbeat",
                                registry=r)
        self.exec_delay = Histogram("execution_delay_seconds", "Acceptance to recorded execution",
                                    buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 300, 3600),
                                    registry=r)
        self.batch_processed = Gauge("batch_processed_executions", "Executions settled by the latest batch",
                                     registry=r)
        self.batch_total = Gauge("batch_total_executions", "Executions the latest batch must settle",
                                 registry=r)
        self.batch_progress = Gauge("batch_progress_ratio", "processed / total of the latest batch", registry=r)
        self.batch_running = Gauge("batch_running", "1 while the latest batch is running", registry=r)
        self.batch_margin = Gauge("batch_margin_seconds",
                                  "Margin left before the batch window closes (projected while running)",
                                  registry=r)


class _DeadlinePassed(Exception):
    """The request's deadline passed before its statement could start."""


class DatabaseUnavailable(Exception):
    """The database could not serve a request in time (mapped to 503/504)."""

    def __init__(self, code: str, detail: str, status: int = 503, retry_after: float | None = None):
        self.code, self.detail, self.status, self.retry_after = code, detail, status, retry_after
        super().__init__(f"{code}: {detail}")


def _jsonable(value):
    if isinstance(value, Decimal):
        return float(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _order_json(row) -> dict:
    out = {k: _jsonable(v) for k, v in dict(row).items() if k not in ("created", "batch_index")}
    out["order_id"] = out.pop("id", out.get("order_id"))
    out["account"] = out.pop("account_id", None)
    out["price"] = out.get("limit_price") if out.get("type") == "limit" else out.get("stop_price")
    return out


class Gateway:
    """The gateway's state: the pool, the breaker, monitoring, and the request handlers."""

    def __init__(self, settings: GatewaySettings):
        from tradingstack.resilience import CircuitBreaker  # noqa: PLC0415

        self.s = settings
        self.m = _Metrics()
        self.m.pool_max.set(settings.pool_size)
        # Read when scraped: the same value as setting it on every change, without two
        # lock-taking updates per order.
        self.m.inflight.set_function(lambda: self.inflight)
        self.collar = Decimal(str(settings.collar))
        self.breaker = CircuitBreaker("database", settings.cb_threshold, settings.backoff_base,
                                      settings.backoff_max)
        self.pool = None
        self.inflight = 0
        self.db_ok_at = 0.0
        self.db_error = "not probed yet"
        self.stats: dict = {}
        self.stats_at = 0.0
        self.exec_seq = None
        self.fail_streak = 0
        self.fail_at = 0.0
        self.read_only_at = 0.0
        self.tasks: list[asyncio.Task] = []
        import asyncpg  # noqa: PLC0415

        from tradingstack.orderbatch import OrderBatcher  # noqa: PLC0415

        # Values PostgreSQL refuses for one order (bad encoding, out of range): retried alone.
        self.batcher = OrderBatcher(self._commit_orders, max_batch=settings.batch_max,
                                    max_flushes=settings.batch_flushes, retry_alone=(asyncpg.DataError,),
                                    on_batch=self.m.batch_size.observe)

    # -- database access -------------------------------------------------------------------

    async def start(self) -> None:
        """Apply the schema (retrying until the database answers), open the pool, start monitors."""
        import asyncpg  # noqa: PLC0415

        from tradingstack.resilience import backoff_delay  # noqa: PLC0415
        from tradingstack.schema import apply_async  # noqa: PLC0415

        attempt = 0
        while not self.s.skip_migrations:
            try:
                await apply_async(self.s.database_url, connect_timeout=self.s.connect_timeout)
                break
            except Exception as exc:  # noqa: BLE001  (any failure: keep trying, the supervisor's deadline rules)
                log.warning("schema not applied yet: %s", exc)
                await asyncio.sleep(backoff_delay(attempt, 0.1, 2.0))
                attempt += 1
        self.pool = asyncpg.create_pool(
            self.s.database_url, min_size=min(4, self.s.pool_size), max_size=self.s.pool_size,
            timeout=self.s.connect_timeout, command_timeout=self.s.statement_timeout,
            max_inactive_connection_lifetime=60, reset=_keep_session,
            server_settings={"statement_timeout": str(int(self.s.statement_timeout * 1000)),
                             "idle_in_transaction_session_timeout": "10000",
                             "application_name": "tradingstack.gateway"})
        await self.pool
        self.tasks = [asyncio.create_task(self._probe_loop()), asyncio.create_task(self._monitor_loop())]

    async def stop(self) -> None:
        """Stop monitors and close the pool."""
        await self.batcher.close()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.pool is not None:
            self.pool.terminate()

    async def db(self, op, *, write: bool = True, deadline: float | None = None, requests: int = 1):
        """Run ``op(conn, timeout)`` under the breaker, retrying lost connections within the deadline.

        ``timeout`` is what ``op`` may spend on its statements: the statement timeout, cut to
        what is left of the request's deadline (``deadline``, by default ``REQUEST_TIMEOUT``
        from now). Only a successful ``write`` ends a streak of failed requests (reads may
        pass while order intake cannot). ``requests`` is how many requests the call serves (a
        group of orders): a failure adds that many to the streak of failed requests, while the
        circuit breaker counts failed calls to the database.
        """
        import asyncpg  # noqa: PLC0415

        from tradingstack.resilience import CircuitOpen, backoff_delay  # noqa: PLC0415

        if deadline is None:
            deadline = time.monotonic() + self.s.request_timeout
        attempt = 0
        while True:
            try:
                self.breaker.check()
            except CircuitOpen as exc:
                raise DatabaseUnavailable("circuit_open", str(exc), 503, exc.retry_after) from exc
            remaining = deadline - time.monotonic()
            try:
                # The outer bound is a last resort: the statement timeouts below fire first, so a
                # stalled connection is terminated here rather than handed back to the pool.
                async with asyncio.timeout(max(0.01, remaining) + 0.5):
                    async with self.pool.acquire(timeout=min(self.s.pool_timeout, max(0.01, remaining))) as conn:
                        left = deadline - time.monotonic()
                        if left <= 0.01:
                            # The connection was never used: give it back as it is.
                            raise _DeadlinePassed()
                        try:
                            result = await op(conn, min(self.s.statement_timeout, left))
                        except TimeoutError:
                            # A stalled server leaves the connection mid-query: drop it, do not reuse.
                            conn.terminate()
                            raise
                self.breaker.success()
                if write:
                    self.fail_streak = 0
                # A served request is as good a sign of a live database as a probe (the probe
                # loop may lag when the event loop is saturated).
                self.db_ok_at = time.monotonic()
                return result
            except _DeadlinePassed as exc:
                self.breaker.release_trial()
                self._failed(requests)
                raise DatabaseUnavailable("database_timeout", "the request deadline passed while waiting for a "
                                          "database connection", 504) from exc
            except asyncpg.ReadOnlySQLTransactionError as exc:
                self.breaker.release_trial()
                self._failed(requests)
                self.read_only_at = time.monotonic()
                raise DatabaseUnavailable("database_read_only", "the database refuses writes", 503) from exc
            except asyncpg.DeadlockDetectedError as exc:
                # The schema's lock order rules deadlocks out between the stack's own writers;
                # anything else that locks rows may still cause one. PostgreSQL rolled this
                # transaction back, so running it again is safe.
                self.breaker.release_trial()
                if time.monotonic() >= deadline - 0.05:
                    self._failed(requests)
                    raise DatabaseUnavailable("database_timeout", f"deadlock retried until the deadline: {exc}",
                                              504) from exc
            except (asyncpg.QueryCanceledError, TimeoutError) as exc:
                self.breaker.failure()
                self._failed(requests)
                raise DatabaseUnavailable("database_timeout",
                                          f"no answer from the database within {self.s.request_timeout:g}s "
                                          f"({type(exc).__name__})", 504) from exc
            except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
                    asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError,
                    asyncpg.AdminShutdownError, asyncpg.CrashShutdownError) as exc:
                self.breaker.failure()
                delay = backoff_delay(attempt, self.s.backoff_base, self.s.backoff_max)
                attempt += 1
                if time.monotonic() + delay >= deadline - 0.05:
                    self._failed(requests)
                    raise DatabaseUnavailable("database_unavailable", f"{type(exc).__name__}: {exc}", 503) from exc
                await asyncio.sleep(delay)
            except Exception:
                # Not a verdict on the database (a refused value, a bug): a half-open trial must
                # not stay taken, or the circuit would never close again.
                self.breaker.release_trial()
                raise

    async def _commit_orders(self, orders, deadline: float):
        """Place ``orders`` in one transaction; one ``place_order`` row per order, in order."""
        columns = [[order[field] for order in orders] for field in _PLACE_FIELDS]

        async def op(conn, timeout):
            return await conn.fetch(_PLACE_SQL, *columns, self.collar, timeout=timeout)

        rows = await self.db(op, deadline=deadline, requests=len(orders))
        return sorted(rows, key=lambda row: row["batch_index"])

    def _failed(self, requests: int = 1) -> None:
        self.fail_streak += requests
        self.fail_at = time.monotonic()

    # -- monitoring ---------------------------------------------------------------------------

    async def _probe_loop(self) -> None:
        import asyncpg  # noqa: PLC0415

        conn = None
        while True:
            started = time.monotonic()
            try:
                async with asyncio.timeout(self.s.ready_db_timeout):
                    if conn is None or conn.is_closed():
                        conn = await asyncpg.connect(self.s.database_url, timeout=self.s.ready_db_timeout,
                                                     server_settings={"application_name": "gateway-probe"})
                    await conn.fetchval("SELECT 1")
                self.db_ok_at, self.db_error = time.monotonic(), ""
                if self.s.probe_closes_circuit and self.breaker.state != "closed":
                    self.breaker.success()
            except asyncio.CancelledError:
                if conn is not None:
                    conn.terminate()
                raise
            except Exception as exc:  # noqa: BLE001  (any probe failure means "not ready")
                self.db_error = f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
                if conn is not None:
                    conn.terminate()
                    conn = None
            self.m.db_up.set(1 if self.db_ok_at and time.monotonic() - self.db_ok_at < self.s.ready_stale else 0)
            await asyncio.sleep(max(0.0, self.s.ready_interval - (time.monotonic() - started)))

    async def _monitor_loop(self) -> None:
        import asyncpg  # noqa: PLC0415

        conn = None
        query = """
            SELECT (SELECT count(*) FROM outbox WHERE sent_at IS NULL) AS backlog,
                   (SELECT extract(epoch FROM clock_timestamp() - min(created_at))::float8
                      FROM outbox WHERE sent_at IS NULL) AS outbox_age,
                   (SELECT extract(epoch FROM clock_timestamp() - min(sent_at))::float8
                      FROM orders WHERE status = 'sent' AND type = 'market') AS unfilled_age,
                   (SELECT extract(epoch FROM clock_timestamp() - value::timestamptz)::float8
                      FROM router_state WHERE name = 'heartbeat') AS router_age,
                   (SELECT coalesce(max(seq), 0) FROM executions) AS exec_seq"""
        while True:
            started = time.monotonic()
            try:
                async with asyncio.timeout(max(1.0, self.s.monitor_interval)):
                    if conn is None or conn.is_closed():
                        conn = await asyncpg.connect(self.s.database_url, timeout=1.0,
                                                     server_settings={"application_name": "gateway-monitor"})
                    row = await conn.fetchrow(query)
                    if self.exec_seq is None:
                        self.exec_seq = row["exec_seq"]
                    delays = await conn.fetch(
                        "SELECT e.seq, extract(epoch FROM e.recorded_at - o.created_at)::float8 AS delay "
                        "FROM executions e JOIN orders o ON o.id = e.order_id WHERE e.seq > $1 "
                        "ORDER BY e.seq LIMIT 20000", self.exec_seq)
                    batch = await conn.fetchrow(
                        "SELECT status, processed, total, window_s, margin_s, "
                        "extract(epoch FROM deadline - clock_timestamp())::float8 AS left_s "
                        "FROM batch_runs ORDER BY id DESC LIMIT 1")
                for d in delays:
                    self.m.exec_delay.observe(max(0.0, d["delay"]))
                if delays:
                    self.exec_seq = delays[-1]["seq"]
                self._record_stats(row, batch)
            except asyncio.CancelledError:
                if conn is not None:
                    conn.terminate()
                raise
            except Exception as exc:  # noqa: BLE001  (statistics are best effort)
                log.debug("monitor query failed: %s", exc)
                if conn is not None:
                    conn.terminate()
                    conn = None
            await asyncio.sleep(max(0.0, self.s.monitor_interval - (time.monotonic() - started)))

    def _record_stats(self, row, batch) -> None:
        stats = {"outbox_backlog": row["backlog"], "outbox_oldest_age_s": row["outbox_age"] or 0.0,
                 "oldest_unfilled_market_age_s": row["unfilled_age"] or 0.0,
                 "router_heartbeat_age_s": row["router_age"]}
        self.m.outbox_backlog.set(stats["outbox_backlog"])
        self.m.outbox_age.set(stats["outbox_oldest_age_s"])
        self.m.unfilled_age.set(stats["oldest_unfilled_market_age_s"])
        if row["router_age"] is not None:
            self.m.router_age.set(row["router_age"])
        if batch is not None:
            running = batch["status"] == "running"
            total = batch["total"] or 0
            stats["batch"] = {"status": batch["status"], "processed": batch["processed"], "total": total,
                              "margin_s": batch["margin_s"] if not running else batch["left_s"]}
            self.m.batch_processed.set(batch["processed"])
            self.m.batch_total.set(total)
            self.m.batch_progress.set(batch["processed"] / total if total else (0.0 if running else 1.0))
            self.m.batch_running.set(1 if running else 0)
            self.m.batch_margin.set(stats["batch"]["margin_s"] or 0.0)
        self.stats, self.stats_at = stats, time.monotonic()

    def readiness(self) -> dict:
        """The readiness verdict and what it is based on (never touches the database)."""
        now = time.monotonic()
        db_age = now - self.db_ok_at if self.db_ok_at else None
        db_ok = db_age is not None and db_age < self.s.ready_stale
        alerts = []
        if not db_ok:
            alerts.append("database_unreachable")
        if self.breaker.state == "open":
            alerts.append("database_circuit_open")
        # The database answers probes but not order traffic (locks, exhausted connections):
        # every recent request failed.
        intake_failing = self.fail_streak >= 3 and now - self.fail_at < 2.0
        if intake_failing:
            alerts.append("order_intake_failing")
        if self.read_only_at and now - self.read_only_at < 2.0:
            alerts.append("database_read_only")
        stats = dict(self.stats)
        stale_stats = not self.stats_at or now - self.stats_at > 3 * self.s.monitor_interval + 1
        link = "unknown" if stale_stats else "ok"
        if not stale_stats:
            if stats["outbox_oldest_age_s"] > self.s.outbox_age_alert:
                alerts.append("outbox_backlog_age")
                link = "degraded"
            if stats["oldest_unfilled_market_age_s"] > self.s.exec_delay_alert:
                alerts.append("execution_delay")
                link = "degraded"
            age = stats.get("router_heartbeat_age_s")
            if age is None or age > self.s.router_stale_alert:
                alerts.append("router_down")
                link = "degraded"
        ready = db_ok and not intake_failing and self.pool is not None
        self.m.ready.set(1 if ready else 0)
        return {"ready": ready, "profile": self.s.profile,
                "db": {"ok": db_ok, "last_ok_age_s": None if db_age is None else round(db_age, 3),
                       "error": self.db_error or None, "circuit": self.breaker.state},
                "exchange_link": link, "alerts": alerts, **stats}

    # -- handlers -------------------------------------------------------------------------------

    async def place_order(self, request):
        from aiohttp import web  # noqa: PLC0415

        if self.s.admission_limit and self.inflight >= self.s.admission_limit:
            return _error(web, 429, "over_capacity", "too many orders in progress; retry shortly", 0.2)
        self.inflight += 1
        try:
            try:
                body = orjson.loads(await request.read())
                order = _validate(body)
            except (ValueError, TypeError, KeyError) as exc:
                return _error(web, 400, "invalid_order", str(exc))

            from tradingstack.orderbatch import BatchTimeout  # noqa: PLC0415

            try:
                row = await self.batcher.place(order, time.monotonic() + self.s.request_timeout)
            except BatchTimeout as exc:
                self._failed()
                raise DatabaseUnavailable("database_timeout", f"order not written: {exc}", 504) from exc
            out = _order_json(row)
            if not row["created"] and not _same_order(row, order):
                return _error(web, 409, "client_order_id_conflict",
                              "this client_order_id was used for a different order", extra={"order": out})
            if row["status"] == "rejected":
                return _json_response(web, out, status=422)
            return _json_response(web, out, status=201 if row["created"] else 200)
        finally:
            self.inflight -= 1

    async def get_order(self, request):
        from aiohttp import web  # noqa: PLC0415

        key = request.match_info["key"]
        by_client = request.match_info.get("kind") == "by-client"
        if not by_client and not key.isdigit():
            return _error(web, 400, "invalid_order_id", "order id must be an integer")
        where = "client_order_id = $1" if by_client else "id = $1"
        param = key if by_client else int(key)

        async def op(conn, timeout):
            return await conn.fetchrow(
                f"SELECT {_ORDER_COLUMNS}, (SELECT row_to_json(e) FROM (SELECT exec_id, quantity, price, "
                f"executed_at FROM executions WHERE order_id = orders.id) e)::text AS execution "
                f"FROM orders WHERE {where}", param, timeout=timeout)

        row = await self.db(op, write=False)
        if row is None:
            return _error(web, 404, "not_found", f"no order {key}")
        out = _order_json(row)
        out["execution"] = orjson.loads(row["execution"]) if row["execution"] else None
        return _json_response(web, out)

    async def cancel_order(self, request):
        from aiohttp import web  # noqa: PLC0415

        key = request.match_info["key"]
        if not key.isdigit():
            return _error(web, 400, "invalid_order_id", "order id must be an integer")

        async def op(conn, timeout):
            # One statement (one implicit transaction) flags the order and queues the cancel; its
            # RETURNING is the row as it stands after the flag, the row lock keeping it so until
            # commit. Only when nothing was flagged does a second, fresh read say why.
            row = await conn.fetchrow(_CANCEL_SQL, int(key), timeout=timeout)
            if row is not None:
                return True, row
            current = await conn.fetchrow(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE id = $1", int(key),
                                          timeout=timeout)
            return False, current

        requested, current = await self.db(op)
        if current is None:
            return _error(web, 404, "not_found", f"no order {key}")
        out = _order_json(current)
        if requested or (current["cancel_requested"] and current["status"] in ("accepted", "sent")):
            return _json_response(web, {**out, "cancel": "requested"}, status=202)
        return _error(web, 409, "not_cancellable", f"order is {current['status']}", extra={"order": out})

    async def get_account(self, request):
        from aiohttp import web  # noqa: PLC0415

        key = request.match_info["key"]
        if not key.isdigit():
            return _error(web, 400, "invalid_account", "account id must be an integer")

        async def op(conn, timeout):
            return await conn.fetchrow(_ACCOUNT_SQL, int(key), timeout=timeout)

        account = await self.db(op, write=False)
        if account is None:
            return _error(web, 404, "not_found", f"no account {key}")
        return _json_response(web, {"account": account["id"], "cash": float(account["cash"]),
                                  "buying_power": float(account["buying_power"]),
                                  "positions": orjson.loads(account["positions"])})

    async def live(self, request):
        from aiohttp import web  # noqa: PLC0415

        return _json_response(web, {"live": True})

    async def ready(self, request):
        from aiohttp import web  # noqa: PLC0415

        verdict = self.readiness()
        return _json_response(web, verdict, status=200 if verdict["ready"] else 503)

    async def metrics(self, request):
        from aiohttp import web  # noqa: PLC0415
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest  # noqa: PLC0415

        if self.pool is not None:
            self.m.pool_size.set(self.pool.get_size())
            self.m.pool_idle.set(self.pool.get_idle_size())
        self.m.circuit.set(self.breaker.code)
        self.readiness()
        return web.Response(body=generate_latest(self.m.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _keep_session(conn) -> None:
    """Pool reset hook that does nothing.

    asyncpg's default reset is a round trip per release (advisory unlock, CLOSE ALL, UNLISTEN,
    RESET ALL); the gateway leaves no session state behind, so that trip is pure cost.
    """


def _dumps(obj) -> bytes:
    return orjson.dumps(obj, default=_jsonable)


def _json_response(web, data, *, status: int = 200, headers=None):
    # What web.json_response sends, minus its str round trip (orjson already yields bytes).
    return web.Response(body=_dumps(data), status=status, headers=headers, content_type="application/json",
                        charset="utf-8")


def _error(web, status: int, code: str, detail: str, retry_after: float | None = None, extra: dict | None = None):
    headers = {"Retry-After": f"{max(1, round(retry_after))}"} if retry_after is not None else None
    return _json_response(web, {"error": code, "detail": detail, **(extra or {})}, status=status,
                             headers=headers)


def _validate(body) -> dict:
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    coid = body.get("client_order_id")
    if not isinstance(coid, str) or not 1 <= len(coid) <= 64 or not coid.isprintable():
        raise ValueError("client_order_id must be a string of 1 to 64 printable characters")
    account = body.get("account")
    if isinstance(account, bool) or not isinstance(account, int) or not 0 < account < 2**63:
        raise ValueError("account must be a positive 64-bit integer")
    symbol = body.get("symbol")
    if not isinstance(symbol, str) or not 1 <= len(symbol) <= 12 or not symbol.isprintable():
        raise ValueError("symbol must be a string of 1 to 12 printable characters")
    side = body.get("side")
    if side not in ("buy", "sell"):
        raise ValueError("side must be 'buy' or 'sell'")
    kind = body.get("type", "market")
    if kind not in ("market", "limit", "stop"):
        raise ValueError("type must be 'market', 'limit' or 'stop'")
    quantity = body.get("quantity")
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= 1_000_000:
        raise ValueError("quantity must be an integer from 1 to 1000000")
    price = body.get("price")
    if kind != "market":
        if isinstance(price, bool) or not isinstance(price, (int, float)) or not 0 < price < 1e7:
            raise ValueError(f"a {kind} order needs a positive price")
        price = Decimal(str(price)).quantize(Decimal("0.0001"))
    else:
        price = None
    return {"client_order_id": coid, "account": account, "symbol": symbol.upper(), "side": side,
            "type": kind, "quantity": quantity,
            "limit_price": price if kind == "limit" else None, "stop_price": price if kind == "stop" else None}


def _same_order(row, order: dict) -> bool:
    return (row["account_id"] == order["account"] and row["symbol"] == order["symbol"]
            and row["side"] == order["side"] and row["type"] == order["type"]
            and row["quantity"] == order["quantity"] and row["limit_price"] == order["limit_price"]
            and row["stop_price"] == order["stop_price"])


def create_app(gateway: Gateway):
    """The aiohttp application serving ``gateway``; DB errors become JSON 503/504 answers."""
    from aiohttp import web  # noqa: PLC0415

    # Labelled children per (method, resource) and per status: labels() takes a lock and
    # builds its key on every call, which showed in the per-order cost.
    latency_children: dict = {}
    counter_children: dict = {}

    @web.middleware
    async def observe(request, handler):
        started = time.perf_counter()
        key = (request.method, request.match_info.route.resource)
        latency = latency_children.get(key)
        if latency is None:
            route = key[1]
            endpoint = f"{request.method} {route.canonical if route is not None else 'unmatched'}"
            latency = latency_children[key] = (endpoint, gateway.m.latency.labels(endpoint))
        try:
            response = await handler(request)
        except DatabaseUnavailable as exc:
            response = _error(web, exc.status, exc.code, exc.detail, exc.retry_after)
        except web.HTTPException as exc:
            response = exc
        status = response.status
        counter = counter_children.get((key, status))
        if counter is None:
            outcome = "ok" if status < 400 else "rejected" if status == 422 else f"{status}"
            counter = counter_children[(key, status)] = gateway.m.requests.labels(latency[0], outcome)
        counter.inc()
        latency[1].observe(time.perf_counter() - started)
        if isinstance(response, web.HTTPException):
            raise response
        return response

    app = web.Application(middlewares=[observe])
    app.router.add_post("/orders", gateway.place_order)
    app.router.add_get("/orders/{key}", gateway.get_order)
    app.router.add_get("/orders/{kind:by-client}/{key}", gateway.get_order)
    app.router.add_delete("/orders/{key}", gateway.cancel_order)
    app.router.add_get("/accounts/{key}", gateway.get_account)
    app.router.add_get("/health/live", gateway.live)
    app.router.add_get("/health/ready", gateway.ready)
    app.router.add_get("/metrics", gateway.metrics)
    return app


async def serve(settings: GatewaySettings) -> None:
    """Run the gateway until SIGTERM or SIGINT."""
    from aiohttp import web  # noqa: PLC0415

    gateway = Gateway(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await gateway.start()
    runner = web.AppRunner(create_app(gateway), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", settings.port, backlog=1024).start()
    log.info("gateway listening on 127.0.0.1:%d (profile %s)", settings.port, settings.profile)
    print(f"gateway ready on 127.0.0.1:{settings.port}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await gateway.stop()


def main() -> int:
    """Entry point of ``python -m tradingstack.gateway``."""
    from tradingstack.resilience import run  # noqa: PLC0415

    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(name)s %(message)s")
    run(serve(GatewaySettings()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
