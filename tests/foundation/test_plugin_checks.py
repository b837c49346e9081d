"""`faultlab validate` checks a stack's plugin before anything starts, and the scenario's
targets against what that plugin declares."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from faultlab.errors import InputError
from faultlab.loader import load_scenario

STACK = """name: tiny
services:
  svc:
    command: [python, -m, http.server, "${{port}}"]
    port: auto
    ready: {{http: /, timeout: 10s}}
monitor: {{service: svc, ready: /}}
plugin: {plugin}
"""

PLUGIN = """from faultlab.plugin import Completion, Declaration, IntegrityCheck, Text

def faultlab_declare():
    return Declaration(integrity_checks=(IntegrityCheck("lost_payments", Text("Lost payments", "消失した支払")),),
                       completion=Completion("settlement_delay", Text("Settlement delay", "決済遅延")))

def {integrity}(stack, acknowledged, settle_s):
    return {{"acknowledged": 0, "checked": {{"lost_payments": 0}}}}
"""

SCENARIO = """id: T-1
title: tiny
stack: stack.yaml
steady_state: {{success_rate: {{min: 0.99}}}}
timeline:
  - {{at: 1s, fault: process_kill, target: svc}}
duration: 10s
targets: {targets}
"""


def _project(tmp_path: Path, *, integrity: str = "faultlab_integrity", targets: str = "{lost_payments: 0}") -> Path:
    plugin = f"tiny_plugin_{uuid.uuid4().hex[:8]}"
    (tmp_path / "stack.yaml").write_text(STACK.format(plugin=plugin))
    (tmp_path / f"{plugin}.py").write_text(PLUGIN.format(integrity=integrity))
    (tmp_path / "scenario.yaml").write_text(SCENARIO.format(targets=targets))
    return tmp_path / "scenario.yaml"


def _problems(path: Path) -> list[str]:
    with pytest.raises(InputError) as caught:
        load_scenario(path)
    return [str(p) for p in caught.value.problems]


def test_a_valid_plugin_and_its_declared_targets_load(tmp_path):
    scenario = load_scenario(_project(tmp_path, targets="{lost_payments: 0, settlement_delay_p99: 5s}"))
    assert scenario.resolved_stack.declaration.check_names == ["lost_payments"]
    assert scenario.targets.declared == {"lost_payments": 0, "settlement_delay_p99": 5.0}


def test_a_misspelt_hook_is_a_problem_at_the_stacks_plugin_line(tmp_path):
    problems = _problems(_project(tmp_path, integrity="faultlab_integrety"))
    hook = [p for p in problems if "stack.yaml:8:" in p]
    assert hook and "did you mean 'faultlab_integrity'" in hook[0], problems


def test_a_plugin_that_does_not_import_is_a_problem(tmp_path):
    path = _project(tmp_path)
    (tmp_path / "stack.yaml").write_text(STACK.format(plugin="no_such_plugin_module"))
    problems = _problems(path)
    assert any("stack.yaml:8:" in p and "cannot be imported" in p for p in problems), problems


def test_a_target_no_check_declares_is_named_with_the_nearest(tmp_path):
    problems = _problems(_project(tmp_path, targets="{lost_payment: 0, detect_witin: 2s}"))
    assert any("targets.lost_payment" in p and "did you mean 'lost_payments'" in p for p in problems), problems
    assert any("targets.detect_witin" in p and "did you mean 'detect_within'" in p for p in problems), problems


def test_a_trading_target_on_another_system_is_refused(tmp_path):
    problems = _problems(_project(tmp_path, targets="{lost_orders: 0}"))
    assert any("unknown target 'lost_orders'" in p for p in problems), problems


def test_declared_targets_take_the_right_kind_of_value(tmp_path):
    problems = _problems(_project(tmp_path, targets="{lost_payments: 2s, settlement_delay_p99: 7}"))
    assert any("lost_payments counts violations" in p for p in problems), problems
    assert any("settlement_delay_p99 is a duration" in p for p in problems), problems


def test_validate_exits_2_naming_the_plugin_problem(tmp_path):
    path = _project(tmp_path, integrity="faultlab_integrety")
    result = subprocess.run([sys.executable, "-m", "faultlab", "validate", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result
    assert "faultlab_integrety" in result.stderr and "Traceback" not in result.stderr
