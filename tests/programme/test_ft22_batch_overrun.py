"""FT-22, the batch overrunning into the market open, end to end (slow: about two minutes).

The decision rule "batch not finished 10 minutes (scaled) before the open -> halt the batch"
is taken (confirmed by the scripted incident commander); the decision, its trigger values and
its time are in the journal and the report; the market opens with order intake protected.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.processes, pytest.mark.slow,
              pytest.mark.skipif(not os.environ.get("FAULTLAB_SLOW"), reason="slow: set FAULTLAB_SLOW=1")]

ROOT = Path(__file__).resolve().parents[2]


def test_ft22_halts_the_batch_by_its_rule_and_the_market_opens_with_intake_protected(tmp_path):
    reports = tmp_path / "reports"
    done = subprocess.run(
        [sys.executable, "-m", "faultlab", "run", str(ROOT / "scenarios" / "ft-22-batch-overrun-market-open.yaml"),
         "--operator-script", str(ROOT / "drills" / "operators" / "ft-22-ci.yaml"), "--reports", str(reports),
         "--lang", "en", "--lang", "ja"],
        capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run_dir = next(reports.glob("FT-22/*/journal.jsonl")).parent
    rows = [json.loads(line) for line in (run_dir / "journal.jsonl").read_text().splitlines()]
    decisions = [r for r in rows if r["type"] == "decision" and r.get("event")]
    triggered, decided = decisions
    assert triggered["what"] == decided["what"] == "protect-the-open"
    values = triggered["values"]
    assert values["job_running"]["holds"] and values["job_running"]["progress"] < 1
    assert values["deadline_within"]["holds"] and 0 < values["deadline_within"]["left_s"] <= 10
    assert decided["by"] == "Aiko Tanaka" and decided["actions"] == ["halt_batch"]
    halted = [r for r in rows if r["type"] == "job" and r["event"] == "halted"]
    assert halted and halted[0]["t"] < values["deadline_within"]["deadline_t"]
    result = json.loads((run_dir / "result.json").read_text())["analysis"]
    verdicts = {v["target"]: v for v in result["verdicts"]}
    assert verdicts["decide_within"]["outcome"] == "met"
    assert verdicts["deadline_impact_within"]["outcome"] == "met"  # intake protected from the open on
    report = (run_dir / "report.md").read_text()
    assert "protect-the-open: Batch not finished 10 minutes" in report and "Time to decision" in report
    assert "判断までの時間" in (run_dir / "report.ja.md").read_text()
