"""The operator console in a real headless Chromium (Debian's chromium, DevTools protocol):
two operators, each in their own tab under their own name, click through a runbook; one
confirms the other's four-eyes step (the other may not confirm their own), and the journal
records both names and times."""

from __future__ import annotations

import json

import pytest
from programme_helpers import HERE, programme, records

from faultlab.programme.console import Console
from faultlab.programme.run import Crew
from headless_chromium import DevTools, needs_chromium, new_tab, running

pytestmark = needs_chromium


def open_tab(port: int, url: str) -> DevTools:
    page = new_tab(port, url, "Runtime")
    page.wait("document.readyState === 'complete' && !!document.getElementById('steps')")
    return page


def join(page: DevTools, name: str, role: str) -> None:
    page.type_into("#name", name)
    page.type_into("#role", role)
    page.click("#join")
    page.wait(f"document.getElementById('me').textContent.includes({json.dumps(name)})")


def status(page: DevTools, step: str) -> str:
    return page.value(f"(document.querySelector('tr[data-row=\"{step}\"] td[data-status]') || {{}}).dataset?.status")


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
            with running(tmp_path) as port:
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
                assert aiko.errors() == [] and ben.errors() == []
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
