"""The trading stack's drill plugin: canary order, integrity check, locustfile.

faultlab's engine uses these plain functions (it adapts them to its own probe and checker
interfaces); nothing here imports faultlab.

- :func:`place_canary_order` places one small market order over HTTP within a deadline and
  says whether it was acknowledged (durably accepted) and under which client order id.
- :func:`check_integrity` reconciles the database with what the API acknowledged: lost
  orders, duplicates per client order id, double executions, orders stuck unexecuted past a
  settle time, and cash / positions that do not reconcile with the fills.
- :func:`wait_settled` waits until the outbox is drained and no market order is open.
- :func:`locustfile_path` is the load generator's locustfile (run locust in its own process).

No environment settings are read here.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

__all__ = ["CanaryResult", "Violation", "place_canary_order", "check_integrity", "wait_settled",
           "locustfile_path", "VIOLATION_KINDS"]

#: Every kind of violation :func:`check_integrity` can report.
VIOLATION_KINDS = ("lost", "duplicate", "double_execution", "stuck", "cash_mismatch", "position_mismatch",
                   "settled_cash_mismatch", "settled_position_mismatch")


class CanaryResult(NamedTuple):
    """One canary order: ``ack`` is the client order id when the gateway acknowledged it;
    ``client_order_id`` is the id it was sent with, whatever the answer."""

    ok: bool
    status: int | None
    latency_s: float
    ack: str | None
    error: str | None
    client_order_id: str | None = None


@dataclass(frozen=True)
class Violation:
    """One integrity violation, naming the orders (or accounts) it concerns."""

    kind: str
    detail: str
    order_ids: tuple[int, ...] = ()
    client_order_ids: tuple[str, ...] = ()
    account_ids: tuple[int, ...] = field(default=())

    def to_dict(self) -> dict:
        """A JSON-ready dict."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def place_canary_order(base_url: str, *, timeout: float = 1.0, account: int = 1, symbol: str = "T",
                       quantity: int = 1, client_order_id: str | None = None, client=None) -> CanaryResult:
    """Place one market buy through the gateway at ``base_url`` and time it.

    ``ok`` is true only for 200/201 with status ``accepted`` or later (the order is durable).
    Never raises for network trouble: a timeout or refused connection is a failed sample.
    ``client`` may be an ``httpx.Client`` to reuse connections.
    """
    import httpx  # noqa: PLC0415

    coid = client_order_id or f"canary-{uuid.uuid4().hex[:20]}"
    body = {"client_order_id": coid, "account": account, "symbol": symbol, "side": "buy",
            "type": "market", "quantity": quantity}
    started = time.perf_counter()
    try:
        if client is not None:
            response = client.post(base_url.rstrip("/") + "/orders", json=body, timeout=timeout)
        else:
            response = httpx.post(base_url.rstrip("/") + "/orders", json=body, timeout=timeout)
        latency = time.perf_counter() - started
    except httpx.HTTPError as exc:
        return CanaryResult(False, None, time.perf_counter() - started, None,
                            f"{type(exc).__name__}: {exc}".strip()[:300], coid)
    if response.status_code in (200, 201):
        try:
            status = response.json().get("status")
        except ValueError:
            status = None
        if status in ("accepted", "sent", "filled"):
            return CanaryResult(True, response.status_code, latency, coid, None, coid)
        return CanaryResult(False, response.status_code, latency, None, f"unexpected order status {status!r}", coid)
    try:
        error = response.json().get("error") or response.text[:200]
    except ValueError:
        error = response.text[:200]
    return CanaryResult(False, response.status_code, latency, None, str(error), coid)


def check_integrity(dsn: str, acknowledged: Iterable[str], *, settle_s: float = 10.0,
                    connect_timeout: float = 10.0) -> list[Violation]:
    """Every integrity violation in the trading database at ``dsn`` (empty list = clean).

    ``acknowledged`` are the client order ids the API acknowledged (canary and load). An open
    order counts as stuck when it is a market order, or was never sent, and is older than
    ``settle_s`` seconds; resting limit and stop orders are legitimately open.
    """
    import psycopg  # noqa: PLC0415

    acked = sorted(set(acknowledged))
    found: list[Violation] = []
    with psycopg.connect(dsn, connect_timeout=max(1, int(connect_timeout)), autocommit=False) as conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        lost = conn.execute("SELECT a FROM unnest(%s::text[]) a WHERE NOT EXISTS "
                            "(SELECT 1 FROM orders o WHERE o.client_order_id = a)", (acked,)).fetchall()
        if lost:
            ids = tuple(r[0] for r in lost)
            found.append(Violation("lost", f"{len(ids)} acknowledged orders are not in the database",
                                   client_order_ids=ids))
        for coid, ids in conn.execute("SELECT client_order_id, array_agg(id ORDER BY id) FROM orders "
                                      "GROUP BY client_order_id HAVING count(*) > 1"):
            found.append(Violation("duplicate", f"{len(ids)} orders for client order id {coid}",
                                   order_ids=tuple(ids), client_order_ids=(coid,)))
        for order_id, n in conn.execute("SELECT order_id, count(*) FROM executions GROUP BY order_id "
                                        "HAVING count(*) > 1"):
            found.append(Violation("double_execution", f"order {order_id} executed {n} times", order_ids=(order_id,)))
        stuck = conn.execute(
            "SELECT id, client_order_id, status FROM orders WHERE status IN ('accepted', 'sent') "
            "AND (type = 'market' OR status = 'accepted') "
            "AND created_at < clock_timestamp() - make_interval(secs => %s) ORDER BY id", (settle_s,)).fetchall()
        if stuck:
            found.append(Violation("stuck", f"{len(stuck)} orders unexecuted after {settle_s:g}s",
                                   order_ids=tuple(r[0] for r in stuck), client_order_ids=tuple(r[1] for r in stuck)))
        found += _reconcile(conn)
        conn.rollback()
    return found


_CASH = """
WITH open_buys AS (SELECT account_id, sum(reserved) AS v FROM orders
                   WHERE status IN ('accepted', 'sent') AND side = 'buy' GROUP BY account_id),
     unsettled AS (SELECT account_id,
                          sum(CASE side WHEN 'sell' THEN round(quantity * price, 4)
                                        ELSE -round(quantity * price, 4) END) AS v
                   FROM executions WHERE settled_run IS NULL GROUP BY account_id),
     settled AS (SELECT account_id,
                        sum(CASE side WHEN 'sell' THEN round(quantity * price, 4)
                                      ELSE -round(quantity * price, 4) END) AS v
                 FROM executions WHERE settled_run IS NOT NULL GROUP BY account_id)
SELECT a.id, a.buying_power, a.cash - coalesce(b.v, 0) + coalesce(u.v, 0) AS expected_bp,
       a.cash, a.opening_cash + coalesce(s.v, 0) AS expected_cash
FROM accounts a LEFT JOIN open_buys b ON b.account_id = a.id LEFT JOIN unsettled u ON u.account_id = a.id
     LEFT JOIN settled s ON s.account_id = a.id
WHERE a.buying_power <> a.cash - coalesce(b.v, 0) + coalesce(u.v, 0)
   OR a.cash <> a.opening_cash + coalesce(s.v, 0)
ORDER BY a.id
"""

_POSITIONS = """
WITH open_sells AS (SELECT account_id, symbol, sum(quantity) AS v FROM orders
                    WHERE status IN ('accepted', 'sent') AND side = 'sell' GROUP BY account_id, symbol),
     unsettled AS (SELECT account_id, symbol,
                          sum(CASE side WHEN 'buy' THEN quantity ELSE -quantity END) AS v
                   FROM executions WHERE settled_run IS NULL GROUP BY account_id, symbol),
     settled AS (SELECT account_id, symbol, sum(CASE side WHEN 'buy' THEN quantity ELSE -quantity END) AS v
                 FROM executions WHERE settled_run IS NOT NULL GROUP BY account_id, symbol)
SELECT p.account_id, p.symbol, p.available, p.quantity - coalesce(o.v, 0) + coalesce(u.v, 0) AS expected_available,
       p.quantity, p.opening_quantity + coalesce(s.v, 0) AS expected_quantity
FROM positions p
     LEFT JOIN open_sells o ON (o.account_id, o.symbol) = (p.account_id, p.symbol)
     LEFT JOIN unsettled u ON (u.account_id, u.symbol) = (p.account_id, p.symbol)
     LEFT JOIN settled s ON (s.account_id, s.symbol) = (p.account_id, p.symbol)
WHERE p.available <> p.quantity - coalesce(o.v, 0) + coalesce(u.v, 0)
   OR p.quantity <> p.opening_quantity + coalesce(s.v, 0)
ORDER BY p.account_id, p.symbol
"""


def _reconcile(conn) -> list[Violation]:
    found = []
    for account, bp, expected_bp, cash, expected_cash in conn.execute(_CASH):
        if bp != expected_bp:
            found.append(Violation("cash_mismatch", f"account {account}: buying power {bp} but fills and open "
                                   f"orders give {expected_bp}", account_ids=(account,)))
        if cash != expected_cash:
            found.append(Violation("settled_cash_mismatch", f"account {account}: cash {cash} but settled fills "
                                   f"give {expected_cash}", account_ids=(account,)))
    for account, symbol, available, expected_available, quantity, expected_quantity in conn.execute(_POSITIONS):
        if available != expected_available:
            found.append(Violation("position_mismatch", f"account {account} {symbol}: available {available} but "
                                   f"fills and open orders give {expected_available}", account_ids=(account,)))
        if quantity != expected_quantity:
            found.append(Violation("settled_position_mismatch", f"account {account} {symbol}: quantity {quantity} "
                                   f"but settled fills give {expected_quantity}", account_ids=(account,)))
    return found


def wait_settled(dsn: str, timeout: float = 30.0, *, poll: float = 0.2) -> dict:
    """Wait until the outbox is empty and no market order is open; returns the last counts.

    Does not raise on timeout: the caller compares the returned counts (``outbox``,
    ``open_market``, ``settled``) and decides.
    """
    import psycopg  # noqa: PLC0415

    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {"outbox": None, "open_market": None, "settled": False}
    while True:
        try:
            with psycopg.connect(dsn, connect_timeout=2, autocommit=True) as conn:
                counts = conn.execute(
                    "SELECT (SELECT count(*) FROM outbox WHERE sent_at IS NULL), "
                    "(SELECT count(*) FROM orders WHERE status IN ('accepted', 'sent') AND type = 'market')").fetchone()
            # A SELECT without FROM gives exactly one row.
            assert counts is not None
            outbox, open_market = counts
            last = {"outbox": outbox, "open_market": open_market, "settled": outbox == 0 and open_market == 0}
        except psycopg.Error as exc:
            last = {**last, "settled": False, "error": str(exc).strip()[:200]}
        if last["settled"] or time.monotonic() >= deadline:
            return last
        time.sleep(poll)


def locustfile_path() -> str:
    """Absolute path of the trading stack's locustfile."""
    return str(Path(__file__).with_name("locustfile.py"))
