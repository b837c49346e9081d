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
- ``GET|POST /admin/intake``: order intake halted or open (:mod:`tradingstack.intake`);
  while halted ``POST /orders`` answers 503 ``intake_halted`` and the readiness body's
  ``intake`` says why and since when.
- ``GET /health/live`` (the process answers), ``GET /health/ready`` (200/503; ready when the
  database answered a probe or a request within ``READY_STALE`` and order requests are not
  all failing: three or more in a row, the last under 2 s ago, as under a lock or with no
  free connection; the body also carries the exchange-link state from the outbox and order
  ages, the router heartbeat, batch progress and ``alerts``), ``GET /metrics`` (Prometheus).

Environment (defaults for ``TRADINGSTACK_PROFILE=strong`` / ``weak``):

==========================  ============  ==========  =======================================
``GATEWAY_PORT``            required                  the port it listens on
``GATEWAY_HOST``            127.0.0.1                 the address it listens on (0.0.0.0 in a container)
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
``ADMISSION_WAIT``          0.5 s         0 (off)     429 when an order would queue longer for a commit
``ORDER_BATCH_MAX``         32                        most orders committed in one transaction
``ORDER_BATCH_FLUSHES``     2                         order commits under way at once
``READY_DB_TIMEOUT``        0.4 s                     bound of one readiness probe
``READY_INTERVAL``          0.1 s                     readiness probe period
``READY_STALE``             0.7 s                     not ready when no probe or request succeeded for this long
``MONITOR_INTERVAL``        1.0 s                     outbox / execution / batch statistics period
``OUTBOX_AGE_ALERT``        3.0 s                     oldest unsent outbox entry -> alert
``EXEC_DELAY_ALERT``        3.0 s                     oldest sent, unfilled market order -> alert
``ROUTER_STALE_ALERT``      3.0 s                     router heartbeat age -> alert
``RESTART_ALERT``           30 s                      how long a restart (database, router, exchange) stays an alert
``DB_CONN_FREE_ALERT``      5                         free database connection slots at most -> alert
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

This module is the HTTP side (routes, request validation, admission, settings and ``main``);
:mod:`tradingstack.orderstore` holds the SQL, the pool and the circuit breaker, and
:mod:`tradingstack.health` the readiness verdict with its alerts, the monitoring statistics
and the metrics.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import asyncpg
import orjson
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram

from tradingstack.health import GatewayMetrics, Health
from tradingstack.intake import IntakeControl
from tradingstack.orderstore import DatabaseUnavailable, OrderStore
from tradingstack.resilience import profile, run, setting

__all__ = ["GatewaySettings", "Gateway", "create_app", "main"]

log = logging.getLogger("tradingstack.gateway")

# A request's method and matched resource (None when no route matched).
_RouteKey = tuple[str, web.AbstractResource | None]


class GatewaySettings:
    """Every tunable of the gateway, read from the environment once at start."""

    def __init__(self) -> None:
        self.port = int(os.environ["GATEWAY_PORT"])
        self.host = os.environ.get("GATEWAY_HOST") or "127.0.0.1"
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
        self.admission_wait = setting("ADMISSION_WAIT", 0.5, 0)
        self.batch_max = int(setting("ORDER_BATCH_MAX", 32))
        self.batch_flushes = int(setting("ORDER_BATCH_FLUSHES", 2))
        self.ready_db_timeout = setting("READY_DB_TIMEOUT", 0.4)
        self.ready_interval = setting("READY_INTERVAL", 0.1)
        self.ready_stale = setting("READY_STALE", 0.7)
        self.monitor_interval = setting("MONITOR_INTERVAL", 1.0)
        self.outbox_age_alert = setting("OUTBOX_AGE_ALERT", 3.0)
        self.exec_delay_alert = setting("EXEC_DELAY_ALERT", 3.0)
        self.router_stale_alert = setting("ROUTER_STALE_ALERT", 3.0)
        self.restart_alert = setting("RESTART_ALERT", 30.0)
        self.db_conn_free_alert = setting("DB_CONN_FREE_ALERT", 5)
        self.collar = setting("MARKET_BUY_COLLAR", 0.05)
        self.skip_migrations = os.environ.get("SKIP_MIGRATIONS", "") not in ("", "0")
        self.probe_closes_circuit = self.profile == "strong"


class Gateway:
    """The gateway's request handlers over its order store and its health."""

    def __init__(self, settings: GatewaySettings):
        self.s = settings
        self.m = GatewayMetrics()
        self.m.pool_max.set(settings.pool_size)
        self.inflight = 0
        # Read when scraped: the same value as setting it on every change, without two
        # lock-taking updates per order.
        self.m.inflight.set_function(lambda: self.inflight)
        self.store = OrderStore(settings, on_batch=self.m.batch_size.observe,
                                on_circuit=lambda state: self.m.circuit_transitions.labels(state).inc(),
                                on_acquire_timeout=self.m.acquire_timeouts.inc)
        self.intake = IntakeControl(settings.database_url)
        self.health = Health(settings, self.store, self.m, self.intake)

    async def start(self) -> None:
        """Apply the schema (retrying until the database answers), open the pool, start monitors."""
        await self.store.open()
        try:
            conn = await asyncpg.connect(self.s.database_url, timeout=2.0)
            try:
                await self.intake.refresh(conn)
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            log.warning("intake state not read at start (the monitor loop retries): %s", exc)
        self.health.start()

    async def stop(self) -> None:
        """Stop monitors and close the pool."""
        await self.store.close()
        await self.health.stop()

    async def place_order(self, request: web.Request) -> web.Response:
        """``POST /orders``: 201 new, 200 the same order again, 422 rejected, 409 conflict, 400, 429."""
        if self.intake.halted:
            return _error(503, "intake_halted", self.intake.state.reason or "order intake is halted")
        if self.s.admission_limit and self.inflight >= self.s.admission_limit:
            return _error(429, "over_capacity", "too many orders in progress; retry shortly", 0.2)
        # Refused at the door rather than timed out later: an order that would queue longer
        # than this for a commit (the queue, at the recent commit time) gets a 429 now.
        wait = self.store.batcher.expected_wait()
        if self.s.admission_wait and wait > self.s.admission_wait:
            self.m.shed.inc()
            return _error(429, "over_capacity", f"order commits are backed up (about {wait:.1f} s); retry shortly",
                          wait)
        self.inflight += 1
        try:
            try:
                order = _validate(orjson.loads(await request.read()))
            except (ValueError, TypeError, KeyError) as exc:
                return _error(400, "invalid_order", str(exc))
            row = await self.store.place(order, time.monotonic() + self.s.request_timeout)
            out = _order_json(row)
            if not row["created"] and not _same_order(row, order):
                return _error(409, "client_order_id_conflict", "this client_order_id was used for a different order",
                              extra={"order": out})
            if row["status"] == "rejected":
                return _json_response(out, status=422)
            return _json_response(out, status=201 if row["created"] else 200)
        finally:
            self.inflight -= 1

    async def get_order(self, request: web.Request) -> web.Response:
        """``GET /orders/{id}`` and ``GET /orders/by-client/{client_order_id}``."""
        key = request.match_info["key"]
        by_client = request.match_info.get("kind") == "by-client"
        if not by_client and not key.isdigit():
            return _error(400, "invalid_order_id", "order id must be an integer")
        row = await self.store.order(key if by_client else int(key), by_client=by_client)
        if row is None:
            return _error(404, "not_found", f"no order {key}")
        out = _order_json(row)
        out["execution"] = orjson.loads(row["execution"]) if row["execution"] else None
        return _json_response(out)

    async def cancel_order(self, request: web.Request) -> web.Response:
        """``DELETE /orders/{id}``: 202 cancel requested, 409 already closed, 404."""
        key = request.match_info["key"]
        if not key.isdigit():
            return _error(400, "invalid_order_id", "order id must be an integer")
        requested, current = await self.store.cancel(int(key))
        if current is None:
            return _error(404, "not_found", f"no order {key}")
        out = _order_json(current)
        if requested or (current["cancel_requested"] and current["status"] in ("accepted", "sent")):
            return _json_response({**out, "cancel": "requested"}, status=202)
        return _error(409, "not_cancellable", f"order is {current['status']}", extra={"order": out})

    async def get_account(self, request: web.Request) -> web.Response:
        """``GET /accounts/{id}``: cash, buying power, positions."""
        key = request.match_info["key"]
        if not key.isdigit():
            return _error(400, "invalid_account", "account id must be an integer")
        account = await self.store.account(int(key))
        if account is None:
            return _error(404, "not_found", f"no account {key}")
        return _json_response({"account": account["id"], "cash": float(account["cash"]),
                               "buying_power": float(account["buying_power"]),
                               "positions": orjson.loads(account["positions"])})

    async def intake_state(self, request: web.Request) -> web.Response:
        """``GET /admin/intake``: halted or open, why, since when."""
        return _json_response(self.intake.state.to_json())

    async def set_intake(self, request: web.Request) -> web.Response:
        """``POST /admin/intake`` ``{"state": "halted"|"open", "reason", "reopen_when"}``."""
        try:
            body = orjson.loads(await request.read())
            state, reason, reopen = body["state"], body.get("reason"), body.get("reopen_when")
            if state not in ("halted", "open") or reopen not in (None, "batch_finished"):
                raise ValueError("state is halted or open; reopen_when is batch_finished or null")
        except (ValueError, TypeError, KeyError) as exc:
            return _error(400, "invalid_intake", str(exc))
        try:
            result = await self.intake.set(state == "halted", reason, reopen if state == "halted" else None)
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            return _error(503, "database_unavailable", f"intake not opened: {type(exc).__name__}: {exc}")
        log.warning("order intake %s by request: %s", "halted" if result.halted else "opened", reason)
        return _json_response(result.to_json(), status=200 if result.persisted else 202)

    async def live(self, request: web.Request) -> web.Response:
        """``GET /health/live``: the process answers."""
        return _json_response({"live": True})

    async def ready(self, request: web.Request) -> web.Response:
        """``GET /health/ready``: the readiness verdict, 200 ready or 503."""
        verdict = self.health.readiness()
        return _json_response(verdict, status=200 if verdict["ready"] else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        """``GET /metrics``: Prometheus text format."""
        return web.Response(body=self.health.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _order_json(row: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: _jsonable(v) for k, v in dict(row).items() if k not in ("created", "batch_index")}
    out["order_id"] = out.pop("id", out.get("order_id"))
    out["account"] = out.pop("account_id", None)
    out["price"] = out.get("limit_price") if out.get("type") == "limit" else out.get("stop_price")
    return out


def _json_response(data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    # What web.json_response sends, minus its str round trip (orjson already yields bytes).
    return web.Response(body=orjson.dumps(data, default=_jsonable), status=status, headers=headers,
                        content_type="application/json", charset="utf-8")


def _error(status: int, code: str, detail: str, retry_after: float | None = None,
           extra: Mapping[str, Any] | None = None) -> web.Response:
    headers = {"Retry-After": f"{max(1, round(retry_after))}"} if retry_after is not None else None
    return _json_response({"error": code, "detail": detail, **(extra or {})}, status=status, headers=headers)


def _validate(body: Any) -> dict[str, Any]:
    """The order a ``POST /orders`` body asks for, or ValueError saying what is wrong with it."""
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
    price = _price(kind, body.get("price"))
    return {"client_order_id": coid, "account": account, "symbol": symbol.upper(), "side": side,
            "type": kind, "quantity": quantity,
            "limit_price": price if kind == "limit" else None, "stop_price": price if kind == "stop" else None}


def _price(kind: str, price: Any) -> Decimal | None:
    """The limit or stop price of an order of ``kind`` (None for a market order)."""
    if kind == "market":
        return None
    if isinstance(price, bool) or not isinstance(price, (int, float)) or not 0 < price < 1e7:
        raise ValueError(f"a {kind} order needs a positive price")
    return Decimal(str(price)).quantize(Decimal("0.0001"))


def _same_order(row: Mapping[str, Any], order: Mapping[str, Any]) -> bool:
    return (row["account_id"] == order["account"] and row["symbol"] == order["symbol"]
            and row["side"] == order["side"] and row["type"] == order["type"]
            and row["quantity"] == order["quantity"] and row["limit_price"] == order["limit_price"]
            and row["stop_price"] == order["stop_price"])


def _observed(metrics: GatewayMetrics) -> Middleware:
    """Middleware counting and timing every request; DB errors become JSON 503/504 answers."""
    # Labelled children per (method, resource) and per status: labels() takes a lock and
    # builds its key on every call, which showed in the per-order cost.
    latency_children: dict[_RouteKey, tuple[str, Histogram]] = {}
    counter_children: dict[tuple[_RouteKey, int], Counter] = {}

    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        key = (request.method, request.match_info.route.resource)
        latency = latency_children.get(key)
        if latency is None:
            route = key[1]
            endpoint = f"{request.method} {route.canonical if route is not None else 'unmatched'}"
            latency = latency_children[key] = (endpoint, metrics.latency.labels(endpoint))
        response: web.StreamResponse
        try:
            response = await handler(request)
        except DatabaseUnavailable as exc:
            response = _error(exc.status, exc.code, exc.detail, exc.retry_after)
        except web.HTTPException as exc:
            response = exc
        status = response.status
        counter = counter_children.get((key, status))
        if counter is None:
            outcome = "ok" if status < 400 else "rejected" if status == 422 else f"{status}"
            counter = counter_children[(key, status)] = metrics.requests.labels(latency[0], outcome)
        counter.inc()
        latency[1].observe(time.perf_counter() - started)
        if isinstance(response, web.HTTPException):
            raise response
        return response

    return observe


def create_app(gateway: Gateway) -> web.Application:
    """The aiohttp application serving ``gateway``; DB errors become JSON 503/504 answers."""
    app = web.Application(middlewares=[_observed(gateway.m)])
    app.router.add_post("/orders", gateway.place_order)
    app.router.add_get("/orders/{key}", gateway.get_order)
    app.router.add_get("/orders/{kind:by-client}/{key}", gateway.get_order)
    app.router.add_delete("/orders/{key}", gateway.cancel_order)
    app.router.add_get("/accounts/{key}", gateway.get_account)
    app.router.add_get("/admin/intake", gateway.intake_state)
    app.router.add_post("/admin/intake", gateway.set_intake)
    app.router.add_get("/health/live", gateway.live)
    app.router.add_get("/health/ready", gateway.ready)
    app.router.add_get("/metrics", gateway.metrics)
    return app


async def serve(settings: GatewaySettings) -> None:
    """Run the gateway until SIGTERM or SIGINT."""
    gateway = Gateway(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await gateway.start()
    runner = web.AppRunner(create_app(gateway), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, settings.host, settings.port, backlog=1024).start()
    log.info("gateway listening on %s:%d (profile %s)", settings.host, settings.port, settings.profile)
    print(f"gateway ready on {settings.host}:{settings.port}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
        await gateway.stop()


def main() -> int:
    """Entry point of ``python -m tradingstack.gateway``."""
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(name)s %(message)s")
    run(serve(GatewaySettings()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
