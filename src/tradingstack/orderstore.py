"""The gateway's order store: its SQL, the asyncpg pool, and the circuit breaker around them.

Every statement the gateway runs for a request goes through :meth:`OrderStore.call`: the
breaker is asked first, a pooled connection is taken within what is left of the request's
deadline (reads and cancels behind a bulkhead that keeps a connection free for each order
commit), the statement's timeout is cut to that same deadline, and a lost connection is
retried with backoff until the deadline. What cannot be served becomes
:class:`DatabaseUnavailable` (the HTTP layer answers it with 503 or 504).

New orders go through group commit (:mod:`tradingstack.orderbatch`): concurrent orders share
one ``place_orders`` call, one transaction and one WAL flush, and each is answered only after
that commit. A failed group counts one failed request per order in :class:`CallOutcomes`,
while the breaker counts failed calls to the database (a group is one call).

:class:`CallOutcomes` is what the store's calls saw of the database; the readiness verdict
(:mod:`tradingstack.health`) reads it. Settings come from the gateway
(:class:`tradingstack.gateway.GatewaySettings`); :class:`StoreSettings` names the ones read here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol, TypeVar

import asyncpg

from tradingstack.orderbatch import BatchTimeout, OrderBatcher
from tradingstack.resilience import CircuitBreaker, CircuitOpen, backoff_delay
from tradingstack.schema import apply_async

__all__ = ["OrderStore", "StoreSettings", "CallOutcomes", "DatabaseUnavailable", "place_arguments"]

log = logging.getLogger("tradingstack.gateway")

T = TypeVar("T")

_ORDER_COLUMNS = ("id, client_order_id, account_id, symbol, side, type, quantity, limit_price, stop_price, "
                  "status, reason, cancel_requested, fill_price, created_at, sent_at, done_at")

# The orders of one group in one statement (one transaction, one commit); each row carries its
# order's 1-based position in the arrays (batch_index).
# Every column travels as text[] and is cast here: asyncpg decodes text[] itself, while a
# bigint[] or numeric[] parameter makes it ask the server about the type on each new
# connection (six round trips more before the first commit; 3.5 s on a 200 ms link, longer
# than the statement timeout, so a commit on a reconnected pool connection always timed out).
_PLACE_SQL = ("SELECT * FROM place_orders($1::text[], $2::text[]::bigint[], $3::text[], $4::text[], $5::text[], "
              "$6::text[]::bigint[], $7::text[]::numeric[], $8::text[]::numeric[], $9)")
_PLACE_FIELDS = ("client_order_id", "account", "symbol", "side", "type", "quantity", "limit_price", "stop_price")


def place_arguments(orders: Sequence[dict[str, Any]], collar: Decimal) -> list[Any]:
    """The parameters of :data:`_PLACE_SQL` for ``orders``: one text array per field, then the collar."""
    columns: list[Any] = [[None if order[field] is None else str(order[field]) for order in orders]
                          for field in _PLACE_FIELDS]
    return [*columns, collar]

# An order with its execution (a JSON object as text, or NULL), by id or by client order id.
_ORDER_SQL = (f"SELECT {_ORDER_COLUMNS}, (SELECT row_to_json(e) FROM (SELECT exec_id, quantity, price, "
              "executed_at FROM executions WHERE order_id = orders.id) e)::text AS execution FROM orders WHERE ")
_ORDER_BY_ID_SQL = _ORDER_SQL + "id = $1"
_ORDER_BY_CLIENT_SQL = _ORDER_SQL + "client_order_id = $1"

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

# Losing the connection or the server: worth another attempt within the deadline.
_CONNECTION_LOST = (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError,
                    asyncpg.TooManyConnectionsError, asyncpg.AdminShutdownError, asyncpg.CrashShutdownError)


class StoreSettings(Protocol):
    """The gateway settings the order store reads (see the gateway's environment table)."""

    database_url: str
    connect_timeout: float
    statement_timeout: float
    pool_size: int
    pool_timeout: float
    request_timeout: float
    backoff_base: float
    backoff_max: float
    cb_threshold: int
    batch_max: int
    batch_flushes: int
    collar: float
    skip_migrations: bool


class DatabaseUnavailable(Exception):
    """The database could not serve a request in time (mapped to 503/504)."""

    def __init__(self, code: str, detail: str, status: int = 503, retry_after: float | None = None):
        self.code, self.detail, self.status, self.retry_after = code, detail, status, retry_after
        super().__init__(f"{code}: {detail}")


class _DeadlinePassed(Exception):
    """The request's deadline passed before its statement could start."""


@dataclass
class CallOutcomes:
    """What the store's calls saw of the database, as times on the monotonic clock (0: never).

    ``failed_requests`` counts requests failed in a row; only a served write ends the streak,
    since reads may pass while order intake cannot.
    """

    answered_at: float = 0.0
    failed_requests: int = 0
    failed_at: float = 0.0
    read_only_at: float = 0.0

    def failed(self, requests: int = 1) -> None:
        """Count ``requests`` failed requests, now."""
        self.failed_requests += requests
        self.failed_at = time.monotonic()


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Pool reset hook that does nothing.

    asyncpg's default reset is a round trip per release (advisory unlock, CLOSE ALL, UNLISTEN,
    RESET ALL); the gateway leaves no session state behind, so that trip is pure cost.
    """


class OrderStore:
    """Orders and accounts in PostgreSQL through one pool, guarded by a circuit breaker."""

    def __init__(self, settings: StoreSettings, *, on_batch: Callable[[int], None] | None = None,
                 on_circuit: Callable[[str], None] | None = None,
                 on_acquire_timeout: Callable[[], Any] | None = None):
        self.s = settings
        self.collar = Decimal(str(settings.collar))
        self.breaker = CircuitBreaker("database", settings.cb_threshold, settings.backoff_base,
                                      settings.backoff_max, on_change=on_circuit)
        self.pool: asyncpg.Pool | None = None
        self.outcomes = CallOutcomes()
        #: Calls waiting for a pooled connection now, having found none free (a starved pool keeps this up).
        self.waiting = 0
        # Created in the event loop that uses it (see _others).
        self._bulkhead: asyncio.Semaphore | None = None
        self.on_acquire_timeout = on_acquire_timeout
        # Values PostgreSQL refuses for one order (bad encoding, out of range): retried alone.
        self.batcher = OrderBatcher(self._commit_orders, max_batch=settings.batch_max,
                                    max_flushes=settings.batch_flushes, retry_alone=(asyncpg.DataError,),
                                    on_batch=on_batch)

    async def open(self) -> None:
        """Apply the schema (retrying until the database answers), then open the pool."""
        attempt = 0
        while not self.s.skip_migrations:
            try:
                await apply_async(self.s.database_url, connect_timeout=self.s.connect_timeout)
                break
            except Exception as exc:  # noqa: BLE001  (any failure: keep trying, the supervisor's deadline rules)
                log.warning("schema not applied yet: %s", exc)
                await asyncio.sleep(backoff_delay(attempt, 0.1, 2.0))
                attempt += 1
        self.pool = await asyncpg.create_pool(
            self.s.database_url, min_size=min(4, self.s.pool_size), max_size=self.s.pool_size,
            timeout=self.s.connect_timeout, command_timeout=self.s.statement_timeout,
            max_inactive_connection_lifetime=60, reset=_keep_session,
            server_settings={"statement_timeout": str(int(self.s.statement_timeout * 1000)),
                             "idle_in_transaction_session_timeout": "10000",
                             "application_name": "tradingstack.gateway"})

    async def close(self) -> None:
        """Fail the orders still waiting for a commit and close the pool."""
        await self.batcher.close()
        if self.pool is not None:
            self.pool.terminate()

    # -- what the requests ask for ------------------------------------------------------------

    async def place(self, order: dict[str, Any], deadline: float) -> asyncpg.Record:
        """Commit a validated order (with others arriving meanwhile); its ``place_orders`` row."""
        try:
            return await self.batcher.place(order, deadline)
        except BatchTimeout as exc:
            self.outcomes.failed()
            raise DatabaseUnavailable("database_timeout", f"order not written: {exc}", 504) from exc

    async def order(self, key: int | str, *, by_client: bool = False) -> asyncpg.Record | None:
        """The order with id ``key`` (or client order id, ``by_client``) and its execution as JSON text."""
        sql = _ORDER_BY_CLIENT_SQL if by_client else _ORDER_BY_ID_SQL

        async def op(conn: asyncpg.Connection, timeout: float) -> asyncpg.Record | None:
            return await conn.fetchrow(sql, key, timeout=timeout)

        return await self.call(op, write=False)

    async def cancel(self, order_id: int) -> tuple[bool, asyncpg.Record | None]:
        """Request the cancel of an open order: (whether it was requested now, the order as it stands)."""

        async def op(conn: asyncpg.Connection, timeout: float) -> tuple[bool, asyncpg.Record | None]:
            # One statement (one implicit transaction) flags the order and queues the cancel; its
            # RETURNING is the row as it stands after the flag, the row lock keeping it so until
            # commit. Only when nothing was flagged does a second, fresh read say why.
            row = await conn.fetchrow(_CANCEL_SQL, order_id, timeout=timeout)
            if row is not None:
                return True, row
            current = await conn.fetchrow(f"SELECT {_ORDER_COLUMNS} FROM orders WHERE id = $1", order_id,
                                          timeout=timeout)
            return False, current

        return await self.call(op)

    async def account(self, account_id: int) -> asyncpg.Record | None:
        """The account's id, cash, buying power and positions (a JSON list as text)."""

        async def op(conn: asyncpg.Connection, timeout: float) -> asyncpg.Record | None:
            return await conn.fetchrow(_ACCOUNT_SQL, account_id, timeout=timeout)

        return await self.call(op, write=False)

    async def _commit_orders(self, orders: Sequence[dict[str, Any]], deadline: float) -> list[asyncpg.Record]:
        """Place ``orders`` in one transaction; one ``place_orders`` row per order, in order."""
        arguments = place_arguments(orders, self.collar)

        async def op(conn: asyncpg.Connection, timeout: float) -> list[asyncpg.Record]:
            return await conn.fetch(_PLACE_SQL, *arguments, timeout=timeout)

        rows = await self.call(op, deadline=deadline, requests=len(orders), commit=True)
        return sorted(rows, key=lambda row: row["batch_index"])

    # -- every statement --------------------------------------------------------------------------

    async def call(self, op: Callable[[asyncpg.Connection, float], Awaitable[T]], *, write: bool = True,
                   deadline: float | None = None, requests: int = 1, commit: bool = False) -> T:
        """Run ``op(conn, timeout)`` under the breaker, retrying lost connections within the deadline.

        ``timeout`` is what ``op`` may spend on its statements: the statement timeout, cut to
        what is left of the request's deadline (``deadline``, by default ``REQUEST_TIMEOUT``
        from now). Only a successful ``write`` ends a streak of failed requests (reads may
        pass while order intake cannot). ``requests`` is how many requests the call serves (a
        group of orders): a failure adds that many to the streak of failed requests, while the
        circuit breaker counts failed calls to the database.
        """
        if deadline is None:
            deadline = time.monotonic() + self.s.request_timeout
        attempt = 0
        while True:
            self._check_circuit()
            try:
                result = await self._attempt(op, deadline, commit)
            except _DeadlinePassed as exc:
                self.breaker.release_trial()
                raise self._give_up(requests, "database_timeout", "the request deadline passed while waiting "
                                    "for a database connection", 504) from exc
            except asyncpg.ReadOnlySQLTransactionError as exc:
                self.breaker.release_trial()
                self.outcomes.read_only_at = time.monotonic()
                raise self._give_up(requests, "database_read_only", "the database refuses writes", 503) from exc
            except asyncpg.DeadlockDetectedError as exc:
                # The schema's lock order rules deadlocks out between the stack's own writers;
                # anything else that locks rows may still cause one. PostgreSQL rolled this
                # transaction back, so running it again is safe.
                self.breaker.release_trial()
                if time.monotonic() >= deadline - 0.05:
                    raise self._give_up(requests, "database_timeout",
                                        f"deadlock retried until the deadline: {exc}", 504) from exc
                continue
            except (asyncpg.QueryCanceledError, TimeoutError) as exc:
                self.breaker.failure()
                raise self._give_up(requests, "database_timeout", f"no answer from the database within "
                                    f"{self.s.request_timeout:g}s ({type(exc).__name__})", 504) from exc
            except _CONNECTION_LOST as exc:
                self.breaker.failure()
                delay = backoff_delay(attempt, self.s.backoff_base, self.s.backoff_max)
                attempt += 1
                if time.monotonic() + delay >= deadline - 0.05:
                    raise self._give_up(requests, "database_unavailable", f"{type(exc).__name__}: {exc}",
                                        503) from exc
                await asyncio.sleep(delay)
                continue
            except Exception:
                # Not a verdict on the database (a refused value, a bug): a half-open trial must
                # not stay taken, or the circuit would never close again.
                self.breaker.release_trial()
                raise
            self.breaker.success()
            if write:
                self.outcomes.failed_requests = 0
            # A served request is as good a sign of a live database as a probe (the probe
            # loop may lag when the event loop is saturated).
            self.outcomes.answered_at = time.monotonic()
            return result

    def _check_circuit(self) -> None:
        """Raise :class:`DatabaseUnavailable` while the circuit is open (a half-open one lets one call through)."""
        try:
            self.breaker.check()
        except CircuitOpen as exc:
            raise DatabaseUnavailable("circuit_open", str(exc), 503, exc.retry_after) from exc

    async def _attempt(self, op: Callable[[asyncpg.Connection, float], Awaitable[T]], deadline: float,
                       commit: bool = False) -> T:
        """One try of ``op`` on a pooled connection, bounded by ``deadline``; a call that is not
        an order commit first takes a slot of the pool's bulkhead (:meth:`_others`)."""
        if self.pool is None:
            raise DatabaseUnavailable("database_unavailable", "the gateway has not opened its database pool yet")
        remaining = deadline - time.monotonic()
        # The outer bound is a last resort: the statement timeouts below fire first, so a
        # stalled connection is terminated here rather than handed back to the pool.
        async with asyncio.timeout(max(0.01, remaining) + 0.5):
            bulkhead = None if commit else self._others()
            # Counted as waiting only when nothing was free when the call asked: a call that
            # gets a connection at once still passes an await on the way, and a scrape landing
            # there is not a starved pool (FT-24's "no one waiting after the fault" read one).
            queued = False
            try:
                wait = min(self.s.pool_timeout, max(0.01, remaining))
                if bulkhead is not None:
                    if bulkhead.locked():
                        queued = True
                        self.waiting += 1
                        await asyncio.wait_for(bulkhead.acquire(), wait)
                    else:
                        await bulkhead.acquire()  # a free slot is taken without suspending
                if not queued and not self._idle_connections():
                    queued = True
                    self.waiting += 1
                try:
                    conn = await self.pool.acquire(timeout=wait)
                except BaseException:
                    if bulkhead is not None:
                        bulkhead.release()
                    raise
            except TimeoutError:
                if self.on_acquire_timeout is not None:
                    self.on_acquire_timeout()
                raise
            finally:
                self.waiting -= queued
            try:
                left = deadline - time.monotonic()
                if left <= 0.01:
                    # The connection was never used: give it back as it is.
                    raise _DeadlinePassed()
                try:
                    return await op(conn, min(self.s.statement_timeout, left))
                except TimeoutError:
                    # A stalled server leaves the connection mid-query: drop it, do not reuse.
                    conn.terminate()
                    raise
            finally:
                try:
                    await self.pool.release(conn)
                finally:
                    if bulkhead is not None:
                        bulkhead.release()

    def _others(self) -> asyncio.Semaphore:
        """The pool's bulkhead: every call but an order commit takes one of ``pool_size -
        batch_flushes`` slots first, so reads and cancels, however many, always leave a
        connection for each commit the batcher may run (a slow database otherwise let them
        take the whole pool, and orders timed out waiting for a connection)."""
        if self._bulkhead is None:
            self._bulkhead = asyncio.Semaphore(max(1, self.s.pool_size - self.s.batch_flushes))
        return self._bulkhead

    def _give_up(self, requests: int, code: str, detail: str, status: int) -> DatabaseUnavailable:
        """Count the failed requests; the error to raise."""
        self.outcomes.failed(requests)
        return DatabaseUnavailable(code, detail, status)

    def _idle_connections(self) -> int:
        """Open connections free in the pool now."""
        sizes = self.pool_sizes()
        return sizes[1] if sizes is not None else 0

    def pool_sizes(self) -> tuple[int, int] | None:
        """Open and idle pooled connections (None before the pool is open)."""
        if self.pool is None:
            return None
        return self.pool.get_size(), self.pool.get_idle_size()
