"""Pure tests of the circuit breaker and the settings profiles (no processes)."""

from __future__ import annotations

import pytest

from tradingstack.resilience import CircuitBreaker, CircuitOpen, backoff_delay, setting


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_breaker_opens_after_threshold_and_half_opens_after_backoff():
    clock = FakeClock()
    breaker = CircuitBreaker("db", threshold=2, base=1.0, cap=8.0, clock=clock)
    breaker.failure()
    breaker.check()
    breaker.failure()
    assert breaker.state == "open"
    with pytest.raises(CircuitOpen):
        breaker.check()
    clock.now = 1.01
    breaker.check()  # the one trial
    assert breaker.state == "half_open"
    with pytest.raises(CircuitOpen):
        breaker.check()
    breaker.failure()
    assert breaker.state == "open" and breaker.opened_until - clock.now >= 1.0  # longer the second time
    clock.now = 10
    breaker.check()
    breaker.success()
    assert breaker.state == "closed" and breaker.code == 0


def test_disabled_breaker_never_opens():
    breaker = CircuitBreaker("db", threshold=0, base=1, cap=1)
    for _ in range(10):
        breaker.failure()
    breaker.check()
    assert breaker.state == "closed"


def test_backoff_is_capped_and_grows():
    assert all(0.05 <= backoff_delay(0, 0.1, 1.0) <= 0.1 for _ in range(50))
    assert all(0.5 <= backoff_delay(20, 0.1, 1.0) <= 1.0 for _ in range(50))


def test_weak_profile_defaults_and_explicit_override(monkeypatch):
    monkeypatch.setenv("TRADINGSTACK_PROFILE", "weak")
    assert setting("X_TIMEOUT", 1.0, 30.0) == 30.0
    monkeypatch.setenv("X_TIMEOUT", "2.5")
    assert setting("X_TIMEOUT", 1.0, 30.0) == 2.5
    monkeypatch.setenv("TRADINGSTACK_PROFILE", "bogus")
    with pytest.raises(ValueError):
        setting("Y", 1.0, 2.0)
