"""The exchange simulator's order book, in process (no server, no database)."""

from __future__ import annotations

import asyncio

from tradingstack.exchange import Exchange


def _order(order_id, side="buy", kind="market", **prices):
    return {"order_id": order_id, "symbol": "KO", "side": side, "type": kind, "quantity": 10, **prices}


def _book(**kwargs) -> Exchange:
    async def make():
        exchange = Exchange(impact=0.0, seed=7, **kwargs)
        exchange.prices["KO"] = 100.0
        return exchange

    return asyncio.run(make())


def test_market_fills_at_once_and_a_retry_is_not_a_second_fill():
    exchange = _book()
    first = exchange.submit(_order(1))
    again = exchange.submit(_order(1))
    assert first["status"] == "filled" and first["fill"]["exec_id"] == "E1"
    assert again == first and len(exchange.fills) == 1 and exchange.counters["duplicates"] == 1


def test_limits_fill_when_crossed_and_stops_trigger_in_a_cascade():
    exchange = _book()
    assert exchange.submit(_order(1, kind="limit", limit_price=90))["status"] == "resting"
    assert exchange.submit(_order(2, "sell", "limit", limit_price=105))["status"] == "resting"
    for i, stop in enumerate((99, 98, 97), start=3):
        assert exchange.submit(_order(i, "sell", "stop", stop_price=stop))["status"] == "resting"
    exchange.impact = 0.0015  # each triggered stop-sell of 10 shares pushes the price down 1.5 %
    exchange.set_price("KO", 99.0)
    assert [exchange.state(i)["status"] for i in (3, 4, 5)] == ["filled"] * 3  # 99 -> 98 -> 97: the cascade
    assert exchange.state(1)["status"] == "resting"
    exchange.set_price("KO", 89.0)
    assert exchange.state(1)["fill"]["price"] == 89.0
    exchange.set_price("KO", 106.0)
    assert exchange.state(2)["status"] == "filled"


def test_silent_mode_accepts_without_filling_until_it_ends():
    exchange = _book(silent=True)
    assert exchange.submit(_order(1))["status"] == "resting"
    exchange.tick()
    assert not exchange.fills
    exchange.set_silent(False)
    assert exchange.state(1)["status"] == "filled"


def test_cancel_and_unknown_orders():
    exchange = _book()
    exchange.submit(_order(1, kind="limit", limit_price=50))
    assert exchange.cancel(1)["status"] == "cancelled"
    exchange.set_price("KO", 40.0)
    assert exchange.state(1)["status"] == "cancelled" and not exchange.fills
    assert exchange.cancel(99)["status"] == "unknown" and exchange.state(99)["status"] == "unknown"
    assert exchange.submit(_order(3, symbol="NOPE") | {"symbol": "NOPE"})["status"] == "rejected"


def test_journal_replay_keeps_orders_fills_and_epoch(tmp_path):
    journal = str(tmp_path / "exchange.jsonl")
    exchange = _book(journal=journal)
    exchange.submit(_order(1))
    exchange.submit(_order(2, kind="limit", limit_price=90))
    exchange._flush()
    restarted = _book(journal=journal)
    assert restarted.epoch == exchange.epoch
    assert restarted.state(1) == exchange.state(1) and restarted.state(2)["status"] == "resting"
    assert restarted.submit(_order(1))["fill"]["exec_id"] == "E1" and len(restarted.fills) == 1
    restarted.set_price("KO", 89.0)
    assert restarted.state(2)["status"] == "filled" and restarted.fills[-1]["seq"] == 2
