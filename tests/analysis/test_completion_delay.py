"""Completion delay from ``completions.jsonl``: before, during and after the fault, and its target
(the trading stack declares it as execution delay, target ``execution_delay_p99``)."""

from __future__ import annotations

import json

import pytest
from synthetic_run import RunSpec, write_run

from faultlab.analysis import analyse


def _with_completions(tmp_path, targets):
    run = write_run(tmp_path, RunSpec(completion_delay=False, targets=targets))
    rows = []
    for i in range(600):  # one acknowledged order every 0.1 s; the fault holds orders 20-30 s
        t = round(i * 0.1, 3)
        delay = (30.0 - t) + 0.5 if 20.0 <= t < 30.0 else 0.01
        rows.append({"t": t, "ack": f"o-{i}", "delay_s": delay})
    (run / "completions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


def test_completion_delay_comes_from_the_completions_file(tmp_path):
    a = analyse(_with_completions(tmp_path, {"execution_delay_p99": 5.0}))
    ed = a.completion_delay
    assert ed.recorded
    assert (ed.before.count, ed.during.count, ed.after.count) == (200, 100, 300)
    assert ed.before.p99_s == pytest.approx(0.01) and ed.after.p99_s == pytest.approx(0.01)
    assert ed.during.max_s == pytest.approx(10.5) and ed.during.p99_s > 10.0
    v = next(v for v in a.verdicts if v.target == "execution_delay_p99")
    assert v.outcome == "missed" and v.measured.value == pytest.approx(ed.during.p99_s)
    inside = [w for w in a.windows if w.start >= 21.0 and w.end <= 29.0]
    assert inside and all(w.completion_delay_p99_s > 1.0 for w in inside)
    quiet = [w for w in a.windows if w.end <= 19.0]
    assert all(w.completion_delay_p99_s == pytest.approx(0.01) for w in quiet)


def test_completion_delay_target_met(tmp_path):
    a = analyse(_with_completions(tmp_path, {"execution_delay_p99": 40.0}))
    assert next(v for v in a.verdicts if v.target == "execution_delay_p99").met


def test_without_any_completion_delay_the_target_is_not_measured(tmp_path):
    a = analyse(write_run(tmp_path, RunSpec(completion_delay=False, targets={"execution_delay_p99": 40.0})))
    v = next(v for v in a.verdicts if v.target == "execution_delay_p99")
    assert not a.completion_delay.recorded and v.outcome == "missed" and v.measured.status == "not_measured"


def test_garbled_completion_rows_are_problems_not_failures(tmp_path):
    run = _with_completions(tmp_path, {})
    with open(run / "completions.jsonl", "a") as fh:
        fh.write('{"t": 59.9, "ack": "x"}\nnot json\n')
    a = analyse(run)
    assert a.completion_delay.recorded
    assert any("completions" in p and "skipped" in p for p in a.problems)
