"""Debian's Chromium, headless, for the tests that check pages in a real browser.

One browser per test (``running``), one DevTools Protocol client per tab (``DevTools``):
the report tests load report.html and collect console errors; the console test clicks and
types in two tabs. The tests' folder is on ``sys.path`` (pytest puts the folder of the root
``conftest.py`` there), so any test imports this module by name.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium, as .ci/run does)"
)


def has_websocket_client() -> bool:
    try:
        import websocket  # noqa: F401
    except ImportError:
        return False
    return True


class DevTools:
    """A minimal Chrome DevTools Protocol client over one tab's websocket.

    Every event that arrives while waiting for an answer is kept in ``events``, so a test can
    read the console messages and exceptions of what it loaded (``errors``).
    """

    def __init__(self, url: str):
        import websocket

        self.ws = websocket.create_connection(url, timeout=30)
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = 30.0) -> None:
        """Until an event ``method`` has arrived."""
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {method} within {timeout} s")
            self.events.append(json.loads(self.ws.recv()))

    def settle(self, seconds: float = 0.5) -> None:
        """Collect whatever events arrive in the next moments (late console messages)."""
        self.ws.settimeout(seconds)
        try:
            while True:
                self.events.append(json.loads(self.ws.recv()))
        except Exception:  # noqa: BLE001 - websocket timeout ends the quiet period
            pass
        finally:
            self.ws.settimeout(30)

    def errors(self) -> list[str]:
        """Uncaught exceptions, console errors and failed loads among the events so far."""
        found = []
        for e in self.events:
            method, params = e.get("method"), e.get("params", {})
            if method == "Runtime.exceptionThrown":
                details = params.get("exceptionDetails", {})
                found.append(f"{details.get('text', '')} {details.get('exception', {}).get('description', '')}")
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(json.dumps(params.get("args", []))[:300])
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                found.append(params["entry"].get("text", ""))
        return found

    def value(self, expression: str):
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def wait(self, expression: str, timeout: float = 20.0):
        """The first truthy value of ``expression``, polled every 0.1 s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.value(expression)
            if found:
                return found
            time.sleep(0.1)
        raise AssertionError(f"{expression} did not hold within {timeout} s")

    def click(self, selector: str) -> None:
        """A real mouse click in the middle of the element."""
        box = self.wait(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return null;"
                        " e.scrollIntoView(); const r = e.getBoundingClientRect();"
                        " return [r.x + r.width / 2, r.y + r.height / 2]; })()")
        x, y = box
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def type_into(self, selector: str, text: str) -> None:
        self.click(selector)
        self.call("Input.insertText", text=text)

    def close(self) -> None:
        self.ws.close()


@contextmanager
def running(tmp_path: Path) -> Iterator[int]:
    """A headless Chromium with a fresh profile under ``tmp_path``; yields its DevTools port."""
    profile = tmp_path / "chromium-profile"
    log_path = tmp_path / "chromium.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
                                 "about:blank"], stdout=log, stderr=subprocess.STDOUT)
        try:
            port_file = profile / "DevToolsActivePort"
            deadline = time.monotonic() + 60
            while not (port_file.exists() and port_file.read_text().strip()):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"chromium did not start: {log_path.read_text(errors='replace')[-2000:]}")
                time.sleep(0.1)
            yield int(port_file.read_text().split()[0])
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def first_tab(port: int, *domains: str) -> DevTools:
    """The browser's blank tab, with the events of ``domains`` switched on."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
        pages = [t for t in json.load(response) if t.get("type") == "page"]
    return _enabled(DevTools(pages[0]["webSocketDebuggerUrl"]), domains)


def new_tab(port: int, url: str, *domains: str) -> DevTools:
    """A new tab opened on ``url``, with the events of ``domains`` switched on."""
    request = urllib.request.Request(f"http://127.0.0.1:{port}/json/new?{url}", method="PUT")
    with urllib.request.urlopen(request, timeout=10) as response:
        target = json.load(response)
    return _enabled(DevTools(target["webSocketDebuggerUrl"]), domains)


def _enabled(tab: DevTools, domains: tuple[str, ...]) -> DevTools:
    for domain in domains:
        tab.call(f"{domain}.enable")
    return tab
