"""Market-shaped load for locust: the opening rush and the stop-order cascade.

Imported only by the locustfile (importing locust patches the standard library). Each shape
reads its parameters from the environment when locust instantiates it:

=========================  ========  ==========================================================
``LOAD_USERS``             20        baseline users
``LOAD_SPAWN_RATE``        50        users started per second
``LOAD_DURATION``          90        seconds until the shape stops the test
``LOAD_RUSH_AT``           10        market open: when the rush starts (s)
``LOAD_RUSH_FOR``          30        how long it lasts (s)
``LOAD_RUSH_FACTOR``       10        users multiply by this during the rush
``LOAD_CASCADE_AT``        20        stop cascade: when the price drop is pushed (s)
``LOAD_CASCADE_DROP_PCT``  6         how far every price drops
``EXCHANGE_ADMIN_URL``     unset     exchange base URL for the price push (no push if unset)
=========================  ========  ==========================================================
"""

from __future__ import annotations

import os

from locust import LoadTestShape

__all__ = ["SteadyShape", "MarketOpenShape", "StopCascadeShape", "SHAPES"]


def _env(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


class SteadyShape(LoadTestShape):
    """``LOAD_USERS`` users for ``LOAD_DURATION`` seconds."""

    def __init__(self) -> None:
        super().__init__()
        self.users = int(_env("LOAD_USERS", 20))
        self.spawn_rate = _env("LOAD_SPAWN_RATE", 50)
        self.duration = _env("LOAD_DURATION", 90)

    def tick(self):
        """(users, spawn rate) now, or None to stop."""
        return None if self.get_run_time() >= self.duration else (self.users, self.spawn_rate)


class MarketOpenShape(SteadyShape):
    """Baseline load, then ``LOAD_RUSH_FACTOR`` times the users for ``LOAD_RUSH_FOR`` seconds."""

    def __init__(self) -> None:
        super().__init__()
        self.rush_at = _env("LOAD_RUSH_AT", 10)
        self.rush_for = _env("LOAD_RUSH_FOR", 30)
        self.factor = _env("LOAD_RUSH_FACTOR", 10)

    def tick(self):
        """(users, spawn rate) now, or None to stop."""
        t = self.get_run_time()
        if t >= self.duration:
            return None
        if self.rush_at <= t < self.rush_at + self.rush_for:
            users = int(self.users * self.factor)
            return users, max(self.spawn_rate, users)
        return self.users, max(self.spawn_rate, self.users * self.factor)


class StopCascadeShape(SteadyShape):
    """Baseline load placing protective stops; at ``LOAD_CASCADE_AT`` every price drops.

    The drop is pushed through the exchange's admin endpoint once; the stops it triggers fill
    as market sells, whose price impact can trigger more (the cascade). Users place more
    stop-sell orders while this shape is active (see the locustfile).
    """

    stop_cascade = True

    def __init__(self) -> None:
        super().__init__()
        self.cascade_at = _env("LOAD_CASCADE_AT", 20)
        self.drop = _env("LOAD_CASCADE_DROP_PCT", 6)
        self.pushed = False

    def tick(self):
        """(users, spawn rate) now, or None to stop; pushes the price drop once."""
        t = self.get_run_time()
        if t >= self.duration:
            return None
        url = os.environ.get("EXCHANGE_ADMIN_URL")
        if not self.pushed and t >= self.cascade_at and url:
            self.pushed = True
            import urllib.request  # noqa: PLC0415

            request = urllib.request.Request(url.rstrip("/") + "/admin/price", method="POST",
                                             data=f'{{"symbol": "*", "move_pct": {-self.drop}}}'.encode(),
                                             headers={"Content-Type": "application/json"})
            try:
                urllib.request.urlopen(request, timeout=5).close()
            except OSError as exc:
                print(f"stop cascade: price push failed: {exc}", flush=True)
        return self.users, self.spawn_rate


#: The shapes by the name ``LOAD_SHAPE`` selects.
SHAPES = {"steady": SteadyShape, "market_open": MarketOpenShape, "stop_cascade": StopCascadeShape}
