"""A stack's ``monitoring:`` and the scenario keys that depend on it, checked before anything
starts: the rules file's shape (problems located in it), its alert names, ``detect_by``, PromQL
conditions, and ``faultlab validate`` on a rules file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from foundation_paths import ROOT

from faultlab.errors import InputError
from faultlab.loader import load_any, load_rules, load_scenario, load_stack
from faultlab.model import PromqlAbort, PromqlBound

STACK = """\
name: watched
services:
  app:
    command: [python, -m, app]
    port: auto
monitoring:
  rules: alerts.yaml
  scrape: {app: /metrics}
"""


def _problems(call, path: Path) -> list[str]:
    with pytest.raises(InputError) as info:
        call(path)
    return [f"{Path(p.file).name}:{p.line}: " + (f"{p.path}: " if p.path else "") + p.message
            for p in info.value.problems]


def test_problems_in_the_rules_file_are_located_in_it(tmp_path: Path) -> None:
    (tmp_path / "stack.yaml").write_text(STACK)
    (tmp_path / "alerts.yaml").write_text(
        "groups:\n"
        "  - name: app\n"
        "    rules:\n"
        "      - alert: App Down\n"
        "        expr: up == 0\n"
        "      - alert: AppSlow\n"
        "      - record: x\n"
        "        alert: Y\n"
        "        expr: z\n"
        "        severity: page\n"
        "  - rules: []\n"
        "extra: 1\n"
    )
    assert _problems(load_stack, tmp_path / "stack.yaml") == [
        "alerts.yaml:4: groups[0].rules[0].alert: 'App Down' is not an alert name Prometheus accepts: letters, "
        "digits and '_', not starting with a digit (like DatabaseUnreachable)",
        "alerts.yaml:6: groups[0].rules[1]: a rule needs `expr:`, a PromQL expression",
        "alerts.yaml:7: groups[0].rules[2]: a rule has exactly one of `alert:` (an alerting rule) or `record:` "
        "(a recording rule)",
        "alerts.yaml:10: groups[0].rules[2].severity: unknown key 'severity' in a rule (known: alert, annotations, "
        "expr, for, keep_firing_for, labels, record)",
        "alerts.yaml:11: groups[1]: a rule group needs a `name:`",
        "alerts.yaml:12: extra: unknown key 'extra': a rules file has only `groups:`",
        f"stack.yaml:7: monitoring.rules: the rules file {tmp_path / 'alerts.yaml'} has problems (listed too)",
    ]


def test_a_rules_file_without_an_alert_is_refused(tmp_path: Path) -> None:
    (tmp_path / "stack.yaml").write_text(STACK)
    (tmp_path / "alerts.yaml").write_text("groups:\n  - name: app\n    rules:\n      - {record: a, expr: up}\n")
    assert _problems(load_stack, tmp_path / "stack.yaml") == [
        f"stack.yaml:7: monitoring.rules: the rules file {tmp_path / 'alerts.yaml'} defines no alert "
        "(no `alert:` rule)"]


def test_the_stack_keeps_the_alert_names_of_its_rules(tmp_path: Path) -> None:
    (tmp_path / "stack.yaml").write_text(STACK)
    (tmp_path / "alerts.yaml").write_text(
        "groups:\n  - name: a\n    rules:\n      - {alert: B, expr: up == 0}\n      - {alert: A, expr: up == 0}\n"
        "  - name: b\n    rules:\n      - {alert: B, expr: up == 2, labels: {severity: page}}\n")
    stack = load_stack(tmp_path / "stack.yaml")
    assert stack.monitoring is not None and stack.monitoring.alerts == ("B", "A")
    assert load_rules(tmp_path / "alerts.yaml") == ("B", "A")


def test_detect_by_goes_with_detect_within(tmp_path: Path) -> None:
    (tmp_path / "stack.yaml").write_text(STACK)
    (tmp_path / "alerts.yaml").write_text("groups:\n  - name: a\n    rules:\n      - {alert: AppDown, expr: up == 0}\n")
    scenario = tmp_path / "scenario.yaml"
    text = ("id: T-1\ntitle: t\nstack: stack.yaml\nsteady_state: {success_rate: {min: 0.9}}\n"
            "timeline: [{at: 5s, fault: process_kill, target: app}]\nduration: 20s\ntargets: {TARGETS}\n")
    scenario.write_text(text.replace("TARGETS", "detect_by: AppDown"))
    assert _problems(load_scenario, scenario) == [
        "scenario.yaml:7: targets.detect_by: `detect_by` names the alert `detect_within` is measured by: "
        "give `detect_within` too"]
    scenario.write_text(text.replace("TARGETS", "detect_within: 5s, detect_by: AppDown"))
    loaded = load_scenario(scenario)
    assert loaded.targets.detect_by == "AppDown"
    assert loaded.targets.model_dump(exclude_none=True) == {"detect_within": 5.0, "detect_by": "AppDown"}


def test_a_rules_file_is_not_a_stack_a_scenario_or_a_plan(tmp_path: Path) -> None:
    rules = ROOT / "stacks" / "trading-alerts.yaml"
    assert _problems(load_any, rules) == [
        "trading-alerts.yaml:5: this is a Prometheus rules file (a stack's `monitoring.rules`), not a stack, "
        "scenario or drill plan; check it with `faultlab validate`"]
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(f"id: T-1\ntitle: t\nstack: {rules}\nsteady_state: {{success_rate: {{min: 0.9}}}}\n"
                        "timeline: [{at: 5s, fault: process_kill, target: app}]\nduration: 20s\n")
    assert f"scenario.yaml:3: stack: '{rules}' is a Prometheus rules file, not a stack file" in \
        _problems(load_scenario, scenario)


def test_faultlab_validate_checks_a_rules_file() -> None:
    result = subprocess.run([sys.executable, "-m", "faultlab", "validate", "stacks/trading-alerts.yaml"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok  stacks/trading-alerts.yaml (Prometheus rules, 5 alerts)\n"


def test_promql_conditions_hold_within_their_bounds_and_abort_beyond_their_threshold() -> None:
    bound = PromqlBound(query="up", min=1, max=3)
    assert [bound.admits(v) for v in (None, 0.5, 1.0, 3.0, 3.5)] == [False, False, True, True, False]
    above = PromqlAbort.model_validate({"query": "x", "above": 10, "for": "5s"})
    below = PromqlAbort.model_validate({"query": "x", "below": 0.5, "for": "5s"})
    assert above.for_ == 5.0
    assert [above.breached(v) for v in (None, 10.0, 10.5)] == [False, False, True]
    assert [below.breached(v) for v in (None, 0.5, 0.4)] == [False, False, True]
    with pytest.raises(ValueError, match="exactly one of `above:` or `below:`"):
        PromqlAbort.model_validate({"query": "x", "above": 1, "below": 0, "for": "5s"})
    with pytest.raises(ValueError, match="no value could be healthy"):
        PromqlBound(query="up", min=3, max=1)
    with pytest.raises(ValueError, match="a threshold is a finite number"):
        PromqlBound(query="up", max=float("inf"))
