"""The one reader tolerates a damaged run directory: typed records plus problems naming file:line."""

from __future__ import annotations

import json

import pytest

from faultlab.errors import InputError
from faultlab.journal import (
    SCHEMA,
    CanarySample,
    End,
    FaultEvent,
    Integrity,
    Note,
    RequestSample,
    RunHeader,
    UnknownRecord,
    read_lines,
    read_run,
    read_samples,
    typed_record,
)

HEADER = {"type": "run", "schema": SCHEMA, "run_id": "r-1", "window_s": 1.0, "hold_s": 5.0,
          "steady_state": {"success_rate": {"min": 0.99}}, "targets": {"recover_within": 30.0}}
FAULT = {"type": "fault", "t": 15.0, "event": "active", "fault_id": "timeline[0]", "kind": "db_stall"}
END = {"type": "end", "t": 60.0, "status": "completed"}
REQUEST = {"t": 1.0, "name": "place_order", "ok": True, "latency_s": 0.02, "status": 201, "ack": "l-1", "error": None}


def write(path, *lines):
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))


def problems(run):
    return [str(p) for p in run.problems]


def test_a_torn_last_line_after_kill_is_dropped_and_named(tmp_path):
    write(tmp_path / "journal.jsonl", HEADER, FAULT)
    with open(tmp_path / "journal.jsonl", "a") as fh:
        fh.write('{"type":"fault","t":25.0,"event":"rev')
    write(tmp_path / "requests.jsonl", REQUEST)
    with open(tmp_path / "requests.jsonl", "a") as fh:
        fh.write('{"t": 1.1, "name": "pla')
    run = read_run(tmp_path)
    assert [type(r) for r in run.records] == [FaultEvent]
    assert len(run.requests) == 1 and run.crashed
    assert set(run.truncated) == {"journal.jsonl", "requests.jsonl"}
    assert problems(run) == [
        "journal.jsonl:3: torn last line (the writer was stopped mid-line); line skipped",
        "requests.jsonl:2: torn last line (the writer was stopped mid-line); line skipped",
    ]


def test_a_garbled_middle_line_is_a_problem_not_a_refusal(tmp_path):
    write(tmp_path / "journal.jsonl", HEADER, FAULT, "garbage \x00 here", [1, 2], END)
    run = read_run(tmp_path)
    assert [type(r) for r in run.records] == [FaultEvent, End]
    assert run.status == "completed" and run.truncated == ()
    assert problems(run) == ["journal.jsonl:3: not JSON; line skipped",
                             "journal.jsonl:4: not a JSON object; line skipped"]


def test_wrong_typed_fields_are_problems_naming_file_line_and_field(tmp_path):
    write(tmp_path / "journal.jsonl", HEADER,
          {**FAULT, "t": "15s"},                                  # required: the line is skipped
          {"type": "note", "t": 20.0, "message": "hi", "level": 3},  # optional: read as its default
          {"type": "integrity", "t": 50.0, "checked": {"lost_orders": "0"}, "violations": []},
          END)
    write(tmp_path / "requests.jsonl",
          REQUEST,
          {**REQUEST, "t": 2.0, "status": "201"},
          {**REQUEST, "t": 3.0, "ok": "yes"},
          {**REQUEST, "t": 4.0, "latency_s": float("nan")},
          {"t": 5.0, "name": "place_order", "ok": False, "latency_s": 1.0})  # optional fields missing: fine
    run = read_run(tmp_path)
    assert problems(run) == [
        'journal.jsonl:2: fault record: t is "15s", expected a number; line skipped',
        'journal.jsonl:3: note record: level is 3, expected a string; read as "info"',
        'journal.jsonl:4: integrity record: checked is {"lost_orders": "0"}, expected an object whose values '
        'are each a whole number; read as {}',
        'requests.jsonl:2: status is "201", expected a whole number or null; read as null',
        'requests.jsonl:3: ok is "yes", expected true or false; line skipped',
        "requests.jsonl:4: latency_s is NaN, expected a number; line skipped",
    ]
    note, integrity = run.of(Note)[0], run.of(Integrity)[0]
    assert note.level == "info" and integrity.checked == {}
    assert [(r.t, r.status) for r in run.requests] == [(1.0, 201), (2.0, None), (5.0, None)]
    assert all(isinstance(r, RequestSample) for r in run.requests)


def test_an_unknown_record_type_is_kept_and_a_typeless_one_is_a_problem(tmp_path):
    write(tmp_path / "journal.jsonl", HEADER, {"type": "page", "t": 3.0, "name": "db down"},
          {"t": 4.0, "message": "no type"}, {**HEADER, "run_id": "again"}, END)
    run = read_run(tmp_path)
    unknown = run.records[0]
    assert isinstance(unknown, UnknownRecord) and unknown.raw["name"] == "db down"
    assert run.events("page") == [unknown]
    assert problems(run) == ["journal.jsonl:3: a record without a type; line skipped",
                             "journal.jsonl:4: a second run header; line skipped"]


def test_a_header_with_a_wrong_field_is_read_with_its_default(tmp_path):
    write(tmp_path / "journal.jsonl", {**HEADER, "window_s": "1s", "steady_state": {"p99_latency": {"max": "250ms"}}})
    run = read_run(tmp_path)
    assert isinstance(run.header, RunHeader) and run.header.run_id == "r-1"
    assert run.header.window_s == 1.0 and run.header.steady_state == {}
    assert problems(run) == [
        'journal.jsonl:1: header: steady_state is {"p99_latency": {"max": "250ms"}}, expected an object whose '
        "values are each an object whose values are each a number; read as {}; "
        'window_s is "1s", expected a number; read as 1.0',
    ]


@pytest.mark.parametrize(
    ("content", "needle"),
    [(None, "no journal.jsonl"), (b"", "header"), (b"not json\n", "not readable JSON"),
     (b'{"type":"note","t":1.0,"message":"x"}\n', "header"), (b'{"type":"run"}\n', "unsupported schema"),
     (b'{"type":"run","schema":"faultlab.journal/9"}\n', "unsupported schema"),
     (b'{"type":"run","schema":["faultlab.journal/2"]}\n', "unsupported schema")],
)
def test_only_an_unreadable_directory_is_refused(tmp_path, content, needle):
    if content is not None:
        (tmp_path / "journal.jsonl").write_bytes(content)
    with pytest.raises(InputError) as caught:
        read_run(tmp_path)
    assert needle in str(caught.value)


def test_a_newer_minor_schema_reads(tmp_path):
    write(tmp_path / "journal.jsonl", {**HEADER, "schema": SCHEMA + ".3"})
    assert read_run(tmp_path).header.schema == SCHEMA + ".3"


def test_checks_hold_for_rows_after_many_clean_ones():
    # The reader judges a row by its keys and value types once; a later row with the same keys
    # but another type, or fewer keys, must still be judged on its own.
    for _ in range(3):
        sample, why = typed_record(RequestSample, dict(REQUEST))
        assert why == [] and sample == RequestSample(**REQUEST)
    assert typed_record(RequestSample, {**REQUEST, "latency_s": "0.02"})[0] is None
    short = {k: v for k, v in REQUEST.items() if k not in ("ack", "error", "status")}
    for _ in range(2):
        sample, why = typed_record(RequestSample, dict(short))
        assert why == [] and (sample.ack, sample.error, sample.status) == (None, None, None)
        assert sample.extra == {}
    sample, why = typed_record(RequestSample, {**REQUEST, "region": "eu"})
    assert why == [] and sample.extra == {"region": "eu"} and sample.to_dict()["region"] == "eu"
    sample, why = typed_record(CanarySample, {"t_send": 1.0, "t_done": 1.1, "ok": True, "latency_s": 0.1})
    assert sample.t == 1.0 and why == []


def test_bools_are_not_numbers_and_ints_are_numbers():
    assert typed_record(RequestSample, {**REQUEST, "latency_s": True})[0] is None
    assert typed_record(RequestSample, {**REQUEST, "status": True})[1] == [
        "status is true, expected a whole number or null; read as null"]
    for _ in range(2):  # the second by its signature
        sample = typed_record(RequestSample, {**REQUEST, "t": 3})[0]
        assert sample.t == 3.0 and type(sample.t) is float


def test_read_samples_of_one_file(tmp_path):
    write(tmp_path / "requests.jsonl", REQUEST, {"t": 2.0})
    samples, found = read_samples(tmp_path / "requests.jsonl", RequestSample)
    assert [s.ack for s in samples] == ["l-1"]
    assert [str(p) for p in found] == ["requests.jsonl:2: no name; no ok; no latency_s; line skipped"]
    assert read_samples(tmp_path / "absent.jsonl", RequestSample) == ([], [])


def test_a_line_nested_too_deep_is_not_json(tmp_path):
    write(tmp_path / "journal.jsonl", HEADER, "[" * 100_000 + "]" * 100_000, END)
    assert problems(read_run(tmp_path)) == ["journal.jsonl:2: not JSON; line skipped"]


def test_many_garbled_lines_are_read_in_linear_time(tmp_path):
    path = tmp_path / "requests.jsonl"
    path.write_bytes(b"{garbled\n" * 50_000 + b'{"t": 1.0}\n')
    lines = read_lines(path)
    assert len(lines.bad) == 50_000 and len(lines.rows) == 1 and not lines.truncated


def test_lines_with_text_beyond_ascii_and_trailing_garbage(tmp_path):
    write(tmp_path / "journal.jsonl", HEADER, {"type": "note", "t": 1.0, "message": "注文が消えた"},
          '  {"type": "note", "t": 2.0, "message": "spaces around"}  \r',
          '{"type": "note", "t": 3.0, "message": "x"} tail', END)
    run = read_run(tmp_path)
    assert [n.message for n in run.of(Note)] == ["注文が消えた", "spaces around"]
    assert problems(run) == ["journal.jsonl:4: not JSON; line skipped"]
