"""The operator console: a local web page on 127.0.0.1 for the people of a game day.

``faultlab drill PLAN --gameday`` serves it (``--console-port``, 8700 by default) for as long
as the drill runs, to several people at once, each in their own browser tab under their own
name: live health (the canary's success rate and p99 over the last window, the monitoring's
readiness and alerts), the timeline, the active faults, the runbook with start / done /
confirm / skip buttons, and the decisions awaiting a person. Every button goes to the
:class:`~faultlab.programme.desk.Desk`, which journals who did what when and refuses what the
rules forbid (a second person who is the first); the page shows the refusal.

It listens on 127.0.0.1 only and takes only JSON posts (a page of another origin cannot post
JSON here without a preflight this server does not answer). The page is self-contained.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

from faultlab.programme.desk import Desk, DeskRefusal

if TYPE_CHECKING:
    from faultlab.programme.run import Programme

__all__ = ["Console", "ConsoleRun", "page"]

_LOOPBACK = "127.0.0.1"


class ConsoleRun:
    """The console's view of one run (an operator of the run's crew)."""

    def __init__(self, console: Console):
        self.console = console
        self.desk: Desk | None = None
        self.programme: Programme | None = None
        self.faults: dict[str, dict[str, Any]] = {}
        self.events: deque[dict[str, Any]] = deque(maxlen=200)
        self._lock = threading.Lock()
        self.closed = False

    def attach(self, desk: Desk, programme: Programme | None = None) -> None:
        self.desk, self.programme = desk, programme
        if programme is not None and programme.hub is not None:
            programme.hub.subscribe(self._observe, events=["fault", "decision", "phase"])
        self.console.current = self

    def close(self) -> None:
        self.closed = True

    def _observe(self, *, event: str, **arguments: Any) -> None:
        if self.closed or self.desk is None:
            return
        t = round(self.desk.journal.t(), 3)
        with self._lock:
            if event == "fault":
                fault_id = str(arguments.get("fault_id"))
                if arguments.get("state") == "active":
                    self.faults[fault_id] = {"id": fault_id, "kind": arguments.get("kind"),
                                             "target": arguments.get("target"), "since": t}
                else:
                    self.faults.pop(fault_id, None)
                self.events.append({"t": t, "what": f"fault {arguments.get('state')}",
                                    "detail": f"{fault_id} {arguments.get('kind')} on {arguments.get('target')}"})
            elif event == "decision":
                self.events.append({"t": t, "what": "decision", "detail": f"{arguments.get('what')}"})
            elif event == "phase":
                self.events.append({"t": t, "what": f"phase {arguments.get('state')}",
                                    "detail": str(arguments.get("name"))})

    def state(self) -> dict[str, Any]:
        """Everything the page shows, now."""
        desk = self.desk
        if desk is None:
            return {"run": None}
        programme = self.programme
        now = desk.journal.t()
        health: dict[str, Any] = {}
        monitor: dict[str, Any] = {}
        scenario: dict[str, Any] = {}
        if programme is not None:
            readings = programme.readings
            if readings.health is not None:
                count, rate, p99 = readings.health.since(now - readings.window_s)
                health = {"samples": count, "success_rate": rate, "p99_s": p99}
            sample = readings.monitor.latest
            if sample is not None:
                monitor = {"ready": sample.ready, "alerts": readings.monitor.alerts(sample), "t": round(sample.t, 3)}
            scenario = {"id": programme.scenario.id, "title": programme.scenario.title}
        documented = {}
        if desk.runbook is not None:
            for s in desk.runbook.steps:
                documented[s.id] = {"title": s.title.en, "title_ja": s.title.ja, "expect": s.expect, "role": s.role,
                                    "instructions": s.instructions.en if s.instructions else None}
        with self._lock:
            faults, events = list(self.faults.values()), list(self.events)
        desk_state = desk.snapshot()
        timeline = sorted(events + [_desk_event(e) for e in desk_state.pop("recent")], key=lambda e: e["t"])
        return {"run": scenario, "t": round(now, 3), "health": health, "monitor": monitor, "faults": faults,
                "runbook": {"id": desk.runbook_id, "title": desk.runbook.title.en if desk.runbook else None,
                            "status": desk_state["runbook"], "documented": documented},
                "desk": desk_state, "timeline": timeline[-60:]}


def _desk_event(event: dict[str, Any]) -> dict[str, Any]:
    subject = event.get("step") or event.get("decision") or event.get("name") or event.get("status") or ""
    who = f" by {event['by']}" if event.get("by") else ""
    why = f": {event['why']}" if event.get("why") else ""
    return {"t": event.get("t", 0.0), "what": f"{event.get('event', '')} {subject}".strip(),
            "detail": f"{event.get('event', '')} {subject}{who}{why}".strip()}


class Console:
    """The console's web server, shared by every run of a drill (``serve`` once, ``close`` at the end)."""

    def __init__(self, port: int = 8700, host: str = _LOOPBACK):
        if host != _LOOPBACK:
            raise ValueError("the operator console listens on 127.0.0.1 only")
        self.host, self.port = host, port
        self.current: ConsoleRun | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def for_run(self) -> ConsoleRun:
        """A new operator for the next run (the page switches to it when the run starts)."""
        return ConsoleRun(self)

    def serve(self) -> None:
        """Start serving on a background thread (``port`` 0: any free port, then ``port`` is it)."""
        console = self

        class Handler(_Handler):
            pass

        Handler.console = console
        self._server = ThreadingHTTPServer((self.host, self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="faultlab-console", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Console:
        self.serve()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Handler(BaseHTTPRequestHandler):
    console: Console
    server_version = "faultlab-console"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        """Quiet: the journal is the record."""

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        body = json.dumps(data, ensure_ascii=False, default=str).encode()
        self._send(status, body, "application/json; charset=utf-8")

    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        if self.path in ("/", "/index.html"):
            self._send(200, page().encode(), "text/html; charset=utf-8")
        elif self.path == "/api/state":
            run = self.console.current
            self._json(200, run.state() if run is not None else {"run": None})
        else:
            self._json(404, {"error": "no such page"})

    def do_POST(self) -> None:  # noqa: N802 - the base class's name
        if not self.headers.get("Content-Type", "").startswith("application/json"):
            self._json(415, {"error": "post JSON"})
            return
        try:
            length = min(int(self.headers.get("Content-Length", "0")), 65536)
            body = json.loads(self.rfile.read(length) or b"{}")
            if not isinstance(body, dict):
                raise ValueError("a JSON object")
        except ValueError as exc:
            self._json(400, {"error": f"bad request: {exc}"})
            return
        run = self.console.current
        if run is None or run.desk is None:
            self._json(409, {"error": "no run is under way"})
            return
        try:
            self._act(run.desk, self.path, body)
        except DeskRefusal as exc:
            self._json(409, {"error": str(exc)})
            return
        except (KeyError, TypeError) as exc:
            self._json(400, {"error": f"bad request: missing {exc}"})
            return
        self._json(200, {"ok": True})

    @staticmethod
    def _act(desk: Desk, path: str, body: dict[str, Any]) -> None:
        by = str(body.get("by") or "")
        if path == "/api/join":
            desk.join(by, str(body.get("role") or ""))
            return
        if path != "/api/act":
            raise DeskRefusal(f"no such action {path}")
        act = body["act"]
        if act == "decide":
            desk.confirm_decision(str(body["decision"]), by)
            return
        step = str(body["step"])
        if act == "start":
            desk.start(step, by)
        elif act == "done":
            desk.done(step, by)
        elif act == "confirm":
            desk.confirm(step, by)
        elif act == "skip":
            desk.skip(step, by, str(body.get("reason") or "skipped at the console"))
        else:
            raise DeskRefusal(f"unknown act {act!r}")


def page() -> str:
    """The console's page (``console.html`` beside this module), read when first served."""
    global _PAGE
    if _PAGE is None:
        from importlib.resources import files

        _PAGE = files("faultlab.programme").joinpath("console.html").read_text(encoding="utf-8")
    return _PAGE


_PAGE: str | None = None
