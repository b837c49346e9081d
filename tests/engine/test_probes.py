"""Canary and monitor probes on the real clock (short runs)."""

from __future__ import annotations

import http.server
import json
import threading
import time

import pytest

from faultlab.engine.clock import MonotonicClock
from faultlab.engine.probes import CanaryProbe, MonitorProbe, parse_prometheus
from faultlab.journal import JournalWriter, RunHeader, read_run


def test_a_stalled_call_does_not_delay_the_next_sends(tmp_path):
    clock = MonotonicClock()
    origin = clock.now()
    release = threading.Event()
    calls = []
    lock = threading.Lock()

    def place(timeout_s):
        with lock:
            calls.append(timeout_s)
            n = len(calls)
        if n == 5:
            release.wait(0.4)  # stalls past the 0.2 s timeout
            return {"ok": True, "status": 201, "ack": "late"}
        if n == 6:
            raise ConnectionError("refused")
        if n == 8:
            release.wait(30)  # never answers before stop
        return {"ok": True, "status": 201, "ack": f"c-{n}", "order_id": n}

    journal = JournalWriter.open(tmp_path, RunHeader(run_id="p"), origin=origin)
    with CanaryProbe(place, rate_hz=50, timeout_s=0.2, origin=origin, journal=journal) as probe:
        time.sleep(0.6)
    release.set()
    journal.close()
    samples = sorted(probe.samples, key=lambda s: s.t_send)
    assert 20 <= len(samples) <= 40
    errors = [s.error for s in samples if not s.ok]
    assert any("over the 0.2 s timeout" in e for e in errors)
    stalled = next(s for s in samples if "over the 0.2 s timeout" in (s.error or ""))
    during = [s for s in samples if stalled.t_send < s.t_send < stalled.t_send + 0.3]
    assert len(during) >= 8, len(during)  # ~15 sends (every 20 ms) while call 5 hung for 400 ms
    assert any("ConnectionError: refused" in e for e in errors)
    assert any(e == "no answer by the end of the probe" for e in errors)
    good = [s for s in samples if s.ok]
    assert good and all(s.status == 201 and s.ack.startswith("c-") for s in good)
    assert good[0].extra["order_id"] >= 1
    assert all(t == 0.2 for t in calls)
    run = read_run(tmp_path)
    assert len(run.canary) == len(samples)


def test_saturated_pool_records_unsent_probes_instead_of_queueing_them():
    clock = MonotonicClock()
    never = threading.Event()
    probe = CanaryProbe(lambda timeout_s: never.wait(5) or {}, rate_hz=50, timeout_s=0.05, origin=clock.now(),
                        workers=2)
    probe.start()
    time.sleep(0.3)
    probe.stop(drain_s=0.0)
    never.set()
    errors = [s.error for s in probe.samples]
    assert sum(e.startswith("not sent") for e in errors) >= 8
    assert sum(e == "no answer by the end of the probe" for e in errors) == 2
    probe.stop()


class _Ready(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self):
        if self.path == "/metrics":
            body = b'# TYPE orders_total counter\norders_total{side="buy"} 42.0\nqueue_depth 3\n'
            ctype = "text/plain"
        else:
            body = json.dumps({"db": "ok" if type(self).status == 200 else "down"}).encode()
            ctype = "application/json"
        self.send_response(type(self).status if self.path != "/metrics" else 200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_monitor_polls_at_10_hz_and_sees_the_flip(tmp_path):
    handler = type("H", (_Ready,), {"status": 200})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    clock = MonotonicClock()
    origin = clock.now()
    journal = JournalWriter.open(tmp_path, RunHeader(run_id="m"), origin=origin)
    try:
        with MonitorProbe(f"{base}/health/ready", metrics_url=f"{base}/metrics", metrics_every=5, origin=origin,
                          interval_s=0.05, journal=journal) as probe:
            time.sleep(0.4)
            handler.status = 503
            time.sleep(0.4)
            httpd.shutdown()
            httpd.server_close()
            time.sleep(0.3)
    finally:
        journal.close()
    samples = probe.samples
    assert len(samples) >= 12  # ~22 expected at 20 Hz; loaded CI machines are slower
    assert samples[0].ready and samples[0].detail["body"] == {"db": "ok"}
    assert any(s.status == 503 and not s.ready and s.detail["body"] == {"db": "down"} for s in samples)
    assert not samples[-1].ready and samples[-1].status is None and "error" in samples[-1].detail
    assert samples[0].detail["metrics"]['orders_total{side="buy"}'] == 42.0
    ts = [s.t for s in samples]
    assert ts == sorted(ts)
    assert len(read_run(tmp_path).monitor) == len(samples)


def test_monitor_rejects_a_timeout_not_below_the_interval():
    with pytest.raises(ValueError):
        MonitorProbe("http://127.0.0.1:1/", origin=0.0, interval_s=0.1, timeout_s=0.1)


def test_parse_prometheus():
    assert parse_prometheus('a_total{x="1"} 2\nb 3.5\n') == {'a_total{x="1"}': 2.0, "b": 3.5}
