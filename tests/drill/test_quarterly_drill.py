"""The quarterly drill end to end: every failure test of the catalogue, on the normal profile,
in at most 25 minutes on a 2-core machine, each meeting every target; the book shows the
programme register's view of the drill and the register is written beside it.

Slow tier (about 25 minutes): runs only with ``FAULTLAB_SLOW=1``. Its recorded runs are in
benchmarks/RESULTS.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.processes,
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("FAULTLAB_SLOW") != "1",
                       reason="the quarterly drill takes about 25 minutes; set FAULTLAB_SLOW=1"),
]

ROOT = Path(__file__).resolve().parents[2]
BUDGET_S = 25 * 60


def test_the_quarterly_drill_passes_every_failure_test_within_25_minutes(tmp_path: Path) -> None:
    faultlab = Path(sys.executable).with_name("faultlab")
    reports = tmp_path / "reports"
    started = time.monotonic()
    result = subprocess.run([str(faultlab), "drill", str(ROOT / "drills" / "quarterly.yaml"), "--reports",
                             str(reports), "--lang", "en"], capture_output=True, text=True, timeout=BUDGET_S + 600)
    wall = time.monotonic() - started
    books = list((reports / "quarterly").glob("*/index.md"))
    assert len(books) == 1, result.stdout[-3000:] + result.stderr[-3000:]
    outcomes = {}
    for run in (books[0].parent / "runs").glob("*/result.json"):
        analysis = json.loads(run.read_text())["analysis"]
        outcomes[analysis["scenario"]["id"]] = analysis["outcome"]
    failed = {k: v for k, v in outcomes.items() if v != "passed"}
    assert result.returncode == 0 and not failed, (failed, result.stdout[-4000:])
    assert wall <= BUDGET_S, f"the quarterly drill took {wall:.0f} s, over {BUDGET_S} s"
    book = books[0].read_text()
    assert "Programme register: this drill" in book
    register = json.loads((reports / "quarterly" / "register.json").read_text())
    assert register["last_drill"] == str(books[0].parent)
    assert {t["id"] for t in register["failure_tests"] if t["verdict"] == "passed"} == set(outcomes)
