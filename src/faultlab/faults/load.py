"""Load faults: more users than planned, or market-shaped bursts, for a while.

They act on the whole stack's load generator, so their target is the stack (it may be
left out of the timeline entry).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from faultlab.faults.base import FaultKind, FaultParams
from faultlab.model.types import Rate

__all__ = ["LoadSpike", "LoadShape"]

_STACK = frozenset({"stack"})


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
