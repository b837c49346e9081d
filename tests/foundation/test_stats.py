"""One percentile for the abort rule, the live view, analysis and the gate: the nearest rank.

The cases are where the three definitions faultlab had disagreed: the abort rule's
``sorted[int(q * n)]``, the analysis's nearest rank and the gate's linear interpolation.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from faultlab.analysis.windows import latency_stats
from faultlab.engine.run import RollingHealth
from faultlab.gate import statistic
from faultlab.stats import percentile, percentile_of, rank

ONE_TO_HUNDRED = [float(v) for v in range(1, 101)]


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        # abort rule said 100 (the maximum), interpolation 99.01
        (ONE_TO_HUNDRED, 0.99, 99.0),
        # abort rule said 3, interpolation 2.5
        ([1.0, 2.0, 3.0, 4.0], 0.50, 2.0),
        # interpolation said 28
        ([10.0, 20.0, 30.0], 0.90, 30.0),
        # abort rule said 200, interpolation 198.01
        ([float(v) for v in range(1, 201)], 0.99, 198.0),
        ([5.0], 0.0, 5.0),
        ([5.0], 1.0, 5.0),
        ([1.0, 2.0, math.inf], 0.50, 2.0),
        ([1.0, 2.0, math.inf], 0.90, math.inf),
    ],
)
def test_nearest_rank(values, q, expected):
    assert percentile(values, q) == expected
    assert percentile_of(reversed(values), q) == expected


def test_rank_is_not_fooled_by_binary_fractions():
    assert 0.07 * 100 > 7  # 7.000000000000001
    assert rank(0.07, 100) == 7 and rank(0.29, 100) == 29 and rank(0.57, 100) == 57


def test_edges():
    assert percentile([], 0.99) is None
    with pytest.raises(ValueError):
        percentile([1.0], 1.5)


def test_abort_rule_live_view_analysis_and_gate_agree():
    health = RollingHealth(horizon_s=1000.0)
    for i, latency in enumerate(ONE_TO_HUNDRED):
        health.add(SimpleNamespace(t_send=i * 0.001, ok=True, latency_s=latency))
    _, _, p99 = health.since(0.0)
    assert p99 == 99.0  # was 100.0: sorted[int(0.99 * 100)]
    assert latency_stats(ONE_TO_HUNDRED).p99_s == 99.0
    assert statistic(ONE_TO_HUNDRED, "p99") == 99.0  # was 99.01
