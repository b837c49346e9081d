"""Journal: round trip, truncated last line, crashed runs, thread safety."""

from __future__ import annotations

import json
import threading

import pytest

from faultlab.engine.clock import FakeClock
from faultlab.errors import InputError
from faultlab.journal import (
    SCHEMA,
    CanarySample,
    Decision,
    End,
    FaultEvent,
    Integrity,
    JournalWriter,
    MonitorSample,
    Note,
    Phase,
    RequestSample,
    RunHeader,
    UnknownRecord,
    read_run,
)


def header(**kw):
    return RunHeader(
        run_id="r-1",
        scenario={"id": "FT-01", "title": "db stall", "file": "s.yaml", "sha256": "ab"},
        stack={"name": "trading", "file": "t.yaml", "sha256": "cd"},
        origin_wall="2026-11-25T10:00:00.000000+00:00",
        duration_s=90.0,
        **kw,
    )


def test_round_trip(tmp_path):
    clock = FakeClock(start=50.0)
    with JournalWriter.open(tmp_path, header(), origin=50.0, clock=clock) as journal:
        journal.phase("load", "begin")
        clock.advance(15.0)
        journal.fault("planned", "timeline[0]", kind="db_stall", target="db", params={"mode": "freeze"},
                      planned_t=15.0, revert_plan="SIGCONT postgres")
        journal.fault("active", "timeline[0]", kind="db_stall", target="db", planned_t=15.0)
        journal.write(Integrity(t=80.0, acknowledged=3, checked={"lost": 0}, violations=[]))
        journal.write(Decision(t=81.0, what="abort", why="x"))
        journal.canary({"t_send": 1.0, "t_done": 1.2, "ok": True, "latency_s": 0.2, "status": 201, "ack": "c-1"})
        journal.canary(CanarySample(t_send=2.0, t_done=3.0, ok=False, latency_s=1.0, error="timeout"))
        journal.monitor(MonitorSample(t=1.0, ready=True, status=200, latency_s=0.01, detail={"db": "ok"}))
        journal.request(RequestSample(t=1.5, name="place_order", ok=True, latency_s=0.02, status=201, ack="c-9"))
        journal.end("completed")

    lines = (tmp_path / "journal.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    assert first["type"] == "run" and first["schema"] == SCHEMA
    assert all("type" in json.loads(line) for line in lines)
    assert "type" not in json.loads((tmp_path / "canary.jsonl").read_text().splitlines()[0])

    run = read_run(tmp_path)
    assert run.header.run_id == "r-1" and run.header.scenario["id"] == "FT-01"
    assert not run.crashed and run.status == "completed"
    assert [type(r) for r in run.records] == [Phase, FaultEvent, FaultEvent, Integrity, Decision, End]
    active = run.faults[1]
    assert active.event == "active" and active.t == 15.0 and active.planned_t == 15.0
    assert run.faults[0].revert_plan == "SIGCONT postgres"
    assert run.by_type["fault"] == run.faults
    assert run.events("phase") == run.events(Phase) == run.phases
    assert run.canary[0].ack == "c-1" and run.canary[1].error == "timeout"
    assert run.monitor[0].detail == {"db": "ok"}
    assert run.requests[0].name == "place_order"
    assert run.truncated == ()


def test_truncated_last_line_and_missing_end_mean_crashed(tmp_path):
    journal = JournalWriter.open(tmp_path, header(), origin=0.0, clock=FakeClock(0.0))
    journal.fault("planned", "timeline[0]", kind="kill", target="gateway")
    journal.canary({"t_send": 1.0, "t_done": 1.1, "ok": True, "latency_s": 0.1})
    journal.close()
    with open(tmp_path / "journal.jsonl", "a") as fh:
        fh.write('{"type":"fault","t":15.2,"event":"inj')
    with open(tmp_path / "canary.jsonl", "a") as fh:
        fh.write('{"t_send":2.0,"t_d')
    run = read_run(tmp_path)
    assert run.crashed and run.status == "crashed"
    assert [f.event for f in run.faults] == ["planned"]
    assert len(run.canary) == 1
    assert set(run.truncated) == {"journal.jsonl", "canary.jsonl"}
    assert [(p.file, p.line) for p in run.problems] == [("journal.jsonl", 3), ("canary.jsonl", 2)]




def test_unknown_schema_type_and_extra_keys(tmp_path):
    (tmp_path / "journal.jsonl").write_text(
        json.dumps({"type": "run", "schema": "faultlab.journal/9", "run_id": "x"}) + "\n"
    )
    with pytest.raises(InputError, match="unsupported schema"):
        read_run(tmp_path)
    (tmp_path / "journal.jsonl").write_text(
        json.dumps({"type": "run", "schema": SCHEMA, "run_id": "x", "new_key": 1}) + "\n"
        + json.dumps({"type": "page", "t": 3.0, "name": "db down"}) + "\n"
        + json.dumps({"type": "note", "t": 4.0, "message": "hi", "by": "ops"}) + "\n"
    )
    run = read_run(tmp_path)
    assert run.problems == ()
    assert run.header.extra == {"new_key": 1}
    assert run.header.to_dict()["new_key"] == 1
    assert isinstance(run.records[0], UnknownRecord) and run.events("page")[0].raw["name"] == "db down"
    note = run.records[1]
    assert isinstance(note, Note) and note.to_dict()["by"] == "ops"
    assert run.crashed


def test_writer_rules(tmp_path):
    journal = JournalWriter(tmp_path / "a", origin=0.0)
    with pytest.raises(ValueError):
        journal.note("before header")
    JournalWriter.open(tmp_path / "b", header(), origin=0.0).close()
    with pytest.raises(FileExistsError):
        JournalWriter.open(tmp_path / "b", header(), origin=0.0)
    with pytest.raises(InputError):
        read_run(tmp_path / "nothing")


def test_concurrent_writers_never_interleave_lines(tmp_path):
    journal = JournalWriter.open(tmp_path, header(), origin=0.0)

    def hammer(n):
        for i in range(300):
            journal.note(f"thread {n} line {i} " + "x" * 200)
            journal.canary({"t_send": i, "t_done": i, "ok": True, "latency_s": 0.0, "ack": str(n)})

    threads = [threading.Thread(target=hammer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    journal.end("completed")
    journal.close()
    journal.close()
    run = read_run(tmp_path)
    assert len(run.events("note")) == 1800 and len(run.canary) == 1800
    assert run.problems == () and not run.crashed
