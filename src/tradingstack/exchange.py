"""The exchange simulator: random-walk prices, market/limit/stop orders, fills to query.

Run with ``python -m tradingstack.exchange``. Prices follow a geometric random walk per
symbol. A market order fills at once at the current price; a limit order rests until the
price crosses its limit; a stop order rests until the price crosses its trigger and then
fills as a market order. Fills move the price a little (``EXCHANGE_IMPACT``), so a price
drop can set off a cascade of stop-sell orders. Every order is idempotent on its
``order_id``: sending it again returns its current state, never a second fill. Each fill has
the deterministic id ``E<order_id>`` and a sequence number; ``GET /fills?after=N`` lets the
router catch up after a crash (a restart without a journal changes ``epoch``). A fill made
while its order was being submitted is flagged ``immediate`` (it is in the submit answer);
``deferred_only=1`` leaves those out, and only deferred fills wake a long poll.

Endpoints: ``POST /orders`` (one order or ``{"orders": [...]}``), ``GET /orders/{id}``,
``POST /orders/status`` (``{"order_ids": [...]}``), ``DELETE /orders/{id}``, ``POST /cancels``
(``{"order_ids": [...]}``), ``GET /fills?after=N&wait=S&limit=L&deferred_only=0|1``, ``GET /prices``,
``POST /admin/price`` (``{"symbol": "AAPL" or "*", "price": p}`` or ``{"move_pct": -10}``),
``POST /admin/mode`` (``{"silent": true|false, "latency_ms": n}``; silent = accept orders
but never fill, FT-23), ``GET /health/live``, ``GET /health/ready``, ``GET /metrics``
(counters of orders, duplicates, fills, cancels, rejections and stop orders triggered; the
resting orders and resting stop orders: the stop book).

Environment:

=========================  ========  ==========================================================
``EXCHANGE_PORT``          required  the port it listens on
``EXCHANGE_HOST``          127.0.0.1 the address it listens on (0.0.0.0 in a container)
``EXCHANGE_LATENCY_MS``    0         added to every order/cancel request
``EXCHANGE_TICK_MS``       100       random-walk step period
``EXCHANGE_VOLATILITY``    0.0005    standard deviation of one step's log return
``EXCHANGE_IMPACT``        0.000005  relative price move per share filled by a market order
``EXCHANGE_SILENT``        0         1 = start in silent mode
``EXCHANGE_JOURNAL``       unset     file to append orders and fills to and replay at start
``EXCHANGE_SEED``          unset     random seed for reproducible prices
=========================  ========  ==========================================================
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import math
import os
import random
import signal
import time
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

__all__ = ["Exchange", "create_app", "main"]


class _Book:
    """Resting orders of one symbol, indexed so the next triggered one is found in O(log n).

    Heaps hold (key, order_id); entries of orders no longer resting are dropped lazily.
    """

    def __init__(self) -> None:
        self.market: deque[int] = deque()
        self.heaps: dict[tuple[str, str], list[tuple[float, int]]] = {
            ("limit", "buy"): [], ("limit", "sell"): [], ("stop", "buy"): [], ("stop", "sell"): []}

    def add(self, order: dict) -> None:
        kind, side = order["type"], order["side"]
        if kind == "market":
            self.market.append(order["order_id"])
            return
        level = order["limit"] if kind == "limit" else order["stop"]
        # Max-heap (negated) for buy limits and sell stops: the highest level triggers first.
        key = -level if (kind, side) in (("limit", "buy"), ("stop", "sell")) else level
        heapq.heappush(self.heaps[(kind, side)], (key, order["order_id"]))

    def next_triggered(self, price: float, orders: dict[int, dict]) -> dict | None:
        while self.market:
            order = orders[self.market.popleft()]
            if order["status"] == "resting":
                return order
        best = None
        for (kind, side), heap in self.heaps.items():
            while heap and orders[heap[0][1]]["status"] != "resting":
                heapq.heappop(heap)
            if not heap:
                continue
            key, order_id = heap[0]
            level = -key if (kind, side) in (("limit", "buy"), ("stop", "sell")) else key
            hit = price <= level if (kind, side) in (("limit", "buy"), ("stop", "sell")) else price >= level
            if hit and (best is None or order_id < best[1]):
                best = (heap, order_id)
        if best is None:
            return None
        heapq.heappop(best[0])
        return orders[best[1]]


class Exchange:
    """The order book state: prices, orders by id, resting orders by symbol, the fill log."""

    def __init__(self, *, volatility: float = 0.0005, impact: float = 0.000005, silent: bool = False,
                 latency_ms: float = 0.0, journal: str | None = None, seed: int | None = None):
        from tradingstack.schema import SYMBOLS  # noqa: PLC0415

        self.prices = dict(SYMBOLS)
        self.volatility, self.impact = volatility, impact
        self.silent, self.latency_ms = silent, latency_ms
        self.orders: dict[int, dict] = {}
        self.resting: dict[str, set[int]] = {s: set() for s in self.prices}
        self.books: dict[str, _Book] = {s: _Book() for s in self.prices}
        self.fills: list[dict] = []
        self.epoch = uuid.uuid4().hex
        self.random = random.Random(seed)
        self.fill_event = asyncio.Event()
        self.counters = {"orders": 0, "duplicates": 0, "fills": 0, "cancels": 0, "rejected": 0,
                         "stops_triggered": 0}
        self._journal = None
        if journal:
            self._replay(journal)
            for symbol, ids in self.resting.items():
                for order_id in sorted(ids):
                    self.books[symbol].add(self.orders[order_id])
            self._journal = open(journal, "a", encoding="utf-8")  # noqa: SIM115  (kept open for the process)

    # -- journal ---------------------------------------------------------------------------

    def _replay(self, path: str) -> None:
        if not os.path.exists(path):
            return
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue  # a torn last line from a crash
                if "epoch" in entry:
                    self.epoch = entry["epoch"]
                elif "order" in entry:
                    order = entry["order"]
                    self.orders[order["order_id"]] = order
                    if order["status"] == "resting":
                        self.resting[order["symbol"]].add(order["order_id"])
                elif "fill" in entry:
                    fill = entry["fill"]
                    self.fills.append(fill)
                    order = self.orders[fill["order_id"]]
                    order.update(status="filled", fill=fill)
                    self.resting[order["symbol"]].discard(order["order_id"])
                    self.prices[order["symbol"]] = fill["price"]
                elif "cancel" in entry:
                    order = self.orders[entry["cancel"]]
                    order["status"] = "cancelled"
                    self.resting[order["symbol"]].discard(order["order_id"])

    def _write(self, entry: dict) -> None:
        if self._journal is not None:
            if self._journal.tell() == 0:
                self._journal.write(json.dumps({"epoch": self.epoch}) + "\n")
            self._journal.write(orjson.dumps(entry).decode() + "\n")

    def _flush(self) -> None:
        if self._journal is not None:
            self._journal.flush()

    # -- matching --------------------------------------------------------------------------

    def submit(self, raw: dict) -> dict:
        """Accept one order (idempotently) and fill it if it can be filled now."""
        order_id = int(raw["order_id"])
        known = self.orders.get(order_id)
        if known is not None:
            self.counters["duplicates"] += 1
            return self._state(known)
        self.counters["orders"] += 1
        symbol = str(raw["symbol"])
        order = {"order_id": order_id, "symbol": symbol, "side": raw["side"], "type": raw.get("type", "market"),
                 "quantity": int(raw["quantity"]), "limit": _num(raw.get("limit_price")),
                 "stop": _num(raw.get("stop_price")), "status": "resting", "fill": None}
        if symbol not in self.prices or order["side"] not in ("buy", "sell") or order["quantity"] <= 0 \
                or (order["type"] == "limit" and order["limit"] is None) \
                or (order["type"] == "stop" and order["stop"] is None):
            order.update(status="rejected", reason="invalid order")
            self.counters["rejected"] += 1
            self.orders[order_id] = order
            self._write({"order": order})
            return self._state(order)
        self.orders[order_id] = order
        self.resting[symbol].add(order_id)
        self.books[symbol].add(order)
        self._write({"order": order})
        if not self.silent:
            self._match(symbol, immediate=order_id)
        return self._state(order)

    def cancel(self, order_id: int) -> dict:
        """Cancel a resting order; a filled or unknown order says so."""
        order = self.orders.get(order_id)
        if order is None:
            return {"order_id": order_id, "status": "unknown"}
        if order["status"] == "resting":
            order["status"] = "cancelled"
            self.resting[order["symbol"]].discard(order_id)
            self.counters["cancels"] += 1
            self._write({"cancel": order_id})
        return self._state(order)

    def state(self, order_id: int) -> dict:
        """The current state of one order (``unknown`` if never seen)."""
        order = self.orders.get(order_id)
        return self._state(order) if order is not None else {"order_id": order_id, "status": "unknown"}

    @staticmethod
    def _state(order: dict) -> dict:
        out = {"order_id": order["order_id"], "status": order["status"], "fill": order["fill"]}
        if order.get("reason"):
            out["reason"] = order["reason"]
        return out

    def _match(self, symbol: str, immediate: int | None = None) -> None:
        """Fill every resting order of ``symbol`` the price now allows; fills move the price.

        The fill of ``immediate`` (the order being submitted) is answered in the submit
        response and flagged so, letting the router's fill poll skip it.
        """
        book = self.books[symbol]
        while True:
            order = book.next_triggered(self.prices[symbol], self.orders)
            if order is None:
                return
            self._fill(order, self.prices[symbol], immediate=order["order_id"] == immediate)

    def _fill(self, order: dict, price: float, immediate: bool = False) -> None:
        symbol = order["symbol"]
        if order["type"] == "limit":
            price = min(price, order["limit"]) if order["side"] == "buy" else max(price, order["limit"])
        fill = {"seq": len(self.fills) + 1, "exec_id": f"E{order['order_id']}", "order_id": order["order_id"],
                "symbol": symbol, "side": order["side"], "quantity": order["quantity"], "price": round(price, 4),
                "executed_at": datetime.now(UTC).isoformat(), "immediate": immediate}
        self.fills.append(fill)
        order.update(status="filled", fill=fill)
        self.resting[symbol].discard(order["order_id"])
        self.counters["fills"] += 1
        if order["type"] == "stop":
            self.counters["stops_triggered"] += 1
        self._write({"fill": fill})
        if order["type"] != "limit" and self.impact:
            move = self.impact * order["quantity"] * (1 if order["side"] == "buy" else -1)
            self.prices[symbol] = max(0.01, round(self.prices[symbol] * (1 + max(-0.05, min(0.05, move))), 4))
        if not immediate:
            self.fill_event.set()

    def set_price(self, symbol: str, price: float | None = None, move_pct: float | None = None) -> dict:
        """Push prices (``symbol='*'`` for all) and fill what that triggers."""
        symbols = list(self.prices) if symbol == "*" else [symbol]
        for s in symbols:
            if s not in self.prices:
                raise KeyError(s)
            if price is not None:
                self.prices[s] = float(price)
            elif move_pct is not None:
                self.prices[s] = max(0.01, round(self.prices[s] * (1 + move_pct / 100), 4))
            if not self.silent:
                self._match(s)
        self._flush()
        return {s: self.prices[s] for s in symbols}

    def tick(self) -> None:
        """One random-walk step for every symbol."""
        for s, p in self.prices.items():
            self.prices[s] = max(0.01, round(p * math.exp(self.random.gauss(0.0, self.volatility)), 4))
            if not self.silent and self.resting[s]:
                self._match(s)
        self._flush()

    def set_silent(self, silent: bool) -> None:
        """Enter or leave silent mode; leaving it fills what is due."""
        self.silent = silent
        if not silent:
            for s in self.prices:
                self._match(s)
            self._flush()


def _json_response(data: Any, status: int = 200) -> web.Response:
    # web.json_response's answer, encoded by orjson (the router's batches are the exchange's
    # main cost).
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json", charset="utf-8")


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


class _Endpoints:
    """The exchange's HTTP endpoints (see the module docstring), one method each."""

    def __init__(self, exchange: Exchange):
        self.exchange = exchange

    async def _latency(self) -> None:
        if self.exchange.latency_ms > 0:
            await asyncio.sleep(self.exchange.latency_ms / 1000)

    async def post_orders(self, request: web.Request) -> web.Response:
        exchange = self.exchange
        body = orjson.loads(await request.read())
        await self._latency()
        orders = body["orders"] if isinstance(body, dict) and "orders" in body else [body]
        try:
            results = [exchange.submit(o) for o in orders]
        except (KeyError, TypeError, ValueError) as exc:
            exchange._flush()
            return _json_response({"error": "invalid_order", "detail": str(exc)}, status=400)
        exchange._flush()
        return _json_response({"results": results} if "orders" in body else results[0])

    async def get_order(self, request: web.Request) -> web.Response:
        state = self.exchange.state(int(request.match_info["id"]))
        return _json_response(state, status=404 if state["status"] == "unknown" else 200)

    async def post_status(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        return _json_response({"results": [self.exchange.state(int(i)) for i in body["order_ids"]]})

    async def delete_order(self, request: web.Request) -> web.Response:
        await self._latency()
        state = self.exchange.cancel(int(request.match_info["id"]))
        self.exchange._flush()
        return _json_response(state, status=404 if state["status"] == "unknown" else 200)

    async def post_cancels(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        await self._latency()
        results = [self.exchange.cancel(int(i)) for i in body["order_ids"]]
        self.exchange._flush()
        return _json_response({"results": results})

    async def get_fills(self, request: web.Request) -> web.Response:
        exchange = self.exchange
        after = int(request.query.get("after", "0"))
        limit = int(request.query.get("limit", "5000"))
        wait = min(10.0, float(request.query.get("wait", "0")))
        if wait > 0 and len(exchange.fills) <= after:
            exchange.fill_event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(exchange.fill_event.wait(), wait)
        fills = exchange.fills[after:after + limit]
        last_seq = fills[-1]["seq"] if fills else after
        if request.query.get("deferred_only") == "1":
            fills = [f for f in fills if not f.get("immediate")]
        return _json_response({"epoch": exchange.epoch, "fills": fills, "last_seq": last_seq})

    async def get_prices(self, request: web.Request) -> web.Response:
        return _json_response(self.exchange.prices)

    async def admin_price(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        try:
            moved = self.exchange.set_price(str(body.get("symbol", "*")), body.get("price"), body.get("move_pct"))
        except KeyError as exc:
            return _json_response({"error": "unknown_symbol", "detail": str(exc)}, status=404)
        return _json_response({"prices": moved})

    async def admin_mode(self, request: web.Request) -> web.Response:
        exchange = self.exchange
        body = orjson.loads(await request.read())
        if "latency_ms" in body:
            exchange.latency_ms = float(body["latency_ms"])
        if "silent" in body:
            exchange.set_silent(bool(body["silent"]))
        return _json_response({"silent": exchange.silent, "latency_ms": exchange.latency_ms})

    async def health(self, request: web.Request) -> web.Response:
        return _json_response({"ready": True, "silent": self.exchange.silent, "epoch": self.exchange.epoch})

    async def metrics(self, request: web.Request) -> web.Response:
        exchange = self.exchange
        resting = sum(len(v) for v in exchange.resting.values())
        stops = sum(1 for ids in exchange.resting.values() for i in ids if exchange.orders[i]["type"] == "stop")
        lines = []
        for k, v in exchange.counters.items():
            lines += [f"# TYPE exchange_{k} counter", f"exchange_{k}_total {v}"]
        for name, value in (("resting_orders", resting), ("resting_stop_orders", stops),
                            ("silent", int(exchange.silent))):
            lines += [f"# TYPE exchange_{name} gauge", f"exchange_{name} {value}"]
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")


def create_app(exchange: Exchange) -> web.Application:
    """The aiohttp application serving ``exchange``."""
    endpoints = _Endpoints(exchange)
    app = web.Application()
    app.router.add_post("/orders", endpoints.post_orders)
    app.router.add_post("/orders/status", endpoints.post_status)
    app.router.add_get("/orders/{id:\\d+}", endpoints.get_order)
    app.router.add_delete("/orders/{id:\\d+}", endpoints.delete_order)
    app.router.add_post("/cancels", endpoints.post_cancels)
    app.router.add_get("/fills", endpoints.get_fills)
    app.router.add_get("/prices", endpoints.get_prices)
    app.router.add_post("/admin/price", endpoints.admin_price)
    app.router.add_post("/admin/mode", endpoints.admin_mode)
    app.router.add_get("/health/live", endpoints.health)
    app.router.add_get("/health/ready", endpoints.health)
    app.router.add_get("/metrics", endpoints.metrics)
    return app


async def serve() -> None:
    """Run the exchange until SIGTERM or SIGINT."""
    env = os.environ
    seed = env.get("EXCHANGE_SEED")
    exchange = Exchange(volatility=float(env.get("EXCHANGE_VOLATILITY", "0.0005")),
                        impact=float(env.get("EXCHANGE_IMPACT", "0.000005")),
                        silent=env.get("EXCHANGE_SILENT", "0") not in ("", "0"),
                        latency_ms=float(env.get("EXCHANGE_LATENCY_MS", "0")),
                        journal=env.get("EXCHANGE_JOURNAL") or None, seed=int(seed) if seed else None)
    port = int(env["EXCHANGE_PORT"])
    host = env.get("EXCHANGE_HOST") or "127.0.0.1"
    tick = float(env.get("EXCHANGE_TICK_MS", "100")) / 1000
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(create_app(exchange), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port, backlog=1024).start()
    print(f"exchange ready on {host}:{port}", flush=True)

    async def walk():
        next_at = time.monotonic()
        while True:
            next_at += tick
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            exchange.tick()

    walker = asyncio.create_task(walk())
    try:
        await stop.wait()
    finally:
        walker.cancel()
        await runner.cleanup()
        exchange._flush()


def main() -> int:
    """Entry point of ``python -m tradingstack.exchange``."""
    from tradingstack.resilience import run  # noqa: PLC0415

    run(serve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
