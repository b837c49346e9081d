"""Supervisor with real child processes: restart policies, kill, pause/resume, group stop."""

from __future__ import annotations

import os
import signal
import sys
import time

import psutil
import pytest

from faultlab.errors import ReadinessTimeout, ServiceFailed
from faultlab.runtime.ports import free_port
from faultlab.runtime.supervisor import RestartPolicy, ServiceSpec, Supervisor, group_members
from faultlab.runtime.waits import HttpWait, wait_for

pytestmark = pytest.mark.processes

PY = sys.executable
GRANDCHILD = (
    "import subprocess, sys, time;"
    "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']);"
    "print('grandchild', p.pid, flush=True);"
    "time.sleep(600)"
)


def http_server(name, port, **kw):
    return ServiceSpec(name, [PY, "-m", "http.server", "--bind", "127.0.0.1", str(port)], **kw)


def dead(pid):
    """Gone, or a zombie waiting for a parent that may never reap it (PID 1 in a container)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def until(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_policy_table():
    assert not RestartPolicy.NO.wants_restart(1)
    assert RestartPolicy.ON_FAILURE.wants_restart(-9) and not RestartPolicy.ON_FAILURE.wants_restart(0)
    assert RestartPolicy("always").wants_restart(0) and RestartPolicy("unless-stopped").wants_restart(0)


def test_kill_restarts_per_policy_and_logs_are_captured(tmp_path):
    events = []
    port = free_port()

    def bad_observer(**kw):
        raise RuntimeError("observer bug")

    with Supervisor(tmp_path, run_id="r-test", observers=[bad_observer, lambda **kw: events.append(kw)]) as sup:
        svc = sup.start(http_server("web", port, restart="always", backoff_initial_s=0.05))
        wait_for(HttpWait(f"http://127.0.0.1:{port}/"), 10.0, evidence=svc.log_tail)
        first = svc.pid
        assert os.getpgid(first) == first
        assert psutil.Process(first).environ()["FAULTLAB_RUN_ID"] == "r-test"
        svc.kill(signal.SIGKILL)
        assert until(lambda: svc.restart_count == 1 and svc.pid not in (None, first))
        wait_for(HttpWait(f"http://127.0.0.1:{port}/"), 10.0, evidence=svc.log_tail)
        assert svc.exit_codes == [-signal.SIGKILL]
    kinds = [e["kind"] for e in events]
    assert kinds[:1] == ["started"] and "killed" in kinds and "restarting" in kinds and "restarted" in kinds
    assert kinds[-1] == "stopped"
    assert svc.state == "stopped" and svc.pid is None
    log = (tmp_path / "services" / "web.log").read_text()
    assert "GET / HTTP" in log and "start #2" in log


def test_no_policy_and_on_failure_limits(tmp_path):
    delays = []
    observer = lambda kind, **kw: delays.append(kw["delay_s"]) if kind == "restarting" else None  # noqa: E731
    with Supervisor(tmp_path, observers=[observer]) as sup:
        once = sup.start(ServiceSpec("once", [PY, "-c", "import sys; sys.exit(3)"], restart="no"))
        assert until(lambda: once.state == "exited")
        assert once.exit_code == 3 and once.restart_count == 0

        ok = sup.start(ServiceSpec("ok", [PY, "-c", "pass"], restart="on-failure"))
        assert until(lambda: ok.state == "exited")
        assert ok.restart_count == 0

        flaky = sup.start(
            ServiceSpec("flaky", [PY, "-c", "print('boom'); raise SystemExit(1)"], restart="on-failure",
                        max_restarts=2, backoff_initial_s=0.01)
        )
        assert until(lambda: flaky.state == "exited" and flaky.restart_count == 2)
        assert flaky.exit_codes == [1, 1, 1]
        assert flaky.log_tail().count("boom") == 3
        assert delays == [0.01, 0.02]  # docker's doubling backoff


def test_pause_resume_and_stop_of_a_paused_group(tmp_path):
    port = free_port()
    with Supervisor(tmp_path) as sup:
        svc = sup.start(http_server("web", port, restart="always", stop_grace_s=1.0))
        wait_for(HttpWait(f"http://127.0.0.1:{port}/"), 10.0)
        svc.pause()
        assert psutil.Process(svc.pid).status() == psutil.STATUS_STOPPED
        with pytest.raises(ReadinessTimeout):
            wait_for(HttpWait(f"http://127.0.0.1:{port}/", request_timeout_s=0.2), 0.5)
        svc.resume()
        svc.resume()
        wait_for(HttpWait(f"http://127.0.0.1:{port}/"), 5.0)
        svc.pause()
        pid = svc.pid
        started = time.monotonic()
        svc.stop()
        assert time.monotonic() - started < 1.0  # continued, so SIGTERM worked without waiting for SIGKILL
        assert dead(pid)
        assert svc.restart_count == 0
        with pytest.raises(ServiceFailed):
            svc.pause()


def test_operator_restart_and_group_stop_leaves_nothing(tmp_path):
    with Supervisor(tmp_path) as sup:
        svc = sup.start(ServiceSpec("tree", [PY, "-c", GRANDCHILD], restart="no", stop_grace_s=0.5))
        assert until(lambda: "grandchild" in svc.log_tail())
        grandchild = int(svc.log_tail().split("grandchild")[-1].split()[0])
        leader = svc.pid
        svc.restart(grace_s=0.2)
        assert svc.pid != leader and svc.restart_count == 1
        assert until(lambda: dead(grandchild))
        assert until(lambda: svc.log_tail().count("grandchild") == 2)
        grandchild = int(svc.log_tail().split("grandchild")[-1].split()[0])
        pgid = svc.pgid
    assert until(lambda: dead(grandchild), 3.0)
    assert group_members(pgid) == []


def test_leader_crash_takes_its_children_down(tmp_path):
    with Supervisor(tmp_path) as sup:
        svc = sup.start(ServiceSpec("tree", [PY, "-c", GRANDCHILD], restart="no"))
        assert until(lambda: "grandchild" in svc.log_tail())
        grandchild = int(svc.log_tail().split("grandchild")[-1].split()[0])
        os.kill(svc.pid, signal.SIGKILL)
        assert until(lambda: svc.state == "exited")
        assert until(lambda: dead(grandchild), 3.0)


def test_unstartable_command_is_service_failed(tmp_path):
    with Supervisor(tmp_path) as sup, pytest.raises(ServiceFailed, match="could not start"):
        sup.start(ServiceSpec("nope", ["/nonexistent/binary"]))
