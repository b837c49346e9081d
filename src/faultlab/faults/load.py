"""Load faults: more users than planned, for a while.

They act on the whole stack's load generator, so their target is the stack (it may be
left out of the timeline entry). :class:`LoadFault` is the base a system's own load faults
build on (a system's plugin registers them under ``faultlab.faults`` like any fault kind): it
finds the load driver and puts the scenario's users back on revert.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, model_validator

from faultlab.errors import FaultError
from faultlab.faults.base import FaultKind, FaultParams, stop_background
from faultlab.model.types import Rate

__all__ = ["LoadFault", "LoadSpike"]


class LoadFault(FaultKind):
    """Base of faults that change the load: target the whole stack, restore the scenario's
    users on revert (and stop a helper thread started with ``start_background``)."""

    target_types: ClassVar[frozenset[str]] = frozenset({"stack"})

    @staticmethod
    def driver(ctx: Any) -> Any:
        """The run's load driver (``set_users``), or FaultError when the scenario has no load."""
        if ctx.load is None:
            raise FaultError("this scenario has no `load:`, so there is no load to change")
        return ctx.load

    def set_users(self, ctx: Any, users: int, spawn_rate: float | None = None) -> None:
        """Change the number of users, remembering to restore them on revert."""
        ctx.state["changed"] = True
        self.driver(ctx).set_users(users, spawn_rate)

    def revert(self, ctx: Any, target: str, params: Any) -> None:
        stop_background(ctx, timeout=5)
        if ctx.state.pop("changed", False):
            self.driver(ctx).set_users(ctx.base_users)


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


class LoadSpike(LoadFault):
    """Raise the load for a while (a morning rush is ``multiplier: 10``)."""

    name: ClassVar[str] = "load_spike"
    summary: ClassVar[str] = "raise the load for `for` (multiply the users, or set a user count)"
    Params = LoadSpikeParams

    def inject(self, ctx: Any, target: str, params: Any) -> None:
        users = params.users or max(1, round(ctx.base_users * params.multiplier))
        self.set_users(ctx, users, params.spawn_rate or float(users))
        ctx.mark_active()
