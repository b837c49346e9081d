"""The one-pass sliding windows equal a window-by-window recomputation, on any data."""

from __future__ import annotations

from bisect import bisect_left

from hypothesis import given, settings
from hypothesis import strategies as st

from faultlab.analysis.windows import SteadyState, sliding_windows
from faultlab.journal import RequestSample
from faultlab.stats import percentile

STEADY = SteadyState(success_rate_min=0.9, p99_latency_max_s=0.2)


def rescan(samples, delays, *, window_s, step_s, start, stop):
    """The definition, recomputed from scratch for every window."""
    times, delay_times = [s.t for s in samples], [t for t, _ in delays]
    out, k, eps = [], 0, step_s * 1e-6
    while True:
        lo_t = round(start + k * step_s, 9)
        hi_t = round(lo_t + window_s, 9)
        if hi_t > stop + eps:
            return out
        k += 1
        chunk = samples[bisect_left(times, lo_t - eps):bisect_left(times, hi_t - eps)]
        in_delay = delays[bisect_left(delay_times, lo_t - eps):bisect_left(delay_times, hi_t - eps)]
        ok = sum(1 for s in chunk if s.ok)
        rate = ok / len(chunk) if chunk else None
        p99 = percentile(sorted(s.latency_s for s in chunk), 0.99)
        out.append((lo_t, hi_t, len(chunk), ok, rate, p99, percentile(sorted(d for _, d in in_delay), 0.99),
                    STEADY.admits(rate, p99)))


sample = st.builds(
    RequestSample,
    t=st.floats(min_value=0, max_value=20, allow_nan=False).map(lambda x: round(x, 2)),
    name=st.just("place_order"),
    ok=st.booleans(),
    latency_s=st.sampled_from([0.01, 0.05, 0.1, 0.3, 1.0]),
    status=st.just(201),
)


@settings(max_examples=60, deadline=None)
@given(
    samples=st.lists(sample, max_size=300),
    delays=st.lists(st.tuples(st.floats(min_value=0, max_value=20).map(lambda x: round(x, 2)),
                              st.sampled_from([0.01, 2.0, 30.0])), max_size=100),
    shape=st.sampled_from([(1.0, 0.1), (1.0, 0.05), (0.5, 0.5), (0.2, 0.5), (3.0, 0.25)]),
)
def test_one_pass_windows_equal_the_rescan(samples, delays, shape):
    samples = sorted(samples, key=lambda s: s.t)
    delays = sorted(delays)
    window_s, step_s = shape
    got = sliding_windows(samples, STEADY, window_s=window_s, step_s=step_s, start=0.0, stop=21.0, delays=delays)
    want = rescan(samples, delays, window_s=window_s, step_s=step_s, start=0.0, stop=21.0)
    assert [(w.start, w.end, w.samples, w.ok, w.success_rate, w.p99_latency_s, w.completion_delay_p99_s, w.healthy)
            for w in got] == want
