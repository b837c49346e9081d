"""The order store's bulkhead: reads and cancels never take the connections order commits need.

A fake pool stands in for asyncpg's (the bulkhead is about who gets a connection, not about
SQL): slow reads fill what they may of it, and an order commit still gets a connection at
once, while one more read waits for a read slot.
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

from tradingstack.orderstore import OrderStore


class FakePool:
    """``size`` connections; ``acquire(timeout)`` waits for one like asyncpg's pool does."""

    def __init__(self, size: int):
        self.size = size
        self.free = asyncio.Semaphore(size)
        self.in_use = 0

    def get_size(self) -> int:
        return self.size

    def get_idle_size(self) -> int:
        return self.size - self.in_use

    async def acquire(self, timeout: float):
        await asyncio.wait_for(self.free.acquire(), timeout)
        self.in_use += 1
        return SimpleNamespace(terminate=lambda: None)

    async def release(self, conn) -> None:
        self.in_use -= 1
        self.free.release()


def _settings(**changes):
    values = dict(database_url="postgresql://nowhere/x", connect_timeout=1.0, statement_timeout=1.5, pool_size=4,
                  pool_timeout=0.3, request_timeout=2.5, backoff_base=0.05, backoff_max=1.0, cb_threshold=5,
                  batch_max=32, batch_flushes=2, collar=0.05, skip_migrations=True)
    values.update(changes)
    return SimpleNamespace(**values)


def _store_with_held_reads():
    """A store on a 4-connection fake pool, and a call that holds its connection until ``release`` is set."""
    store = OrderStore(_settings())
    store.pool = FakePool(4)
    release = asyncio.Event()

    async def slow_read(conn, timeout):
        await release.wait()
        return "read"

    return store, slow_read, release


def test_slow_reads_leave_a_connection_for_each_order_commit():
    async def scenario():
        store, slow_read, release = _store_with_held_reads()

        async def commit(conn, timeout):
            return "committed"

        reads = [asyncio.create_task(store.call(slow_read, write=False)) for _ in range(6)]
        await asyncio.sleep(0.05)
        assert store.pool.in_use == 2  # 4 connections less the 2 kept for the batcher's commits
        assert store.waiting == 4  # the reads beyond the bulkhead's two slots
        started = time.monotonic()
        assert await store.call(commit, commit=True) == "committed"
        assert time.monotonic() - started < 0.1  # at once, though six reads want the pool
        release.set()
        assert await asyncio.gather(*reads) == ["read"] * 6
        assert store.pool.in_use == 0 and store.waiting == 0

    asyncio.run(scenario())


def test_order_commits_are_never_held_back_by_the_bulkhead():
    """Calls marked as order commits take the pool's connections without a bulkhead slot (the
    batcher bounds how many run at once)."""
    async def scenario():
        store, slow_read, release = _store_with_held_reads()

        commits = [asyncio.create_task(store.call(slow_read, commit=True)) for _ in range(6)]
        await asyncio.sleep(0.05)
        assert store.pool.in_use == 4
        release.set()
        await asyncio.gather(*commits)

    asyncio.run(scenario())


def test_a_call_that_finds_a_connection_free_is_not_counted_as_waiting():
    """The pool-waiting gauge counts calls that found nothing free, not calls passing through
    the acquire's await on their way to a free connection (a scrape may land there)."""
    async def scenario():
        store, slow_read, release = _store_with_held_reads()

        call = asyncio.create_task(store.call(slow_read, write=False))
        seen = []
        for _ in range(50):  # every step of the call's way to its connection
            await asyncio.sleep(0)
            seen.append(store.waiting)
            if store.pool.in_use:
                break
        assert store.pool.in_use == 1 and set(seen) == {0}
        release.set()
        assert await call == "read"

    asyncio.run(scenario())
