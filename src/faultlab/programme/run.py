"""The drill programme during a run: the runbook followed, the decision rules watched.

:class:`Programme` is what the engine starts once the load runs (``t_load``) and stops when
the timeline ends. It holds the :class:`~faultlab.programme.desk.Desk`, the
:class:`~faultlab.programme.conditions.Readings` the conditions see, and two threads:

- the *runbook runner* waits for the runbook's start (on detection, at a time, on a
  condition, on a decision), then takes the steps in their documented sequence: an action is
  performed by faultlab (started by a person in game-day mode), a check is waited for, a
  manual or notify step waits for a person to mark it done, and a four-eyes step for a second
  person's confirmation; a step not counted done within its limit, or failed, abandons the
  runbook (journalled with the reason);
- the *rule watcher* evaluates every decision rule about five times a second; a rule whose
  condition held for its ``for`` is journalled with its trigger values, waits for the
  person who must confirm it (if any) and takes its actions, once.

Who acts for the people is the :class:`Crew`'s business: a scripted operator, the terminal,
the operator console (game-day mode), or nobody (then person steps run out of time).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from faultlab.journal import ActionEvent, JournalWriter, ParticipantEvent, RunbookEvent
from faultlab.model.runbook import ActionCall, ActionStep, CheckStep, DecisionRule, Runbook
from faultlab.programme.actions import ActionContext
from faultlab.programme.conditions import MonitorWatch, Readings
from faultlab.programme.desk import AUTOMATION, Desk, DeskRefusal

if TYPE_CHECKING:
    from faultlab.engine.context import Jobs
    from faultlab.hub import Hub
    from faultlab.model.scenario import Scenario
    from faultlab.plugin import DrillPlugin
    from faultlab.runtime.base import StackHandle

__all__ = ["Crew", "Programme", "perform", "needs_people", "readings_for"]

log = logging.getLogger(__name__)

POLL_S = 0.2
"""How often conditions are evaluated (check steps, rules, starts): their resolution."""


@dataclass
class Crew:
    """The people side of a run: who is planned, who answers for them, and how.

    ``participants`` are the planned people (``{"name", "role"}``); ``operators`` are started
    with the desk and stopped after the run (a scripted operator, the terminal, the console:
    each has ``attach(desk, programme)`` and ``close()``); ``gameday`` means people start the
    runbook's actions themselves.
    """

    participants: list[Mapping[str, str]] = field(default_factory=list)
    operators: list[Any] = field(default_factory=list)
    gameday: bool = False
    mode: str = "automatic"


def needs_people(scenario: Scenario) -> bool:
    """Whether a scenario's runbook or rules ask something of a person."""
    steps = scenario.runbook.runbook.steps if scenario.runbook is not None else []
    return any(s.kind in ("manual", "notify") or s.four_eyes for s in steps) or any(
        r.confirm is not None for r in scenario.decisions)


def perform(call_action: str, params: Mapping[str, Any], ctx: ActionContext,
            journal: JournalWriter) -> Mapping[str, Any]:
    """Perform a registered action, journalled before (``started``) and after (``done`` or
    ``failed``); re-raises what the action raised."""
    from faultlab.registry import actions

    kind = actions.get(call_action)
    validated = kind.validate_params(params)
    journal.write(ActionEvent(t=journal.t(), action=call_action, event="started", by=ctx.by, purpose=ctx.purpose,
                              params=dict(params)))
    try:
        result = kind().perform(ctx, validated) or {}
    except Exception as exc:
        journal.write(ActionEvent(t=journal.t(), action=call_action, event="failed", by=ctx.by,
                                  purpose=ctx.purpose, error=f"{type(exc).__name__}: {exc}"[:1000]))
        raise
    journal.write(ActionEvent(t=journal.t(), action=call_action, event="done", by=ctx.by, purpose=ctx.purpose,
                              result=dict(result)))
    return result


class Programme:
    """The runbook runner and the rule watcher of one run (see the module docstring)."""

    def __init__(self, scenario: Scenario, journal: JournalWriter, readings: Readings, crew: Crew,
                 *, hub: Hub | None = None, stack: StackHandle | None = None, plugin: DrillPlugin | None = None,
                 jobs: Jobs | None = None):
        self.scenario = scenario
        self.journal = journal
        self.readings = readings
        self.crew = crew
        self.hub = hub
        self.stack = stack
        self.plugin = plugin
        self.jobs = jobs
        self.runbook: Runbook | None = scenario.runbook.runbook if scenario.runbook is not None else None
        self.rules: list[DecisionRule] = list(scenario.decisions)
        self.desk = Desk(journal, self.runbook, self.rules, crew.participants)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.t_load = 0.0

    @classmethod
    def wanted(cls, scenario: Scenario) -> bool:
        """Whether the scenario has a runbook or decision rules."""
        return scenario.runbook is not None or bool(scenario.decisions)

    # --- life ---------------------------------------------------------------------------------

    def journal_documents(self) -> None:
        """Journal the planned participants and the runbook as documented (before the load)."""
        import hashlib

        self.journal.write(ParticipantEvent(t=self.journal.t(), event="planned", mode=self.crew.mode,
                                            people=[dict(p) for p in self.crew.participants]))
        if self.runbook is not None and self.runbook.source is not None:
            data = self.runbook.source.read_bytes()
            self.journal.write(RunbookEvent(
                t=self.journal.t(), event="loaded", runbook=self.runbook.id, version=self.runbook.version,
                sha256=hashlib.sha256(data).hexdigest(), documented=self.runbook.documented()))

    def start(self, t_load: float) -> None:
        """Start the operators, the runner and the rule watcher (``t_load``: the timeline's origin)."""
        self.t_load = t_load
        for operator in self.crew.operators:
            operator.attach(self.desk, self)
        if self.runbook is not None:
            self._spawn("faultlab-runbook", self._run_runbook)
        if self.rules:
            self._spawn("faultlab-rules", self._watch_rules)

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        def guarded() -> None:
            try:
                target()
            except Exception:  # noqa: BLE001 - journalled; the run goes on and reverts its faults
                log.exception("%s failed", name)
                self.journal.note(f"{name} stopped on an unexpected error (see the harness log)", level="warning")

        thread = threading.Thread(target=guarded, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        """Stop the runner, the watcher and the operators; a runbook still going is abandoned."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        for operator in self.crew.operators:
            try:
                operator.close()
            except Exception:  # noqa: BLE001 - an operator that cannot close must not fail the run
                log.exception("operator %r did not close", operator)

    def stopping(self) -> bool:
        return self._stop.is_set()

    def sleep(self, seconds: float) -> bool:
        """Sleep unless stopped; False when stopped."""
        return not self._stop.wait(seconds)

    def context(self, by: str, purpose: str) -> ActionContext:
        assert self.stack is not None, "actions need a running stack"
        return ActionContext(stack=self.stack, plugin=self.plugin, journal=self.journal, jobs=self.jobs, by=by,
                             purpose=purpose)

    # --- the runbook ------------------------------------------------------------------------

    def _wait_start(self) -> str:
        """Wait for the runbook's start; its trigger in words, or '' when the run ended first."""
        assert self.scenario.runbook is not None
        start = self.scenario.runbook.start
        since: float | None = None
        while not self._stop.is_set():
            now = self.journal.t()
            if start.on == "detection":
                if self.readings.monitor.detected_t is not None:
                    return f"detection at t = {self.readings.monitor.detected_t:.3f} s"
            elif start.on == "decision":
                state = self.desk.decisions[start.decision or ""]
                if state.status == "decided":
                    return f"decision {state.id} at t = {state.decided_t:.3f} s"
            elif start.at is not None:
                if now >= self.t_load + start.at:
                    return f"at {start.at:g} s"
            elif start.when is not None:
                reading = self.readings.evaluate(start.when)
                since = (since if since is not None else now) if reading.holds else None
                if since is not None and now - since >= start.for_:
                    return f"condition held from t = {since:.3f} s: {dict(reading.values)}"
            self._stop.wait(POLL_S / 2)
        return ""

    def _run_runbook(self) -> None:
        assert self.runbook is not None
        trigger = self._wait_start()
        if not trigger:
            self.journal.write(RunbookEvent(t=self.journal.t(), event="not_started", runbook=self.runbook.id,
                                            reason="the run ended before the runbook's start"))
            return
        self.journal.write(RunbookEvent(t=self.journal.t(), event="started", runbook=self.runbook.id,
                                        version=self.runbook.version, trigger=trigger))
        self.desk.set_runbook_status("running")
        for step in self.runbook.steps:
            why = self._take(step)
            if why:
                self.journal.write(RunbookEvent(t=self.journal.t(), event="abandoned", runbook=self.runbook.id,
                                                reason=why))
                self.desk.set_runbook_status("abandoned")
                return
        self.journal.write(RunbookEvent(t=self.journal.t(), event="completed", runbook=self.runbook.id))
        self.desk.set_runbook_status("completed")

    def _take(self, step: Any) -> str:
        """Do one step; '' when it counted done, else why the runbook is abandoned."""
        state = self.desk.steps[step.id]
        if state.status == "skipped":
            return ""
        self.desk.ready(step.id)
        deadline = time.monotonic() + step.limit_s
        if isinstance(step, ActionStep):
            why = self._act(step, deadline)
        elif isinstance(step, CheckStep):
            why = self._check(step, deadline)
        else:
            why = self._await_person(step, deadline)
        if why:
            return why
        if state.status == "skipped":
            return ""
        if step.four_eyes and not self._until(lambda: bool(state.confirmed_by) or state.status == "skipped",
                                              deadline):
            if self._stop.is_set():
                return "the run ended before the step's second person confirmed it"
            self.desk.fail(step.id, "unconfirmed", f"no second person confirmed {step.id} within {step.limit_s:g} s",
                           done_by=state.done_by)
            return f"step {step.id}: no second person confirmed it within its limit ({step.limit_s:g} s)"
        return ""

    def _until(self, predicate: Callable[[], bool], deadline: float) -> bool:
        return self.desk.wait_for(predicate, deadline - time.monotonic(), self._stop)

    def _act(self, step: ActionStep, deadline: float) -> str:
        state = self.desk.steps[step.id]
        if self.crew.gameday:
            if not self._until(lambda: state.started_t is not None or state.status == "skipped", deadline):
                return self._gave_up(step, "nobody started it")
            if state.status == "skipped":
                return ""
            by = state.started_by
        else:
            by = AUTOMATION
            try:
                self.desk.start(step.id, AUTOMATION)
            except DeskRefusal:
                by = state.started_by  # someone started it already
        try:
            result = perform(step.action, step.with_, self.context(by, f"step {step.id}"), self.journal)
        except Exception as exc:  # noqa: BLE001 - any failure of an action fails its step
            why = f"{type(exc).__name__}: {exc}"[:500]
            self.desk.fail(step.id, "failed", why)
            return f"step {step.id} failed: {why}"
        with contextlib.suppress(DeskRefusal):  # marked done by hand meanwhile
            self.desk.done(step.id, by, result=dict(result))
        return ""

    def _check(self, step: CheckStep, deadline: float) -> str:
        with contextlib.suppress(DeskRefusal):  # started by hand already
            self.desk.start(step.id, AUTOMATION)
        reading = self.readings.evaluate(step.check)
        while not reading.holds:
            if self.desk.steps[step.id].status == "skipped":
                return ""
            if self._stop.is_set():
                return "the run ended during the check"
            if time.monotonic() >= deadline:
                self.desk.fail(step.id, "timed_out", f"{step.id} did not hold within {step.limit_s:g} s",
                               last=dict(reading.values))
                return f"check {step.id} did not hold within its limit ({step.limit_s:g} s)"
            self._stop.wait(POLL_S)
            reading = self.readings.evaluate(step.check)
        with contextlib.suppress(DeskRefusal):
            self.desk.done(step.id, AUTOMATION, values=dict(reading.values))
        return ""

    def _await_person(self, step: Any, deadline: float) -> str:
        state = self.desk.steps[step.id]
        if not self._until(lambda: state.done_t is not None or state.status == "skipped", deadline):
            return self._gave_up(step, "nobody marked it done")
        return ""

    def _gave_up(self, step: Any, what: str) -> str:
        if self._stop.is_set():
            return f"the run ended while step {step.id} waited ({what})"
        self.desk.fail(step.id, "timed_out", f"{what} within {step.limit_s:g} s")
        return f"step {step.id}: {what} within its limit ({step.limit_s:g} s)"

    # --- decision rules ---------------------------------------------------------------------

    def _watch_rules(self) -> None:
        since: dict[str, float | None] = dict.fromkeys((r.id for r in self.rules), None)
        fired: set[str] = set()
        while not self._stop.is_set():
            for rule in self.rules:
                if rule.id in fired:
                    continue
                now = self.journal.t()
                reading = self.readings.evaluate(rule.when)
                if not reading.holds:
                    since[rule.id] = None
                elif since[rule.id] is None:
                    since[rule.id] = now
                start = since[rule.id]
                if start is not None and now - start >= rule.for_:
                    fired.add(rule.id)
                    values = {**dict(reading.values), "held_s": round(now - start, 3)}
                    self.desk.decision_triggered(rule, values, start)
                    self._spawn(f"faultlab-decision-{rule.id}", functools.partial(self._decide, rule))
            self._stop.wait(POLL_S)

    def _decide(self, rule: DecisionRule) -> None:
        by = "rule"
        if rule.confirm is not None:
            state = self.desk.decisions[rule.id]
            deadline = time.monotonic() + rule.confirm.within
            if not self._until(lambda: state.status == "confirmed", deadline):
                self.desk.decision_closed(rule, "lapsed", "", [])
                return
            by = state.by
        names = self._take_actions(rule.then, by, f"decision {rule.id}")
        self.desk.decision_closed(rule, "decided", by, names)
        if self.hub is not None:
            self.hub.publish("decision", what=rule.id, why=rule.rule)

    def _take_actions(self, calls: Iterable[ActionCall], by: str, purpose: str) -> list[str]:
        done = []
        for call in calls:
            try:
                perform(call.action, call.with_, self.context(by if by != "rule" else AUTOMATION, purpose),
                        self.journal)
            except Exception as exc:  # noqa: BLE001 - journalled as the action's failure
                log.warning("%s: action %s failed: %s", purpose, call.action, exc)
                continue
            done.append(call.action)
        return done


def readings_for(scenario: Scenario, *, now: Callable[[], float], health: Any, stack: StackHandle | None,
                 jobs: Jobs | None, plugin: DrillPlugin | None) -> Readings:
    """The :class:`Readings` of a run: the scenario's steady state and window, the stack
    plugin's monitoring keys."""
    monitor = plugin.declaration.monitor if plugin is not None else None
    steady = scenario.steady_state
    return Readings(
        now=now, health=health, window_s=scenario.window,
        success_rate_min=steady.success_rate.min if steady.success_rate else None,
        p99_latency_max_s=steady.p99_latency.max if steady.p99_latency else None,
        monitor=MonitorWatch(monitor.alerts if monitor else None, monitor.backlog if monitor else None),
        stack=stack, jobs=jobs, plugin=plugin,
    )
