"""report.html in a real headless Chromium: no console errors, charts present, screenshots work."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
from synthetic_run import RunSpec, write_run

from faultlab.report import write_reports

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install -y chromium, as .ci/run does)"
)
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
PNG = b"\x89PNG\r\n\x1a\n"


class DevTools:
    """A minimal Chrome DevTools Protocol client over one page's websocket."""

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


def has_websocket_client() -> bool:
    try:
        import websocket  # noqa: F401
    except ImportError:
        return False
    return True


def logged_console(page: Path, tmp_path: Path) -> tuple[list[str], str]:
    """Load ``page`` with Chromium's own logging: every console line, and the final DOM.

    The fallback when websocket-client is missing; the log cannot tell console.error from
    console.log, so any console output at all counts (report.html runs no script).
    """
    result = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile-log'}", "--enable-logging=stderr", "--v=0",
         "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    )
    return [line for line in result.stderr.splitlines() if ":CONSOLE" in line], result.stdout


@contextmanager
def browser(tmp_path: Path):
    profile = tmp_path / "chromium-profile"
    log = (tmp_path / "chromium.log").open("wb")
    proc = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (tmp_path / "chromium.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"chromium did not start: {log}")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            pages = [t for t in json.load(response) if t.get("type") == "page"]
        tools = DevTools(pages[0]["webSocketDebuggerUrl"])
        for domain in ("Page", "Runtime", "Log"):
            tools.call(f"{domain}.enable")
        yield tools
        tools.ws.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def load(tools: DevTools, page: Path) -> None:
    tools.events.clear()
    tools.call("Page.navigate", url=page.resolve().as_uri())
    tools.wait_for("Page.loadEventFired")
    tools.settle()


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    run = write_run(tmp_path_factory.mktemp("html"), RunSpec(planned_at=18.0))
    write_reports(run, langs=("en", "ja"))
    return run


CHART_KEYS = ["success_rate", "p99_latency", "throughput", "completion_delay"]


def test_report_html_without_devtools_via_chromium_logging(report_dir, tmp_path):
    for name in ("report.html", "report.ja.html"):
        console, dom = logged_console(report_dir / name, tmp_path)
        assert console == [], name
        assert re.findall(r'<svg[^>]*data-chart="([a-z_0-9]+)"', dom) == CHART_KEYS


def test_the_logging_check_does_catch_console_output(tmp_path):
    broken = tmp_path / "broken.html"
    broken.write_text("<html><body><script>console.error('boom'); undefinedCall();</script></body></html>")
    console, _ = logged_console(broken, tmp_path)
    assert any("boom" in line for line in console) and any("undefinedCall" in line for line in console)


@pytest.mark.skipif(not has_websocket_client(), reason="websocket-client is not installed: checked via logging above")
def test_report_html_loads_without_console_errors_and_shows_the_charts(report_dir, tmp_path):
    with browser(tmp_path) as tools:
        for name in ("report.html", "report.ja.html"):
            load(tools, report_dir / name)
            assert tools.errors() == [], name
            charts = tools.call("Runtime.evaluate", returnByValue=True, expression=(
                "Array.from(document.querySelectorAll('figure.chart svg')).map(s => "
                "[s.dataset.chart, s.getBoundingClientRect().width > 100, s.querySelectorAll('path').length])"
            ))["result"]["value"]
            assert [c[0] for c in charts] == CHART_KEYS
            assert all(visible and paths > 5 for _, visible, paths in charts)
            external = tools.call("Runtime.evaluate", returnByValue=True, expression=(
                "document.querySelectorAll('script[src], link[href], img[src], iframe').length"
            ))["result"]["value"]
            assert external == 0, "report.html must be self-contained"
            shot = tools.call("Page.captureScreenshot", format="png")
            assert base64.b64decode(shot["data"]).startswith(PNG)


@pytest.mark.skipif(not has_websocket_client(), reason="websocket-client is not installed: checked via logging above")
def test_the_console_check_does_catch_errors(tmp_path):
    broken = tmp_path / "broken.html"
    broken.write_text("<html><body><script>console.error('boom'); undefinedCall();</script>"
                      "<img src='missing.png'></body></html>")
    with browser(tmp_path) as tools:
        load(tools, broken)
        errors = tools.errors()
    assert any("boom" in e for e in errors) and any("undefinedCall" in e for e in errors)
    assert any("missing.png" in e or "ERR_FILE_NOT_FOUND" in e for e in errors), errors


def test_screenshot_from_the_command_line(report_dir, tmp_path):
    shot = tmp_path / "report.png"
    subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}",
         "--window-size=1280,2400", (report_dir / "report.html").resolve().as_uri()],
        capture_output=True, timeout=120, check=True,
    )
    assert shot.read_bytes().startswith(PNG) and shot.stat().st_size > 10_000
