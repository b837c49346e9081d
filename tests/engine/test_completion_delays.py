"""The engine asks the plugin for completion delays and journals them on the run clock."""

from __future__ import annotations

import json
import types
from dataclasses import dataclass

from faultlab.engine.integrity import acknowledged as _acknowledged
from faultlab.engine.run import _record_completion_delays
from faultlab.journal import JournalWriter, RunHeader, read_run
from faultlab.plugin import load_plugin


@dataclass
class _Canary:
    t_send: float
    ack: str | None


def _plugin(name: str, **hooks):
    module = types.ModuleType(name)
    for hook, fn in hooks.items():
        setattr(module, hook, fn)
    return load_plugin(module)


def test_plugin_without_completion_delays_offers_none():
    assert _plugin("empty").completion_delays(object(), {"a"}) == {}


def test_acknowledgements_keep_their_send_time_and_delays_are_journalled(tmp_path):
    (tmp_path / "requests.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [
        {"t": 2.5, "name": "place", "ok": True, "latency_s": 0.01, "ack": "L-1"},
        {"t": 3.0, "name": "place", "ok": False, "latency_s": 1.0, "ack": None},
        {"t": 4.0, "name": "place", "ok": True, "latency_s": 0.01, "ack": "L-2"},
    ]) + '{"t": 5.0, "na')
    sent_at = _acknowledged([_Canary(1.0, "C-1"), _Canary(1.5, None)], tmp_path / "requests.jsonl")
    assert sent_at == {"C-1": 1.0, "L-1": 2.5, "L-2": 4.0}

    seen = {}

    def faultlab_completion_delays(stack, acknowledged):
        seen["acks"] = set(acknowledged)
        return {"L-2": 31.5, "C-1": 0.02, "unknown": 9.0}

    journal = JournalWriter.open(tmp_path, RunHeader(run_id="r"), origin=0.0)
    _record_completion_delays(object(), _plugin("fake_plugin", faultlab_completion_delays=faultlab_completion_delays),
                              sent_at, journal)
    journal.end("completed")
    journal.close()
    assert seen["acks"] == {"C-1", "L-1", "L-2"}
    rows = [(e.t, e.ack, e.delay_s) for e in read_run(tmp_path).completions]
    assert rows == [(1.0, "C-1", 0.02), (4.0, "L-2", 31.5)]


def test_a_failing_plugin_leaves_a_warning_not_a_crash(tmp_path):
    def faultlab_completion_delays(stack, acknowledged):
        raise RuntimeError("database gone")

    journal = JournalWriter.open(tmp_path, RunHeader(run_id="r"), origin=0.0)
    _record_completion_delays(object(), _plugin("broken_plugin", faultlab_completion_delays=faultlab_completion_delays),
                              {"a": 1.0}, journal)
    journal.close()
    run = read_run(tmp_path)
    assert not run.completions
    assert "completion delays not measured" in run.events("note")[0].message
