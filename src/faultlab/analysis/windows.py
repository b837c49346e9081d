"""Samples and sliding windows: the raw material every time-based measure is computed from."""

from __future__ import annotations

import math
import re
from bisect import bisect_left, insort
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from faultlab.analysis.model import LatencyStats, Window
from faultlab.stats import percentile

__all__ = [
    "Sample",
    "SteadyState",
    "samples_from",
    "completion_delays_from",
    "percentile",
    "latency_stats",
    "sliding_windows",
    "seconds",
]

_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+)\s*(ms|s|m|h)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def seconds(value: Any) -> float | None:
    """A duration as seconds: a number (already seconds) or a string like ``250ms``, ``2m``."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        return None
    return float(match.group(1)) * _UNIT_S[match.group(2)]


@dataclass(frozen=True, slots=True)
class Sample:
    """One request as analysis sees it; ``t`` is when it was sent."""

    t: float
    ok: bool
    latency_s: float | None
    status: int | None
    source: str
    ack: str | None = None

    @property
    def answered(self) -> bool:
        """True when the system answered (a status), even with an error."""
        return self.status is not None


@dataclass(frozen=True)
class SteadyState:
    """The scenario's ``steady_state``: the bounds a healthy window stays within."""

    success_rate_min: float | None
    p99_latency_max_s: float | None

    @classmethod
    def from_journal(cls, raw: dict[str, Any] | None) -> "SteadyState":
        """Read ``{"success_rate": {"min": ..}, "p99_latency": {"max": ..}}``."""
        raw = raw or {}
        rate = raw.get("success_rate")
        p99 = raw.get("p99_latency")
        rate_min = rate.get("min") if isinstance(rate, dict) else rate
        p99_max = p99.get("max") if isinstance(p99, dict) else p99
        return cls(
            success_rate_min=float(rate_min) if rate_min is not None else None,
            p99_latency_max_s=seconds(p99_max),
        )

    def admits(self, success_rate: float | None, p99_s: float | None) -> bool:
        """True when these figures meet the steady state (no samples never do)."""
        if success_rate is None:
            return False
        if self.success_rate_min is not None and success_rate < self.success_rate_min:
            return False
        if self.p99_latency_max_s is not None and (p99_s is None or p99_s > self.p99_latency_max_s):
            return False
        return True

    def is_bad(self, sample: Sample) -> bool:
        """True when this one sample failed or was slower than the p99 bound."""
        if not sample.ok:
            return True
        limit = self.p99_latency_max_s
        return limit is not None and sample.latency_s is not None and sample.latency_s > limit


def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def samples_from(rows: Iterable[dict[str, Any]], source: str, problems: list[str]) -> list[Sample]:
    """Canary (``t_send``) or load (``t``) rows as samples sorted by send time."""
    out: list[Sample] = []
    skipped = 0
    for row in rows:
        t = _number(row.get("t_send", row.get("t")))
        if t is None:
            skipped += 1
            continue
        latency = _number(row.get("latency_s"))
        done = _number(row.get("t_done"))
        if latency is None and done is not None:
            latency = done - t
        status = row.get("status")
        out.append(
            Sample(
                t=t,
                ok=bool(row.get("ok")),
                latency_s=latency,
                status=int(status) if isinstance(status, int) and not isinstance(status, bool) else None,
                source=source,
                ack=row.get("ack"),
            )
        )
    if skipped:
        problems.append(f"{source}: {skipped} sample(s) without a send time skipped")
    out.sort(key=lambda s: s.t)
    return out


def completion_delays_from(rows: Iterable[dict[str, Any]], problems: list[str]) -> list[tuple[float, float]]:
    """``completions.jsonl`` rows as ``(send time, completion delay)`` sorted by send time."""
    out: list[tuple[float, float]] = []
    skipped = 0
    for row in rows:
        t, delay = _number(row.get("t")), _number(row.get("delay_s"))
        if t is None or delay is None:
            skipped += 1
            continue
        out.append((t, delay))
    if skipped:
        problems.append(f"completions: {skipped} row(s) without a send time or delay skipped")
    out.sort()
    return out


def latency_stats(values: Iterable[float | None]) -> LatencyStats:
    """Count, p50, p99 and max of the values that are present."""
    ordered = sorted(v for v in values if v is not None)
    return LatencyStats(
        count=len(ordered),
        p50_s=percentile(ordered, 0.50),
        p99_s=percentile(ordered, 0.99),
        max_s=ordered[-1] if ordered else None,
    )


def sliding_windows(
    samples: Sequence[Sample],
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
            if latencies[hi] is not None:
                insort(window_latencies, latencies[hi])
            hi += 1
        while lo < hi and times[lo] < lo_t - eps:
            ok -= oks[lo]
            if latencies[lo] is not None:
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
                completion_delay_p99_s=percentile(window_delays, 0.99),
                healthy=steady.admits(rate, p99),
            )
        )
    return windows
