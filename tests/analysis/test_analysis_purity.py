"""Analysis is pure: no UI, plotting, templating, network or docker code is imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from synthetic_run import write_run

import faultlab.analysis

FORBIDDEN = ("matplotlib", "jinja2", "rich", "docker", "httpx", "requests", "urllib3", "websocket",
             "locust", "psycopg", "testcontainers", "faultlab.report")


def test_analysing_a_run_imports_nothing_impure(tmp_path):
    run = write_run(tmp_path)
    code = (
        "import json, sys\n"
        "from faultlab.analysis import analyse\n"
        f"analyse({str(run)!r})\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    bad = [m for m in loaded if any(m == f or m.startswith(f + ".") for f in FORBIDDEN)]
    assert bad == []


def test_public_api_is_frozen():
    assert sorted(faultlab.analysis.__all__) == sorted([
        "analyse", "Analysis", "Baseline", "JobResult", "CustomerImpact",
        "Deviation", "ErrorBudget", "CompletionDelay", "FaultSpan", "Finding", "ImpactCounts",
        "IntegrityResult", "LatencyStats", "Measure", "MeasureStatus", "TimelineEvent", "Verdict", "Window",
        "FaultDetection", "FiredAlert", "MonitoringResult", "PromqlResult",
    ])
    assert all(getattr(faultlab.analysis, name).__doc__ for name in faultlab.analysis.__all__)


def test_no_work_at_import_time():
    code = "import time; t=time.perf_counter(); import faultlab.analysis, faultlab.report; print(time.perf_counter()-t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=Path.cwd())
    assert float(out.stdout) < 2.0
