"""What the engine reads from a loaded scenario, and the public API it relies on."""

from __future__ import annotations

from pathlib import Path

import pytest
from foundation_paths import ROOT

import faultlab.loader
import faultlab.model
from faultlab.errors import InputError
from faultlab.loader import load_any, load_plan, load_scenario, load_stack
from faultlab.model import DrillPlan, FaultStep, JobStep, Scenario, Stack

STACK = ROOT / "stacks" / "trading.yaml"


def test_public_model_api_is_frozen() -> None:
    assert sorted(faultlab.model.__all__) == sorted([
        "Stack", "Service", "Postgres", "Readiness", "Link", "Job", "Monitor", "Monitoring",
        "Scenario", "Load", "Canary", "SteadyState", "FaultStep", "JobStep", "TimelineEntry", "Targets",
        "AbortWhen", "PromqlBound", "PromqlAbort", "DrillPlan", "Participant", "Approval", "GateTolerance",
        "Duration", "Rate", "Size", "Bandwidth", "Percentage", "Fraction",
    ])
    assert sorted(faultlab.loader.__all__) == sorted(
        ["load_stack", "load_scenario", "load_plan", "load_runbook", "load_operator_script", "load_programme",
         "load_any", "load_rules", "check_runtime_override", "document_kind", "Parsed", "parse_yaml"]
    )


def test_trading_stack() -> None:
    stack = load_stack(STACK)
    assert stack.source == STACK
    assert sorted(stack.services) == ["db", "exchange", "gateway", "router"]
    assert stack.services["db"].target_type == "postgres"
    assert stack.services["gateway"].restart == "always"
    assert stack.services["gateway"].port == "auto"
    assert stack.services["gateway"].ready.http == "/health/ready"
    assert stack.services["gateway"].ready.timeout == 20.0
    assert {name: (link.from_, link.to) for name, link in stack.links.items()} == {
        "gateway-db": ("gateway", "db"), "router-db": ("router", "db"),
        "router-exchange": ("router", "exchange"), "batch-db": ("batch", "db"),
    }
    assert stack.jobs["batch"].window == 60.0 and stack.jobs["batch"].deadline == 70.0
    assert stack.monitor.service == "gateway" and stack.plugin.startswith("tradingstack.")
    assert [stack.target_type(n) for n in ("db", "gateway", "gateway-db", "batch", "nope")] == [
        "postgres", "service", "link", "job", None,
    ]


def test_scenario_with_stack_attached() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "ft-20-db-stall-during-batch.yaml")
    assert isinstance(scenario, Scenario)
    assert scenario.stack == STACK and scenario.resolved_stack.name == "trading"
    assert (scenario.duration, scenario.hold, scenario.window) == (75.0, 5.0, 1.0)
    assert scenario.canary.rate == 10.0 and scenario.canary.timeout == 1.0
    (job_id, job), = scenario.job_steps()
    assert (job_id, job.job, job.at) == ("timeline[0]", "batch", 20.0)
    (fault_id, step), = scenario.fault_steps()
    assert fault_id == "timeline[1]" and isinstance(step, FaultStep)
    assert (step.fault, step.target, step.at, step.for_, step.until) == ("db_stall", "db", 25.0, 20.0, 45.0)
    assert step.params == {"mode": "freeze"}
    assert step.kind.name == "db_stall" and step.kind_params.mode == "freeze"
    assert scenario.targets.job_margin_min == 5.0 and scenario.targets.declared["lost_orders"] == 0
    assert scenario.steps()[0][1] == JobStep(at="20s", job="batch")


def test_stack_level_fault_gets_the_stack_as_target() -> None:
    scenario = load_scenario(ROOT / "scenarios" / "ft-13-market-open-rush.yaml")
    (_, step), = scenario.fault_steps()
    assert step.target == "trading" and step.kind_params.multiplier == 10


def test_plan_loads_its_scenarios_in_order() -> None:
    plan = load_plan(ROOT / "drills" / "smoke.yaml")
    assert isinstance(plan, DrillPlan) and plan.trials == 1 and plan.languages == ["en", "ja"]
    assert [s.id for s in plan.resolved_scenarios] == ["FT-01", "FT-08", "FT-13", "FT-16", "FT-20"]
    assert all(path.is_absolute() for path in plan.scenario_files)
    total = sum(s.duration + s.settle for s in plan.resolved_scenarios)
    assert total <= 300, "the smoke drill must fit in six minutes with stack start-up"


def test_load_any_tells_the_kinds_apart() -> None:
    assert isinstance(load_any(STACK), Stack)
    assert isinstance(load_any(ROOT / "scenarios" / "ft-01-db-freeze.yaml"), Scenario)
    assert isinstance(load_any(ROOT / "drills" / "smoke.yaml"), DrillPlan)


def test_gate_rules_and_relative_paths(tmp_path: Path) -> None:
    (tmp_path / "sc").mkdir()
    (tmp_path / "sc" / "a.yaml").write_text((ROOT / "scenarios" / "ft-16-gateway-killed.yaml").read_text().replace(
        "../stacks/trading.yaml", str(STACK)))
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(
        "title: t\nenvironment: e\nscenarios: ['sc/*.yaml']\nbaseline: baselines/last\n"
        "gate: {rto.p90: +20%, mttd.max: +1s, integrity_violations.max: '+0'}\n"
        "approvals: [{name: A, role: head of operations, date: 2026-11-20}]\n"
    )
    plan = load_plan(plan_file)
    assert plan.baseline == tmp_path / "baselines" / "last"
    assert plan.gate["rto.p90"].relative == pytest.approx(0.2)
    assert plan.gate["mttd.max"].absolute == 1.0
    assert plan.gate["integrity_violations.max"].absolute == 0
    assert str(plan.approvals[0].date) == "2026-11-20"
    assert plan.scenario_files == [tmp_path / "sc" / "a.yaml"]


def test_problems_in_the_stack_are_reported_with_the_scenario(tmp_path: Path) -> None:
    (tmp_path / "stack.yaml").write_text("name: s\nservices:\n  db: {postgres: {}}\n  gw: {command: [x], port: nope}\n")
    (tmp_path / "scenario.yaml").write_text(
        "id: X\ntitle: t\nstack: stack.yaml\nsteady_state: {success_rate: {min: 0.9}}\n"
        "timeline: [{at: 1s, fault: process_kill, target: gw}]\nduration: 10s\n"
    )
    with pytest.raises(InputError) as info:
        load_scenario(tmp_path / "scenario.yaml")
    text = str(info.value)
    assert "stack.yaml:4:" in text and "services.gw.port" in text
    assert "scenario.yaml:3:8: stack: the stack file" in text
    assert "unknown target" not in text  # gw exists, though malformed
