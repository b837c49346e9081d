"""The plain progress view is an observer of the run's hub: it shows what matters to the people
running a drill and ignores the rest."""

from __future__ import annotations

import io
from types import SimpleNamespace

from faultlab.cli.live import PlainProgress
from faultlab.hub import Hub
from faultlab.journal import CanarySample, MonitorSample


def test_plain_progress_shows_runs_faults_decisions_and_service_trouble():
    out = io.StringIO()
    hub = Hub([PlainProgress(out=out, every_s=0.0)])
    scenario = SimpleNamespace(id="FT-01", title="The database stalls")
    hub.publish("trial", index=1, total=2, scenario=scenario, trial=1, trials=1)
    hub.publish("run", state="begin", run_id="FT-01-x", run_dir="reports/x", scenario=scenario)
    hub.publish("phase", name="load", state="begin", t=2.0, duration=30.0)
    hub.publish("sample", sample=CanarySample(t_send=3.0, t_done=3.1, ok=True, latency_s=0.1))
    hub.publish("monitor", sample=MonitorSample(t=3.0, ready=True, status=200, latency_s=0.01))
    hub.publish("schedule", step="due", planned=None)
    hub.publish("fault", state="active", fault_id="timeline[0]", kind="process_kill", target="gateway")
    hub.publish("service", kind="killed", service="gateway", pid=10, signal="SIGKILL")
    hub.publish("service", kind="restarted", service="gateway", pid=11, restart_count=1, start_time=1.0)
    hub.publish("service", kind="gave_up", service="exchange", restart_count=3, exit_code=1)
    hub.publish("decision", what="abort", why="success rate 10% below 20%")
    hub.publish("run", state="end", status="aborted", reason="abort_when: success rate", run_dir="reports/x")
    lines = out.getvalue().splitlines()
    assert lines[0] == "[1/2] FT-01 trial 1/1: The database stalls"
    assert "  fault timeline[0] process_kill on gateway: active" in lines
    assert "  service gateway restarted by its policy (restart 1, pid 11)" in lines
    assert "  service exchange given up on (exit code 1)" in lines
    assert not any("killed" in line for line in lines)
    assert "  decision: abort (success rate 10% below 20%)" in lines
    assert any(line.startswith("  t=  1.0/30 s  success 100%") for line in lines), lines
    assert lines[-1] == "run ended: aborted: abort_when: success rate"


def test_each_run_of_a_plan_is_shown_on_its_own_figures():
    """A plan's runs share one progress view and each run's clock starts at 0 again: the
    second run's p99 must not include the first run's slow requests."""
    out = io.StringIO()
    view = PlainProgress(out=out, every_s=0.0)
    scenario = SimpleNamespace(id="FT-01", title="t")
    view(event="run", state="begin", run_id="a", run_dir="x", scenario=scenario)
    for i in range(20):
        view(event="sample", sample=CanarySample(t_send=40.0 + i * 0.05, t_done=41.0, ok=True, latency_s=0.9))
    view(event="run", state="begin", run_id="b", run_dir="y", scenario=scenario)
    view(event="sample", sample=CanarySample(t_send=0.5, t_done=0.51, ok=True, latency_s=0.01))
    assert out.getvalue().splitlines()[-1].endswith("p99 10 ms")
