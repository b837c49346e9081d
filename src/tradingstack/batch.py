"""The nightly settlement batch: the day's executions become settled cash and positions.

Run with ``python -m tradingstack.batch`` (one-shot). It settles the executions of one
business date in chunks of ``BATCH_CHUNK``, in execution order. Each chunk is one
transaction that adds the chunk's cash and quantity deltas to ``accounts.cash`` and
``positions.quantity``, marks its executions settled, advances the checkpoint in
``batch_runs`` and records the chunk in ``batch_chunks``. A crashed run is resumed by
running the batch again: it continues after the last committed chunk, so the result equals
an uninterrupted run and nothing is settled twice. A finished date is not settled again.
Executions recorded after the run started belong to the next run (the run fixes its
``upto_seq`` at creation), so a batch overlapping market hours still ends.

The run records its start, its deadline (start + ``BATCH_WINDOW``; seconds stand for the real
60 minutes), its end and the margin left before the window closes (negative = overran). It
prints one JSON line per chunk and a final JSON summary; progress is in ``batch_runs`` and
exported by the gateway's ``/metrics`` (``batch_progress_ratio``, ``batch_margin_seconds``).
Database errors are retried with backoff (a stalled database delays the batch, it does not
crash it) until ``BATCH_GIVE_UP`` seconds after the window closed; then it exits with code 3.

Environment:

=====================  ===============  ============================================
``DATABASE_URL``       required         libpq URL of the trading database
``BATCH_WINDOW``       60               window length in seconds
``BATCH_CHUNK``        500              executions per chunk (one transaction each)
``BATCH_DATE``         today (UTC)      business date to settle, ``YYYY-MM-DD``
``BATCH_CHUNK_PAUSE``  0                seconds of extra work per chunk (a heavier batch)
``BATCH_GIVE_UP``      60               seconds past the window before giving up
=====================  ===============  ============================================

SIGTERM asks the batch to stop at its next checkpoint: the chunk under way commits, the run
is marked ``halted`` and the process exits with code 5; running the batch again resumes it
(an operator halting the nightly batch to protect the market open).

Exit codes: 0 settled (or already settled), 3 gave up on the database, 4 another run of the
same date holds the lock, 5 halted at a checkpoint on request.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from datetime import UTC, date, datetime
from decimal import Decimal

__all__ = ["settle", "main"]

_LOCK_CLASS = 0x62617463  # "batc": advisory lock (class, day number) per business date


class _AlreadyRunning(Exception):
    pass


class _Halted(Exception):
    pass


_HALT = threading.Event()
"""Set by SIGTERM: stop after the chunk under way."""


def _emit(**fields) -> None:
    print(json.dumps(fields, default=str), flush=True)


def settle(dsn: str, business_date: date, *, window_s: float = 60.0, chunk: int = 500,
           chunk_pause: float = 0.0, give_up_s: float = 60.0) -> dict:
    """Settle ``business_date`` (resuming a crashed run); returns the run's summary.

    Raises ``_AlreadyRunning`` when another process settles the same date, and
    ``psycopg.OperationalError`` when the database stayed unusable past the give-up point.
    """
    import psycopg  # noqa: PLC0415

    from tradingstack.resilience import backoff_delay  # noqa: PLC0415

    give_up_at = None
    attempt = 0
    while True:
        try:
            with psycopg.connect(dsn, autocommit=True, connect_timeout=5, application_name="tradingstack.batch",
                                 keepalives=1, keepalives_idle=5, keepalives_interval=2, keepalives_count=3) as conn:
                return _settle(conn, business_date, window_s, chunk, chunk_pause)
        except (psycopg.OperationalError, psycopg.errors.DeadlockDetected) as exc:
            if _HALT.is_set():
                raise _Halted(str(business_date)) from exc
            now = time.monotonic()
            if give_up_at is None:
                give_up_at = now + window_s + give_up_s
            if now >= give_up_at:
                raise
            _emit(event="retry", error=f"{type(exc).__name__}: {exc}".strip()[:300])
            time.sleep(backoff_delay(attempt, 0.2, 5.0))
            attempt += 1


def _settle(conn, business_date: date, window_s: float, chunk: int, chunk_pause: float) -> dict:
    day = business_date.toordinal()
    if not conn.execute("SELECT pg_try_advisory_lock(%s, %s)", (_LOCK_CLASS, day)).fetchone()[0]:
        raise _AlreadyRunning(str(business_date))
    with conn.transaction():
        conn.execute(
            "INSERT INTO batch_runs (business_date, status, deadline, window_s, chunk_size, total, upto_seq) "
            "SELECT %(d)s, 'running', clock_timestamp() + make_interval(secs => %(w)s), %(w)s, %(c)s, "
            "       count(*), coalesce(max(seq), 0) "
            "FROM executions WHERE business_date = %(d)s AND settled_run IS NULL "
            "ON CONFLICT (business_date) DO UPDATE SET attempts = batch_runs.attempts + 1, status = 'running' "
            "WHERE batch_runs.status IN ('running', 'halted')",
            {"d": business_date, "w": window_s, "c": chunk})
        run = conn.execute("SELECT id, status, upto_seq, attempts, processed, total FROM batch_runs "
                           "WHERE business_date = %s", (business_date,)).fetchone()
    run_id, status, upto, attempts, processed, total = run
    _emit(event="start" if attempts == 1 else "resume", run_id=run_id, business_date=business_date,
          status=status, attempt=attempts, processed=processed, total=total)
    if status == "running":
        chunks = conn.execute("SELECT count(*) FROM batch_chunks WHERE run_id = %s", (run_id,)).fetchone()[0]
        while True:
            done = _settle_chunk(conn, run_id, business_date, upto, chunk, chunks + 1, attempts)
            if not done:
                break
            chunks += 1
            if _HALT.is_set():
                row = conn.execute("UPDATE batch_runs SET status = 'halted' WHERE id = %s "
                                   "RETURNING processed, total", (run_id,)).fetchone()
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", (_LOCK_CLASS, day))
                _emit(event="halted", run_id=run_id, processed=row[0], total=row[1], chunks=chunks)
                raise _Halted(str(business_date))
            if chunk_pause:
                time.sleep(chunk_pause)
        conn.execute("UPDATE batch_runs SET status = 'finished', finished_at = clock_timestamp(), "
                     "margin_s = extract(epoch FROM deadline - clock_timestamp()) WHERE id = %s", (run_id,))
    row = conn.execute(
        "SELECT id, business_date, started_at, finished_at, deadline, window_s, margin_s, processed, total, "
        "attempts, extract(epoch FROM finished_at - started_at) FROM batch_runs WHERE id = %s", (run_id,)).fetchone()
    summary = {"event": "finished", "run_id": row[0], "business_date": row[1].isoformat(),
               "started_at": row[2].isoformat(), "finished_at": row[3].isoformat(), "deadline": row[4].isoformat(),
               "window_s": row[5], "margin_s": round(row[6], 3), "elapsed_s": round(float(row[10]), 3),
               "processed": row[7], "total": row[8], "attempts": row[9], "overran": row[6] < 0}
    conn.execute("SELECT pg_advisory_unlock(%s, %s)", (_LOCK_CLASS, day))
    return summary


def _settle_chunk(conn, run_id: int, business_date: date, upto: int, chunk: int, chunk_no: int,
                  attempt: int) -> int:
    """Settle the next chunk in one transaction; returns how many executions it settled."""
    with conn.transaction():
        rows = conn.execute(
            "SELECT seq, account_id, symbol, side, quantity, price FROM executions "
            "WHERE business_date = %s AND settled_run IS NULL AND seq <= %s ORDER BY seq LIMIT %s FOR UPDATE",
            (business_date, upto, chunk)).fetchall()
        if not rows:
            return 0
        cash: dict[int, Decimal] = {}
        shares: dict[tuple[int, str], int] = {}
        for _seq, account, symbol, side, quantity, price in rows:
            sign = 1 if side == "sell" else -1
            cash[account] = cash.get(account, Decimal(0)) + sign * round(quantity * price, 4)
            shares[(account, symbol)] = shares.get((account, symbol), 0) - sign * quantity
        accounts = sorted(cash)
        # The schema's lock order: the accounts first, in id order, then their positions.
        conn.execute("SELECT lock_accounts(%s::bigint[])", (accounts,))
        conn.execute("UPDATE accounts a SET cash = a.cash + d.delta "
                     "FROM unnest(%s::bigint[], %s::numeric[]) AS d(id, delta) WHERE a.id = d.id",
                     (accounts, [cash[a] for a in accounts]))
        keys = sorted(shares)
        conn.execute("UPDATE positions p SET quantity = p.quantity + d.delta "
                     "FROM unnest(%s::bigint[], %s::text[], %s::bigint[]) AS d(account_id, symbol, delta) "
                     "WHERE p.account_id = d.account_id AND p.symbol = d.symbol",
                     ([k[0] for k in keys], [k[1] for k in keys], [shares[k] for k in keys]))
        seqs = [r[0] for r in rows]
        conn.execute("UPDATE executions SET settled_run = %s WHERE seq = ANY(%s)", (run_id, seqs))
        conn.execute("UPDATE batch_runs SET checkpoint_seq = %s, processed = processed + %s, "
                     "last_progress_at = clock_timestamp() WHERE id = %s", (seqs[-1], len(seqs), run_id))
        conn.execute("INSERT INTO batch_chunks (run_id, chunk_no, first_seq, last_seq, executions, attempt) "
                     "VALUES (%s, %s, %s, %s, %s, %s)", (run_id, chunk_no, seqs[0], seqs[-1], len(seqs), attempt))
    _emit(event="chunk", run_id=run_id, chunk=chunk_no, first_seq=seqs[0], last_seq=seqs[-1], executions=len(seqs))
    return len(rows)


def main() -> int:
    """Entry point of ``python -m tradingstack.batch``."""
    import psycopg  # noqa: PLC0415

    from tradingstack.schema import apply  # noqa: PLC0415

    env = os.environ
    dsn = env["DATABASE_URL"]
    raw_date = env.get("BATCH_DATE")
    business_date = date.fromisoformat(raw_date) if raw_date else datetime.now(UTC).date()
    signal.signal(signal.SIGTERM, lambda signum, frame: _HALT.set())
    try:
        apply(dsn)
        summary = settle(dsn, business_date, window_s=float(env.get("BATCH_WINDOW", "60")),
                         chunk=int(env.get("BATCH_CHUNK", "500")),
                         chunk_pause=float(env.get("BATCH_CHUNK_PAUSE", "0")),
                         give_up_s=float(env.get("BATCH_GIVE_UP", "60")))
    except _Halted:
        return 5
    except _AlreadyRunning as exc:
        _emit(event="refused", reason=f"another batch is settling {exc}")
        return 4
    except psycopg.OperationalError as exc:
        _emit(event="failed", reason=f"database unusable: {exc}".strip()[:500])
        return 3
    _emit(**summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
