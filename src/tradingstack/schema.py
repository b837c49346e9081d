"""Schema migrations and seed data of the trading stack, applied idempotently.

``python -m tradingstack.schema`` applies them once and exits; the gateway, router and batch
call :func:`apply` at start. Concurrent starters are safe: the work is done under a
PostgreSQL advisory lock and each migration is recorded in ``schema_migrations``.

Environment (all optional except ``DATABASE_URL``):

- ``DATABASE_URL``     libpq URL of the trading database (required)
- ``SEED_ACCOUNTS``    number of accounts created by the seed (default 1000)
- ``SEED_CASH``        opening cash of each account (default 1000000)
- ``SEED_POSITION``    opening shares of each symbol per account (default 1000)

The money invariants kept by the stored functions (and checked by ``tradingstack.drill``):

    buying_power = cash - reserved(open buys) - cost(unsettled buys) + proceeds(unsettled sells)
    available    = quantity - quantity(open sells) + unsettled bought - unsettled sold
    cash         = opening_cash + proceeds(settled sells) - cost(settled buys)
"""

from __future__ import annotations

import os

__all__ = ["MIGRATIONS", "SYMBOLS", "apply", "apply_async", "main"]

LOCK_KEY = 0x7472616465  # "trade": the advisory lock serialising concurrent starters

#: A few dozen symbols with their opening reference prices.
SYMBOLS: dict[str, float] = {
    "AAPL": 190.0, "MSFT": 410.0, "GOOG": 140.0, "AMZN": 175.0, "META": 480.0, "NVDA": 880.0,
    "TSLA": 175.0, "JPM": 195.0, "V": 275.0, "MA": 470.0, "UNH": 490.0, "HD": 350.0,
    "PG": 160.0, "JNJ": 155.0, "XOM": 115.0, "CVX": 155.0, "KO": 60.0, "PEP": 170.0,
    "MRK": 125.0, "ABBV": 170.0, "COST": 720.0, "WMT": 60.0, "BAC": 37.0, "DIS": 110.0,
    "NFLX": 620.0, "ADBE": 500.0, "CRM": 300.0, "ORCL": 125.0, "INTC": 42.0, "AMD": 170.0,
    "CSCO": 49.0, "QCOM": 165.0, "TXN": 170.0, "IBM": 190.0, "NKE": 95.0, "SBUX": 90.0,
    "T": 17.0, "VZ": 40.0, "PFE": 28.0, "SONY": 85.0,
}

_V1 = """
CREATE TABLE symbols (
    symbol      text PRIMARY KEY,
    last_price  numeric(14,4) NOT NULL CHECK (last_price > 0)
);
CREATE TABLE accounts (
    id            bigint PRIMARY KEY,
    opening_cash  numeric(18,4) NOT NULL,
    cash          numeric(18,4) NOT NULL,
    buying_power  numeric(18,4) NOT NULL
);
CREATE TABLE positions (
    account_id        bigint NOT NULL REFERENCES accounts,
    symbol            text NOT NULL REFERENCES symbols,
    opening_quantity  bigint NOT NULL,
    quantity          bigint NOT NULL,
    available         bigint NOT NULL,
    PRIMARY KEY (account_id, symbol)
);
CREATE TABLE orders (
    id                bigserial PRIMARY KEY,
    client_order_id   text NOT NULL UNIQUE,
    account_id        bigint NOT NULL,
    symbol            text NOT NULL,
    side              text NOT NULL CHECK (side IN ('buy', 'sell')),
    type              text NOT NULL CHECK (type IN ('market', 'limit', 'stop')),
    quantity          bigint NOT NULL CHECK (quantity > 0),
    limit_price       numeric(14,4),
    stop_price        numeric(14,4),
    status            text NOT NULL CHECK (status IN ('accepted', 'sent', 'filled', 'cancelled', 'rejected')),
    reason            text,
    reserved          numeric(18,4) NOT NULL DEFAULT 0,
    cancel_requested  boolean NOT NULL DEFAULT false,
    fill_price        numeric(14,4),
    created_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    sent_at           timestamptz,
    done_at           timestamptz
);
CREATE INDEX orders_open ON orders (created_at) WHERE status IN ('accepted', 'sent');
CREATE TABLE outbox (
    id          bigserial PRIMARY KEY,
    order_id    bigint NOT NULL REFERENCES orders,
    kind        text NOT NULL CHECK (kind IN ('new', 'cancel')),
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    sent_at     timestamptz,
    attempts    integer NOT NULL DEFAULT 0
);
CREATE INDEX outbox_pending ON outbox (id) WHERE sent_at IS NULL;
CREATE TABLE executions (
    exec_id        text PRIMARY KEY,
    seq            bigserial UNIQUE,
    order_id       bigint NOT NULL UNIQUE REFERENCES orders,
    account_id     bigint NOT NULL,
    symbol         text NOT NULL,
    side           text NOT NULL,
    quantity       bigint NOT NULL,
    price          numeric(14,4) NOT NULL,
    executed_at    timestamptz NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    business_date  date NOT NULL,
    settled_run    bigint
);
CREATE INDEX executions_unsettled ON executions (business_date, seq) WHERE settled_run IS NULL;
CREATE TABLE router_state (
    name   text PRIMARY KEY,
    value  text NOT NULL
);
CREATE TABLE batch_runs (
    id               bigserial PRIMARY KEY,
    business_date    date NOT NULL UNIQUE,
    status           text NOT NULL CHECK (status IN ('running', 'finished')),
    started_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    deadline         timestamptz NOT NULL,
    window_s         double precision NOT NULL,
    finished_at      timestamptz,
    margin_s         double precision,
    chunk_size       integer NOT NULL,
    total            bigint NOT NULL DEFAULT 0,
    processed        bigint NOT NULL DEFAULT 0,
    checkpoint_seq   bigint NOT NULL DEFAULT 0,
    upto_seq         bigint NOT NULL DEFAULT 0,
    attempts         integer NOT NULL DEFAULT 1,
    last_progress_at timestamptz
);
CREATE TABLE batch_chunks (
    run_id        bigint NOT NULL REFERENCES batch_runs,
    chunk_no      integer NOT NULL,
    first_seq     bigint NOT NULL,
    last_seq      bigint NOT NULL,
    executions    integer NOT NULL,
    attempt       integer NOT NULL,
    committed_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (run_id, chunk_no)
);

-- Order intake in one round trip: idempotent on client_order_id, risk check, outbox entry,
-- all in the caller's single transaction.
CREATE FUNCTION place_order(p_client_order_id text, p_account bigint, p_symbol text, p_side text,
                            p_type text, p_quantity bigint, p_limit numeric, p_stop numeric,
                            p_collar numeric)
RETURNS TABLE (order_id bigint, client_order_id text, created boolean, status text, reason text, account_id bigint,
               symbol text, side text, type text, quantity bigint, limit_price numeric,
               stop_price numeric, created_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_id bigint;
    v_created timestamptz;
    v_ref numeric;
    v_known boolean;
    v_reserve numeric := 0;
    v_reason text;
BEGIN
    SELECT s.last_price INTO v_ref FROM symbols s WHERE s.symbol = p_symbol;
    v_known := FOUND;
    IF p_side = 'buy' THEN
        IF p_type = 'limit' THEN v_ref := p_limit;
        ELSIF p_type = 'stop' THEN v_ref := greatest(p_stop, coalesce(v_ref, 0)) * (1 + p_collar);
        ELSIF v_ref IS NOT NULL THEN v_ref := v_ref * (1 + p_collar);
        END IF;
        v_reserve := round(coalesce(v_ref, 0) * p_quantity, 4);
    END IF;
    INSERT INTO orders AS o (client_order_id, account_id, symbol, side, type, quantity,
                             limit_price, stop_price, status, reserved)
    VALUES (p_client_order_id, p_account, p_symbol, p_side, p_type, p_quantity, p_limit, p_stop,
            'accepted', v_reserve)
    ON CONFLICT (client_order_id) DO NOTHING
    RETURNING o.id, o.created_at INTO v_id, v_created;
    IF v_id IS NULL THEN
        RETURN QUERY SELECT o.id, o.client_order_id, false, o.status, o.reason, o.account_id, o.symbol, o.side, o.type,
                            o.quantity, o.limit_price, o.stop_price, o.created_at
                     FROM orders o WHERE o.client_order_id = p_client_order_id;
        RETURN;
    END IF;
    IF NOT v_known THEN
        v_reason := 'unknown symbol';
    ELSIF p_side = 'buy' THEN
        UPDATE accounts a SET buying_power = a.buying_power - v_reserve
         WHERE a.id = p_account AND a.buying_power >= v_reserve;
        IF NOT FOUND THEN
            v_reason := CASE WHEN EXISTS (SELECT 1 FROM accounts a WHERE a.id = p_account)
                             THEN 'insufficient buying power' ELSE 'unknown account' END;
        END IF;
    ELSE
        UPDATE positions p SET available = p.available - p_quantity
         WHERE p.account_id = p_account AND p.symbol = p_symbol AND p.available >= p_quantity;
        IF NOT FOUND THEN
            v_reason := CASE WHEN EXISTS (SELECT 1 FROM accounts a WHERE a.id = p_account)
                             THEN 'insufficient position' ELSE 'unknown account' END;
        END IF;
    END IF;
    IF v_reason IS NOT NULL THEN
        UPDATE orders o SET status = 'rejected', reason = v_reason, reserved = 0, done_at = clock_timestamp()
         WHERE o.id = v_id;
    ELSE
        INSERT INTO outbox (order_id, kind) VALUES (v_id, 'new');
    END IF;
    RETURN QUERY SELECT v_id, p_client_order_id, true,
                        CASE WHEN v_reason IS NULL THEN 'accepted' ELSE 'rejected' END, v_reason, p_account,
                        p_symbol, p_side, p_type, p_quantity, p_limit, p_stop, v_created;
END $$;

-- Record one execution exactly once (keyed by exec_id and by order_id); returns true when new.
CREATE FUNCTION record_fill(p_exec_id text, p_order bigint, p_quantity bigint, p_price numeric,
                            p_executed_at timestamptz)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    o orders%ROWTYPE;
    v_amount numeric;
BEGIN
    SELECT * INTO o FROM orders WHERE id = p_order FOR UPDATE;
    IF NOT FOUND OR o.status NOT IN ('accepted', 'sent') THEN
        RETURN false;
    END IF;
    INSERT INTO executions (exec_id, order_id, account_id, symbol, side, quantity, price,
                            executed_at, business_date)
    VALUES (p_exec_id, p_order, o.account_id, o.symbol, o.side, p_quantity, p_price, p_executed_at,
            (p_executed_at AT TIME ZONE 'UTC')::date)
    ON CONFLICT DO NOTHING;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    v_amount := round(p_quantity * p_price, 4);
    IF o.side = 'buy' THEN
        UPDATE accounts SET buying_power = buying_power + o.reserved - v_amount WHERE id = o.account_id;
        UPDATE positions SET available = available + p_quantity
         WHERE account_id = o.account_id AND symbol = o.symbol;
        IF NOT FOUND THEN
            INSERT INTO positions (account_id, symbol, opening_quantity, quantity, available)
            VALUES (o.account_id, o.symbol, 0, 0, p_quantity);
        END IF;
    ELSE
        UPDATE accounts SET buying_power = buying_power + v_amount WHERE id = o.account_id;
    END IF;
    UPDATE orders SET status = 'filled', fill_price = p_price, done_at = clock_timestamp(),
                      sent_at = coalesce(sent_at, clock_timestamp())
     WHERE id = p_order;
    RETURN true;
END $$;

-- Close an open order without execution (exchange-confirmed cancel, or exchange rejection)
-- and release what it reserved; returns true when this call closed it.
CREATE FUNCTION close_order(p_order bigint, p_status text, p_reason text)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    o orders%ROWTYPE;
BEGIN
    SELECT * INTO o FROM orders WHERE id = p_order FOR UPDATE;
    IF NOT FOUND OR o.status NOT IN ('accepted', 'sent') THEN
        RETURN false;
    END IF;
    IF o.side = 'buy' THEN
        UPDATE accounts SET buying_power = buying_power + o.reserved WHERE id = o.account_id;
    ELSE
        UPDATE positions SET available = available + o.quantity
         WHERE account_id = o.account_id AND symbol = o.symbol;
    END IF;
    UPDATE orders SET status = p_status, reason = p_reason, done_at = clock_timestamp() WHERE id = p_order;
    RETURN true;
END $$;
"""

# Lock order, so that concurrent writers cannot deadlock: a transaction that changes an
# account's buying power, cash or positions, or an existing order, first locks every account
# row it will touch, in ascending id order (lock_accounts), and touches a positions or orders
# row only while holding its account. The gateway's grouped intake (place_orders), the router's
# sends, fills and closes, and the settlement batch all follow it; place_orders also inserts
# its orders in client_order_id order, so two groups reusing the same ids (on different
# accounts) cannot wait on each other's unique-index entries in a cycle. The gateway's cancel
# locks one order row and waits for nothing after it. Without this, a group of orders and a
# router batch locking the same two accounts in opposite orders waited for deadlock_timeout
# (1 s) before one was rolled back, which showed as a 1 s latency tail under load.
_V2 = """
CREATE FUNCTION lock_accounts(p_accounts bigint[]) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM accounts WHERE id = ANY(p_accounts) ORDER BY id FOR UPDATE;
END $$;

-- Several orders in one transaction (the gateway's group commit): accounts locked first, then
-- place_order for each in client_order_id order; one row per order, batch_index being the
-- order's 1-based position in the arrays.
CREATE FUNCTION place_orders(p_client_order_ids text[], p_accounts bigint[], p_symbols text[], p_sides text[],
                             p_types text[], p_quantities bigint[], p_limits numeric[], p_stops numeric[],
                             p_collar numeric)
RETURNS TABLE (batch_index integer, order_id bigint, client_order_id text, created boolean, status text,
               reason text, account_id bigint, symbol text, side text, type text, quantity bigint,
               limit_price numeric, stop_price numeric, created_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    i integer;
BEGIN
    PERFORM lock_accounts(p_accounts);
    FOR i IN SELECT g FROM generate_subscripts(p_client_order_ids, 1) g ORDER BY p_client_order_ids[g], g LOOP
        RETURN QUERY SELECT i, r.* FROM place_order(p_client_order_ids[i], p_accounts[i], p_symbols[i],
                                                    p_sides[i], p_types[i], p_quantities[i], p_limits[i],
                                                    p_stops[i], p_collar) r;
    END LOOP;
END $$;

-- The accounts of some orders, locked in lock order (the router, before fills and closes).
CREATE FUNCTION lock_order_accounts(p_orders bigint[]) RETURNS void LANGUAGE sql AS $$
    SELECT lock_accounts(array(SELECT DISTINCT account_id FROM orders WHERE id = ANY(p_orders)));
$$;
"""

#: (version, SQL) pairs, applied in order, each once.
_V3 = """
-- Order intake halted or open, by a person's or a rule's decision; kept here so a restarted
-- gateway keeps it. reopen_when 'batch_finished': the gateway opens intake again itself once
-- the newest batch run finished (the market open delayed until the batch is done).
CREATE TABLE intake_control (
    id           boolean PRIMARY KEY DEFAULT true CHECK (id),
    halted       boolean NOT NULL DEFAULT false,
    reason       text,
    reopen_when  text CHECK (reopen_when IN ('batch_finished')),
    changed_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
INSERT INTO intake_control (id, halted) VALUES (true, false);
-- A batch asked to stop (SIGTERM) ends at its checkpoint as 'halted'; running it again resumes.
ALTER TABLE batch_runs DROP CONSTRAINT batch_runs_status_check;
ALTER TABLE batch_runs ADD CONSTRAINT batch_runs_status_check CHECK (status IN ('running', 'finished', 'halted'));
"""

MIGRATIONS: list[tuple[int, str]] = [(1, _V1), (2, _V2), (3, _V3)]


def _seed_statements(accounts: int, cash: float, position: int) -> list[tuple[str, tuple]]:
    symbols = sorted(SYMBOLS)
    return [
        ("INSERT INTO symbols (symbol, last_price) SELECT * FROM unnest(%s::text[], %s::numeric[]) "
         "ON CONFLICT DO NOTHING", (symbols, [SYMBOLS[s] for s in symbols])),
        ("INSERT INTO accounts (id, opening_cash, cash, buying_power) "
         "SELECT g, %s, %s, %s FROM generate_series(1, %s) g ON CONFLICT DO NOTHING",
         (cash, cash, cash, accounts)),
        ("INSERT INTO positions (account_id, symbol, opening_quantity, quantity, available) "
         "SELECT a, s, %s, %s, %s FROM generate_series(1, %s) a, unnest(%s::text[]) s ON CONFLICT DO NOTHING",
         (position, position, position, accounts, symbols)),
    ]


def _settings() -> tuple[int, float, int]:
    return (int(os.environ.get("SEED_ACCOUNTS", "1000")), float(os.environ.get("SEED_CASH", "1000000")),
            int(os.environ.get("SEED_POSITION", "1000")))


def apply(dsn: str, *, accounts: int | None = None, cash: float | None = None,
          position: int | None = None, connect_timeout: float = 10.0) -> list[int]:
    """Apply missing migrations and the seed (idempotent); returns the versions applied now.

    Seed sizes default to ``SEED_ACCOUNTS`` / ``SEED_CASH`` / ``SEED_POSITION``. The seed is
    only inserted together with migration 1, so a running database is never re-seeded.
    """
    import psycopg  # noqa: PLC0415

    env_accounts, env_cash, env_position = _settings()
    seed = _seed_statements(accounts or env_accounts, env_cash if cash is None else cash,
                            env_position if position is None else position)
    applied: list[int] = []
    with psycopg.connect(dsn, autocommit=True, connect_timeout=max(1, int(connect_timeout))) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations "
                         "(version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for version, sql in MIGRATIONS:
                if version in done:
                    continue
                with conn.transaction():
                    conn.execute(sql)
                    if version == 1:
                        for statement, params in seed:
                            conn.execute(statement, params)
                    conn.execute("INSERT INTO schema_migrations (version) VALUES (%s)", (version,))
                applied.append(version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return applied


async def apply_async(dsn: str, **kwargs) -> list[int]:
    """:func:`apply` from asyncio code (runs in a worker thread)."""
    import asyncio  # noqa: PLC0415

    return await asyncio.to_thread(apply, dsn, **kwargs)


def main() -> int:
    """Apply migrations and seed to ``DATABASE_URL``; print what was applied."""
    applied = apply(os.environ["DATABASE_URL"])
    print(f"schema: applied {applied or 'nothing (up to date)'}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
