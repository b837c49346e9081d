"""The one percentile of faultlab: nearest rank.

The p-th percentile of ``n`` values is the value of rank ``ceil(p/100 * n)``, counting from
the smallest (rank 1 for p = 0): the smallest value that at least p % of the values are at
or below. It is always one of the values, so a report's "p99 latency 212 ms" is the latency of
a real request, and a gate's "rto.p90 6.58 s" is the RTO of a real trial. Values may hold
``inf`` (a trial that never recovered): it ranks above every number and needs no special
case.

The abort rule and the live view (a rolling second of canary samples), the analysis (each
window's p99, the p50/p99 of a set of latencies) and the CI gate (a statistic over trials)
all use :func:`percentile`; nothing in faultlab interpolates between ranks. With few values
a high percentile is the largest of them (the p90 of 3 trials is the worst trial, as is the
p99 of 20 canary samples in one second).

Pure: no imports beyond the standard library.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

__all__ = ["percentile", "percentile_of", "rank"]


def rank(q: float, n: int) -> int:
    """The 1-based nearest rank of fraction ``q`` (0..1) among ``n`` values (``n`` > 0).

    ``q * n`` is rounded to 9 places first, so that ``0.07 * 100`` (7.000000000000001 in
    binary floating point) is rank 7, not 8.
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"a percentile is between 0 and 1, got {q!r}")
    return min(n, max(1, math.ceil(round(q * n, 9))))


def percentile(sorted_values: Sequence[float], q: float) -> float | None:
    """The nearest-rank percentile ``q`` (0..1) of values already sorted ascending; None
    when there are none."""
    if not sorted_values:
        return None
    return sorted_values[rank(q, len(sorted_values)) - 1]


def percentile_of(values: Iterable[float], q: float) -> float | None:
    """:func:`percentile` of values in any order."""
    return percentile(sorted(values), q)
