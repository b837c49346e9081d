"""Group commit for order intake: concurrent orders share one transaction and one WAL flush.

Every order must be durable before it is acknowledged, so each commit waits for its WAL
flush; committed one by one, that flush and the statement round trip are the largest cost
per order. :class:`OrderBatcher` lets a request commit at once when fewer than
``max_flushes`` commits are under way (an idle gateway adds no delay); otherwise the request
waits for the next free commit, which takes every order that arrived meanwhile (up to
``max_batch``) in one statement. Each request is still answered only after the commit that
holds its order, so the durability promise is unchanged.

An order whose deadline is less than ``min_time_left`` away when a commit could take it is
refused with :class:`BatchTimeout` (nothing written) rather than cutting the whole commit's
time short. :meth:`OrderBatcher.expected_wait` tells, from the queue and the recent commit
time, how long an order placed now would wait: the gateway's admission control refuses an
order at the door (429) when that is longer than it may wait. A commit refused with one of
the ``retry_alone`` exceptions (a value one order carries that PostgreSQL refuses) is retried
order by order, in the same commit slot, so a bad order fails alone; any other failure fails
the whole batch.

::

    batcher = OrderBatcher(commit, max_batch=32, max_flushes=2, retry_alone=(asyncpg.DataError,))
    row = await batcher.place(order, deadline)   # commit(orders, deadline) -> rows, in order
    ...
    await batcher.close()                        # fails what is queued, cancels commits
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Sequence

__all__ = ["OrderBatcher", "BatchTimeout"]

Commit = Callable[[Sequence[dict], float], Awaitable[Sequence]]


class BatchTimeout(Exception):
    """No commit took the order before its deadline (nothing was written)."""


class _Entry:
    __slots__ = ("order", "deadline", "future", "taken")

    def __init__(self, order: dict, deadline: float, future: asyncio.Future):
        self.order, self.deadline, self.future, self.taken = order, deadline, future, False


class OrderBatcher:
    """Collects concurrent orders and commits them together through ``commit``.

    ``commit(orders, deadline)`` writes the orders in one transaction and returns one row per
    order, in order; it raises to fail them all.
    """

    def __init__(self, commit: Commit, *, max_batch: int = 32, max_flushes: int = 2,
                 min_time_left: float = 0.1, retry_alone: tuple[type[BaseException], ...] = (),
                 on_batch: Callable[[int], None] | None = None):
        self.commit = commit
        self.max_batch = max(1, int(max_batch))
        self.max_flushes = max(1, int(max_flushes))
        self.min_time_left = min_time_left
        self.retry_alone = retry_alone
        self.on_batch = on_batch
        self.pending: list[_Entry] = []
        self.flushes: set[asyncio.Task] = set()
        self.closed = False
        #: How long a commit takes, a moving average (seconds; 0 before the first).
        self.commit_s = 0.0

    @property
    def flushing(self) -> int:
        """Commits under way."""
        return len(self.flushes)

    def expected_wait(self) -> float:
        """How long an order placed now would wait in the queue before its own commit starts,
        judged from the queue and the recent commit time: none while a commit slot is free;
        else half a commit for the ones under way to end (on average) and a commit for each
        full round of the orders queued before it (a round takes ``max_flushes`` batches of
        ``max_batch``).

        A free slot always admits: the commits it lets through keep the commit time up to
        date, so a database that became fast again is seen as fast."""
        if not self.commit_s or len(self.flushes) < self.max_flushes:
            return 0.0
        rounds = len(self.pending) // (self.max_batch * self.max_flushes)
        return (rounds + 0.5) * self.commit_s

    async def place(self, order: dict, deadline: float):
        """Commit ``order`` (alone or with others); return its row once the commit is done."""
        if self.closed:
            raise BatchTimeout("the gateway is shutting down")
        future = asyncio.get_running_loop().create_future()
        # Marks a failure as seen even when the request went away before it arrived.
        future.add_done_callback(_consume)
        entry = _Entry(order, deadline, future)
        self.pending.append(entry)
        self._start()
        try:
            async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                return await asyncio.shield(future)
        except TimeoutError:
            if not entry.taken:
                # Still queued: withdraw it, so no later commit writes what was answered as failed.
                self.pending.remove(entry)
                raise BatchTimeout("no commit took the order before the request deadline") from None
        except asyncio.CancelledError:
            if not entry.taken:  # the request went away before any commit took its order
                self.pending.remove(entry)
            raise
        # A commit holds the order: its own deadline ends it soon; answer with its outcome.
        return await future

    async def close(self) -> None:
        """Fail every queued order and cancel the commits under way (their orders fail too)."""
        self.closed = True
        _fail(self.pending, BatchTimeout("the gateway is shutting down"))
        self.pending = []
        for task in list(self.flushes):
            task.cancel()
        await asyncio.gather(*self.flushes, return_exceptions=True)

    def _start(self) -> None:
        while self.pending and len(self.flushes) < self.max_flushes and not self.closed:
            cutoff = time.monotonic() + self.min_time_left
            batch: list[_Entry] = []
            while self.pending and len(batch) < self.max_batch:
                entry = self.pending.pop(0)
                entry.taken = True
                if entry.deadline < cutoff:
                    _fail([entry], BatchTimeout("too little of the request deadline was left to commit"))
                else:
                    batch.append(entry)
            if not batch:
                continue
            task = asyncio.get_running_loop().create_task(self._flush(batch))
            self.flushes.add(task)
            # Runs even when the task is cancelled before its first step: no order is left
            # waiting and the slot is given back.
            task.add_done_callback(functools.partial(self._flushed, batch=batch))

    def _flushed(self, task: asyncio.Task, batch: list[_Entry]) -> None:
        self.flushes.discard(task)
        error = None if task.cancelled() else task.exception()
        _fail(batch, error if isinstance(error, Exception) else RuntimeError("order commit cancelled"))
        if not task.cancelled():
            self._start()

    async def _flush(self, batch: list[_Entry]) -> None:
        if self.on_batch is not None:
            self.on_batch(len(batch))
        started = time.monotonic()
        try:
            rows = await self.commit([e.order for e in batch], min(e.deadline for e in batch))
            self._timed(time.monotonic() - started)
        except self.retry_alone as exc:
            if len(batch) == 1:
                _fail(batch, exc)
                return
            for entry in batch:  # one bad order must not fail the others
                await self._flush_one(entry)
            return
        except Exception as exc:  # noqa: BLE001  (handed to every waiting request)
            _fail(batch, exc)
            return
        _resolve(batch, rows)

    def _timed(self, seconds: float) -> None:
        self.commit_s = seconds if not self.commit_s else 0.7 * self.commit_s + 0.3 * seconds

    async def _flush_one(self, entry: _Entry) -> None:
        if entry.future.done():
            return
        try:
            rows = await self.commit([entry.order], entry.deadline)
        except Exception as exc:  # noqa: BLE001
            _fail([entry], exc)
        else:
            _resolve([entry], rows)


def _resolve(batch: Sequence[_Entry], rows: Sequence) -> None:
    if len(rows) != len(batch):
        _fail(batch, RuntimeError(f"the commit returned {len(rows)} rows for {len(batch)} orders"))
        return
    for entry, row in zip(batch, rows, strict=True):
        if not entry.future.done():
            entry.future.set_result(row)


def _consume(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


def _fail(batch: Sequence[_Entry], exc: BaseException) -> None:
    for entry in batch:
        if not entry.future.done():
            entry.future.set_exception(exc)
