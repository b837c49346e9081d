"""Building a drill programme without a stack, on a real journal, for the pure and browser tests."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from faultlab.journal import JournalWriter, RunHeader, read_run
from faultlab.loader import load_runbook
from faultlab.model.runbook import DecisionRule, RunbookRef, RunbookStart
from faultlab.programme.conditions import Readings
from faultlab.programme.run import Crew, Programme
from faultlab.runtime.base import ProxyOnlyStack

HERE = Path(__file__).parent


def journal(run_dir: Path) -> JournalWriter:
    import time

    return JournalWriter.open(run_dir, RunHeader(run_id="t"), origin=time.monotonic())


def programme(run_dir: Path, runbook: Path | None, *, crew: Crew, rules: list[DecisionRule] = (),
              readings: Readings | None = None, start: RunbookStart | None = None) -> tuple[Programme, JournalWriter]:
    writer = journal(run_dir)
    ref = None
    if runbook is not None:
        ref = RunbookRef(file=runbook, start=start or RunbookStart(at="0s"))
        ref._runbook = load_runbook(runbook)
    scenario: Any = SimpleNamespace(id="T-1", title="test", runbook=ref, decisions=list(rules), window=1.0)
    stack = ProxyOnlyStack("http://127.0.0.1:9", lambda name: "127.0.0.1:9", who="this test")
    stack.run_dir = run_dir
    made = Programme(scenario, writer, readings or Readings(now=writer.t), crew, stack=stack)
    made.journal_documents()
    return made, writer


def records(run_dir: Path, kind: str) -> list[Any]:
    return [r for r in read_run(run_dir).records if r.type == kind]
