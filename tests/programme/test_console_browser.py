"""The operator console in a real headless Chromium (Debian's chromium, DevTools protocol):
two operators, each in their own tab under their own name, click through a runbook; one
confirms the other's four-eyes step (the other may not confirm their own), and the journal
records both names and times."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from programme_helpers import HERE, programme, records

from faultlab.programme.console import Console
from faultlab.programme.run import Crew

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


class Page:
    """One tab driven over the DevTools protocol: real mouse clicks and typed text."""

    def __init__(self, url: str):
        import websocket

        self.ws = websocket.create_connection(url, timeout=30)
        self.next_id = 0
        self.errors: list[str] = []

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            if message.get("method") == "Runtime.exceptionThrown":
                self.errors.append(json.dumps(message["params"])[:300])

    def value(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def wait(self, expression: str, timeout: float = 20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.value(expression)
            if found:
                return found
            time.sleep(0.1)
        raise AssertionError(f"{expression} did not hold within {timeout} s")

    def click(self, selector: str) -> None:
        box = self.wait(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return null;"
                        " e.scrollIntoView(); const r = e.getBoundingClientRect();"
                        " return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        x, y = box
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def type_into(self, selector: str, text: str) -> None:
        self.click(selector)
        self.call("Input.insertText", text=text)


@contextmanager
def chromium(tmp_path: Path):
    profile = tmp_path / "profile"
    log = (tmp_path / "chromium.log").open("wb")
    proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
                             "about:blank"], stdout=log, stderr=subprocess.STDOUT)
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            assert proc.poll() is None and time.monotonic() < deadline, "chromium did not start"
            time.sleep(0.1)
        yield int(port_file.read_text().split()[0])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def open_tab(port: int, url: str) -> Page:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/json/new?{url}", method="PUT")
    with urllib.request.urlopen(request, timeout=10) as response:
        target = json.load(response)
    page = Page(target["webSocketDebuggerUrl"])
    page.call("Runtime.enable")
    page.wait("document.readyState === 'complete' && !!document.getElementById('steps')")
    return page


def join(page: Page, name: str, role: str) -> None:
    page.type_into("#name", name)
    page.type_into("#role", role)
    page.click("#join")
    page.wait(f"document.getElementById('me').textContent.includes({json.dumps(name)})")


def status(page: Page, step: str) -> str:
    return page.value(f"(document.querySelector('tr[data-row=\"{step}\"] td[data-status]') || {{}}).dataset?.status")


@pytest.mark.skipif(not shutil.which("chromium") and not shutil.which("chromium-browser"), reason="no chromium")
def test_two_operators_click_through_a_runbook_and_the_second_confirms_the_first(tmp_path):
    pytest.importorskip("websocket")
    run_dir = tmp_path / "run"
    with Console(port=0) as console:
        operator = console.for_run()
        made, writer = programme(run_dir, HERE / "console-runbook.yaml",
                                 crew=Crew(participants=[{"name": "Aiko Tanaka", "role": "incident commander"},
                                                         {"name": "Ben Carter", "role": "DBA"}],
                                           operators=[operator], gameday=True, mode="gameday"))
        made.start(0.0)
        try:
            with chromium(tmp_path) as port:
                aiko, ben = open_tab(port, console.url), open_tab(port, console.url)
                join(aiko, "Aiko Tanaka", "incident commander")
                join(ben, "Ben Carter", "DBA")
                ben.wait("document.querySelector('button[data-step=\"assess\"][data-act=\"start\"]') !== null")
                aiko.click('button[data-step="assess"][data-act="start"]')
                aiko.wait("document.querySelector('button[data-step=\"assess\"][data-act=\"done\"]') !== null")
                aiko.click('button[data-step="assess"][data-act="done"]')
                aiko.wait("document.querySelector('button[data-step=\"assess\"][data-act=\"confirm\"]') !== null")
                # Aiko did the step: her own confirmation is refused, and the page says why.
                aiko.click('button[data-step="assess"][data-act="confirm"]')
                assert "someone else" in aiko.wait("document.getElementById('message').textContent")
                ben.wait("document.querySelector('button[data-step=\"assess\"][data-act=\"confirm\"]') !== null")
                ben.click('button[data-step="assess"][data-act="confirm"]')
                ben.wait("document.querySelector('button[data-step=\"escalate\"][data-act=\"done\"]') !== null")
                ben.click('button[data-step="escalate"][data-act="done"]')
                aiko.wait("document.querySelector('button[data-step=\"run-fix\"][data-act=\"start\"]') !== null")
                aiko.click('button[data-step="run-fix"][data-act="start"]')
                ben.wait("document.querySelector('button[data-step=\"run-fix\"][data-act=\"confirm\"]') !== null")
                ben.click('button[data-step="run-fix"][data-act="confirm"]')
                aiko.wait("document.getElementById('runbook').textContent.includes('completed')")
                assert status(ben, "run-fix") == "done"
                assert aiko.errors == [] and ben.errors == []
        finally:
            made.stop()
            writer.close()
    steps = records(run_dir, "step")
    by = {(r.step, r.event): r for r in steps}
    assert by[("assess", "started")].by == "Aiko Tanaka" and by[("assess", "done")].by == "Aiko Tanaka"
    assert by[("assess", "confirmed")].by == "Ben Carter" and by[("assess", "confirmed")].role == "DBA"
    assert by[("assess", "refused")].by == "Aiko Tanaka"
    assert by[("assess", "confirmed")].t > by[("assess", "done")].t > by[("assess", "started")].t > 0
    assert by[("escalate", "done")].by == "Ben Carter"
    assert by[("run-fix", "started")].by == "Aiko Tanaka" and by[("run-fix", "done")].by == "Aiko Tanaka"
    assert by[("run-fix", "confirmed")].by == "Ben Carter"
    actions = records(run_dir, "action")
    assert [(a.action, a.event, a.by) for a in actions] == [("command", "started", "Aiko Tanaka"),
                                                             ("command", "done", "Aiko Tanaka")]
    joined = [(r.name, r.role) for r in records(run_dir, "participants") if r.event == "joined"]
    assert ("Aiko Tanaka", "incident commander") in joined and ("Ben Carter", "DBA") in joined
    assert [r.event for r in records(run_dir, "runbook")] == ["loaded", "started", "completed"]
