"""Link faults: toxics and outages on the fault proxy that every link runs through.

Parameters mirror the Toxiproxy toxics they become (latency, timeout, bandwidth, ...),
written with units; the engine converts them to the proxy's integers (ms, KB/s, bytes).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, model_validator

from faultlab.errors import FaultError
from faultlab.faults.base import FaultKind, NoParams, Stream, ToxicParams
from faultlab.model.types import Bandwidth, Duration, Size, as_written

if TYPE_CHECKING:
    from faultlab.engine.context import FaultContext

__all__ = [
    "Latency",
    "Stall",
    "Partition",
    "BandwidthLimit",
    "ResetPeer",
    "SlowClose",
    "LimitData",
    "Slicer",
    "ToxicFault",
    "Toxics",
    "LinkDown",
    "add_toxics",
    "remove_toxics",
]

_LINK = frozenset({"link"})
_PROXY = frozenset({"proxy"})


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


def _proxy(ctx: FaultContext, link: str) -> Any:
    """The link's proxy, through the Toxiproxy API (``toxiproxy-python``)."""
    from faultlab.runtime.base import proxy_client

    proxy = proxy_client(ctx.stack.proxy_api).get_proxy(link)
    if proxy is None:
        raise FaultError(f"the fault proxy has no proxy for link {link!r}")
    return proxy


@dataclass
class Toxics:
    """The toxics a fault added, as ``(link, toxic name)``; each is listed before it is added."""

    added: list[tuple[str, str]] = field(default_factory=list)


def add_toxics(ctx: FaultContext, toxics: Toxics, link: str, toxic_type: str, stream: str, toxicity: float,
               attributes: dict[str, int]) -> None:
    """Add one toxic per direction (``both`` = upstream and downstream), named after the
    fault, listing each in ``toxics`` before adding it (for :func:`remove_toxics`)."""
    proxy = _proxy(ctx, link)
    for direction in (("upstream", "downstream") if stream == "both" else (stream,)):
        name = f"faultlab-{ctx.fault_id.replace('[', '').replace(']', '')}-{link}-{direction}"
        toxics.added.append((link, name))
        proxy.add_toxic(type=toxic_type, name=name, stream=direction, toxicity=toxicity, attributes=attributes)


def remove_toxics(ctx: FaultContext, toxics: Toxics | None) -> None:
    """Remove the toxics :func:`add_toxics` listed; toxics already gone are fine."""
    from toxiproxy.exceptions import NotFound

    if toxics is None:
        return
    for link, name in list(toxics.added):
        with contextlib.suppress(NotFound):
            _proxy(ctx, link).destroy_toxic(name)
        toxics.added.remove((link, name))


class ToxicFault(FaultKind[Any, Toxics]):
    """A link fault that is one Toxiproxy toxic per direction, removed on revert."""

    toxic_type: ClassVar[str]
    requires = _PROXY

    def attributes(self, params: Any) -> dict[str, int]:
        """The toxic's attributes in Toxiproxy's units (ms, KB/s, bytes, µs)."""
        raise NotImplementedError

    def inject(self, ctx: FaultContext, target: str, params: Any) -> Toxics:
        toxics = ctx.keep(Toxics())
        add_toxics(ctx, toxics, target, self.toxic_type, params.stream, params.toxicity, self.attributes(params))
        ctx.mark_active()  # the proxy answers once the toxic is in every live connection's chain
        return toxics

    def revert(self, ctx: FaultContext, target: str, params: Any, injected: Toxics | None) -> None:
        remove_toxics(ctx, injected)


class LatencyParams(ToxicParams):
    latency: Duration = Field(description="delay added to every chunk of data")
    jitter: Duration = Field(default=as_written("0s"), description="random variation, plus or minus")


class Latency(ToxicFault):
    """Delay data on a link (Toxiproxy ``latency``)."""

    name: ClassVar[str] = "latency"
    summary: ClassVar[str] = "add latency (plus or minus jitter) to the data on a link"
    Params = LatencyParams
    target_types = _LINK
    toxic_type = "latency"

    def attributes(self, params: Any) -> dict[str, int]:
        return {"latency": _ms(params.latency), "jitter": _ms(params.jitter)}


class StallParams(ToxicParams):
    stream: Stream = Field("both", description="direction whose data is swallowed")
    close_after: Duration = Field(
        default=as_written("0s"),
        description="close a connection after this long without data (0: keep it open, half-open)",
    )


class Stall(ToxicFault):
    """Swallow the data on a link while connections stay open (Toxiproxy ``timeout``).

    Removing the toxic closes the connections it touched, as Toxiproxy does: their
    streams lost data, so the clients must reconnect."""

    name: ClassVar[str] = "stall"
    summary: ClassVar[str] = "swallow all data on a link, connections stay open (half-open)"
    Params = StallParams
    target_types = _LINK
    toxic_type = "timeout"

    def attributes(self, params: Any) -> dict[str, int]:
        return {"timeout": _ms(params.close_after)}


@dataclass
class LinkDown:
    """A partition: the link's proxy is disabled until ``down`` is False again."""

    link: str
    down: bool = True


class Partition(FaultKind[NoParams, LinkDown]):
    """Take a link down: new connections refused, open ones cut (the proxy is disabled)."""

    name: ClassVar[str] = "partition"
    summary: ClassVar[str] = "take a link down: connections refused and cut"
    Params = NoParams
    target_types = _LINK
    requires = _PROXY

    def inject(self, ctx: FaultContext, target: str, params: NoParams) -> LinkDown:
        proxy = _proxy(ctx, target)
        down = ctx.keep(LinkDown(target))  # kept before the call: a disable that timed out may have happened
        proxy.disable()
        ctx.mark_active()
        return down

    def revert(self, ctx: FaultContext, target: str, params: NoParams, injected: LinkDown | None) -> None:
        if injected is not None and injected.down:
            _proxy(ctx, injected.link).enable()
            injected.down = False


class BandwidthParams(ToxicParams):
    rate: Bandwidth = Field(description="bandwidth allowed, more than 0 (like 100KB/s)")

    @model_validator(mode="after")
    def _at_least_one_kilobyte(self) -> BandwidthParams:
        if self.rate < 1000:
            raise ValueError("rate must be at least 1KB/s (the proxy counts in KB/s)")
        return self


class BandwidthLimit(ToxicFault):
    """Limit a link's bandwidth (Toxiproxy ``bandwidth``)."""

    name: ClassVar[str] = "bandwidth"
    summary: ClassVar[str] = "limit the bandwidth of a link"
    Params = BandwidthParams
    target_types = _LINK
    toxic_type = "bandwidth"

    def attributes(self, params: Any) -> dict[str, int]:
        return {"rate": max(1, int(params.rate // 1000))}


class ResetPeerParams(ToxicParams):
    timeout: Duration = Field(default=as_written("0s"), description="wait this long after the first data, then reset")


class ResetPeer(ToxicFault):
    """Reset connections on a link with TCP RST (Toxiproxy ``reset_peer``)."""

    name: ClassVar[str] = "reset_peer"
    summary: ClassVar[str] = "reset connections on a link (TCP RST) after a timeout"
    Params = ResetPeerParams
    target_types = _LINK
    toxic_type = "reset_peer"

    def attributes(self, params: Any) -> dict[str, int]:
        return {"timeout": _ms(params.timeout)}


class SlowCloseParams(ToxicParams):
    delay: Duration = Field(description="how long a close is held back")


class SlowClose(ToxicFault):
    """Delay the closing of connections (Toxiproxy ``slow_close``)."""

    name: ClassVar[str] = "slow_close"
    summary: ClassVar[str] = "delay the close of connections on a link"
    Params = SlowCloseParams
    target_types = _LINK
    toxic_type = "slow_close"

    def attributes(self, params: Any) -> dict[str, int]:
        return {"delay": _ms(params.delay)}


class LimitDataParams(ToxicParams):
    bytes: Size = Field(description="data passed per connection and direction before closing")


class LimitData(ToxicFault):
    """Close connections after some data (Toxiproxy ``limit_data``)."""

    name: ClassVar[str] = "limit_data"
    summary: ClassVar[str] = "close each connection after a number of bytes"
    Params = LimitDataParams
    target_types = _LINK
    toxic_type = "limit_data"

    def attributes(self, params: Any) -> dict[str, int]:
        return {"bytes": int(params.bytes)}


class SlicerParams(ToxicParams):
    average_size: Size = Field(description="average size of a slice, more than 0")
    size_variation: Size = Field(0, description="variation of the slice size, below average_size")
    delay: Duration = Field(default=as_written("0s"), description="pause between slices (microsecond resolution)")

    @model_validator(mode="after")
    def _sizes_make_sense(self) -> SlicerParams:
        if self.average_size <= 0:
            raise ValueError("average_size must be more than 0")
        if self.size_variation >= self.average_size:
            raise ValueError("size_variation must be smaller than average_size")
        return self


class Slicer(ToxicFault):
    """Cut data into small slices with pauses between them (Toxiproxy ``slicer``)."""

    name: ClassVar[str] = "slicer"
    summary: ClassVar[str] = "slice data into small pieces with delays between them"
    Params = SlicerParams
    target_types = _LINK
    toxic_type = "slicer"

    def attributes(self, params: Any) -> dict[str, int]:
        return {
            "average_size": int(params.average_size),
            "size_variation": int(params.size_variation),
            "delay": int(round(params.delay * 1_000_000)),
        }
