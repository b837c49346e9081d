"""Load faults: more users than planned, for a while.

They act on the whole stack's load generator, so their target is the stack (it may be
left out of the timeline entry). :class:`LoadFault` is the base a system's own load faults
build on (a system's plugin registers them under ``faultlab.faults`` like any fault kind): it
finds the load driver and puts the scenario's users back on revert.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, model_validator

from faultlab.errors import FaultError
from faultlab.faults.base import Background, FaultKind, FaultParams, stop_background
from faultlab.model.types import Rate

if TYPE_CHECKING:
    from faultlab.engine.context import FaultContext
    from faultlab.engine.load import LoadDriver

__all__ = ["LoadChanged", "LoadFault", "LoadSpike"]


@dataclass
class LoadChanged:
    """The load was changed (``changed``) and may have a helper thread changing it further."""

    changed: bool = False
    background: Background | None = None


class LoadFault(FaultKind[Any, LoadChanged]):
    """Base of faults that change the load: target the whole stack, restore the scenario's
    users on revert (and stop a helper thread kept in :class:`LoadChanged`)."""

    target_types: ClassVar[frozenset[str]] = frozenset({"stack"})

    @staticmethod
    def driver(ctx: FaultContext) -> LoadDriver:
        """The run's load driver (``set_users``), or FaultError when the scenario has no load."""
        if ctx.load is None:
            raise FaultError("this scenario has no `load:`, so there is no load to change")
        return ctx.load

    def set_users(self, ctx: FaultContext, changed: LoadChanged, users: int, spawn_rate: float | None = None) -> None:
        """Change the number of users, noting in ``changed`` to restore them on revert."""
        driver = self.driver(ctx)
        changed.changed = True
        driver.set_users(users, spawn_rate)

    def revert(self, ctx: FaultContext, target: str, params: Any, injected: LoadChanged | None) -> None:
        if injected is None:
            return
        stop_background(injected.background, timeout=5)
        injected.background = None
        if injected.changed:
            self.driver(ctx).set_users(ctx.base_users)
            injected.changed = False


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
    def _one_size(self) -> LoadSpikeParams:
        if (self.multiplier is None) == (self.users is None):
            raise ValueError("give exactly one of `multiplier` (like 10) or `users` (like 500)")
        return self


class LoadSpike(LoadFault):
    """Raise the load for a while (a morning rush is ``multiplier: 10``)."""

    name: ClassVar[str] = "load_spike"
    summary: ClassVar[str] = "raise the load for `for` (multiply the users, or set a user count)"
    Params = LoadSpikeParams

    def inject(self, ctx: FaultContext, target: str, params: LoadSpikeParams) -> LoadChanged:
        users = params.users or max(1, round(ctx.base_users * (params.multiplier or 1.0)))
        changed = ctx.keep(LoadChanged())
        self.set_users(ctx, changed, users, params.spawn_rate or float(users))
        ctx.mark_active()
        return changed
