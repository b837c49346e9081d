"""faultlab's end of a run's monitoring: Alertmanager's webhook and the drill's own metrics.

One small HTTP server on 127.0.0.1, in this process, for the length of a run:

- ``POST /alerts`` takes Alertmanager's webhook notifications. Every alert that starts
  firing and every resolution is journalled once (an :class:`~faultlab.journal.Alert`
  record) with its labels, when Prometheus says it became active (and ended) and when it
  was received here, and published to the run's hub as an ``alert`` event. A notification
  repeating what was already received is not journalled again.
- ``GET /metrics`` serves the drill's own state in Prometheus' text format, so the
  monitoring under test shows the drill: ``faultlab_fault_active{run_id,kind,target}`` (1
  while the fault is in effect, 0 once reverted), ``faultlab_run_phase{run_id,phase}`` (1
  for the phase the run is in), ``faultlab_canary_requests_total{run_id,outcome}`` and
  ``faultlab_canary_success_ratio{run_id}`` (the canary's requests sent over the last
  second that succeeded). It learns all of it as an observer of the run's hub.

Prometheus' times are wall-clock times; they are put on the run clock with the journal's
origin (``origin_wall``), so ``active_t`` may differ from the monotonic clock by however far
the wall clock was stepped during the run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from faultlab.hub import Hub
from faultlab.journal import Alert, JournalWriter
from faultlab.monitoring.config import METRICS_PATH, RECEIVER_PATH

__all__ = ["Receiver", "DrillMetrics", "wall_to_run", "alert_record"]

log = logging.getLogger(__name__)

_FRACTION = re.compile(r"(\.\d{1,6})\d*")
_NEVER = "0001-01-01T00:00:00Z"  # Alertmanager's endsAt of an alert still firing


def wall_to_run(wall: str, origin: datetime | None) -> float | None:
    """An RFC 3339 time as Prometheus writes it (nanoseconds, ``Z``) in seconds of the run
    clock; None when it is not a time, is Go's zero time, or there is no origin."""
    if origin is None or not isinstance(wall, str) or not wall or wall.startswith("0001-"):
        return None
    try:
        moment = datetime.fromisoformat(_FRACTION.sub(r"\1", wall, count=1).replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        return None
    return (moment - origin).total_seconds()


def _texts(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, Mapping) else {}


def alert_record(raw: Mapping[str, Any], t: float, origin: datetime | None) -> Alert | None:
    """One alert of a webhook notification as a journal record (None when it is not one)."""
    labels = _texts(raw.get("labels"))
    status = raw.get("status")
    if status not in ("firing", "resolved") or "alertname" not in labels:
        return None
    fingerprint = raw.get("fingerprint")
    if not isinstance(fingerprint, str) or not fingerprint:
        fingerprint = json.dumps(sorted(labels.items()))
    starts = str(raw.get("startsAt") or "")
    ends = str(raw.get("endsAt") or "") if status == "resolved" else ""
    return Alert(
        t=t, status=status, name=labels["alertname"], labels=labels,
        annotations=_texts(raw.get("annotations")), fingerprint=fingerprint,
        active_t=wall_to_run(starts, origin), active_wall=starts,
        ended_t=wall_to_run(ends, origin), ended_wall=ends if ends != _NEVER else "",
    )


class DrillMetrics:
    """The drill's own metrics for one run (a registry of its own), kept up to date as a
    hub observer (``fault``, ``phase`` and ``sample`` events)."""

    def __init__(self, run_id: str, *, now: Callable[[], float]):
        from prometheus_client import CollectorRegistry, Counter, Gauge

        self.run_id = run_id
        self.now = now
        self.registry = r = CollectorRegistry()
        self.fault_active = Gauge("faultlab_fault_active", "1 while the drill's fault is in effect",
                                  ["run_id", "kind", "target"], registry=r)
        self.phase = Gauge("faultlab_run_phase", "1 for the phase the drill run is in", ["run_id", "phase"],
                           registry=r)
        self.canary = Counter("faultlab_canary_requests", "The drill's canary requests by outcome",
                              ["run_id", "outcome"], registry=r)
        self.canary_ratio = Gauge("faultlab_canary_success_ratio",
                                  "Share of the canary requests sent over the last second that succeeded",
                                  ["run_id"], registry=r)
        for outcome in ("ok", "failed"):
            self.canary.labels(run_id, outcome)
        self._recent: deque[tuple[float, bool]] = deque()
        self._phases: set[str] = set()
        self._lock = threading.Lock()

    def observe(self, *, event: str, **kwargs: Any) -> None:
        """A hub observer: the drill's state from its ``fault``, ``phase`` and ``sample`` events."""
        if event == "fault" and kwargs.get("state") in ("active", "reverted"):
            child = self.fault_active.labels(self.run_id, str(kwargs.get("kind", "")), str(kwargs.get("target") or ""))
            child.set(1 if kwargs["state"] == "active" else 0)
        elif event == "phase" and kwargs.get("state") == "begin" and kwargs.get("name"):
            self.enter(str(kwargs["name"]))
        elif event == "sample" and kwargs.get("sample") is not None:
            sample = kwargs["sample"]
            self.canary.labels(self.run_id, "ok" if sample.ok else "failed").inc()
            self._canary_window(float(sample.t_send), bool(sample.ok))

    def enter(self, phase: str) -> None:
        """The run is in ``phase`` now."""
        with self._lock:
            self._phases.add(phase)
            for name in self._phases:
                self.phase.labels(self.run_id, name).set(1 if name == phase else 0)

    def _canary_window(self, t_send: float, ok: bool) -> None:
        with self._lock:
            self._recent.append((t_send, ok))
            while self._recent and self._recent[0][0] < t_send - 1.0:
                self._recent.popleft()
            ratio = sum(1 for _, good in self._recent if good) / len(self._recent)
        self.canary_ratio.labels(self.run_id).set(ratio)

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("receiver: " + format, *args)

    def _answer(self, status: int, body: bytes = b"", content_type: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.split("?")[0] != METRICS_PATH:
            self._answer(404, b"not found\n")
            return
        from prometheus_client import CONTENT_TYPE_LATEST

        self._answer(200, self.server.receiver.metrics.exposition(), CONTENT_TYPE_LATEST)

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        if self.path.split("?")[0] != RECEIVER_PATH:
            self._answer(404, b"not found\n")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            payload = json.loads(self.rfile.read(length))
        except ValueError:
            self._answer(400, b"not a JSON notification\n")
            return
        self.server.receiver.take(payload)
        self._answer(200)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, receiver: Receiver):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.receiver = receiver


class Receiver:
    """The webhook and metrics server of one run (see the module docstring).

    ``journal`` gets the alert records (times from its clock); ``origin_wall`` is the wall
    time of the run's t = 0; ``hub`` gets an ``alert`` event per record. :meth:`start`
    serves on a free port of 127.0.0.1 (:attr:`address`); :meth:`stop` is idempotent.
    """

    def __init__(self, run_id: str, *, journal: JournalWriter, origin_wall: datetime | None,
                 hub: Hub | None = None):
        self.journal = journal
        self.origin_wall = origin_wall
        self.hub = hub or Hub()
        self.metrics = DrillMetrics(run_id, now=journal.t)
        self.alerts: list[Alert] = []
        self.repeats = 0
        self._firing: dict[str, Alert] = {}
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT`` once started."""
        if self._server is None:
            raise RuntimeError("the receiver is not started")
        return f"127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Receiver:
        """Serve on a free port of 127.0.0.1, on a thread of its own."""
        self._server = _Server(self)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="faultlab-alert-receiver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (idempotent)."""
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def take(self, notification: Any) -> list[Alert]:
        """Journal the news in one webhook notification: alerts that started firing and
        resolutions not received before. Returns the records written."""
        raws = notification.get("alerts") if isinstance(notification, Mapping) else None
        written: list[Alert] = []
        for raw in raws if isinstance(raws, list) else []:
            record = alert_record(raw, self.journal.t(), self.origin_wall) if isinstance(raw, Mapping) else None
            if record is None or not self._news(record):
                continue
            with contextlib.suppress(ValueError):  # the journal closed: the run is over
                self.journal.write(record)
            written.append(record)
            self.hub.publish("alert", status=record.status, name=record.name, labels=dict(record.labels),
                             t=record.t)
        return written

    def _news(self, record: Alert) -> bool:
        with self._lock:
            known = self._firing.get(record.fingerprint)
            if record.status == "firing":
                if known is not None and known.active_wall == record.active_wall:
                    self.repeats += 1
                    return False
                self._firing[record.fingerprint] = record
            elif known is None and any(a.fingerprint == record.fingerprint and a.status == "resolved"
                                       and a.ended_wall == record.ended_wall for a in self.alerts):
                self.repeats += 1
                return False
            else:
                self._firing.pop(record.fingerprint, None)
            self.alerts.append(record)
            return True
