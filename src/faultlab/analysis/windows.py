"""Samples and sliding windows: the raw material every time-based measure is computed from.

A sample is a request as the journal recorded it, typed by the reader: a canary request
(:class:`~faultlab.journal.CanarySample`) or a load request
(:class:`~faultlab.journal.RequestSample`), both with ``t`` (the send time), ``ok``,
``latency_s``, ``status`` and ``ack``. Percentiles are :func:`faultlab.stats.percentile`.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from faultlab.analysis.model import LatencyStats, Window
from faultlab.journal import CanarySample, RequestSample
from faultlab.stats import percentile

__all__ = [
    "Sent",
    "Sample",
    "SteadyState",
    "latency_stats",
    "sliding_windows",
]

Sample = CanarySample | RequestSample
"""One request as analysis sees it: the harness's own (canary) or the load generator's."""


class Sent(Protocol):
    """What a sliding window needs of a request: when it was sent, whether it was answered
    OK, and how long it took."""

    @property
    def t(self) -> float: ...

    @property
    def ok(self) -> bool: ...

    @property
    def latency_s(self) -> float: ...


@dataclass(frozen=True)
class SteadyState:
    """The scenario's ``steady_state``: the bounds a healthy window stays within."""

    success_rate_min: float | None
    p99_latency_max_s: float | None
    completion_delay_max_s: float | None = None

    @classmethod
    def from_journal(cls, raw: Mapping[str, Mapping[str, float]]) -> SteadyState:
        """Read the header's ``{"success_rate": {"min": ..}, "p99_latency": {"max": seconds},
        "completion_delay": {"max": seconds}}``."""
        return cls(
            success_rate_min=raw.get("success_rate", {}).get("min"),
            p99_latency_max_s=raw.get("p99_latency", {}).get("max"),
            completion_delay_max_s=raw.get("completion_delay", {}).get("max"),
        )

    def admits(self, success_rate: float | None, p99_s: float | None, completion_p99_s: float | None = None) -> bool:
        """True when these figures meet the steady state (no samples never do). A window
        whose requests have no completion delay recorded is judged on the rest."""
        if success_rate is None:
            return False
        if self.success_rate_min is not None and success_rate < self.success_rate_min:
            return False
        if self.p99_latency_max_s is not None and (p99_s is None or p99_s > self.p99_latency_max_s):
            return False
        return not self.completed_late(completion_p99_s)

    def completed_late(self, delay_s: float | None) -> bool:
        """True when a completion delay is over the steady state's bound."""
        return self.completion_delay_max_s is not None and delay_s is not None and delay_s > self.completion_delay_max_s

    def is_bad(self, sample: Sent, delay_s: float | None = None) -> bool:
        """True when this one sample failed, was slower than the p99 bound, or (``delay_s``,
        its completion delay) was completed later than the completion bound."""
        if not sample.ok:
            return True
        if self.p99_latency_max_s is not None and sample.latency_s > self.p99_latency_max_s:
            return True
        return self.completed_late(delay_s)


def latency_stats(values: Iterable[float]) -> LatencyStats:
    """Count, p50, p99 and max of the values."""
    ordered = sorted(values)
    return LatencyStats(
        count=len(ordered),
        p50_s=percentile(ordered, 0.50),
        p99_s=percentile(ordered, 0.99),
        max_s=ordered[-1] if ordered else None,
    )


def sliding_windows(
    samples: Sequence[Sent],
    steady: SteadyState,
    *,
    window_s: float,
    step_s: float,
    start: float,
    stop: float,
    delays: Sequence[tuple[float, float]] | None = None,
) -> list[Window]:
    """Windows ``[s, s + window_s)`` for ``s = start, start + step_s, ...`` ending by ``stop``.

    ``samples`` must be sorted by ``t``. A window without samples is not healthy: there is
    no evidence that it was. ``delays`` are ``(send time, completion delay)`` sorted by time.

    One pass: two pointers per series slide with the windows, each sample enters and leaves
    once, and the values inside the window are kept sorted as they enter and leave, so a
    window's percentile is a lookup, never a sort of the whole window.
    """
    delays = delays or []
    times = [s.t for s in samples]
    oks = [s.ok for s in samples]
    latencies = [s.latency_s for s in samples]
    delay_times = [t for t, _ in delays]
    delay_values = [d for _, d in delays]
    n, n_delays = len(times), len(delay_times)
    lo = hi = d_lo = d_hi = ok = 0
    window_latencies: list[float] = []
    window_delays: list[float] = []
    windows: list[Window] = []
    k = 0
    eps = step_s * 1e-6
    while True:
        lo_t = round(start + k * step_s, 9)
        hi_t = round(lo_t + window_s, 9)
        if hi_t > stop + eps:
            break
        k += 1
        # A window holds the samples with lo_t - eps <= t < hi_t - eps.
        while hi < n and times[hi] < hi_t - eps:
            ok += oks[hi]
            insort(window_latencies, latencies[hi])
            hi += 1
        while lo < hi and times[lo] < lo_t - eps:
            ok -= oks[lo]
            del window_latencies[bisect_left(window_latencies, latencies[lo])]
            lo += 1
        while d_hi < n_delays and delay_times[d_hi] < hi_t - eps:
            insort(window_delays, delay_values[d_hi])
            d_hi += 1
        while d_lo < d_hi and delay_times[d_lo] < lo_t - eps:
            del window_delays[bisect_left(window_delays, delay_values[d_lo])]
            d_lo += 1
        count = hi - lo
        rate = ok / count if count else None
        p99 = percentile(window_latencies, 0.99)
        windows.append(
            Window(
                start=lo_t,
                end=hi_t,
                samples=count,
                ok=ok,
                success_rate=rate,
                p99_latency_s=p99,
                throughput_rps=ok / window_s,
                completion_delay_p99_s=(completion := percentile(window_delays, 0.99)),
                healthy=steady.admits(rate, p99, completion),
            )
        )
    return windows
