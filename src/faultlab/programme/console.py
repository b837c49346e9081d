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

__all__ = ["Console", "ConsoleRun", "PAGE"]

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
    return {"t": event.get("t", 0.0), "what": f"{event['event'] if 'event' in event else ''} {subject}".strip(),
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
        self._send(status, json.dumps(data, ensure_ascii=False, default=str).encode(), "application/json; charset=utf-8")

    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        if self.path in ("/", "/index.html"):
            self._send(200, PAGE.encode(), "text/html; charset=utf-8")
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


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>faultlab operator console</title>
<style>
body{font-family:system-ui,sans-serif;margin:1em;color:#222}
h1{font-size:1.3em;margin:.2em 0} h2{font-size:1.05em;margin:1em 0 .3em}
table{border-collapse:collapse;width:100%} td,th{border:1px solid #ccc;padding:.25em .4em;font-size:.9em;text-align:left}
.bad{color:#b00020;font-weight:bold} .ok{color:#0a7b28} .muted{color:#777;font-size:.85em}
#message{min-height:1.3em} button{margin-right:.2em}
.grid{display:grid;grid-template-columns:2fr 1fr;gap:1em}
</style></head><body>
<h1>faultlab operator console <span id="scenario" class="muted"></span></h1>
<div>Your name <input id="name" autocomplete="off"> role <input id="role" autocomplete="off">
<button id="join">Join</button> <span id="me" class="muted"></span></div>
<div id="message" role="status"></div>
<div class="grid"><div>
<h2>Runbook <span id="runbook" class="muted"></span></h2>
<table><thead><tr><th>#</th><th>Step</th><th>Kind</th><th>Expected</th><th>Started</th><th>Done</th>
<th>Second person</th><th>Status</th><th></th></tr></thead><tbody id="steps"></tbody></table>
<h2>Decisions</h2><table><tbody id="decisions"></tbody></table>
</div><div>
<h2>Health</h2><div id="health">waiting for the run</div>
<h2>Active faults</h2><ul id="faults"></ul>
<h2>Timeline</h2><ul id="timeline" class="muted"></ul>
</div></div>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
let me = sessionStorage.getItem("faultlab-name") || "";
function esc(s){return String(s ?? "").replace(/[&<>"]/g, c => ({"&":"&amp;","<":"&lt;",">":"&gt;","\\"":"&quot;"}[c]));}
function t(v){return v === null || v === undefined ? "" : Number(v).toFixed(1);}
async function post(path, body){
  const r = await fetch(path, {method:"POST", headers:{"Content-Type":"application/json"}, body: JSON.stringify(body)});
  const data = await r.json();
  $("message").textContent = r.ok ? "" : ("refused: " + data.error);
  $("message").className = r.ok ? "" : "bad";
  refresh();
  return r.ok;
}
$("join").addEventListener("click", async () => {
  me = $("name").value.trim();
  sessionStorage.setItem("faultlab-name", me);
  if (await post("/api/join", {by: me, role: $("role").value.trim()})) $("me").textContent = "you are " + me;
});
if (me) { $("name").value = me; $("me").textContent = "you are " + me; }
function act(body){
  if (!me) { $("message").textContent = "join with your name first"; $("message").className = "bad"; return; }
  post("/api/act", Object.assign({by: me}, body));
}
document.addEventListener("click", (e) => {
  const b = e.target.closest("button[data-act]");
  if (!b) return;
  if (b.dataset.decision) act({act: "decide", decision: b.dataset.decision});
  else act({act: b.dataset.act, step: b.dataset.step});
});
function buttons(s){
  const out = [];
  const b = (act) => `<button data-step="${esc(s.id)}" data-act="${act}">${act}</button>`;
  if (["pending","ready"].includes(s.status) && s.started_t === null && s.kind !== "check") out.push(b("start"));
  if (["ready","started","pending"].includes(s.status) && (s.kind === "manual" || s.kind === "notify")) out.push(b("done"));
  if (s.status === "done" && s.four_eyes && !s.confirmed_by) out.push(b("confirm"));
  if (!["done","skipped","failed"].includes(s.status)) out.push(b("skip"));
  return out.join("");
}
function render(st){
  if (!st.run) { return; }
  $("scenario").textContent = `${st.run.id || ""} ${st.run.title || ""} · t = ${t(st.t)} s`;
  const h = st.health || {}, m = st.monitor || {};
  const rate = h.success_rate === null || h.success_rate === undefined ? "—" : (h.success_rate * 100).toFixed(1) + " %";
  const p99 = h.p99_s === null || h.p99_s === undefined ? "—" : (h.p99_s * 1000).toFixed(0) + " ms";
  $("health").innerHTML = `success ${rate}, p99 ${p99} (${h.samples || 0} samples) · monitoring: ` +
    (m.ready === undefined ? "—" : (m.ready ? '<span class="ok">ready</span>' : '<span class="bad">NOT READY</span>')) +
    (m.alerts && m.alerts.length ? ` <span class="bad">${esc(m.alerts.join(", "))}</span>` : "");
  $("faults").innerHTML = (st.faults || []).map(f => `<li>${esc(f.id)} ${esc(f.kind)} on ${esc(f.target)} since ${t(f.since)} s</li>`).join("") || "<li>none</li>";
  const rb = st.runbook || {}, docs = rb.documented || {};
  $("runbook").textContent = `${rb.id || ""} ${rb.title || ""} — ${rb.status || ""}`;
  $("steps").innerHTML = (st.desk.steps || []).map((s, i) => {
    const d = docs[s.id] || {};
    return `<tr data-row="${esc(s.id)}"><td>${i + 1}</td><td>${esc(d.title)}<br><span class="muted">${esc(d.title_ja || "")}</span></td>` +
      `<td>${esc(s.kind)}${s.four_eyes ? " · four-eyes" : ""}</td><td>${t(d.expect)} s</td>` +
      `<td>${t(s.started_t)} ${esc(s.started_by)}</td><td>${t(s.done_t)} ${esc(s.done_by)}</td>` +
      `<td>${esc(s.confirmed_by)}</td><td class="${s.status === "failed" ? "bad" : ""}" data-status="${esc(s.status)}">${esc(s.status)}</td><td>${buttons(s)}</td></tr>`;
  }).join("");
  $("decisions").innerHTML = (st.desk.decisions || []).map(d =>
    `<tr><td>${esc(d.id)}</td><td>${esc(d.rule)}</td><td>${esc(d.status)} ${esc(d.by)}</td><td>` +
    (d.status === "awaiting" ? `<button data-decision="${esc(d.id)}" data-act="decide">decide (${esc(d.role)})</button>` : "") +
    `</td></tr>`).join("") || "<tr><td>none</td></tr>";
  $("timeline").innerHTML = (st.timeline || []).slice(-25).reverse().map(e => `<li>${t(e.t)} ${esc(e.detail || e.what)}</li>`).join("");
}
async function refresh(){
  try { const r = await fetch("/api/state"); render(await r.json()); } catch (e) { /* the drill may have ended */ }
}
refresh(); setInterval(refresh, 500);
</script></body></html>
"""
