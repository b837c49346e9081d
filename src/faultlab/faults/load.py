"""Load faults: more users than planned, or market-shaped bursts, for a while.

They act on the whole stack's load generator, so their target is the stack (it may be
left out of the timeline entry).
"""

from __future__ import annotations

import threading
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from faultlab.errors import FaultError
from faultlab.faults.base import FaultKind, FaultParams, start_background, stop_background
from faultlab.model.types import Rate

__all__ = ["LoadSpike", "LoadShape"]

_STACK = frozenset({"stack"})


def _driver(ctx: Any) -> Any:
    if ctx.load is None:
        raise FaultError("this scenario has no `load:`, so there is no load to change")
    return ctx.load


def _restore(ctx: Any) -> None:
    stop_background(ctx, timeout=5)
    if ctx.state.pop("changed", False):
        _driver(ctx).set_users(ctx.base_users)


class LoadSpikeParams(FaultParams):
    multiplier: float | None = Field(
        None, gt=1, le=1000, description="multiply the scenario's users by this (exclusive with users)"
    )
    users: int | None = Field(
        None, ge=1, le=1_000_000, description="run this many users (exclusive with multiplier)"
    )
    spawn_rate: Rate | None = Field(
        None, description="how fast the extra users start (default: all at once)"
    )

    @model_validator(mode="after")
    def _one_size(self) -> "LoadSpikeParams":
        if (self.multiplier is None) == (self.users is None):
            raise ValueError("give exactly one of `multiplier` (like 10) or `users` (like 500)")
        return self


class LoadSpike(FaultKind):
    """Raise the load for a while (a market-open rush is ``multiplier: 10``)."""

    name: ClassVar[str] = "load_spike"
    summary: ClassVar[str] = "raise the load for `for` (multiply the users, or set a user count)"
    Params = LoadSpikeParams
    target_types = _STACK

    def inject(self, ctx: Any, target: str, params: Any) -> None:
        users = params.users or max(1, round(ctx.base_users * params.multiplier))
        ctx.state["changed"] = True
        _driver(ctx).set_users(users, params.spawn_rate or float(users))
        ctx.mark_active()

    def revert(self, ctx: Any, target: str, params: Any) -> None:
        _restore(ctx)


class LoadShapeParams(FaultParams):
    shape: Literal["opening_rush", "stop_cascade"] = Field(
        description=(
            "opening_rush: a burst of new orders at the open; stop_cascade: a price drop "
            "triggers a wave of stop orders"
        )
    )
    peak_multiplier: float = Field(
        10.0, gt=1, le=1000, description="peak load as a multiple of the scenario's users"
    )


class LoadShape(FaultKind):
    """Drive a market-shaped burst (from the stack's drill plugin) for a while."""

    name: ClassVar[str] = "load_shape"
    summary: ClassVar[str] = "drive a market-shaped burst: opening_rush or stop_cascade"
    Params = LoadShapeParams
    target_types = _STACK

    #: Steps in which the rush decays from its peak back to the scenario's users.
    steps: ClassVar[int] = 10

    def inject(self, ctx: Any, target: str, params: Any) -> None:
        driver = _driver(ctx)
        peak = max(1, round(ctx.base_users * params.peak_multiplier))
        if params.shape == "stop_cascade":
            ctx.plugin.market_event(ctx.stack, "stop_cascade")
        ctx.state["changed"] = True
        driver.set_users(peak, float(peak))
        ctx.mark_active()
        span = ctx.state.get("for_s") or 0.0
        if params.shape == "opening_rush" and span > 0:
            def decay(stop: threading.Event) -> None:
                for step in range(1, self.steps):
                    if stop.wait(span / self.steps):
                        return
                    users = round(peak - (peak - ctx.base_users) * step / self.steps)
                    try:
                        driver.set_users(max(1, users))
                    except Exception:
                        return

            start_background(ctx, "faultlab-opening-rush", decay)

    def revert(self, ctx: Any, target: str, params: Any) -> None:
        _restore(ctx)
