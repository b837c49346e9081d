"""The engine keeps what each fault's inject returned, or kept before it failed half way, and
hands exactly that to its revert, once."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

from faultlab.engine.context import FaultContext
from faultlab.engine.run import _Faults
from faultlab.errors import FaultError
from faultlab.faults.base import FaultKind, NoParams
from faultlab.hub import Hub
from faultlab.journal import JournalWriter, RunHeader, read_run
from faultlab.model.scenario import FaultStep
from faultlab.plugin import load_plugin
from faultlab.registry import fault_kinds


@dataclass
class Steps:
    """What the fake fault did, step by step."""

    done: list[str] = field(default_factory=list)
    undone: list[str] = field(default_factory=list)


REVERTS: list[Steps | None] = []


class HalfWay(FaultKind[NoParams, Steps]):
    """Takes two steps; the second fails."""

    name: ClassVar[str] = "half_way"
    summary: ClassVar[str] = "fails after its first step"
    target_types = frozenset({"service"})

    def inject(self, ctx: FaultContext, target: str, params: NoParams) -> Steps:
        steps = ctx.keep(Steps())
        steps.done.append("first")
        raise FaultError("the second step failed")

    def revert(self, ctx: FaultContext, target: str, params: NoParams, injected: Steps | None) -> None:
        REVERTS.append(injected)
        if injected is not None:
            while injected.done:
                injected.undone.append(injected.done.pop())


class Whole(HalfWay):
    """Takes its step and returns what it did; instantaneous when ``needs_for`` is False."""

    name: ClassVar[str] = "whole"

    def inject(self, ctx: FaultContext, target: str, params: NoParams) -> Steps:
        ctx.mark_active()
        return Steps(done=["only"])


class Instant(Whole):
    name: ClassVar[str] = "instant"
    needs_for = False


class SlowCall(Whole):
    """Takes effect through one runtime call that lasts 0.3 s, as a container engine's pause does."""

    name: ClassVar[str] = "slow_call"

    def inject(self, ctx: FaultContext, target: str, params: NoParams) -> Steps:
        with ctx.taking_effect():
            time.sleep(0.3)
        return Steps(done=["slow"])


class RefusedCall(Whole):
    """The runtime refuses the call that would have made it take effect."""

    name: ClassVar[str] = "refused_call"

    def inject(self, ctx: FaultContext, target: str, params: NoParams) -> Steps:
        with ctx.taking_effect():
            raise FaultError("the engine refused")
        raise AssertionError("unreachable")


@pytest.fixture
def faults(tmp_path, monkeypatch):
    for kind in (HalfWay, Whole, Instant, SlowCall, RefusedCall):
        monkeypatch.setitem(fault_kinds._load(), kind.name, kind)
    REVERTS.clear()
    journal = JournalWriter.open(tmp_path, RunHeader(run_id="r"), origin=0.0)
    plugin = load_plugin(None)

    def context(fault_id: str, step: FaultStep) -> FaultContext:
        return FaultContext(fault_id=fault_id, stack=None, plugin=plugin, journal=journal)  # type: ignore[arg-type]

    yield _Faults(journal, Hub(), context)
    journal.close()


def _step(kind: str, **extra: Any) -> FaultStep:
    return FaultStep.model_validate({"at": "1s", "fault": kind, "target": "svc", **extra})


def test_a_fault_that_failed_half_way_is_reverted_with_what_it_kept(faults, tmp_path):
    step = _step("half_way", **{"for": "5s"})
    faults.plan("timeline[0]", step, 1.0)
    with pytest.raises(FaultError, match="second step"):
        faults.inject("timeline[0]", step, 1.0)
    assert faults.revert_all() == []
    assert len(REVERTS) == 1 and REVERTS[0] is not None
    assert REVERTS[0].undone == ["first"] and REVERTS[0].done == []
    assert faults.revert_all() == [] and len(REVERTS) == 1  # reverted once: not again
    events = [(e.event, getattr(e, "error", None)) for e in read_run(tmp_path).events("fault")]
    assert ("reverted", None) in events and any(ev == "injected" and err for ev, err in events)


def test_revert_gets_what_inject_returned(faults):
    step = _step("whole", **{"for": "5s"})
    faults.inject("timeline[0]", step, 1.0)
    assert REVERTS == []
    assert faults.revert("timeline[0]") and faults.revert("timeline[0]")
    assert len(REVERTS) == 1 and REVERTS[0] is not None and REVERTS[0].undone == ["only"]


def test_an_instantaneous_fault_is_reverted_as_soon_as_it_took_effect(faults):
    faults.inject("timeline[0]", _step("instant"), 1.0)
    assert len(REVERTS) == 1 and REVERTS[0] is not None and REVERTS[0].undone == ["only"]


def test_a_fault_taking_effect_through_one_call_is_active_from_the_calls_start(faults, tmp_path):
    """The effect began during the call (an engine's pause freezes the container before it
    answers): requests sent during the call are not before the fault, and the times measured
    from it are never too short."""
    faults.inject("timeline[0]", _step("slow_call", **{"for": "5s"}), 1.0)
    events = {e.event: e.t for e in read_run(tmp_path).events("fault")}
    assert events["active"] - events["injected"] < 0.1, events
    assert faults.revert("timeline[0]")


def test_a_call_the_runtime_refused_marks_nothing_active(faults, tmp_path):
    with pytest.raises(FaultError, match="refused"):
        faults.inject("timeline[0]", _step("refused_call", **{"for": "5s"}), 1.0)
    assert "active" not in [e.event for e in read_run(tmp_path).events("fault")]
