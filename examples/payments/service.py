"""A small payments API on PostgreSQL: it accepts a payment once per idempotency key.

- ``POST /payments`` with a JSON body ``{"payer", "payee", "amount_cents", "currency"}`` and an
  ``Idempotency-Key`` header. The answer comes only after the payment's row is committed:
  201 for a new payment, 200 for a key seen before with the same payment (the first
  answer again), 409 for a key seen before with a different payment, 400 for a bad
  request, 503 when the database does not answer within ``DB_TIMEOUT``. A 2xx answer is
  the acknowledgement: ``{"id", "idempotency_key", "status", "accepted_at"}``.
- ``GET /payments/{key}``: a payment by its idempotency key, with its settlement time.
- ``GET /health/ready``: 200 while the database answers, else 503. The JSON body carries
  ``alerts`` (names of what is wrong now: ``database_unreachable``, ``settlement_lagging``)
  and ``unsettled`` (payments accepted but not yet settled; null when unknown).

Settling is the settler's job (``settler.py``); this service only watches how far behind it is.

Environment: ``PAYMENTS_PORT`` (required), ``DATABASE_URL`` (required), ``DB_TIMEOUT``
(0.5 s: a request's whole time with the database), ``SETTLEMENT_ALERT`` (2.0 s: the oldest
unsettled payment older than this raises ``settlement_lagging``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiohttp import web

log = logging.getLogger("payments")

SCHEMA = """
CREATE TABLE IF NOT EXISTS payments (
    id              bigserial PRIMARY KEY,
    idempotency_key text NOT NULL UNIQUE,
    payer           text NOT NULL,
    payee           text NOT NULL,
    amount_cents    bigint NOT NULL CHECK (amount_cents > 0),
    currency        text NOT NULL,
    accepted_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    settled_at      timestamptz
);
CREATE INDEX IF NOT EXISTS payments_unsettled ON payments (id) WHERE settled_at IS NULL;
-- One row per charge the settler made; nothing but the settler's care stops a second one.
CREATE TABLE IF NOT EXISTS charges (
    id           bigserial PRIMARY KEY,
    payment_id   bigint NOT NULL REFERENCES payments (id),
    payer        text NOT NULL,
    amount_cents bigint NOT NULL,
    currency     text NOT NULL,
    charged_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS charges_payment ON charges (payment_id);
"""

_ACCEPT = """
INSERT INTO payments (idempotency_key, payer, payee, amount_cents, currency)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING id, idempotency_key, payer, payee, amount_cents, currency, accepted_at, settled_at
"""
_BY_KEY = """
SELECT id, idempotency_key, payer, payee, amount_cents, currency, accepted_at, settled_at
FROM payments WHERE idempotency_key = $1
"""
_BACKLOG = """
SELECT count(*), extract(epoch FROM clock_timestamp() - min(accepted_at))::float8
FROM payments WHERE settled_at IS NULL
"""

_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class Settings:
    """The service's settings, from its environment."""

    port: int
    database_url: str
    db_timeout: float = 0.5
    settlement_alert_s: float = 2.0
    watch_interval_s: float = 0.1
    stale_after_s: float = 0.5

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            port=int(os.environ["PAYMENTS_PORT"]),
            database_url=os.environ["DATABASE_URL"],
            db_timeout=float(os.environ.get("DB_TIMEOUT", "0.5")),
            settlement_alert_s=float(os.environ.get("SETTLEMENT_ALERT", "2.0")),
        )


@dataclass(frozen=True)
class Payment:
    """A payment request as the client sent it."""

    key: str
    payer: str
    payee: str
    amount_cents: int
    currency: str

    @classmethod
    def parse(cls, key: str | None, body: Any) -> Payment:
        """The request's payment, or ValueError saying what is wrong with it."""
        if key is None or not _KEY.match(key):
            raise ValueError("an Idempotency-Key header of 1-128 letters, digits or _.:- is required")
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        payer, payee, amount, currency = (body.get(k) for k in ("payer", "payee", "amount_cents", "currency"))
        if not (isinstance(payer, str) and isinstance(payee, str) and 0 < len(payer) <= 64 and 0 < len(payee) <= 64):
            raise ValueError("payer and payee must be names of 1-64 characters")
        if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= 10**9:
            raise ValueError("amount_cents must be a whole number from 1 to 1000000000")
        if not isinstance(currency, str) or not _CURRENCY.match(currency):
            raise ValueError("currency must be three capital letters, like EUR")
        return cls(key, payer, payee, amount, currency)

    def same_as(self, row: asyncpg.Record) -> bool:
        """Whether a stored payment is this one (a retry), not another under the same key."""
        return (row["payer"], row["payee"], row["amount_cents"], row["currency"]) == (
            self.payer, self.payee, self.amount_cents, self.currency)


def _payment_json(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "idempotency_key": row["idempotency_key"],
        "status": "settled" if row["settled_at"] is not None else "accepted",
        "amount_cents": row["amount_cents"],
        "currency": row["currency"],
        "accepted_at": row["accepted_at"].isoformat(),
        "settled_at": None if row["settled_at"] is None else row["settled_at"].isoformat(),
    }


def _error(status: int, error: str, detail: str) -> web.Response:
    headers = {"Retry-After": "1"} if status == 503 else None
    return web.json_response({"error": error, "detail": detail}, status=status, headers=headers)


class PaymentsApi:
    """The handlers, the connection pool, and the watch on the database and the settler."""

    def __init__(self, settings: Settings):
        self.s = settings
        self.pool: asyncpg.Pool | None = None
        self.watch: asyncio.Task[None] | None = None
        self.db_ok_at: float | None = None
        self.db_error: str | None = None
        self.unsettled: int | None = None
        self.oldest_unsettled_s: float | None = None

    async def start(self) -> None:
        """Apply the schema (waiting for the database), open the pool, start the watch."""
        while True:
            try:
                conn = await asyncpg.connect(self.s.database_url, timeout=5)
                break
            except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
                log.warning("database not reachable yet: %s", exc)
                await asyncio.sleep(0.5)
        try:
            await conn.execute(SCHEMA)
        finally:
            await conn.close()
        self.pool = await asyncpg.create_pool(self.s.database_url, min_size=2, max_size=10)
        self.watch = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        if self.watch is not None:
            self.watch.cancel()
        if self.pool is not None:
            self.pool.terminate()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection for one request, all within ``DB_TIMEOUT``. A connection whose
        request failed or ran out of time is closed, not reused: against a frozen or cut-off
        server its state is unknown, and waiting to find out would hang the request."""
        assert self.pool is not None
        async with asyncio.timeout(self.s.db_timeout), self.pool.acquire() as conn:
            try:
                yield conn
            except BaseException:
                conn.terminate()
                raise

    async def _watch(self) -> None:
        """Every ``watch_interval_s``: does the database answer, and how far behind is
        settling? One query on its own connection answers both."""
        conn: asyncpg.Connection | None = None
        while True:
            started = time.monotonic()
            try:
                async with asyncio.timeout(self.s.stale_after_s * 0.8):
                    if conn is None or conn.is_closed():
                        conn = await asyncpg.connect(self.s.database_url)
                    count, oldest = await conn.fetchrow(_BACKLOG)
                self.db_ok_at, self.db_error = time.monotonic(), None
                self.unsettled, self.oldest_unsettled_s = int(count), oldest
            except asyncio.CancelledError:
                if conn is not None:
                    conn.terminate()
                raise
            except Exception as exc:  # noqa: BLE001 - any failure means the database is not answering
                self.db_error = f"{type(exc).__name__}: {exc}"[:200]
                if conn is not None:
                    conn.terminate()
                    conn = None
            await asyncio.sleep(max(0.0, self.s.watch_interval_s - (time.monotonic() - started)))

    async def ready(self, request: web.Request) -> web.Response:
        """Readiness: the database answered within ``stale_after_s``; alerts and backlog."""
        now = time.monotonic()
        db_ok = self.db_ok_at is not None and now - self.db_ok_at <= self.s.stale_after_s
        alerts = []
        if not db_ok:
            alerts.append("database_unreachable")
        elif self.oldest_unsettled_s is not None and self.oldest_unsettled_s > self.s.settlement_alert_s:
            alerts.append("settlement_lagging")
        body = {
            "ready": db_ok,
            "database": {"ok": db_ok, "error": None if db_ok else self.db_error},
            "alerts": alerts,
            "unsettled": self.unsettled if db_ok else None,
            "oldest_unsettled_s": self.oldest_unsettled_s if db_ok else None,
        }
        return web.json_response(body, status=200 if db_ok else 503)

    async def create_payment(self, request: web.Request) -> web.Response:
        """Accept a payment durably, once per idempotency key."""
        try:
            payment = Payment.parse(request.headers.get("Idempotency-Key"), await request.json())
        except ValueError as exc:
            return _error(400, "invalid_payment", str(exc))
        try:
            async with self.connection() as conn:
                row = await conn.fetchrow(_ACCEPT, payment.key, payment.payer, payment.payee,
                                          payment.amount_cents, payment.currency)
                created = row is not None
                if row is None:
                    row = await conn.fetchrow(_BY_KEY, payment.key)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            return _error(503, "database_unavailable", f"payment not accepted: {type(exc).__name__}")
        if row is None:  # deleted between the two statements: say so rather than guess
            return _error(503, "database_unavailable", "payment not accepted: try again")
        if not created and not payment.same_as(row):
            return _error(409, "idempotency_key_reused", "this Idempotency-Key was used for another payment")
        return web.json_response(_payment_json(row), status=201 if created else 200)

    async def get_payment(self, request: web.Request) -> web.Response:
        """One payment by its idempotency key."""
        try:
            async with self.connection() as conn:
                row = await conn.fetchrow(_BY_KEY, request.match_info["key"])
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
            return _error(503, "database_unavailable", type(exc).__name__)
        if row is None:
            return _error(404, "not_found", "no payment with this idempotency key")
        return web.json_response(_payment_json(row))


API = web.AppKey("api", PaymentsApi)


async def _lifetime(app: web.Application) -> AsyncIterator[None]:
    await app[API].start()
    yield
    await app[API].stop()


def create_app(settings: Settings) -> web.Application:
    """The aiohttp application."""
    api = PaymentsApi(settings)
    app = web.Application()
    app[API] = api
    app.cleanup_ctx.append(_lifetime)
    app.router.add_post("/payments", api.create_payment)
    app.router.add_get("/payments/{key}", api.get_payment)
    app.router.add_get("/health/ready", api.ready)
    return app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = Settings.from_env()
    web.run_app(create_app(settings), host="127.0.0.1", port=settings.port, access_log=None,
                print=lambda text: log.info("%s", text))


if __name__ == "__main__":
    main()
