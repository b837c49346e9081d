"""Pure tests of the gate's statistics and noise rule on synthetic trial values."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from types import SimpleNamespace

import pytest

from faultlab.analysis import IntegrityResult
from faultlab.errors import InputError
from faultlab.gate import (
    BASELINE_SCHEMA,
    Distribution,
    Tolerance,
    TrialValue,
    allowed_limit,
    baseline_scenario,
    chance_of_separation,
    compare,
    distribution,
    judge_targets,
    read_baseline,
    statistic,
    trial_values,
)
from faultlab.report.gate import rule_message

INF = math.inf


def trials(*values: float | None, status: str = "measured") -> Distribution:
    return distribution(TrialValue(v, status if v is None else ("not_recovered" if v == INF else "measured"))
                        for v in values)


REL20 = Tolerance("+20%", relative=0.20)
ABS1 = Tolerance("+1s", absolute=1.0)


@pytest.mark.parametrize(
    ("name", "expected"),
    [("min", 1.0), ("max", 4.0), ("mean", 2.5), ("p50", 2.0), ("p90", 4.0), ("p99", 4.0), ("p95", 4.0)],
)
def test_percentiles_are_the_nearest_rank_a_real_trial(name, expected):
    # numpy's linear interpolation would give p50 2.5, p90 3.7: values no trial had.
    assert statistic([4.0, 1.0, 3.0, 2.0], name) == expected


def test_p90_of_three_trials_is_the_worst_and_of_ten_the_ninth():
    assert statistic([10.0, 30.0, 20.0], "p90") == 30.0
    assert statistic([float(v) for v in range(1, 11)], "p90") == 9.0
    assert statistic([float(v) for v in range(1, 11)], "p50") == 5.0


def test_a_trial_that_never_recovered_is_worse_than_any_number():
    assert statistic([1.0, 2.0, INF], "max") == INF
    assert statistic([1.0, 2.0, INF], "p50") == 2.0
    assert statistic([1.0, 2.0, INF], "p90") == INF
    assert statistic([1.0, INF], "mean") == INF


def test_unknown_statistic_and_empty_values_are_errors():
    with pytest.raises(ValueError):
        statistic([1.0], "median")
    with pytest.raises(ValueError):
        statistic([], "max")


def test_tolerance_limits_follow_the_direction_of_worse():
    assert allowed_limit(10.0, REL20, higher_is_worse=True) == pytest.approx(12.0)
    assert allowed_limit(10.0, ABS1, higher_is_worse=True) == pytest.approx(11.0)
    assert allowed_limit(0.99, Tolerance("+1%", relative=0.01), higher_is_worse=False) == pytest.approx(0.9801)
    assert allowed_limit(5.0, Tolerance(), higher_is_worse=True) == 5.0
    assert allowed_limit(INF, REL20, higher_is_worse=True) == INF


def test_chance_of_separation_is_one_over_n_choose_k():
    assert chance_of_separation(3, 3) == pytest.approx(1 / 20)
    assert chance_of_separation(5, 5) == pytest.approx(1 / 252)
    assert chance_of_separation(1, 1) == pytest.approx(1 / 2)
    assert chance_of_separation(0, 3) == 1.0


def test_clear_regression_beyond_tolerance_and_spread_fails():
    result = compare("rto.p90", REL20, trials(8.0, 8.2, 8.4), trials(11.0, 11.5, 12.0))
    assert result.outcome == "regression" and result.failed
    assert result.beyond_tolerance and result.separated
    assert result.baseline == 8.4 and result.new == 12.0
    assert result.limit == pytest.approx(8.4 * 1.2)
    assert result.chance == pytest.approx(0.05)
    message = rule_message(result)
    assert "rto.p90 regressed" in message and "baseline 8.40 s" in message and "new 12.00 s" in message
    assert "8.00 s .. 8.40 s" in message  # the baseline's spread is shown


def test_beyond_tolerance_but_within_the_spread_is_noise():
    # The p90 moved 40 % but one new trial is as good as the baseline's worst: noise.
    result = compare("rto.p90", REL20, trials(5.0, 6.0, 9.0), trials(8.5, 9.0, 13.0))
    assert result.beyond_tolerance and not result.separated
    assert result.outcome == "pass" and not result.failed
    assert "noise" in rule_message(result)


def test_separated_but_within_tolerance_passes():
    result = compare("rto.p90", REL20, trials(8.0, 8.1, 8.2), trials(8.5, 8.6, 8.7))
    assert result.separated and not result.beyond_tolerance
    assert result.outcome == "pass"


def test_ties_count_as_overlap():
    result = compare("mttd.max", ABS1, trials(0.5, 0.5, 3.0), trials(3.0, 4.5, 4.5))
    assert result.beyond_tolerance and not result.separated
    assert result.outcome == "pass"


def test_absolute_tolerance_on_max():
    result = compare("mttd.max", ABS1, trials(0.1, 0.2, 0.3), trials(1.4, 1.5, 1.6))
    assert result.limit == pytest.approx(1.3)
    assert result.outcome == "regression"


def test_never_recovered_in_the_new_trials_is_a_regression():
    result = compare("rto.p90", REL20, trials(8.0, 8.2, 8.4), trials(INF, INF, INF))
    assert result.outcome == "regression"
    assert "never" in rule_message(result)


def test_baseline_that_never_recovered_cannot_regress():
    result = compare("rto.p90", REL20, trials(INF, INF, INF), trials(30.0, INF, INF))
    assert result.outcome == "pass"


def test_lower_is_worse_measures_regress_downwards():
    base, new = trials(0.99, 0.995, 1.0), trials(0.80, 0.82, 0.85)
    assert compare("success_rate.min", Tolerance("+5%", relative=0.05), base, new).outcome == "regression"
    assert compare("success_rate.min", Tolerance("+5%", relative=0.05), new, base).outcome == "improved"
    margins_ok = compare("job_margin.min", Tolerance("+2s", absolute=2.0), trials(20.0, 21.0, 22.0),
                         trials(18.5, 19.0, 19.5))
    assert margins_ok.outcome == "pass"  # 1.5 s less margin, allowed 2 s


def test_clear_improvement_is_reported_not_failed():
    result = compare("rto.p90", REL20, trials(11.0, 11.5, 12.0), trials(8.0, 8.2, 8.4))
    assert result.outcome == "improved" and not result.failed


def test_missing_new_values_fail_and_missing_baseline_values_do_not_apply():
    missing = compare("completion_delay.p90", REL20, trials(1.0, 1.1, 1.2), trials(None, None, None))
    assert missing.outcome == "missing" and missing.failed
    assert "not measured" in rule_message(missing)
    na = compare("job_margin.min", ABS1, trials(None, None), trials(1.0, 2.0))
    assert na.outcome == "not_applicable" and not na.failed


def test_not_measured_trials_are_left_out_but_others_rank():
    d = Distribution((TrialValue(1.0), TrialValue(None, "not_measured"), TrialValue(3.0)))
    assert d.values == [1.0, 3.0]
    assert d.spread == 2.0
    assert d.to_dict()["statuses"] == ["measured", "not_measured", "measured"]


def test_one_trial_each_degenerates_to_a_plain_comparison():
    assert compare("rto.max", REL20, trials(10.0), trials(12.5)).outcome == "regression"
    assert compare("rto.max", REL20, trials(10.0), trials(11.5)).outcome == "pass"


def test_unknown_rule_is_an_error():
    with pytest.raises(ValueError):
        compare("latency.p90", REL20, trials(1.0), trials(1.0))
    with pytest.raises(ValueError):
        compare("rto.p42x", REL20, trials(1.0), trials(1.0))


def test_false_alarm_rate_on_identical_distributions_is_small():
    """Same noisy process before and after: the rule must almost never call a regression."""
    import random

    rng = random.Random(7)
    alarms = 0
    rounds = 4000
    for _ in range(rounds):
        base = trials(*(rng.gauss(8.0, 0.6) for _ in range(3)))
        new = trials(*(rng.gauss(8.0, 0.6) for _ in range(3)))
        alarms += compare("rto.p90", REL20, base, new).failed
    assert alarms / rounds < 0.01


def test_a_real_shift_is_caught_most_of_the_time():
    import random

    rng = random.Random(11)
    caught = 0
    rounds = 2000
    for _ in range(rounds):
        base = trials(*(rng.gauss(8.0, 0.6) for _ in range(3)))
        new = trials(*(rng.gauss(13.0, 0.6) for _ in range(3)))
        caught += compare("rto.p90", REL20, base, new).failed
    assert caught / rounds > 0.95


# -- trial values from an analysis, targets over trials ---------------------------------------


def _measure(value, status="measured", unit="s"):
    return SimpleNamespace(value=value, status=status, unit=unit,
                           measured=status == "measured" and value is not None)


def _analysis(rto=8.0, rto_status="measured", status="completed", verdicts=(), lost=0):
    stats = SimpleNamespace(p99_s=None)
    return SimpleNamespace(
        rto_from_inject=_measure(rto, rto_status),
        detection=_measure(None, "not_detected"),
        rto_from_clear=_measure(None, "no_impact"),
        impact_duration=_measure(None, "not_measured"),
        customer_impact=SimpleNamespace(whole_run=[
            SimpleNamespace(source="canary", sent=10, ok=9, rejected=1, failed=0, delayed=0),
            SimpleNamespace(source="total", sent=100, ok=95, rejected=3, failed=1, delayed=1)]),
        windows=[SimpleNamespace(p99_latency_s=0.2), SimpleNamespace(p99_latency_s=None),
                 SimpleNamespace(p99_latency_s=0.9)],
        completion_delay=SimpleNamespace(before=stats, during=SimpleNamespace(p99_s=1.5), after=stats),
        jobs=[],
        integrity=IntegrityResult(t=1.0, acknowledged=10, checked={"lost_orders": lost, "duplicate_executions": 0},
                                  violations=[]),
        verdicts=list(verdicts),
        status=status,
    )


def test_trial_values_rank_statuses():
    values = trial_values(_analysis())
    assert values["rto"].value == 8.0
    assert values["mttd"].value == INF and values["mttd"].status == "not_detected"
    assert values["recovery_after_clear"].value == 0.0  # no impact: nothing to recover from
    early = _analysis()
    early.rto_from_clear = _measure(None, "recovered_before_clear")
    assert trial_values(early)["recovery_after_clear"].value == 0.0
    assert values["impact"].value is None
    assert values["success_rate"].value == pytest.approx(0.95)
    assert values["customer_impact"].value == 5.0
    assert values["p99_latency"].value == 0.9
    assert values["completion_delay"].value == 1.5
    assert values["job_margin"].value is None
    assert values["integrity_violations"].value == 0.0
    assert trial_values(_analysis(lost=2))["integrity_violations"].value == 2.0


def _verdict(target, value, met, comparison="le", limit=10.0, status="measured"):
    return SimpleNamespace(target=target, target_value=limit, unit="s", comparison=comparison,
                           measured=_measure(value, status), met=met)


def test_targets_are_missed_when_any_trial_missed_them():
    runs = [
        _analysis(verdicts=[_verdict("recover_within", 8.0, True)]),
        _analysis(verdicts=[_verdict("recover_within", 12.0, False)]),
        _analysis(verdicts=[_verdict("recover_within", 9.0, True)], status="aborted"),
    ]
    recover, run = judge_targets(runs)
    assert recover.failed and recover.missed_trials == 1 and recover.worst == 12.0
    assert run.target == "run" and run.failed and run.worst_status == "aborted"
    ok = judge_targets([_analysis(verdicts=[_verdict("recover_within", 8.0, True)])])
    assert not any(t.failed for t in ok)


def test_target_without_a_number_reports_its_status():
    runs = [_analysis(verdicts=[_verdict("recover_within", None, False, status="not_recovered")])]
    recover = judge_targets(runs)[0]
    assert recover.failed and recover.worst is None and recover.worst_status == "not_recovered"


# -- the baseline file --------------------------------------------------------------------


def _baseline_text(**scenarios):
    return json.dumps({"schema": BASELINE_SCHEMA, "scenarios": scenarios})


def test_baseline_round_trip_keeps_trial_values_and_statuses():
    entry = baseline_scenario("FT-01", "t", "f.yaml", "abc", ["r1", "r2", "r3"],
                              {"rto": trials(8.0, INF, 8.4), "mttd": trials(0.5, 0.6, 0.7)})
    assert entry["measures"]["rto"]["values"] == [8.0, None, 8.4]
    assert entry["measures"]["rto"]["stats"]["max"] is None  # inf is not JSON: recomputed on read
    header, scenarios = read_baseline(_baseline_text(**{"FT-01": entry}), "b.json")
    rto = scenarios["FT-01"].measures["rto"]
    assert rto.values == [8.0, INF, 8.4]
    assert scenarios["FT-01"].sha256 == "abc"
    assert header["schema"] == BASELINE_SCHEMA


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ("{not json", "b.json:1:2", "not valid JSON"),
        ("[]", "b.json", "JSON object"),
        (json.dumps({"schema": "other/1", "scenarios": {"A": {"measures": {}}}}), "schema", "faultlab.baseline/1"),
        (json.dumps({"schema": BASELINE_SCHEMA}), "scenarios", "expected an object"),
        (_baseline_text(A={"measures": {"rto": {"values": [1, "x"], "statuses": ["measured"] * 2}}}),
         "scenarios.A.measures.rto.values[1]", "not a number"),
        (_baseline_text(A={"measures": {"rto": {"values": [1, 2], "statuses": ["measured"]}}}),
         "scenarios.A.measures.rto.values", "same length"),
        (_baseline_text(A={"measures": {"speed": {"values": [1]}}}), "scenarios.A.measures.speed", "unknown measure"),
        (_baseline_text(A=[]), "scenarios.A.measures", "not an object"),
    ],
)
def test_garbled_baselines_name_file_path_and_problem(text, where, what):
    with pytest.raises(InputError) as info:
        read_baseline(text, "b.json")
    message = str(info.value)
    assert "b.json" in message and where in message and what in message


FORBIDDEN = ("docker", "testcontainers", "rich", "locust", "httpx", "requests", "psycopg", "toxiproxy",
             "matplotlib", "jinja2", "aiohttp", "asyncpg", "uvloop", "pgserver", "http.client")


def test_gate_module_is_pure():
    code = "import json, sys, faultlab.gate; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    leaked = [m for m in json.loads(out.stdout) if m in FORBIDDEN or m.split(".")[0] in FORBIDDEN]
    assert leaked == []


def test_public_api_is_frozen():
    import faultlab.engine.gate
    import faultlab.engine.plan
    import faultlab.gate
    import faultlab.pytest_plugin
    import faultlab.report.gate

    assert sorted(faultlab.gate.__all__) == sorted([
        "BASELINE_SCHEMA", "GATE_SCHEMA", "MEASURES", "STATISTICS", "MeasureInfo", "Tolerance", "TrialValue",
        "Distribution", "RuleResult", "TargetResult", "ScenarioGate", "GateResult", "BaselineScenario",
        "trial_values", "statistic", "distribution", "chance_of_separation", "allowed_limit", "compare",
        "judge_targets", "baseline_scenario", "read_baseline",
    ])
    assert sorted(faultlab.report.gate.__all__) == sorted([
        "number_text", "range_text", "rule_message", "target_message", "failure_lines", "check_rows",
        "spread_rows", "CHECK_HEADER", "SPREAD_HEADER", "write_gate_json", "write_gate_junit",
    ])
    assert sorted(faultlab.engine.gate.__all__) == sorted([
        "DEFAULT_TRIALS", "GateRun", "BaselineRun", "trial_count", "load_baseline", "run_gate", "measure_baseline",
    ])
    assert sorted(faultlab.engine.plan.__all__) == sorted([
        "Trial", "PlanResult", "plan_info", "run_trial", "run_trials", "run_plan",
    ])
    assert sorted(faultlab.pytest_plugin.__all__) == ["Drill", "DrillTargetMissed", "FaultProxy"]
    for module in (faultlab.gate, faultlab.report.gate, faultlab.engine.gate, faultlab.engine.plan,
                   faultlab.pytest_plugin):
        for name in module.__all__:
            obj = getattr(module, name)
            if callable(obj):
                assert obj.__doc__, f"{module.__name__}.{name} has no docstring"


def test_every_gateable_measure_is_summarised():
    from faultlab.gate import MEASURES
    from faultlab.model.plan import GATE_METRICS

    assert set(GATE_METRICS) <= set(MEASURES)
