"""Verdicts on a real journal: a run whose baseline did not meet the steady state is
INCONCLUSIVE (never passed, however its targets came out), and the drill's index lists every
finding of every run, with its id, severity and words.

One real drill of the trading stack (a gateway kill) judged by a steady state no real system
meets (p99 within 1 ms) and a recovery target no restart meets (10 ms).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "tests" / "drill" / "scenarios" / "trading-unsteady.yaml"


def test_an_unsteady_real_baseline_is_inconclusive_and_the_index_lists_every_finding(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"title: Findings drill\nenvironment: local\nscenarios: [{SCENARIO}]\ntrials: 1\n",
                    encoding="utf-8")
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"))
    ran = subprocess.run([sys.executable, "-m", "faultlab", "drill", str(plan), "--reports", str(tmp_path / "reports"),
                          "--state-dir", str(tmp_path / "state")], capture_output=True, text=True, env=env, timeout=300)
    assert ran.returncode == 1, ran.stdout + ran.stderr  # not passed: an inconclusive run fails the drill
    plan_dir = next((tmp_path / "reports" / "plan").iterdir())
    run_dir = next((plan_dir / "runs").iterdir())
    analysis = json.loads((run_dir / "result.json").read_text(encoding="utf-8"))["analysis"]
    assert analysis["outcome"] == "inconclusive"
    assert analysis["baseline"]["met_steady_state"] is False
    kinds = {f["kind"] for f in analysis["findings"]}
    assert {"baseline_unsteady", "target_missed"} <= kinds, kinds
    index = (plan_dir / "index.md").read_text(encoding="utf-8")
    for finding in analysis["findings"]:
        assert finding["id"] in index, f"the index leaves out finding {finding['id']} ({finding['kind']})"
    report = (run_dir / "report.md").read_text(encoding="utf-8")
    assert "INCONCLUSIVE" in report.upper()
