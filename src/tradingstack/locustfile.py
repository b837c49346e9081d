"""Locust load for the trading stack: a realistic brokerage mix.

Run it in its own process: ``locust -f <this file> --host http://127.0.0.1:PORT --headless``.
A user mostly places new orders (market 70 %, limit 20 %, stop 10 %; buys and sells), and
sometimes looks an order up, cancels a resting one or reads its account. Every request
carries ``context={"ack": ...}``: the client order id an accepted ``place_order``
acknowledged, None for the others. faultlab's request recorder
(``faultlab.engine.locust_recorder``, loaded next to this file) writes every request with it.

``LOAD_SHAPE`` picks a shape from :mod:`tradingstack.loadshapes`: ``steady``,
``market_open`` (the opening rush) or ``stop_cascade``; unset = locust's own
``--users``/``--run-time``.

Environment:

==========================  ==========  =================================================
``LOAD_SHAPE``              unset       steady | market_open | stop_cascade
``LOAD_ACCOUNTS``           200         accounts 1..N are used
``LOAD_WAIT_MS``            0           think time between a user's requests (ms)
``LOAD_RATE_PER_USER``      unset       pace each user to this many requests/s (overrides wait)
``LOAD_TIMEOUT``            5           per-request timeout (s)
==========================  ==========  =================================================
"""

from __future__ import annotations

import os
import random
import uuid
from typing import Any

import orjson
from locust import FastHttpUser, constant, constant_throughput, task

from tradingstack import loadshapes
from tradingstack.schema import SYMBOLS

_SYMBOLS = sorted(SYMBOLS)
_ACCOUNTS = int(os.environ.get("LOAD_ACCOUNTS", "200"))
_JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


class Trader(FastHttpUser):
    """One brokerage customer: mostly new orders, some queries and cancels."""

    wait_time = (constant_throughput(float(os.environ["LOAD_RATE_PER_USER"])) if os.environ.get("LOAD_RATE_PER_USER")
                 else constant(float(os.environ.get("LOAD_WAIT_MS", "0")) / 1000))
    network_timeout = float(os.environ.get("LOAD_TIMEOUT", "5"))
    connection_timeout = float(os.environ.get("LOAD_TIMEOUT", "5"))

    def on_start(self) -> None:
        """Pick an account; remember this user's recent orders for queries and cancels."""
        self.account = random.randint(1, _ACCOUNTS)
        self.recent: list[int] = []
        self.resting: list[int] = []

    def _call(self, method: str, path: str, name: str, ok_statuses: tuple[int, ...], body: dict | None = None,
              ack: str | None = None):
        # orjson both ways: locust shares the cores with the stack, so its per-request cost
        # counts against the system's throughput. The body goes as bytes, which the session
        # sends as they are (its annotation says str, its docstring and code take bytes too).
        kwargs: dict[str, Any] = {"data": orjson.dumps(body), "headers": _JSON_HEADERS} if body is not None else {}
        with self.client.request(method, path, name=name, catch_response=True, context={"ack": ack},
                                 **kwargs) as response:
            status = response.status_code or None
            ok = status in ok_statuses
            payload = None
            if ok:
                try:
                    payload = orjson.loads(response.content or b"")
                except ValueError:
                    ok = False
            if ok:
                response.success()
            else:
                response.failure(f"HTTP {status}: {(response.text or '')[:120]}")
            return ok, payload

    @task(16)
    def place_order(self) -> None:
        """A new order: market 70 %, limit 20 %, stop 10 % (more stops in a stop cascade)."""
        symbol = random.choice(_SYMBOLS)
        reference = SYMBOLS[symbol]
        side = random.choice(("buy", "sell"))
        roll = random.random()
        cascade = getattr(self.environment.shape_class, "stop_cascade", False)
        body: dict[str, Any] = {"client_order_id": f"L{uuid.uuid4().hex[:24]}", "account": self.account,
                                "symbol": symbol, "side": side, "quantity": random.randint(1, 20)}
        if cascade and roll < 0.5:
            body.update(side="sell", type="stop", price=round(reference * random.uniform(0.955, 0.985), 2))
        elif roll < 0.7:
            body["type"] = "market"
        elif roll < 0.9:
            away = random.uniform(0.9, 0.99) if side == "buy" else random.uniform(1.01, 1.1)
            body.update(type="limit", price=round(reference * away, 2))
        else:
            away = random.uniform(1.02, 1.06) if side == "buy" else random.uniform(0.94, 0.98)
            body.update(type="stop", price=round(reference * away, 2))
        ok, payload = self._call("POST", "/orders", "place_order", (200, 201), body, ack=body["client_order_id"])
        if ok and payload:
            self.recent = (self.recent + [payload["order_id"]])[-20:]
            if body["type"] != "market":
                self.resting = (self.resting + [payload["order_id"]])[-20:]

    @task(2)
    def get_order(self) -> None:
        """Look up one of this user's recent orders."""
        if not self.recent:
            return
        self._call("GET", f"/orders/{random.choice(self.recent)}", "get_order", (200,))

    @task(1)
    def cancel_order(self) -> None:
        """Cancel a resting limit or stop order (409 = it was already filled: fine)."""
        if not self.resting:
            return
        order_id = self.resting.pop(random.randrange(len(self.resting)))
        self._call("DELETE", f"/orders/{order_id}", "cancel_order", (202, 409))

    @task(1)
    def get_account(self) -> None:
        """Read this user's cash and positions."""
        self._call("GET", f"/accounts/{self.account}", "get_account", (200,))


if os.environ.get("LOAD_SHAPE"):
    # Locust runs the one LoadTestShape subclass it finds in this module.
    LoadShape = loadshapes.SHAPES[os.environ["LOAD_SHAPE"]]
