"""Group commit for order intake: concurrent orders share one transaction and one WAL flush.

Every order must be durable before it is acknowledged, so each commit waits for its WAL
flush; committed one by one, that flush and the statement round trip are the largest cost
per order. :class:`OrderBatcher` lets a request commit at once when fewer than
``max_flushes`` commits are under way (an idle gateway adds no delay); otherwise the request
waits for the next free commit, which takes every order that arrived meanwhile (up to
``max_batch``) in one statement. Each request is still answered only after the commit that
holds its order, so the durability promise is unchanged.

Orders keep their arrival order within a batch (the database function locks the batch's
accounts in id order first, so concurrent batches cannot deadlock). If a batch fails for a
reason other than the database being unavailable (a value one order carries that PostgreSQL
refuses), its orders are retried one by one, so a bad order fails alone.

::

    batcher = OrderBatcher(commit, max_batch=32, max_flushes=2)
    row = await batcher.place(order, deadline)   # commit(orders, deadline) -> rows, in order
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

__all__ = ["OrderBatcher", "BatchTimeout"]

Commit = Callable[[Sequence[dict], float], Awaitable[Sequence]]


class BatchTimeout(Exception):
    """The request's deadline passed before any commit took its order (nothing was written)."""


class _Entry:
    __slots__ = ("order", "deadline", "future", "taken")

    def __init__(self, order: dict, deadline: float, future: asyncio.Future):
        self.order, self.deadline, self.future, self.taken = order, deadline, future, False


class OrderBatcher:
    """Collects concurrent orders and commits them together through ``commit``.

    ``commit(orders, deadline)`` writes the orders in one transaction and returns one row per
    order, in order; it raises to fail them all. ``unavailable`` is the exception type that
    means the database could not serve the batch (no one-by-one retry then).
    """

    def __init__(self, commit: Commit, *, max_batch: int = 32, max_flushes: int = 2,
                 unavailable: type[BaseException] = Exception, on_batch: Callable[[int], None] | None = None):
        self.commit = commit
        self.max_batch = max(1, int(max_batch))
        self.max_flushes = max(1, int(max_flushes))
        self.unavailable = unavailable
        self.on_batch = on_batch
        self.pending: list[_Entry] = []
        self.flushing = 0

    async def place(self, order: dict, deadline: float):
        """Commit ``order`` (alone or with others); return its row once the commit is done."""
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

    def _start(self) -> None:
        while self.pending and self.flushing < self.max_flushes:
            batch, self.pending = self.pending[:self.max_batch], self.pending[self.max_batch:]
            for entry in batch:
                entry.taken = True
            self.flushing += 1
            asyncio.get_running_loop().create_task(self._flush(batch))

    async def _flush(self, batch: list[_Entry]) -> None:
        try:
            if self.on_batch is not None:
                self.on_batch(len(batch))
            try:
                rows = await self.commit([e.order for e in batch], min(e.deadline for e in batch))
            except self.unavailable as exc:
                _fail(batch, exc)
            except Exception as exc:  # noqa: BLE001  (one bad order must not fail the others)
                if len(batch) == 1:
                    _fail(batch, exc)
                else:
                    await asyncio.gather(*(self._flush_one(e) for e in batch))
            else:
                for entry, row in zip(batch, rows, strict=True):
                    if not entry.future.done():
                        entry.future.set_result(row)
        except BaseException as exc:  # cancelled: no request may wait forever
            _fail(batch, exc if isinstance(exc, Exception) else RuntimeError("order commit cancelled"))
            raise
        finally:
            self.flushing -= 1
            self._start()

    async def _flush_one(self, entry: _Entry) -> None:
        try:
            rows = await self.commit([entry.order], entry.deadline)
        except Exception as exc:  # noqa: BLE001
            _fail([entry], exc)
        else:
            if not entry.future.done():
                entry.future.set_result(rows[0])


def _consume(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


def _fail(batch: Sequence[_Entry], exc: BaseException) -> None:
    for entry in batch:
        if not entry.future.done():
            entry.future.set_exception(exc)
