"""report.html in a real headless Chromium: no console errors, charts present, screenshots work."""

from __future__ import annotations

import base64
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from synthetic_run import RunSpec, write_run

from faultlab.report import write_reports
from headless_chromium import CHROMIUM, FLAGS, DevTools, first_tab, has_websocket_client, needs_chromium, running

pytestmark = needs_chromium
PNG = b"\x89PNG\r\n\x1a\n"


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
def browser(tmp_path: Path) -> Iterator[DevTools]:
    with running(tmp_path) as port:
        tools = first_tab(port, "Page", "Runtime", "Log")
        try:
            yield tools
        finally:
            tools.close()


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
