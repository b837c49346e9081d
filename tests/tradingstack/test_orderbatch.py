"""OrderBatcher on its own: who shares a commit, deadlines, and a bad order failing alone."""

from __future__ import annotations

import asyncio
import time

import pytest

from tradingstack.orderbatch import BatchTimeout, OrderBatcher


class Unavailable(Exception):
    pass


class FakeDatabase:
    """Records every commit; each commit waits until the test releases it."""

    def __init__(self, refuse: str | None = None, unavailable: bool = False, short: bool = False):
        self.commits: list[list[str]] = []
        self.release = asyncio.Event()
        self.refuse, self.unavailable, self.short = refuse, unavailable, short
        self.deadlines: list[float] = []
        self.running = self.peak = 0

    async def commit(self, orders, deadline):
        ids = [o["client_order_id"] for o in orders]
        self.commits.append(ids)
        self.deadlines.append(deadline)
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await self.release.wait()
            await asyncio.sleep(0)
        finally:
            self.running -= 1
        if self.unavailable:
            raise Unavailable("database down")
        if self.refuse in ids:
            raise ValueError(f"refused {self.refuse}")
        return [{"row_of": i} for i in ids[:-1 if self.short else None]]


def _order(coid: str) -> dict:
    return {"client_order_id": coid, "account": 1, "symbol": "KO", "side": "buy"}


async def _settle():
    for _ in range(5):
        await asyncio.sleep(0)


async def _hold(batcher: OrderBatcher, deadline: float) -> asyncio.Task:
    """Place order "held", which takes the one commit slot; the orders after it queue."""
    task = asyncio.create_task(batcher.place(_order("held"), deadline))
    await _settle()
    return task


def test_idle_orders_commit_at_once_and_a_busy_batcher_groups_the_rest():
    async def scenario():
        db = FakeDatabase()
        sizes: list[int] = []
        batcher = OrderBatcher(db.commit, max_batch=32, max_flushes=2, on_batch=sizes.append)
        far = time.monotonic() + 10
        tasks = [asyncio.create_task(batcher.place(_order(f"o{i}"), far)) for i in range(7)]
        await _settle()
        # The first two start their own commits; the other five wait for a free one.
        assert db.commits == [["o0"], ["o1"]] and len(batcher.pending) == 5
        db.release.set()
        results = await asyncio.gather(*tasks)
        assert results == [{"row_of": f"o{i}"} for i in range(7)]
        assert db.commits[2] == ["o2", "o3", "o4", "o5", "o6"] and sizes == [1, 1, 5]

    asyncio.run(scenario())


def test_a_batch_is_capped_and_keeps_arrival_order():
    async def scenario():
        db = FakeDatabase()
        batcher = OrderBatcher(db.commit, max_batch=3, max_flushes=1)
        far = time.monotonic() + 10
        first = asyncio.create_task(batcher.place(_order("first"), far))
        await _settle()
        rest = [asyncio.create_task(batcher.place(_order(c), far)) for c in ("z", "y", "x", "w")]
        await _settle()
        db.release.set()
        await asyncio.gather(first, *rest)
        assert db.commits == [["first"], ["z", "y", "x"], ["w"]]
        assert [t.result() for t in rest] == [{"row_of": c} for c in ("z", "y", "x", "w")]

    asyncio.run(scenario())


def test_a_refused_order_fails_alone_and_the_rest_of_its_batch_commits():
    async def scenario():
        db = FakeDatabase(refuse="bad")
        batcher = OrderBatcher(db.commit, max_batch=32, max_flushes=1, retry_alone=(ValueError,))
        far = time.monotonic() + 10
        blocker = await _hold(batcher, far)
        batch = [asyncio.create_task(batcher.place(_order(c), far)) for c in ("b", "bad", "c")]
        await _settle()
        db.release.set()
        results = await asyncio.gather(blocker, *batch, return_exceptions=True)
        assert results[0] == {"row_of": "held"} and results[1] == {"row_of": "b"} and results[3] == {"row_of": "c"}
        assert isinstance(results[2], ValueError)
        # The batch was tried once together, then once per order, one at a time in its slot.
        assert db.commits == [["held"], ["b", "bad", "c"], ["b"], ["bad"], ["c"]]
        assert db.peak == 1

    asyncio.run(scenario())


def test_an_unavailable_database_fails_the_whole_batch_without_retrying_one_by_one():
    async def scenario():
        db = FakeDatabase(unavailable=True)
        batcher = OrderBatcher(db.commit, max_batch=32, max_flushes=1, retry_alone=(ValueError,))
        far = time.monotonic() + 10
        tasks = [asyncio.create_task(batcher.place(_order(c), far)) for c in ("a", "b", "c")]
        await _settle()
        db.release.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, Unavailable) for r in results)
        assert db.commits == [["a"], ["b", "c"]]

    asyncio.run(scenario())


def test_a_queued_order_past_its_deadline_is_withdrawn_and_never_committed():
    async def scenario():
        db = FakeDatabase()
        batcher = OrderBatcher(db.commit, max_batch=32, max_flushes=1)
        now = time.monotonic()
        held = await _hold(batcher, now + 10)
        with pytest.raises(BatchTimeout):
            await batcher.place(_order("late"), now + 0.05)
        assert batcher.pending == []
        db.release.set()
        assert await held == {"row_of": "held"}
        await _settle()
        assert db.commits == [["held"]]

    asyncio.run(scenario())


def test_a_batch_commits_by_its_earliest_deadline_and_a_taken_order_waits_for_its_commit():
    async def scenario():
        db = FakeDatabase()
        batcher = OrderBatcher(db.commit, max_batch=32, max_flushes=1, min_time_left=0.01)
        now = time.monotonic()
        first = asyncio.create_task(batcher.place(_order("first"), now + 0.05))
        await _settle()
        both = [asyncio.create_task(batcher.place(_order(c), now + d)) for c, d in (("a", 5), ("b", 3), ("c", 4))]
        # "first" is in a commit when its deadline passes: it waits for that commit's outcome.
        await asyncio.sleep(0.1)
        assert not first.done()
        db.release.set()
        assert await first == {"row_of": "first"}
        await asyncio.gather(*both)
        assert db.commits == [["first"], ["a", "b", "c"]]
        assert db.deadlines == [pytest.approx(now + 0.05), pytest.approx(now + 3)]

    asyncio.run(scenario())


def test_an_order_with_too_little_time_left_is_refused_unwritten_instead_of_rushing_its_batch():
    async def scenario():
        db = FakeDatabase()
        batcher = OrderBatcher(db.commit, max_batch=32, max_flushes=1, min_time_left=0.2)
        now = time.monotonic()
        held = await _hold(batcher, now + 10)
        hurried = asyncio.create_task(batcher.place(_order("hurried"), now + 0.3))
        calm = asyncio.create_task(batcher.place(_order("calm"), now + 10))
        await asyncio.sleep(0.15)  # "hurried" now has less than min_time_left
        db.release.set()
        assert await held == {"row_of": "held"} and await calm == {"row_of": "calm"}
        with pytest.raises(BatchTimeout, match="too little"):
            await hurried
        assert db.commits == [["held"], ["calm"]]
        assert db.deadlines[-1] == pytest.approx(now + 10)

    asyncio.run(scenario())


def test_a_commit_returning_too_few_rows_fails_every_order_of_it():
    async def scenario():
        db = FakeDatabase(short=True)
        batcher = OrderBatcher(db.commit, max_batch=32, max_flushes=1)
        far = time.monotonic() + 10
        held = await _hold(batcher, far)
        pair = [asyncio.create_task(batcher.place(_order(c), far)) for c in ("a", "b")]
        await _settle()
        db.release.set()
        results = await asyncio.gather(held, *pair, return_exceptions=True)
        assert all(isinstance(r, RuntimeError) and "rows" in str(r) for r in results), results

    asyncio.run(scenario())


def test_close_fails_queued_orders_and_cancels_commits_even_before_they_start():
    async def scenario():
        db = FakeDatabase()
        batcher = OrderBatcher(db.commit, max_batch=32, max_flushes=1)
        far = time.monotonic() + 10
        # The commit task is created but has not run a single step when close() cancels it.
        started = asyncio.create_task(batcher.place(_order("started"), far))
        queued = asyncio.create_task(batcher.place(_order("queued"), far))
        await asyncio.sleep(0)
        assert batcher.flushing == 1 and db.commits == []
        await batcher.close()
        results = await asyncio.gather(started, queued, return_exceptions=True)
        assert isinstance(results[0], RuntimeError) and "cancelled" in str(results[0])
        assert isinstance(results[1], BatchTimeout)
        assert batcher.flushing == 0 and db.commits == []
        with pytest.raises(BatchTimeout, match="shutting down"):
            await batcher.place(_order("late"), far)

    asyncio.run(scenario())


def test_a_commit_cancelled_midway_fails_its_orders_instead_of_leaving_them_waiting():
    async def scenario():
        db = FakeDatabase()
        batcher = OrderBatcher(db.commit, max_batch=32, max_flushes=1)
        far = time.monotonic() + 10
        order = asyncio.create_task(batcher.place(_order("a"), far))
        await _settle()
        for task in asyncio.all_tasks():
            if task is not asyncio.current_task() and task is not order:
                task.cancel()
        with pytest.raises(RuntimeError, match="cancelled"):
            await order
        assert batcher.flushing == 0

    asyncio.run(scenario())


def test_a_request_cancelled_while_queued_is_withdrawn():
    async def scenario():
        db = FakeDatabase()
        batcher = OrderBatcher(db.commit, max_batch=32, max_flushes=1)
        far = time.monotonic() + 10
        held = asyncio.create_task(batcher.place(_order("held"), far))
        gone = asyncio.create_task(batcher.place(_order("gone"), far))
        await _settle()
        gone.cancel()
        await _settle()
        assert batcher.pending == []
        db.release.set()
        await held
        await _settle()
        assert db.commits == [["held"]]

    asyncio.run(scenario())


def test_the_expected_wait_grows_with_the_queue_at_the_recent_commit_time():
    async def scenario():
        db = FakeDatabase()
        batcher = OrderBatcher(db.commit, max_batch=2, max_flushes=1)
        assert batcher.expected_wait() == 0.0  # nothing known yet: no reason to refuse
        far = time.monotonic() + 10
        db.release.set()
        await batcher.place(_order("timed"), far)
        assert batcher.commit_s > 0
        batcher.commit_s = 0.5  # as if commits took half a second (a slow database)
        assert batcher.expected_wait() == 0.0  # a free slot: no wait, whatever commits took
        db.release.clear()
        tasks = [asyncio.create_task(batcher.place(_order(f"q{i}"), far)) for i in range(6)]
        await _settle()
        # One commit under way and five queued: half a commit for it to end, then two full
        # rounds of two before the round that takes the fifth and a new order.
        assert len(batcher.pending) == 5 and batcher.expected_wait() == pytest.approx(1.25)
        db.release.set()
        await asyncio.gather(*tasks)

    asyncio.run(scenario())
