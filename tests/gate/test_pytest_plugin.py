"""The pytest plugin from a fresh project that only has faultlab installed.

A temporary folder with no conftest: a test file using ``fault_proxy``, ``drill`` and
``faultlab_stack`` (an echo server behind the proxy, latency and a partition inside ``with``
blocks, a paused service), and a tiny drill plan run with ``--faultlab``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

USER_TESTS = '''
import socket
import threading
import time

import httpx
import pytest


@pytest.fixture
def echo_server():
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    stop = threading.Event()

    def handle(conn):
        with conn:
            while data := conn.recv(4096):
                conn.sendall(data)

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            conn.settimeout(None)
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield "127.0.0.1:%d" % server.getsockname()[1]
    stop.set()
    thread.join()
    server.close()


def round_trip(address):
    host, port = address.rsplit(":", 1)
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=2) as conn:
        conn.sendall(b"ping")
        assert conn.recv(4) == b"ping"
    return time.monotonic() - started


def test_latency_inside_a_with_block(fault_proxy, drill, echo_server):
    address = fault_proxy.create("echo", echo_server)
    assert round_trip(address) < 0.15
    with drill.latency(fault_proxy, "echo", "300ms"):
        assert round_trip(address) >= 0.3
    assert round_trip(address) < 0.15


def test_partition_inside_a_with_block(fault_proxy, drill, echo_server):
    address = fault_proxy.create("echo", echo_server)
    with drill.partition(fault_proxy, "echo"):
        with pytest.raises(OSError):
            round_trip(address)
    assert round_trip(address) < 0.15
    assert fault_proxy.url.startswith("http://127.0.0.1:")


def test_reverted_even_when_the_block_fails(fault_proxy, drill, echo_server):
    address = fault_proxy.create("echo", echo_server)
    with pytest.raises(RuntimeError):
        with drill.partition(fault_proxy, "echo"):
            raise RuntimeError("the code under test blew up")
    assert round_trip(address) < 0.15


def test_a_stack_and_a_paused_service(faultlab_stack, drill):
    local = faultlab_stack("stack.yaml")
    url = local.url("svc", "/")
    assert httpx.get(url, timeout=2).status_code == 200
    with drill.fault(local, "process_pause", "svc"):
        with pytest.raises(httpx.TimeoutException):
            httpx.get(url, timeout=0.3)
    assert httpx.get(url, timeout=2).status_code == 200
'''

STACK = """
name: tiny
services:
  svc:
    command: [python, -m, http.server, "${port}", --bind, 127.0.0.1, --directory, "${run_dir}"]
    port: auto
    ready: {http: /, timeout: 10s}
    restart: "no"
monitor: {service: svc, ready: /}
plugin: tiny_plugin
"""

PLUGIN = '''
def faultlab_canary(stack):
    import httpx

    url = stack.url("svc", "/")
    client = httpx.Client()

    def place(timeout_s):
        try:
            response = client.get(url, timeout=timeout_s)
        except httpx.HTTPError as exc:
            return {"ok": False, "error": type(exc).__name__}
        return {"ok": response.status_code == 200, "status": response.status_code}

    return place
'''

SCENARIO = """
id: TINY-01
title: The service pauses for a second
stack: stack.yaml
canary: {rate: 20/s, timeout: 200ms}
steady_state:
  success_rate: {min: 1.0}
timeline:
  - {at: 1s, fault: process_pause, target: svc, for: 1s}
duration: 4s
hold: 1s
window: 500ms
settle: 0s
targets:
  detect_within: 1s
  recover_after_clear_within: 2s
  impact_within: 10ms
"""

PLAN = """
title: tiny plan
environment: a temporary folder
scenarios: [scenario.yaml]
"""


@pytest.mark.processes
def test_plugin_works_from_a_fresh_project(tmp_path: Path) -> None:
    for name, text in (("test_user.py", USER_TESTS), ("stack.yaml", STACK), ("tiny_plugin.py", PLUGIN),
                       ("scenario.yaml", SCENARIO), ("plan.yaml", PLAN)):
        (tmp_path / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
           "FAULTLAB_STATE_DIR": str(tmp_path / "state")}
    env.pop("PYTEST_ADDOPTS", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "faultlab", "-p", "no:cacheprovider", "-v", "-rA",
         "--faultlab", "plan.yaml", "--faultlab-reports", str(tmp_path / "reports"),
         "--junitxml", str(tmp_path / "junit.xml"), "test_user.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    for test in ("test_latency_inside_a_with_block", "test_partition_inside_a_with_block",
                 "test_reverted_even_when_the_block_fails", "test_a_stack_and_a_paused_service"):
        assert f"test_user.py::{test} PASSED" in out, out
    assert "plan.yaml::TINY-01::detect_within PASSED" in out, out
    assert "plan.yaml::TINY-01::recover_after_clear_within PASSED" in out, out
    assert "plan.yaml::TINY-01::impact_within FAILED" in out, out
    assert "vs target ≤ 0.010 s" in out, out
    assert "1 failed, 6 passed" in out, out
    runs = list((tmp_path / "reports" / "TINY-01").iterdir())
    assert len(runs) == 1, "the scenario runs once for all its targets"


def test_plugin_does_no_work_at_import() -> None:
    code = ("import json, sys; import faultlab.pytest_plugin; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('faultlab'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert json.loads(out.stdout) == ["faultlab", "faultlab.pytest_plugin"]
