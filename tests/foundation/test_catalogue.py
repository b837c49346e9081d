"""The failure-test catalogue (shared/CATALOG.md, FT-01 ... FT-25) as scenario files: each
failure test once, each setting the targets its row asks for, all of them in the quarterly
drill (``PENDING`` names a failure test still waiting for its pieces; none is now)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from foundation_paths import ROOT

from faultlab.loader import load_plan, load_scenario

CATALOGUE = [f"FT-{n:02d}" for n in range(1, 26)]

PENDING: dict[str, str] = {}
"""Failure tests whose scenario waits for other work; remove one here when its file lands."""

INTEGRITY = ("lost_orders", "duplicate_executions")
"""Every failure test checks data integrity (the built-in rules check the others too)."""

ROW_TARGETS: dict[str, tuple[str, ...]] = {
    "FT-01": ("detect_within", "rejection_p99_within", "unanswered_requests", "recover_after_clear_within"),
    "FT-02": ("detect_within", "unanswered_requests", "recover_after_clear_within"),
    "FT-03": ("detect_within", "recover_within"),
    "FT-04": ("latency_breach_within", "worst_p99_within", "unanswered_requests", "recover_after_clear_within"),
    "FT-05": ("detect_within", "unanswered_requests", "recover_after_clear_within"),
    "FT-06": ("detect_within", "rejection_p99_within", "metrics", "recover_after_clear_within"),
    "FT-07": ("rejection_p99_within", "unanswered_requests", "recover_within", "recover_after_clear_within"),
    "FT-08": ("unanswered_requests", "backlog_drain_within", "execution_delay_p99"),
    "FT-09": ("execution_delay_p99",),
    "FT-10": ("metrics",),
    "FT-11": ("unanswered_requests", "recover_after_clear_within"),
    "FT-12": ("unanswered_requests", "metrics"),
    "FT-13": ("unanswered_requests", "recover_after_clear_within"),
    "FT-14": ("metrics", "unanswered_requests", "execution_delay_p99"),
    "FT-15": ("latency_breach_within", "unanswered_requests", "execution_delay_p99", "recover_after_clear_within"),
    "FT-16": ("recover_within", "restarts_max"),
    "FT-17": ("detect_within", "recover_after_clear_within"),
    "FT-18": ("detect_within", "backlog_drain_within", "execution_delay_p99", "stuck_orders"),
    "FT-19": ("detect_within", "recover_within", "metrics", "stuck_orders"),
    "FT-20": ("job_margin_min", "recover_after_clear_within"),
    "FT-21": ("job_margin_min", "unreconciled"),
    "FT-22": ("decide_within", "deadline_impact_within"),  # the open protected, the decision by rule and timed
    "FT-23": ("detect_within",),
    "FT-24": ("restarts_max", "unanswered_requests", "recover_after_clear_within"),
    "FT-25": ("recover_within", "runbook_within"),         # the recovery steps, each timed
}
"""The targets each row's "what it must show" becomes (shared/CATALOG.md)."""

ROW_METRICS: dict[str, tuple[str, ...]] = {
    "FT-06": (r'^gateway_requests_total\{endpoint="GET /accounts/\{key\}",outcome="ok"\}$',),  # reads served
    "FT-10": (r'^router_exchange_circuit_transitions_total\{to="open"\}$',
              r'^router_exchange_circuit_transitions_total\{to="closed"\}$'),      # the breaker opened and closed
    "FT-12": (r"^gateway_db_pool_",),                                                # the pool after the fault
    "FT-14": (r"^exchange_stops_triggered_total$",),                                 # the stop book went off
    "FT-19": (r"^router_exchange_circuit_state$",),                                  # reconnected
}
"""Metrics a row needs bounded, as patterns over the selectors a scenario writes."""

ROW_FAULTS: dict[str, tuple[str, ...]] = {
    "FT-01": ("db_stall",), "FT-02": ("db_stall",), "FT-03": ("db_restart",), "FT-04": ("latency",),
    "FT-05": ("db_connection_exhaustion",), "FT-06": ("db_read_only",), "FT-07": ("partition",),
    "FT-08": ("partition",), "FT-09": ("latency",), "FT-10": ("partition",) * 5, "FT-11": ("reset_peer",),
    "FT-12": ("stall",), "FT-13": ("load_spike",), "FT-14": ("load_shape",), "FT-15": ("load_spike", "latency"),
    "FT-16": ("process_kill",), "FT-17": ("process_pause",), "FT-18": ("process_kill",), "FT-19": ("process_kill",),
    "FT-20": ("db_stall",), "FT-21": ("job_crash",), "FT-22": ("latency",), "FT-23": ("exchange_silent",),
    "FT-24": ("latency",), "FT-25": ("db_crash", "process_kill"),
}
"""The fault kinds each row's "how it is injected" uses, in timeline order."""


def _files() -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for path in sorted((ROOT / "scenarios").glob("ft-*.yaml")):
        found.setdefault(str(yaml.safe_load(path.read_text())["id"]), []).append(path)
    return found


def test_every_failure_test_is_a_scenario_file_once_and_the_pending_ones_are_named() -> None:
    files = _files()
    assert not {k: v for k, v in files.items() if len(v) > 1}, "a failure test is in more than one file"
    assert sorted(files) == sorted(set(CATALOGUE) - set(PENDING)), (
        "every failure test but the pending ones has its file; a pending one that lands must leave PENDING"
    )
    assert set(files) <= set(CATALOGUE)
    for test_id, path in ((k, v[0]) for k, v in files.items()):
        assert re.match(rf"ft-{test_id[3:]}-[a-z0-9-]+\.yaml$", path.name), path.name


@pytest.mark.parametrize("test_id", [t for t in CATALOGUE if t not in PENDING])
def test_each_scenario_sets_the_targets_its_row_names(test_id: str) -> None:
    path = _files()[test_id][0]
    scenario = load_scenario(path)
    targets = scenario.targets.model_dump(exclude_none=True)
    missing = [t for t in (*ROW_TARGETS[test_id], *INTEGRITY) if t not in targets]
    assert not missing, f"{path.name} leaves out {missing}"
    selectors = list((scenario.targets.metrics or {}).keys())
    for pattern in ROW_METRICS.get(test_id, ()):
        assert any(re.search(pattern, s) for s in selectors), f"{path.name}: no metric bound matching {pattern}"
    kinds = tuple(step.fault for _, step in scenario.fault_steps())
    assert kinds == ROW_FAULTS[test_id], f"{path.name} injects {kinds}, its row {ROW_FAULTS[test_id]}"


def test_the_quarterly_drill_runs_every_failure_test_once() -> None:
    plan = load_plan(ROOT / "drills" / "quarterly.yaml")
    ids = [s.id for s in plan.resolved_scenarios]
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    assert ids == [t for t in CATALOGUE if t not in PENDING]
    assert plan.trials == 1 and plan.programme is not None


def test_the_quarterly_drill_fits_in_25_minutes_of_scenario_time_with_room_for_the_pending_ones() -> None:
    """The scenarios' own durations (load time) leave at least 10 s per run for bring-up,
    settling, the integrity check and reports, and room for the three pending tests."""
    plan = load_plan(ROOT / "drills" / "quarterly.yaml")
    load_time = sum(s.duration for s in plan.resolved_scenarios)
    overhead = 12.0 * (len(plan.resolved_scenarios) + len(PENDING))
    pending_room = 60.0 * len(PENDING)
    assert load_time + overhead + pending_room <= 25 * 60, f"{load_time:.0f} s of load time is too much"


def test_the_programme_names_every_failure_test() -> None:
    from faultlab.loader import load_programme

    programme = load_programme(ROOT / "programme.yaml")
    assert sorted(programme.failure_tests) == CATALOGUE
    assert all(t.operations for t in programme.failure_tests.values())
