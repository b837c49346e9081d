"""The router's loops never stop for good: a step that hangs is cancelled after the step
timeout and a step that fails in an unforeseen way is logged, and both are tried again.

In one quarterly drill the router's send loop stopped at a fast database restart without a
word (FT-03: 2,163 orders never sent, the heartbeat going on).
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from tradingstack.router import Router


@pytest.fixture
def router(monkeypatch: pytest.MonkeyPatch) -> Router:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")
    monkeypatch.setenv("EXCHANGE_URL", "http://127.0.0.1:9")
    made = Router()
    made.step_timeout, made.backoff_base, made.backoff_max = 0.05, 0.001, 0.001
    return made


def test_a_hung_step_and_an_unforeseen_error_are_retried(router: Router, caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    async def step() -> float:
        calls.append(len(calls))
        if len(calls) == 1:
            await asyncio.sleep(30)      # hangs: cancelled after the step timeout
        if len(calls) == 2:
            raise KeyError("not a kind of failure the loop names")
        return 0.001

    async def main() -> None:
        loop = asyncio.create_task(router._retrying("send", step))
        for _ in range(200):
            await asyncio.sleep(0.01)
            if len(calls) >= 4:
                break
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)

    with caplog.at_level(logging.WARNING, logger="tradingstack.router"):
        asyncio.run(main())
    assert len(calls) >= 4, "the loop stopped"
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("send: TimeoutError") for m in messages), messages
    assert any("send: unexpected error" in m for m in messages), messages
