"""The settler: charges every accepted payment once and marks it settled.

Every ``SETTLE_INTERVAL`` (0.2 s) it takes the oldest unsettled payments (up to ``SETTLE_BATCH``,
locked so that two settlers never take the same one), writes one charge for each and sets
``settled_at``, all in one statement and so in one transaction: a payment is charged and
settled together, or neither. The time from ``accepted_at`` to ``settled_at`` is the
settlement delay. When the database does not answer it reconnects with a growing backoff
(up to 1 s), so settling resumes soon after the database comes back.

Environment: ``DATABASE_URL`` (required), ``SETTLE_INTERVAL``, ``SETTLE_BATCH``.
"""

from __future__ import annotations

import asyncio
import logging
import os

import asyncpg

log = logging.getLogger("settler")

_SETTLE = """
WITH due AS (
    SELECT id, payer, amount_cents, currency FROM payments
    WHERE settled_at IS NULL ORDER BY id LIMIT $1
    FOR UPDATE SKIP LOCKED
), charged AS (
    INSERT INTO charges (payment_id, payer, amount_cents, currency)
    SELECT id, payer, amount_cents, currency FROM due
)
UPDATE payments p SET settled_at = clock_timestamp() FROM due WHERE p.id = due.id
"""

STATEMENT_TIMEOUT_S = 2.0
BACKOFF_MAX_S = 1.0


async def settle_forever(database_url: str, interval_s: float, batch: int) -> None:
    """Settle due payments until cancelled."""
    conn: asyncpg.Connection | None = None
    backoff = 0.05
    while True:
        try:
            async with asyncio.timeout(STATEMENT_TIMEOUT_S):
                if conn is None or conn.is_closed():
                    conn = await asyncpg.connect(database_url)
                    log.info("connected")
                status = await conn.execute(_SETTLE, batch)
            backoff = 0.05
            settled = int(status.split()[-1])
            if settled:
                log.debug("settled %d payment(s)", settled)
            if settled < batch:  # a full batch: more may be due at once
                await asyncio.sleep(interval_s)
        except asyncio.CancelledError:
            if conn is not None:
                conn.terminate()
            raise
        except Exception as exc:  # noqa: BLE001 - whatever failed, the next round tries again
            log.warning("settling failed (%s: %s); retrying in %.2f s", type(exc).__name__, exc, backoff)
            if conn is not None:
                conn.terminate()
                conn = None
            await asyncio.sleep(backoff)
            backoff = min(BACKOFF_MAX_S, backoff * 2)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(settle_forever(
        os.environ["DATABASE_URL"],
        interval_s=float(os.environ.get("SETTLE_INTERVAL", "0.2")),
        batch=int(os.environ.get("SETTLE_BATCH", "200")),
    ))


if __name__ == "__main__":
    main()
