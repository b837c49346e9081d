"""An order commit on a new database connection is one statement, with no type lookups.

asyncpg decodes ``text[]`` itself but asks the server about a ``bigint[]`` or ``numeric[]``
parameter on every new connection (three more queries, six round trips). On a slow link
(FT-15's 200 ms) that made the first commit on a reconnected pool connection take 3.5 s,
past the statement timeout, so it was cut off, its connection dropped, and the next commit
met a new connection again. The driver's query log shows what a new connection sends.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import asyncpg

from tradingstack.orderstore import _PLACE_SQL, place_arguments
from tradingstack.schema import apply


def test_first_commit_on_a_new_connection_sends_only_the_commit(postgres):
    postgres.create_role("trading")
    postgres.create_database("trading", owner="trading")
    dsn = postgres.dsn("trading", "trading")
    apply(dsn, accounts=5)
    orders = [
        {"client_order_id": "c-1", "account": 1, "symbol": "ACME", "side": "buy", "type": "limit",
         "quantity": 10, "limit_price": Decimal("12.5000"), "stop_price": None},
        {"client_order_id": "c-2", "account": 2, "symbol": "ACME", "side": "sell", "type": "market",
         "quantity": 3, "limit_price": None, "stop_price": None},
    ]

    async def commit_on_a_new_connection():
        conn = await asyncpg.connect(dsn)
        sent: list[str] = []
        conn.add_query_logger(lambda record: sent.append(record.query))
        try:
            rows = await conn.fetch(_PLACE_SQL, *place_arguments(orders, Decimal("0.05")))
        finally:
            await conn.close()
        return sent, rows

    sent, rows = asyncio.run(commit_on_a_new_connection())
    assert sent == [_PLACE_SQL]
    by_id = {row["client_order_id"]: row for row in rows}
    assert by_id["c-1"]["account_id"] == 1 and by_id["c-1"]["quantity"] == 10
    assert by_id["c-1"]["limit_price"] == Decimal("12.5000") and by_id["c-1"]["stop_price"] is None
    assert by_id["c-2"]["type"] == "market" and by_id["c-2"]["limit_price"] is None
