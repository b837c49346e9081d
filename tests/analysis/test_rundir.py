"""One reading of the journal format: analysis's tolerant ``load_run`` agrees with the engine's ``read_run``."""

from __future__ import annotations

import inspect

from synthetic_run import RunSpec, write_run

from faultlab.analysis import load_run, rundir
from faultlab.engine.journal import read_lines, read_run


def test_analysis_and_engine_read_the_same_run_alike(tmp_path):
    run_dir = write_run(tmp_path)
    with open(run_dir / "requests.jsonl", "a") as fh:
        fh.write("garbage in the middle\n")
        fh.write('{"t": 59.9, "name": "place_order", "ok": true, "latency_s": 0.01, "status": 201}\n')
        fh.write('{"t": 59.95, "name": "place_or')
    ours, theirs = load_run(run_dir), read_run(run_dir)
    assert len(ours.records) == len(theirs.records)
    assert [r["type"] for r in ours.records] == [r.to_dict()["type"] for r in theirs.records]
    assert (len(ours.canary), len(ours.monitor), len(ours.requests)) == (
        len(theirs.canary), len(theirs.monitor), len(theirs.requests))
    assert theirs.truncated == ("requests.jsonl",) and theirs.skipped_lines == 1
    assert any("not JSON" in p for p in ours.problems) and any("torn last line" in p for p in ours.problems)
    assert ours.header["run_id"] == theirs.header.run_id


def test_analysis_has_no_journal_parser_of_its_own():
    source = inspect.getsource(rundir)
    assert "json.loads" not in source and "import json" not in source


def test_many_garbled_lines_are_read_in_linear_time(tmp_path):
    path = tmp_path / "requests.jsonl"
    path.write_bytes(b"{garbled\n" * 50_000 + b'{"t": 1.0}\n')
    lines = read_lines(path)
    assert len(lines.bad) == 50_000 and len(lines.rows) == 1 and not lines.truncated


def test_a_torn_single_line_crashed_run_still_reads(tmp_path):
    run_dir = write_run(tmp_path, RunSpec(completed=False))
    assert load_run(run_dir).end is None and read_run(run_dir).crashed
