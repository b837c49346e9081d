"""The abort rule: stop a run when the system stays this bad for this long (pure, fake time)."""

from __future__ import annotations

from types import SimpleNamespace

from faultlab.engine.run import RollingHealth, _abort_rule
from faultlab.journal import PromqlSample
from faultlab.model.scenario import Scenario


def _scenario(abort_when: dict | None) -> Scenario:
    data = {"id": "A-1", "title": "abort", "stack": "x.yaml", "steady_state": {"success_rate": {"min": 0.9}},
            "timeline": [{"at": "1s", "job": "batch"}], "duration": "60s"}
    if abort_when:
        data["abort_when"] = abort_when
    return Scenario.model_validate(data)


def _feed(health: RollingHealth, start: float, end: float, ok: bool, latency: float = 0.01, step: float = 0.05) -> None:
    t = start
    while t < end:
        health.add(SimpleNamespace(t_send=t, ok=ok, latency_s=latency))
        t += step


def test_aborts_only_after_the_condition_lasted_its_time():
    health, clock = RollingHealth(), {"t": 0.0}
    check = _abort_rule(_scenario({"success_rate": {"below": "50%", "for": "3s"}}), health, lambda: clock["t"], 0.0)
    _feed(health, 0.0, 5.0, ok=True)
    clock["t"] = 5.0
    assert check() == ""
    _feed(health, 5.0, 7.0, ok=False)
    clock["t"] = 7.0
    assert check() == ""  # bad since 7.0 (first look), not long enough
    _feed(health, 7.0, 10.2, ok=False)
    clock["t"] = 10.2
    assert "success rate 0% below 50% for 3.2 s" in check()


def test_a_healthy_moment_resets_the_count():
    health, clock = RollingHealth(), {"t": 0.0}
    check = _abort_rule(_scenario({"p99_latency": {"above": "500ms", "for": "2s"}}), health, lambda: clock["t"], 0.0)
    _feed(health, 0.0, 3.0, ok=True, latency=0.9)
    clock["t"] = 3.0
    assert check() == ""
    _feed(health, 3.0, 4.5, ok=True, latency=0.01)
    clock["t"] = 4.5
    assert check() == ""
    _feed(health, 4.5, 6.0, ok=True, latency=0.9)
    clock["t"] = 6.0
    assert check() == ""  # slow again only since 6.0
    _feed(health, 6.0, 8.1, ok=True, latency=0.9)
    clock["t"] = 8.1
    assert "p99 latency 900 ms above 500 ms" in check()


def test_no_rule_never_aborts():
    health = RollingHealth()
    _feed(health, 0.0, 5.0, ok=False)
    assert _abort_rule(_scenario(None), health, lambda: 5.0, 0.0)() == ""


def test_a_promql_threshold_crossed_long_enough_aborts():
    health, clock = RollingHealth(), {"t": 0.0}
    latest: dict[str, PromqlSample] = {}
    rule = {"promql": [{"query": "sum(rate(errors_total[5s]))", "above": 5, "for": "2s"}]}
    check = _abort_rule(_scenario(rule), health, lambda: clock["t"], 0.0, latest.get)
    _feed(health, 0.0, 9.0, ok=True)
    for t, value in [(3.0, 1.0), (4.0, 9.0), (5.0, 1.0), (6.0, 9.0), (7.0, 9.0), (8.1, 9.0)]:
        clock["t"] = t
        latest["abort_when.promql[0]"] = PromqlSample(t=t, condition="abort_when.promql[0]", value=value,
                                                      ok=value <= 5)
        if t < 8.1:
            assert check() == "", t
    assert "PromQL sum(rate(errors_total[5s])) = 9, above 5 for 2.1 s" in check()


def test_a_promql_condition_without_a_value_never_aborts():
    health, clock = RollingHealth(), {"t": 10.0}
    rule = {"promql": [{"query": "up", "below": 1, "for": "1s"}]}
    no_data = PromqlSample(t=1.0, condition="abort_when.promql[0]", value=None, ok=True, error="no data")
    check = _abort_rule(_scenario(rule), health, lambda: clock["t"], 0.0, {"abort_when.promql[0]": no_data}.get)
    _feed(health, 0.0, 10.0, ok=True)
    assert check() == ""
    clock["t"] = 20.0
    assert check() == ""
