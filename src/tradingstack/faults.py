"""The trading stack's own fault kinds, registered through its entry point like any plugin's
(``[project.entry-points."faultlab.faults"]`` in pyproject.toml).

``load_shape`` drives a market-shaped burst: the opening rush (ten times the users, decaying
back) or a stop-order cascade (a price drop on the exchange sets off the resting stop orders,
and the load runs the stop-cascade shape of the locustfile).

``exchange_silent`` is the silent failure (FT-23): the exchange keeps accepting orders and
answering as usual, and fills none of them, through its admin switch (``POST /admin/mode
{"silent": true}``); reverting turns the switch back, and the exchange fills what is due.
Nothing fails and nothing stops being ready: only the execution delay shows it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from faultlab.errors import FaultError
from faultlab.faults.base import FaultKind, FaultParams, NoParams, start_background
from faultlab.faults.load import LoadChanged, LoadFault

if TYPE_CHECKING:
    from faultlab.engine.context import FaultContext
    from faultlab.runtime.base import StackHandle

__all__ = ["LoadShape", "ExchangeSilent", "CASCADE_DROP_PCT"]

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


@dataclass
class Silenced:
    """What :class:`ExchangeSilent` switched: the exchange's admin URL, and whether it is silent now."""

    admin_url: str
    silent: bool = False


def _set_silent(url: str, silent: bool) -> None:
    import httpx

    try:
        response = httpx.post(url, json={"silent": silent}, timeout=5)
        response.raise_for_status()
        answer = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise FaultError(f"the exchange's admin switch at {url} did not take silent={silent}: {exc}") from exc
    if answer.get("silent") is not silent:
        raise FaultError(f"the exchange answered {answer!r} to silent={silent}")


class ExchangeSilent(FaultKind[NoParams, Silenced]):
    """The exchange accepts orders and fills none of them while the fault lasts."""

    name: ClassVar[str] = "exchange_silent"
    summary: ClassVar[str] = "the exchange accepts orders and never fills them (the silent failure)"
    target_types: ClassVar[frozenset[str]] = frozenset({"service"})

    def inject(self, ctx: FaultContext, target: str, params: NoParams) -> Silenced:
        # Marked silent before asking: a switch that took effect but answered badly is
        # still turned back (turning back a switch that did not move is harmless).
        silenced = ctx.keep(Silenced(ctx.stack.url(target, "/admin/mode"), silent=True))
        _set_silent(silenced.admin_url, True)
        return silenced

    def revert(self, ctx: FaultContext, target: str, params: NoParams, injected: Silenced | None) -> None:
        if injected is None or not injected.silent:
            return
        _set_silent(injected.admin_url, False)
        injected.silent = False
