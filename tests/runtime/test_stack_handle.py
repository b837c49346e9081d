"""The local runtime's stack is a StackHandle: every member of the interface faults, jobs, the
load generator and plugins use, exercised on real processes and a real PostgreSQL."""

from __future__ import annotations

import inspect
import re
import socket
import textwrap
import time
from pathlib import Path

import psutil
import psycopg
import pytest

from faultlab.engine.context import FaultContext
from faultlab.errors import FaultError
from faultlab.loader import load_stack
from faultlab.plugin import load_plugin
from faultlab.registry import fault_kinds, runtimes
from faultlab.runtime.base import DatabaseControl, ServiceControl, StackHandle
from faultlab.runtime.ledger import Ledger
from faultlab.runtime.local import LocalRuntime
from faultlab.runtime.supervisor import ServiceSpec

pytestmark = pytest.mark.processes

SERVICE = textwrap.dedent("""\
    import signal, socket, sys, time

    def bye(signum, frame):
        print(f"got {signal.Signals(signum).name}", flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, bye)
    signal.signal(signal.SIGINT, bye)
    server = socket.create_server(("127.0.0.1", int(sys.argv[1])))
    print("listening", flush=True)
    while True:
        time.sleep(0.05)
""")

STACK = """\
name: handle
services:
  db:
    postgres: {database: app, user: app}
  echo:
    command: [python, "${stack_dir}/service.py", "${port}"]
    port: auto
    env: {DATABASE_ADDRESS: "${link.echo-db}"}
    ready: {tcp: true, timeout: 20s}
    restart: always
links:
  echo-db: {from: echo, to: db}
"""


@pytest.fixture(scope="module")
def handle(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("handle")
    (tmp / "service.py").write_text(SERVICE)
    (tmp / "stack.yaml").write_text(STACK)
    stack = load_stack(tmp / "stack.yaml")
    ledger = Ledger("stack-handle", state_dir=tmp / "state")
    with runtimes.get(stack.runtime)().bring_up(stack, tmp / "run", ledger=ledger) as running:
        yield running
    ledger.close()


def _until(check, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return bool(check())


def _members(protocol: type) -> list[str]:
    return [name for name in dir(protocol) if not name.startswith("_")]


def test_the_local_runtime_is_registered_and_its_stack_is_a_handle(handle):
    assert runtimes.get("local") is LocalRuntime
    assert runtimes.source("local") == "faultlab.runtime.local:LocalRuntime"
    assert isinstance(handle, StackHandle) and handle.runtime == "local"
    assert not inspect.isabstract(type(handle))
    assert handle.stack.name == "handle" and handle.run_dir.is_dir() and handle.ledger is not None
    assert handle.proxy_api.startswith("http://127.0.0.1:")


def test_addresses_links_and_interpolation(handle):
    host, port = handle.address("echo").split(":")
    assert host == "127.0.0.1"
    socket.create_connection((host, int(port)), timeout=2).close()
    assert handle.url("echo", "/x") == f"http://{handle.address('echo')}/x"
    assert handle.links_to("db") == ["echo-db"] and handle.links_to("echo") == []
    link_host, link_port = handle.link_address("echo-db").split(":")
    through_link = handle.dsn("db", user="app").replace(handle.address("db"), handle.link_address("echo-db"))
    with psycopg.connect(through_link, connect_timeout=5) as conn:
        assert conn.execute("SELECT current_database()").fetchone()[0] == "app"
    values = handle.interpolation_values("echo")
    assert values["port"] == port and values["link.echo-db"] == f"{link_host}:{link_port}"
    assert values["service.db"] == handle.address("db") and Path(values["run_dir"]) == handle.run_dir
    assert "port" not in handle.interpolation_values(None)


def test_a_service_is_controlled_through_the_service_control_protocol(handle):
    service = handle.service("echo")
    assert all(hasattr(service, member) for member in _members(ServiceControl)), _members(ServiceControl)
    assert service.name == "echo" and service.state == "running"
    pid = service.pid
    assert pid is not None
    service.pause()
    assert psutil.Process(pid).status() == psutil.STATUS_STOPPED and service.state == "paused"
    service.resume()
    assert psutil.Process(pid).status() != psutil.STATUS_STOPPED and service.state == "running"
    service.kill()
    assert _until(lambda: service.pid not in (None, pid) and service.state == "running"), service
    assert "listening" in service.log_tail()


def test_a_database_is_controlled_through_the_database_control_protocol(handle):
    database = handle.database("db")
    assert all(hasattr(database, member) for member in _members(DatabaseControl)), _members(DatabaseControl)
    assert (database.name, database.database, database.user) == ("db", "app", "app")
    assert re.match(r"^\d+", database.server_version() or ""), database.server_version()
    assert handle.dsn("db") == database.dsn()

    database.freeze()
    pids = database.pids()
    assert {psutil.Process(p).status() for p in pids} <= {psutil.STATUS_STOPPED, psutil.STATUS_ZOMBIE}
    assert sum(e["kind"] == "stopped_process" for e in handle.ledger.entries) >= len(pids) > 1
    database.thaw()
    database.thaw()  # harmless twice
    assert psutil.STATUS_STOPPED not in {psutil.Process(p).status() for p in database.pids()}
    assert not any(e["kind"] == "stopped_process" for e in handle.ledger.entries)

    database.stop("fast")
    assert not database.is_running()
    database.start()
    assert database.is_running()
    psycopg.connect(database.dsn(user="app"), connect_timeout=5).close()


def test_a_process_is_started_by_the_runtime_and_python_is_this_interpreter(handle):
    process = handle.start_process(ServiceSpec(
        "job-hello", ["python", "-c", "import sys; print('hello from', sys.executable)"], cwd=str(handle.run_dir)))
    assert process.wait_exited(30) == 0
    assert _until(lambda: "hello from" in process.log_tail())
    import sys

    assert sys.executable in process.log_tail()


def test_what_is_not_there_is_a_fault_error_naming_it(handle):
    with pytest.raises(FaultError, match="'db' is not a command service"):
        handle.service("db")
    with pytest.raises(FaultError, match="'echo' is not a postgres service"):
        handle.database("echo")


def test_process_restart_sends_the_signal_it_names(handle):
    """``process_restart`` has a ``signal`` parameter; the restart used to send the stop signal
    (SIGTERM) whatever it said."""
    fault = fault_kinds.get("process_restart")()
    ctx = FaultContext(fault_id="test-restart", stack=handle, plugin=load_plugin(None))
    service = handle.service("echo")
    before = service.pid
    params = fault.validate_params({"signal": "SIGINT", "grace": "5s"})
    fault.revert(ctx, "echo", params, fault.inject(ctx, "echo", params))
    assert _until(lambda: service.pid not in (None, before) and service.state == "running"), service
    log = service.log_tail(200)
    assert "got SIGINT" in log and "got SIGTERM" not in log, log


def test_what_the_local_runtime_cannot_do_is_a_fault_error_naming_the_runtime(handle):
    with pytest.raises(FaultError, match="the local runtime cannot take 'echo' off its network"):
        handle.network("echo")
    assert "service_network" not in LocalRuntime.capabilities
