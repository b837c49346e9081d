"""Wait strategies (one shared deadline, last observation on timeout) and free ports."""

from __future__ import annotations

import http.server
import socket
import threading
from types import SimpleNamespace

import pytest

from faultlab.errors import ReadinessTimeout, ServiceFailed
from faultlab.runtime.ports import (
    candidate_ports,
    ephemeral_range,
    free_port,
    free_ports,
    is_port_in_use,
    start_on_free_port,
)
from faultlab.runtime.waits import AllOf, CallableWait, Deadline, HttpWait, Observation, TcpWait, wait_for


class _Handler(http.server.BaseHTTPRequestHandler):
    status = 503

    def do_GET(self):
        body = b"db: down"
        self.send_response(type(self).status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    handler = type("Handler", (_Handler,), {"status": 503})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd, handler
    httpd.shutdown()
    httpd.server_close()


def test_http_wait_times_out_saying_what_it_last_saw(server):
    httpd, _ = server
    url = f"http://127.0.0.1:{httpd.server_address[1]}/health/ready"
    with pytest.raises(ReadinessTimeout) as info:
        wait_for(HttpWait(url), 1.0, poll_s=0.05, evidence=lambda: "log: connection to db refused")
    message = str(info.value)
    assert "status 503: db: down" in message and url in message
    assert info.value.evidence == "log: connection to db refused"


def test_a_wait_cut_short_by_its_deadline_also_says_what_the_check_before_saw() -> None:
    """A busy machine can make the last check time out only because the deadline bounded its
    timeout: the answer seen just before is what the service was saying."""
    clock = SimpleNamespace(t=0.0)
    clock.now = lambda: clock.t
    answers = [Observation(False, "status 503: db: down", status=503),
               Observation(False, "ReadTimeout: timed out", error="ReadTimeout: timed out")]

    def check() -> Observation:
        seen = answers.pop(0)
        clock.t = 0.1 if answers else 1.5  # the second check ends after the deadline
        return seen

    with pytest.raises(ReadinessTimeout) as info:
        wait_for(CallableWait(check, "ready"), Deadline(1.0, clock=clock), poll_s=0.0, sleep=lambda _s: None)
    assert "last seen: ReadTimeout: timed out; the check before: status 503: db: down" in str(info.value)


def test_http_wait_passes_and_recovery_hold(server):
    httpd, handler = server
    url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    threading.Timer(0.2, lambda: setattr(handler, "status", 200)).start()
    observation = wait_for(HttpWait(url), 5.0, poll_s=0.02, hold_s=0.2)
    assert observation.ok and observation.status == 200
    assert wait_for(HttpWait(url, status={200, 204}), 1.0).ok


def test_tcp_wait_reports_the_connect_error():
    port = free_port()
    with pytest.raises(ReadinessTimeout, match="ConnectionRefused"):
        wait_for(TcpWait(port), 0.2, poll_s=0.05)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))
        listener.listen()
        assert wait_for(TcpWait(port), 1.0).seen == "connected"


def test_shared_deadline_and_give_up():
    deadline = Deadline(0.3)
    calls = []
    assert wait_for(CallableWait(lambda: calls.append(1) or len(calls) >= 2, "two calls"), deadline, poll_s=0.01).ok
    with pytest.raises(ReadinessTimeout, match="ValueError: not yet"):
        wait_for(CallableWait(lambda: (_ for _ in ()).throw(ValueError("not yet"))), deadline, poll_s=0.01)
    assert deadline.expired
    with pytest.raises(ServiceFailed, match="exited with 1"):
        wait_for(CallableWait(lambda: False), 5.0, give_up=lambda: "process exited with 1")
    both = AllOf([CallableWait(lambda: True, "a"), CallableWait(lambda: False, "b")])
    with pytest.raises(ReadinessTimeout, match="b: returned False"):
        wait_for(both, 0.05, poll_s=0.01)


def test_ports_are_distinct_and_free():
    ports = free_ports(5)
    assert len(set(ports)) == 5
    assert not any(is_port_in_use(p) for p in ports)
    assert free_port() not in ports


def test_ports_are_outside_the_range_outgoing_connections_draw_from():
    # An outgoing connection's local port comes from the ephemeral range; a port handed out
    # from it could be taken by a client before the service binds it (a CI failure).
    low, high = ephemeral_range()
    ports = free_ports(200)
    assert len(set(ports)) == 200
    assert not [p for p in ports if low <= p <= high]


def test_the_candidate_stretch_follows_the_kernel_range(tmp_path):
    assert candidate_ports((32768, 60999)) == range(10000, 32768)
    assert candidate_ports((10500, 60999)) == range(61000, 65536)
    assert len(candidate_ports((1024, 65535))) == 0  # no room: the kernel picks (port 0)
    odd = tmp_path / "range"
    odd.write_text("40000\t50000\n")
    assert ephemeral_range(str(odd)) == (40000, 50000)
    odd.write_text("garbage")
    assert ephemeral_range(str(odd)) == (32768, 60999)


def test_start_on_free_port_retries_a_lost_race():
    attempts = []

    def start(port):
        attempts.append(port)
        if len(attempts) < 3:
            raise OSError(98, "Address already in use")
        return port

    assert start_on_free_port(start) == attempts[-1] and len(attempts) == 3
    with pytest.raises(ValueError):
        start_on_free_port(lambda port: (_ for _ in ()).throw(ValueError("other")))
