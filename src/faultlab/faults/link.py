"""Link faults: toxics and outages on the fault proxy that every link runs through.

Parameters mirror the Toxiproxy toxics they become (latency, timeout, bandwidth, ...),
written with units; the engine converts them to the proxy's integers (ms, KB/s, bytes).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from faultlab.faults.base import FaultKind, NoParams, ToxicParams, Stream
from faultlab.model.types import Bandwidth, Duration, Size

__all__ = [
    "Latency",
    "Stall",
    "Partition",
    "BandwidthLimit",
    "ResetPeer",
    "SlowClose",
    "LimitData",
    "Slicer",
]

_LINK = frozenset({"link"})


class LatencyParams(ToxicParams):
    latency: Duration = Field(description="delay added to every chunk of data")
    jitter: Duration = Field("0s", description="random variation, plus or minus")


class Latency(FaultKind):
    """Delay data on a link (Toxiproxy ``latency``)."""

    name: ClassVar[str] = "latency"
    summary: ClassVar[str] = "add latency (plus or minus jitter) to the data on a link"
    Params = LatencyParams
    target_types = _LINK


class StallParams(ToxicParams):
    stream: Stream = Field("both", description="direction whose data is swallowed")
    close_after: Duration = Field(
        "0s",
        description="close a connection after this long without data (0: keep it open, half-open)",
    )


class Stall(FaultKind):
    """Swallow the data on a link while connections stay open (Toxiproxy ``timeout``)."""

    name: ClassVar[str] = "stall"
    summary: ClassVar[str] = "swallow all data on a link, connections stay open (half-open)"
    Params = StallParams
    target_types = _LINK


class Partition(FaultKind):
    """Take a link down: new connections refused, open ones cut."""

    name: ClassVar[str] = "partition"
    summary: ClassVar[str] = "take a link down: connections refused and cut"
    Params = NoParams
    target_types = _LINK


class BandwidthParams(ToxicParams):
    rate: Bandwidth = Field(description="bandwidth allowed, more than 0 (like 100KB/s)")

    @model_validator(mode="after")
    def _at_least_one_kilobyte(self) -> "BandwidthParams":
        if self.rate < 1000:
            raise ValueError("rate must be at least 1KB/s (the proxy counts in KB/s)")
        return self


class BandwidthLimit(FaultKind):
    """Limit a link's bandwidth (Toxiproxy ``bandwidth``)."""

    name: ClassVar[str] = "bandwidth"
    summary: ClassVar[str] = "limit the bandwidth of a link"
    Params = BandwidthParams
    target_types = _LINK


class ResetPeerParams(ToxicParams):
    timeout: Duration = Field("0s", description="wait this long after the first data, then reset")


class ResetPeer(FaultKind):
    """Reset connections on a link with TCP RST (Toxiproxy ``reset_peer``)."""

    name: ClassVar[str] = "reset_peer"
    summary: ClassVar[str] = "reset connections on a link (TCP RST) after a timeout"
    Params = ResetPeerParams
    target_types = _LINK


class SlowCloseParams(ToxicParams):
    delay: Duration = Field(description="how long a close is held back")


class SlowClose(FaultKind):
    """Delay the closing of connections (Toxiproxy ``slow_close``)."""

    name: ClassVar[str] = "slow_close"
    summary: ClassVar[str] = "delay the close of connections on a link"
    Params = SlowCloseParams
    target_types = _LINK


class LimitDataParams(ToxicParams):
    bytes: Size = Field(description="data passed per connection and direction before closing")


class LimitData(FaultKind):
    """Close connections after some data (Toxiproxy ``limit_data``)."""

    name: ClassVar[str] = "limit_data"
    summary: ClassVar[str] = "close each connection after a number of bytes"
    Params = LimitDataParams
    target_types = _LINK


class SlicerParams(ToxicParams):
    average_size: Size = Field(description="average size of a slice, more than 0")
    size_variation: Size = Field(0, description="variation of the slice size, below average_size")
    delay: Duration = Field("0s", description="pause between slices (microsecond resolution)")

    @model_validator(mode="after")
    def _sizes_make_sense(self) -> "SlicerParams":
        if self.average_size <= 0:
            raise ValueError("average_size must be more than 0")
        if self.size_variation >= self.average_size:
            raise ValueError("size_variation must be smaller than average_size")
        return self


class Slicer(FaultKind):
    """Cut data into small slices with pauses between them (Toxiproxy ``slicer``)."""

    name: ClassVar[str] = "slicer"
    summary: ClassVar[str] = "slice data into small pieces with delays between them"
    Params = SlicerParams
    target_types = _LINK
