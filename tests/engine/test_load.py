"""The locust load driver against a tiny local HTTP server (real processes)."""

from __future__ import annotations

import http.server
import itertools
import json
import re
import textwrap
import threading
import time

import psutil
import pytest

from faultlab.engine.load import LoadDriver, LoadSpec
from faultlab.journal import JournalWriter, RunHeader, read_run

pytestmark = pytest.mark.processes

LOCUSTFILE = textwrap.dedent(
    """
    import itertools
    from locust import HttpUser, constant_throughput, task

    class Trader(HttpUser):
        wait_time = constant_throughput(10)

        @task
        def place_order(self):
            self.client.post("/orders", json={"qty": 1}, name="place_order")
    """
)


class _Exchange(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    counter = itertools.count(1)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        n = next(self.counter)
        if n % 10 == 0:
            status, body = 500, b'{"error":"db down"}'
        else:
            status, body = 201, json.dumps({"client_order_id": f"c-{n}", "status": "accepted"}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def exchange():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Exchange)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _run_dir(tmp_path):
    origin = time.monotonic()
    JournalWriter.open(tmp_path, RunHeader(run_id="load"), origin=origin).close()
    (tmp_path / "locustfile.py").write_text(LOCUSTFILE)
    return origin


def _all_gone(services):
    for service in services:
        assert service.state == "stopped" and service.pid is None
        assert service.exit_codes, service
    return True


def test_records_every_request_and_changes_users_mid_run(tmp_path, exchange):
    origin = _run_dir(tmp_path)
    spec = LoadSpec(tmp_path / "locustfile.py", host=exchange, users=1, spawn_rate=50, run_time_s=30,
                    ack_field="client_order_id")
    with LoadDriver(spec, run_dir=tmp_path, origin=origin) as load:
        load.wait_users(1, timeout_s=10)
        time.sleep(1.5)
        t_spike = time.monotonic() - origin
        load.set_users(5, wait_s=10)
        time.sleep(1.5)
        t_end = time.monotonic() - origin
        live = load.stats()
        assert live["user_count"] == 5
        pgid = load.master.pgid
    assert _all_gone([load.master])
    assert not psutil.pid_exists(pgid) or psutil.Process(pgid).status() == psutil.STATUS_ZOMBIE

    run = read_run(tmp_path)
    requests = run.requests
    assert len(requests) >= 15, len(requests)
    assert all(r.name == "place_order" for r in requests)
    assert all(0 < r.t < t_end + 1 and 0 <= r.latency_s < 1 for r in requests)
    acked = [r for r in requests if r.ok]
    assert acked and all(r.status == 201 and r.ack.startswith("c-") for r in acked)
    failed = [r for r in requests if not r.ok]
    assert failed and all(r.status == 500 and r.ack is None and r.error for r in failed)
    before = sum(1 for r in requests if t_spike - 1.0 <= r.t < t_spike) / 1.0
    after = sum(1 for r in requests if t_spike + 0.5 <= r.t < t_end) / (t_end - t_spike - 0.5)
    print(f"\nload: {len(requests)} requests; rate before spike {before:.1f}/s, after {after:.1f}/s")
    assert after > 2.5 * before


def test_distributed_mode_with_two_workers(tmp_path, exchange):
    origin = _run_dir(tmp_path)
    spec = LoadSpec(tmp_path / "locustfile.py", host=exchange, users=2, spawn_rate=50, run_time_s=4, workers=2)
    load = LoadDriver(spec, run_dir=tmp_path, origin=origin)
    load.start()
    try:
        load.wait_users(2, timeout_s=10)
        stats = load.stats()
        assert stats["user_count"] == 2 and len(stats["workers"]) == 2
        worker_pids = [w.pid for w in load.workers]
        load.set_users(4, wait_s=10)
        code = load.wait(20)
        assert code == 0, load.master.log_tail()
    finally:
        load.stop()
    assert _all_gone([load.master, *load.workers])
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in worker_pids)
    requests = read_run(tmp_path).requests
    assert len(requests) >= 20
    assert {r.name for r in requests} == {"place_order"}
    totals = re.findall(r"Aggregated\s+(\d+)\s+\d+\(", load.master.log_tail(200))
    assert totals and int(totals[-1]) == len(requests)  # every request locust counted was recorded

