"""The trading stack's own fault kinds, registered through its entry point like any plugin's
(``[project.entry-points."faultlab.faults"]`` in pyproject.toml).

``load_shape`` drives a market-shaped burst: the opening rush (ten times the users, decaying
back) or a stop-order cascade (a price drop on the exchange sets off the resting stop orders,
and the load runs the stop-cascade shape of the locustfile).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from faultlab.errors import FaultError
from faultlab.faults.base import FaultParams, start_background
from faultlab.faults.load import LoadChanged, LoadFault

if TYPE_CHECKING:
    from faultlab.engine.context import FaultContext
    from faultlab.runtime.base import StackHandle

__all__ = ["LoadShape", "CASCADE_DROP_PCT"]

#: How far every price drops in a stop-order cascade.
CASCADE_DROP_PCT = -6.0


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


def drop_prices(stack: StackHandle, move_pct: float = CASCADE_DROP_PCT) -> None:
    """Push every price on the exchange by ``move_pct`` so resting stop orders trigger at once."""
    import httpx

    try:
        response = httpx.post(stack.url("exchange", "/admin/price"), json={"symbol": "*", "move_pct": move_pct},
                              timeout=5)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        raise FaultError(f"the exchange refused the price drop: {exc}") from exc


class LoadShape(LoadFault):
    """Drive a market-shaped burst for a while."""

    name: ClassVar[str] = "load_shape"
    summary: ClassVar[str] = "drive a market-shaped burst: opening_rush or stop_cascade"
    Params = LoadShapeParams

    #: Steps in which the rush decays from its peak back to the scenario's users.
    steps: ClassVar[int] = 10

    def inject(self, ctx: FaultContext, target: str, params: LoadShapeParams) -> LoadChanged:
        driver = self.driver(ctx)
        peak = max(1, round(ctx.base_users * params.peak_multiplier))
        if params.shape == "stop_cascade":
            drop_prices(ctx.stack)
        changed = ctx.keep(LoadChanged())
        self.set_users(ctx, changed, peak, float(peak))
        ctx.mark_active()
        span = ctx.for_s or 0.0
        if params.shape == "opening_rush" and span > 0:
            def decay(stop: threading.Event) -> None:
                for step in range(1, self.steps):
                    if stop.wait(span / self.steps):
                        return
                    users = round(peak - (peak - ctx.base_users) * step / self.steps)
                    try:
                        driver.set_users(max(1, users))
                    except Exception:  # noqa: BLE001 - the load driver stopped: the run is ending
                        return

            changed.background = start_background("faultlab-opening-rush", decay)
        return changed
