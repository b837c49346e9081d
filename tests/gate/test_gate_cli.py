"""``faultlab gate`` from the installed command: bad input stops before anything starts.

The full gate against the trading stack takes minutes: it is marked ``slow`` and runs only
with ``FAULTLAB_SLOW=1``; its real runs are recorded in docs/gate.md.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLAN = ROOT / "drills" / "ci-gate.yaml"


def faultlab(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("faultlab")
    command = [exe] if exe else [sys.executable, "-m", "faultlab"]
    return subprocess.run([*command, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (None, "does not exist"),
        ("{garbled", "not valid JSON"),
        (json.dumps({"schema": "faultlab.baseline/1", "scenarios": {"OTHER": {"measures": {}}}}),
         "no baseline for scenario GATE-01"),
        (json.dumps({"schema": "faultlab.baseline/1",
                     "scenarios": {"GATE-01": {"measures": {"rto": {"values": ["fast"], "statuses": ["measured"]}}}}}),
         "scenarios.GATE-01.measures.rto.values[0]: not a number"),
    ],
    ids=["missing", "garbled", "scenario-missing", "not-a-number"],
)
def test_bad_baseline_exits_2_naming_file_and_problem(tmp_path: Path, content: str | None, what: str) -> None:
    baseline = tmp_path / "baseline.json"
    if content is not None:
        baseline.write_text(content, encoding="utf-8")
    result = faultlab("gate", str(PLAN), "--baseline", str(baseline), "--reports", str(tmp_path / "reports"),
                      cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert str(baseline) in result.stderr
    assert what in result.stderr
    assert not (tmp_path / "reports").exists(), "nothing may start before the input is checked"


def test_no_baseline_at_all_exits_2(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"title: t\nenvironment: e\nscenarios: [{ROOT / 'scenarios/gate/gate-16-gateway-killed.yaml'}]\n",
                    encoding="utf-8")
    result = faultlab("gate", str(plan), cwd=tmp_path)
    assert result.returncode == 2
    assert "no baseline to compare with" in result.stderr and "plan.yaml" in result.stderr


def test_bad_trials_exit_2(tmp_path: Path) -> None:
    result = faultlab("gate", str(PLAN), "--trials", "0", cwd=tmp_path)
    assert result.returncode == 2
    assert "--trials" in result.stderr


def test_committed_baseline_covers_the_ci_gate_plan() -> None:
    from faultlab.gate import read_baseline
    from faultlab.loader import load_plan

    plan = load_plan(PLAN)
    header, scenarios = read_baseline((ROOT / "reports/baselines/ci-gate.json").read_text(), "ci-gate.json")
    assert {s.id for s in plan.resolved_scenarios} <= set(scenarios)
    assert header["machine"]["cpu_count"] and header["machine"]["python"]
    for scenario in scenarios.values():
        assert len(scenario.measures["rto"].values) == header["trials"]


@pytest.mark.slow
@pytest.mark.processes
@pytest.mark.skipif(os.environ.get("FAULTLAB_SLOW") != "1", reason="a full gate run takes minutes; set FAULTLAB_SLOW=1")
def test_full_gate_passes_on_the_committed_baseline(tmp_path: Path) -> None:
    result = faultlab("gate", str(PLAN), "--reports", str(tmp_path / "reports"), cwd=ROOT, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr
    gate = json.loads(next((tmp_path / "reports").glob("ci-gate/gate-*/gate.json")).read_text())
    assert gate["passed"] and gate["schema"] == "faultlab.gate/1"
