"""faultlab's receiver on a real socket: Alertmanager's webhook notifications become journal
records once each, and the drill's own metrics follow the run's hub."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from faultlab.engine.clock import FakeClock
from faultlab.hub import Hub
from faultlab.journal import Alert, CanarySample, JournalWriter, RunHeader, read_run
from faultlab.monitoring.receiver import Receiver, alert_record, wall_to_run

ORIGIN = datetime.fromisoformat("2026-11-25T10:00:00+00:00")


def notification(status: str, starts: str, ends: str = "0001-01-01T00:00:00Z", name: str = "DatabaseUnreachable",
                 fingerprint: str = "3a51c283f6b082e6") -> dict:
    """A webhook notification as Alertmanager 0.25 sends it (one alert in it)."""
    return {
        "receiver": "faultlab", "status": status, "version": "4", "groupKey": "{}:{alertname=...}",
        "alerts": [{"status": status, "labels": {"alertname": name, "job": "gateway", "severity": "page"},
                    "annotations": {"summary": "The gateway cannot reach its database."},
                    "startsAt": starts, "endsAt": ends, "generatorURL": "http://127.0.0.1:9090/graph",
                    "fingerprint": fingerprint}],
    }


@dataclass
class Rig:
    receiver: Receiver
    clock: FakeClock
    seen: list[dict]

    @property
    def address(self) -> str:
        return self.receiver.address


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    clock = FakeClock(start=100.0)
    journal = JournalWriter.open(tmp_path, RunHeader(run_id="run-1", origin_wall=ORIGIN.isoformat()), origin=100.0,
                                 clock=clock)
    hub = Hub()
    seen: list[dict] = []
    hub.subscribe(lambda **kw: seen.append(kw), events=["alert"])
    receiver = Receiver("run-1", journal=journal, origin_wall=ORIGIN, hub=hub).start()
    yield Rig(receiver, clock, seen)
    receiver.stop()
    journal.close()


def test_prometheus_times_go_on_the_run_clock() -> None:
    assert wall_to_run("2026-11-25T10:00:21.302123456Z", ORIGIN) == pytest.approx(21.302123)
    assert wall_to_run("2026-11-25T10:00:21.3Z", ORIGIN) == pytest.approx(21.3)
    assert wall_to_run("2026-11-25T11:00:21+01:00", ORIGIN) == pytest.approx(21.0)
    assert wall_to_run("0001-01-01T00:00:00Z", ORIGIN) is None
    assert wall_to_run("not a time", ORIGIN) is None and wall_to_run("2026-11-25T10:00:21Z", None) is None


def test_an_alert_without_a_name_or_a_status_is_not_one() -> None:
    assert alert_record({"status": "firing", "labels": {}}, 1.0, ORIGIN) is None
    assert alert_record({"status": "pending", "labels": {"alertname": "X"}}, 1.0, ORIGIN) is None


def test_each_firing_and_resolution_is_journalled_once_with_its_times(rig: Rig, tmp_path: Path) -> None:
    url = f"http://{rig.address}/alerts"
    rig.clock.advance(21.5)
    assert httpx.post(url, json=notification("firing", "2026-11-25T10:00:21.250Z")).status_code == 200
    rig.clock.advance(0.5)
    assert httpx.post(url, json=notification("firing", "2026-11-25T10:00:21.250Z")).status_code == 200  # a repeat
    rig.clock.advance(8.0)
    resolved = notification("resolved", "2026-11-25T10:00:21.250Z", "2026-11-25T10:00:29.750Z")
    assert httpx.post(url, json=resolved).status_code == 200
    assert httpx.post(url, json=resolved).status_code == 200  # sent again: not news
    assert httpx.post(url, content=b"{not json").status_code == 400
    assert httpx.get(f"http://{rig.address}/nowhere").status_code == 404
    rig.receiver.journal.close()
    run = read_run(tmp_path)
    assert run.problems == ()
    firing, done = run.of(Alert)
    assert (firing.status, firing.name, firing.t, firing.active_t) == ("firing", "DatabaseUnreachable", 21.5, 21.25)
    assert firing.labels == {"alertname": "DatabaseUnreachable", "job": "gateway", "severity": "page"}
    assert firing.active_wall == "2026-11-25T10:00:21.250Z" and firing.ended_t is None and firing.ended_wall == ""
    assert (done.status, done.t, done.active_t, done.ended_t) == ("resolved", 30.0, 21.25, 29.75)
    assert done.fingerprint == firing.fingerprint == "3a51c283f6b082e6"
    assert rig.receiver.repeats == 2
    assert [(e["status"], e["name"], e["t"]) for e in rig.seen] == [
        ("firing", "DatabaseUnreachable", 21.5), ("resolved", "DatabaseUnreachable", 30.0)]


def test_the_same_alert_firing_again_after_its_resolution_is_news(rig: Rig) -> None:
    rig.receiver.take(notification("firing", "2026-11-25T10:00:21.250Z"))
    rig.receiver.take(notification("resolved", "2026-11-25T10:00:21.250Z", "2026-11-25T10:00:29.750Z"))
    again = rig.receiver.take(notification("firing", "2026-11-25T10:00:40.250Z"))
    assert [r.active_t for r in again] == [40.25]


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_the_drill_shows_its_faults_phase_and_canary_in_its_metrics(rig: Rig) -> None:
    hub = Hub()
    hub.subscribe(rig.receiver.metrics.observe, events=["fault", "phase", "sample"])
    hub.publish("phase", name="load", state="begin", t=1.0, duration=30.0)
    hub.publish("fault", state="active", fault_id="timeline[0]", kind="db_stall", target="db")
    for i, ok in enumerate([True, True, False, True]):
        hub.publish("sample", sample=CanarySample(t_send=10.0 + i * 0.1, t_done=10.05 + i * 0.1, ok=ok,
                                                  latency_s=0.05))
    metrics = _samples(httpx.get(f"http://{rig.address}/metrics").text)
    assert metrics[("faultlab_fault_active", (("kind", "db_stall"), ("run_id", "run-1"), ("target", "db")))] == 1
    assert metrics[("faultlab_run_phase", (("phase", "load"), ("run_id", "run-1")))] == 1
    assert metrics[("faultlab_canary_requests_total", (("outcome", "ok"), ("run_id", "run-1")))] == 3
    assert metrics[("faultlab_canary_requests_total", (("outcome", "failed"), ("run_id", "run-1")))] == 1
    assert metrics[("faultlab_canary_success_ratio", (("run_id", "run-1"),))] == pytest.approx(0.75)
    hub.publish("fault", state="reverted", fault_id="timeline[0]", kind="db_stall", target="db")
    hub.publish("phase", name="settle", state="begin")
    metrics = _samples(httpx.get(f"http://{rig.address}/metrics").text)
    assert metrics[("faultlab_fault_active", (("kind", "db_stall"), ("run_id", "run-1"), ("target", "db")))] == 0
    assert metrics[("faultlab_run_phase", (("phase", "load"), ("run_id", "run-1")))] == 0
    assert metrics[("faultlab_run_phase", (("phase", "settle"), ("run_id", "run-1")))] == 1
