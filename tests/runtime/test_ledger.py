"""The clean-up ledger: a kill -9-ed harness leaves nothing behind after cleanup()."""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

import faultlab
from faultlab.errors import CleanupError
from faultlab.registry import cleaners
from faultlab.runtime.ledger import Ledger, cleanup, default_state_dir, register_cleaner

SRC = str(Path(faultlab.__file__).resolve().parent.parent)

HARNESS = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from faultlab.runtime.ledger import Ledger
    from faultlab.runtime.supervisor import ServiceSpec, Supervisor

    state_dir, run_dir, proxy_api = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    ledger = Ledger(sys.argv[4], state_dir=state_dir)
    data = run_dir / "pgdata"
    ledger.data_dir(data)
    data.mkdir(parents=True)
    (data / "PG_VERSION").write_text("16")
    ledger.proxy(proxy_api, ["gateway-db", "gateway-exchange"])
    sup = Supervisor(run_dir, ledger=ledger)
    sleeper = sup.start(ServiceSpec("sleeper", [sys.executable, "-c",
        "import subprocess, sys, time; "
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); time.sleep(600)"]))
    frozen = sup.start(ServiceSpec("frozen", [sys.executable, "-c", "import time; time.sleep(600)"]))
    frozen.pause()
    print(json.dumps({"sleeper": sleeper.pid, "frozen": frozen.pid}), flush=True)
    time.sleep(600)
    """
)


class _FakeToxiproxy(http.server.BaseHTTPRequestHandler):
    proxies: set[str] = set()
    deleted: list[str] = []

    def do_DELETE(self):
        name = self.path.rsplit("/", 1)[-1]
        if name in self.proxies:
            self.proxies.discard(name)
            self.deleted.append(name)
            self.send_response(204)
        else:
            self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def toxiproxy():
    handler = type("H", (_FakeToxiproxy,), {"proxies": {"gateway-db", "gateway-exchange"}, "deleted": []})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    httpd.shutdown()
    httpd.server_close()


def _gone(pid):
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _processes_labelled(run_id):
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and proc.environ().get("FAULTLAB_RUN_ID") == run_id:
                found.append(proc.pid)
        except psutil.Error:
            pass
    return found


@pytest.mark.processes
def test_cleanup_after_kill_9_leaves_nothing(tmp_path, toxiproxy):
    api, proxy_handler = toxiproxy
    state_dir, run_dir = tmp_path / "state", tmp_path / "run"
    run_id = f"run-killed-{os.getpid()}-{tmp_path.name}"
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    harness = subprocess.Popen(
        [sys.executable, "-c", HARNESS, str(state_dir), str(run_dir), api, run_id],
        stdout=subprocess.PIPE, env=env, text=True,
    )
    try:
        pids = json.loads(harness.stdout.readline())
        ledger_file = state_dir / "runs" / f"{run_id}.json"
        recorded = json.loads(ledger_file.read_text())
        assert recorded["harness_pid"] == harness.pid
        assert {e["kind"] for e in recorded["entries"]} == {"data_dir", "proxy", "process_group", "stopped_process"}
        assert psutil.Process(pids["frozen"]).status() == psutil.STATUS_STOPPED

        report = cleanup(state_dir)
        assert report.skipped_runs == [run_id] and report.actions == []

        harness.send_signal(signal.SIGKILL)
        harness.wait()
        deadline = time.monotonic() + 10
        while len(_processes_labelled(run_id)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(_processes_labelled(run_id)) == 3

        report = cleanup(state_dir)
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait()
        harness.stdout.close()
        if (state_dir / "runs").exists():
            with contextlib.suppress(Exception):
                cleanup(state_dir, force=True)
    assert report.cleaned_runs == [run_id] and not report.failures, str(report)
    assert _gone(pids["sleeper"]) and _gone(pids["frozen"])
    assert _processes_labelled(run_id) == []
    assert not (run_dir / "pgdata").exists()
    assert sorted(proxy_handler.deleted) == ["gateway-db", "gateway-exchange"]
    assert not ledger_file.exists()
    kinds = [a.kind for a in report.actions]
    order = [kinds.index(kind) for kind in ("proxy", "stopped_process", "process_group", "data_dir")]
    assert order == sorted(order), kinds
    assert "SIGCONT group" in str(report)

    again = cleanup(state_dir)
    assert again.actions == [] and again.cleaned_runs == []


def test_ledger_lifecycle_and_idempotent_cleanup(tmp_path, monkeypatch):
    monkeypatch.setenv("FAULTLAB_STATE_DIR", str(tmp_path))
    assert default_state_dir() == tmp_path
    ledger = Ledger("r1")
    assert ledger.path == tmp_path / "runs" / "r1.json"
    entry = ledger.data_dir(tmp_path / "d")
    (tmp_path / "d").mkdir()
    pg = ledger.process_group("svc")
    ledger.update(pg, pgid=None)
    with pytest.raises(ValueError, match="known:"):
        ledger.record("volcano")
    assert not ledger.close()
    ledger.forget(entry)
    ledger.forget(entry)
    report = cleanup()
    assert report.skipped_runs == ["r1"]
    report = cleanup(force=True)
    assert report.cleaned_runs == ["r1"] and (tmp_path / "d").exists()
    assert not ledger.path.exists()


def test_cleaner_registry_and_failures_raise_cleanup_error(tmp_path):
    calls = []

    @register_cleaner("test_widget", rank=1)
    def clean_widget(entry, **kw):
        calls.append(entry["name"])
        if entry["name"] == "bad":
            raise RuntimeError("widget stuck")
        return [(f"remove widget {entry['name']}", True, "")]

    try:
        ledger = Ledger("r2", state_dir=tmp_path)
        ledger.record("test_widget", name="good")
        ledger.record("test_widget", name="bad")
        with pytest.raises(CleanupError, match="widget stuck") as info:
            cleanup(tmp_path, force=True)
        report = info.value.report
        assert [a.ok for a in report.actions] == [True, False]
        assert ledger.path.exists()  # kept for a later attempt
        assert calls == ["good", "bad"]
    finally:
        cleaners._load().pop("test_widget", None)


def test_a_recycled_pid_is_never_killed(tmp_path):
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        ledger = Ledger("r3", state_dir=tmp_path)
        ledger.record("process_group", name="old", pgid=bystander.pid, start_time=time.time() - 3600)
        ledger.record("stopped_process", pid=bystander.pid, start_time=time.time() - 3600, group=True)
        report = cleanup(tmp_path, force=True)
        assert all(a.detail == "already gone" for a in report.actions), str(report)
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


@pytest.mark.processes
def test_pg_lock_session_and_read_only_setting_are_undone(tmp_path):
    psycopg = pytest.importorskip("psycopg")
    import shutil
    import tempfile

    from faultlab.errors import ServiceFailed
    from faultlab.runtime.postgres import PostgresServer

    # pytest's private tmp tree is not traversable by the unprivileged postgres user
    pg_home = Path(tempfile.mkdtemp(prefix="faultlab-ledger-pg-"))
    pg = PostgresServer(pg_home / "pg")
    try:
        pg.start()
    except ServiceFailed as exc:
        shutil.rmtree(pg_home, ignore_errors=True)
        pytest.skip(f"no PostgreSQL here: {exc}")
    try:
        dsn = pg.dsn()
        ledger = Ledger("pg-run", state_dir=tmp_path / "state")
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute("CREATE TABLE orders (id int)")
        holder = psycopg.connect(dsn)
        entry = ledger.pg_session(dsn)
        holder.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
        ledger.update(entry, backend_pid=holder.info.backend_pid)
        undo = ["SET default_transaction_read_only = off", "ALTER SYSTEM RESET default_transaction_read_only",
                "SELECT pg_reload_conf()"]
        ledger.pg_setting(dsn, undo, what="read-only database")
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute("ALTER SYSTEM SET default_transaction_read_only = on")
            admin.execute("SELECT pg_reload_conf()")

        report = cleanup(tmp_path / "state", force=True)
        assert not report.failures and report.cleaned_runs == ["pg-run"], str(report)
        assert any(a.detail == "terminated" for a in report.actions), str(report)
        with pytest.raises(psycopg.OperationalError):
            holder.execute("SELECT 1")
        holder.close()
        deadline = time.monotonic() + 5
        while True:
            with psycopg.connect(dsn, autocommit=True) as check:
                read_only = check.execute("SHOW default_transaction_read_only").fetchone()[0]
                check.execute("SET lock_timeout = '1s'")
                check.execute("INSERT INTO orders VALUES (1)")  # the lock is gone
            if read_only == "off" or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert read_only == "off"

        ledger = Ledger("pg-gone", state_dir=tmp_path / "state")
        ledger.pg_session(dsn, backend_pid=12345)
        ledger.pg_setting(dsn, undo)
    finally:
        pg.stop()
        shutil.rmtree(pg_home, ignore_errors=True)
    report = cleanup(tmp_path / "state", force=True)
    assert not report.failures and all("server not running" in a.detail for a in report.actions), str(report)
