"""The engine asks the plugin for execution delays and journals them on the run clock."""

from __future__ import annotations

import json
import types
from dataclasses import dataclass

from faultlab.engine.journal import JournalWriter, RunHeader, read_run
from faultlab.engine.run import _acknowledged, _record_execution_delays
from faultlab.plugin import DrillPlugin


@dataclass
class _Canary:
    t_send: float
    ack: str | None


def test_plugin_without_execution_delays_offers_none():
    assert DrillPlugin("empty", types.ModuleType("empty")).execution_delays(object(), {"a"}) == {}


def test_acknowledgements_keep_their_send_time_and_delays_are_journalled(tmp_path):
    (tmp_path / "requests.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [
        {"t": 2.5, "name": "place_order", "ok": True, "ack": "L-1"},
        {"t": 3.0, "name": "place_order", "ok": False, "ack": None},
        {"t": 4.0, "name": "place_order", "ok": True, "ack": "L-2"},
    ]) + '{"t": 5.0, "na')
    sent_at = _acknowledged([_Canary(1.0, "C-1"), _Canary(1.5, None)], tmp_path / "requests.jsonl")
    assert sent_at == {"C-1": 1.0, "L-1": 2.5, "L-2": 4.0}

    module = types.ModuleType("fake_plugin")
    seen = {}

    def execution_delays(stack, acknowledged):
        seen["acks"] = set(acknowledged)
        return {"L-2": 31.5, "C-1": 0.02, "unknown": 9.0}

    module.execution_delays = execution_delays
    journal = JournalWriter.open(tmp_path, RunHeader(run_id="r"), origin=0.0)
    _record_execution_delays(object(), DrillPlugin("fake_plugin", module), sent_at, journal)
    journal.end("completed")
    journal.close()
    assert seen["acks"] == {"C-1", "L-1", "L-2"}
    rows = [(e.t, e.ack, e.execution_delay_s) for e in read_run(tmp_path).executions]
    assert rows == [(1.0, "C-1", 0.02), (4.0, "L-2", 31.5)]


def test_a_failing_plugin_leaves_a_warning_not_a_crash(tmp_path):
    module = types.ModuleType("broken_plugin")

    def execution_delays(stack, acknowledged):
        raise RuntimeError("database gone")

    module.execution_delays = execution_delays
    journal = JournalWriter.open(tmp_path, RunHeader(run_id="r"), origin=0.0)
    _record_execution_delays(object(), DrillPlugin("broken_plugin", module), {"a": 1.0}, journal)
    journal.close()
    run = read_run(tmp_path)
    assert not run.executions
    assert "execution delays not measured" in run.events("note")[0].message
