"""Network faults on a service's own network, below the fault proxy, through the runtime's
:class:`~faultlab.runtime.base.NetworkControl` (a container's network on docker).

A link fault (``partition``) cuts one link at the proxy; these act on the service itself:
``network_disconnect`` takes it off its network (every peer, the harness included, loses
it), ``packet_filter`` drops or rejects its packets in its own network namespace, all of
them or a share (packet loss, where the kernel has no netem).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from faultlab.faults.base import FaultKind, FaultParams, NoParams
from faultlab.model.types import Fraction

if TYPE_CHECKING:
    from faultlab.engine.context import FaultContext

__all__ = ["NetworkDisconnect", "PacketFilter", "Disconnected", "Filtered"]

_SERVICES = frozenset({"service", "postgres"})


@dataclass
class Disconnected:
    """A service taken off its network, until ``disconnected`` is False again."""

    service: str
    disconnected: bool = False


class NetworkDisconnect(FaultKind[NoParams, Disconnected]):
    """Disconnect a service from its network for ``for``, then connect it again."""

    name: ClassVar[str] = "network_disconnect"
    summary: ClassVar[str] = "take a service off its network (no peer reaches it), reconnect it after `for`"
    Params = NoParams
    target_types = _SERVICES
    requires = frozenset({"service_network"})

    def inject(self, ctx: FaultContext, target: str, params: NoParams) -> Disconnected:
        network = ctx.stack.network(target)
        disconnected = ctx.keep(Disconnected(target))
        disconnected.disconnected = True  # before the call: reconnecting a connected service is harmless
        with ctx.taking_effect():
            network.disconnect()
        return disconnected

    def revert(self, ctx: FaultContext, target: str, params: NoParams, injected: Disconnected | None) -> None:
        if injected is not None and injected.disconnected:
            ctx.stack.network(injected.service).reconnect()
            injected.disconnected = False


class PacketFilterParams(FaultParams):
    action: Literal["drop", "reject"] = Field(
        "drop", description="drop: packets vanish (peers time out); reject: refused at once (TCP reset, ICMP)"
    )
    direction: Literal["in", "out", "both"] = Field(
        "both", description="the service's incoming packets, its outgoing ones, or both (loopback never)"
    )
    probability: Fraction = Field(
        1.0, description="share of packets hit (0..1 or a percentage); below 1 it is packet loss"
    )


@dataclass
class Filtered:
    """A packet filter on a service, named ``filter_id``, until ``on`` is False again."""

    service: str
    filter_id: str
    on: bool = False


class PacketFilter(FaultKind[PacketFilterParams, Filtered]):
    """Drop or reject a service's packets (iptables in its network namespace) for ``for``."""

    name: ClassVar[str] = "packet_filter"
    summary: ClassVar[str] = "drop or reject a service's packets (all, or a share: packet loss) for `for`"
    Params = PacketFilterParams
    target_types = _SERVICES
    requires = frozenset({"packet_filter"})

    def inject(self, ctx: FaultContext, target: str, params: PacketFilterParams) -> Filtered:
        network = ctx.stack.network(target)
        filtered = ctx.keep(Filtered(target, _filter_id(ctx.fault_id)))
        filtered.on = True  # before the call: removing a filter that is half there is harmless
        with ctx.taking_effect():
            network.filter_packets(filtered.filter_id, action=params.action, direction=params.direction,
                                   probability=params.probability)
        return filtered

    def revert(self, ctx: FaultContext, target: str, params: PacketFilterParams, injected: Filtered | None) -> None:
        if injected is not None and injected.on:
            ctx.stack.network(injected.service).unfilter_packets(injected.filter_id)
            injected.on = False


def _filter_id(fault_id: str) -> str:
    """``timeline[3]`` -> ``t3``: short, and only characters a chain name may hold."""
    digits = "".join(c for c in fault_id if c.isalnum())
    return digits.replace("timeline", "t")[:12] or "f"
