"""Analysis reads a run through the one journal reader, and analyses a damaged run as far as it reads."""

from __future__ import annotations

import inspect
import json
import pkgutil
import re

import pytest
from synthetic_run import RunSpec, write_run

import faultlab.analysis
from faultlab.analysis import analyse
from faultlab.errors import InputError
from faultlab.journal import read_run


def test_analysis_has_no_journal_parser_of_its_own():
    for module in pkgutil.iter_modules(faultlab.analysis.__path__):
        source = inspect.getsource(__import__(f"faultlab.analysis.{module.name}", fromlist=["_"]))
        assert "json.loads" not in source and not re.search(r"^(import json$|from json )", source, re.M), module.name
        # Durations in the journal are numbers of seconds: analysis parses none.
        assert "parse_duration" not in source and "def seconds(" not in source, module.name


def test_a_run_read_once_analyses_like_its_directory(tmp_path):
    run_dir = write_run(tmp_path)
    assert analyse(read_run(run_dir)).to_dict() == analyse(run_dir).to_dict()


def test_a_damaged_journal_is_analysed_with_its_problems(tmp_path):
    run_dir = write_run(tmp_path)
    lines = (run_dir / "journal.jsonl").read_text().splitlines()
    lines.insert(3, "garbage in the middle")
    lines.insert(5, json.dumps({"type": "note", "t": "soon", "message": "x"}))
    (run_dir / "journal.jsonl").write_text("\n".join(lines) + "\n")
    with open(run_dir / "requests.jsonl", "a") as fh:
        fh.write('{"t": 59.9, "name": "place_order", "ok": "yes", "latency_s": 0.01}\n{"t": 59.95, "name": "pla')
    a = analyse(run_dir)
    assert a.status == "completed" and a.detection.measured and a.recovery_point.measured
    assert a.problems == [
        "journal.jsonl:4: not JSON; line skipped",
        'journal.jsonl:6: note record: t is "soon", expected a number; line skipped',
        'requests.jsonl:601: ok is "yes", expected true or false; line skipped',
        "requests.jsonl:602: torn last line (the writer was stopped mid-line); line skipped",
    ]
    assert [d.params["problem"] for d in a.deviations if d.kind == "journal_problem"] == a.problems


def test_a_torn_single_line_crashed_run_still_reads(tmp_path):
    a = analyse(write_run(tmp_path, RunSpec(completed=False)))
    assert a.crashed and any("torn last line" in p for p in a.problems)


def test_a_duration_target_written_as_text_is_not_assessed(tmp_path):
    # The journal holds durations as numbers of seconds; "5s" is not re-parsed.
    a = analyse(write_run(tmp_path, RunSpec(targets={"detect_within": "5s", "recover_within": 30.0})))
    detect = next(v for v in a.verdicts if v.target == "detect_within")
    assert detect.outcome == "not_assessed" and detect.evidence == ["the journal holds '5s' for it, not a number"]
    assert next(v for v in a.verdicts if v.target == "recover_within").met


def test_a_directory_that_is_not_a_run_is_refused(tmp_path):
    with pytest.raises(InputError, match="no journal.jsonl"):
        analyse(tmp_path)
