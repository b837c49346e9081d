"""The desk: the one place where the people of a drill act, and every act is journalled.

Whoever acts (the runbook runner for automatic steps, a scripted operator, the terminal, the
operator console's buttons) calls the desk: :meth:`Desk.start`, :meth:`Desk.done`,
:meth:`Desk.confirm`, :meth:`Desk.skip` for runbook steps, :meth:`Desk.confirm_decision`
for a decision awaiting a person. The desk keeps each step's state, journals every event
with the participant's name and the time, and refuses (journalled as ``refused``, raised as
:class:`DeskRefusal`) what the rules forbid: a second person who is the first, a
confirmation of what is not done, a step done twice. Waiting parties (the runner, the
decision rules) wait on :meth:`Desk.wait_for`; listeners (the scripted operator, the
console) are told of every event, outside the desk's lock.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from faultlab.journal import Decision, JournalWriter, ParticipantEvent, StepEvent
from faultlab.model.runbook import DecisionRule, Runbook

__all__ = ["AUTOMATION", "Desk", "DeskRefusal", "StepState", "DecisionState", "Listener"]

AUTOMATION = "faultlab"
"""The actor of what faultlab does itself (an automatic action, a check)."""

Listener = Callable[[str, Mapping[str, Any]], None]
"""Called as ``listener(event, fields)`` for every desk event (``step``, ``decision``, ``joined``)."""


class DeskRefusal(Exception):
    """A participant's request the rules refuse (the message says why)."""


@dataclass
class StepState:
    """Where one runbook step stands, with who did what when (run-clock seconds)."""

    id: str
    kind: str
    four_eyes: bool
    status: str = "pending"
    ready_t: float | None = None
    started_t: float | None = None
    started_by: str = ""
    done_t: float | None = None
    done_by: str = ""
    confirmed_t: float | None = None
    confirmed_by: str = ""
    note: str = ""

    @property
    def counted_done(self) -> bool:
        """Done, and confirmed by a second person where the step needs one."""
        return self.status == "done" and (not self.four_eyes or bool(self.confirmed_by))

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__, counted_done=self.counted_done)


@dataclass
class DecisionState:
    """A decision rule's state: ``watching``, ``awaiting`` a person, ``decided`` or ``lapsed``."""

    id: str
    rule: str
    role: str = ""
    status: str = "watching"
    triggered_t: float | None = None
    values: Mapping[str, Any] = field(default_factory=dict)
    decided_t: float | None = None
    by: str = ""

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Desk:
    """The runbook's steps and the rules' decisions, as the people see and change them."""

    def __init__(self, journal: JournalWriter, runbook: Runbook | None = None,
                 rules: Iterable[DecisionRule] = (), participants: Iterable[Mapping[str, str]] = ()):
        self.journal = journal
        self.runbook = runbook
        self.runbook_id = runbook.id if runbook is not None else ""
        self.steps: dict[str, StepState] = {}
        if runbook is not None:
            self.steps = {s.id: StepState(s.id, s.kind, s.four_eyes) for s in runbook.steps}
        self.decisions = {r.id: DecisionState(r.id, r.rule, r.confirm.role if r.confirm else "") for r in rules}
        self.people: dict[str, str] = {p["name"]: p.get("role", "") for p in participants}
        self.runbook_status = "waiting"
        self._joined: set[str] = set()
        self._cond = threading.Condition()
        self._listeners: list[Listener] = []
        self.recent: deque[dict[str, Any]] = deque(maxlen=200)

    # --- listeners and waiting -------------------------------------------------------------

    def listen(self, listener: Listener) -> None:
        """Call ``listener(event, fields)`` for every event from now on."""
        with self._cond:
            self._listeners.append(listener)

    def _tell(self, event: str, fields: Mapping[str, Any]) -> None:
        with self._cond:
            listeners = list(self._listeners)
            self.recent.append({"t": round(self.journal.t(), 3), "event": event, **fields})
            self._cond.notify_all()
        for listener in listeners:
            try:
                listener(event, fields)
            except Exception:  # noqa: BLE001 - a broken listener must not stop the drill
                import logging

                logging.getLogger(__name__).exception("desk listener failed")

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float, stop: threading.Event | None = None) -> bool:
        """Wait until ``predicate()`` (checked under the desk's lock) holds; False after
        ``timeout_s`` or when ``stop`` is set."""
        import time

        deadline = time.monotonic() + max(0.0, timeout_s)
        with self._cond:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0 or (stop is not None and stop.is_set()):
                    return False
                self._cond.wait(min(left, 0.1))
            return True

    # --- people ---------------------------------------------------------------------------------

    def know(self, people: Iterable[Mapping[str, str]]) -> None:
        """People who may act without coming to the console (a script's), with their roles;
        the planned people keep the roles the plan gives them."""
        with self._cond:
            for person in people:
                self.people.setdefault(_name(person["name"]), person.get("role", ""))

    def join(self, name: str, role: str = "") -> None:
        """Someone came to the console (journalled once per name: planned or not, they came)."""
        name = _name(name)
        with self._cond:
            first = name not in self._joined
            self._joined.add(name)
            self.people[name] = role or self.people.get(name, "")
            role = self.people[name]
        if first:
            self.journal.write(ParticipantEvent(t=self.journal.t(), event="joined", name=name, role=role))
            self._tell("joined", {"name": name, "role": role})

    def role_of(self, name: str) -> str:
        with self._cond:
            return self.people.get(name, "")

    # --- steps ------------------------------------------------------------------------------------

    def _step(self, step_id: str) -> StepState:
        state = self.steps.get(step_id)
        if state is None:
            raise DeskRefusal(f"no step {step_id!r} in runbook {self.runbook_id or '(none)'}")
        return state

    def _journal_step(self, step: StepState, event: str, by: str = "", **detail: Any) -> float:
        t = self.journal.t()
        self.journal.write(StepEvent(t=t, step=step.id, event=event, runbook=self.runbook_id, kind=step.kind,
                                     by=by, role=self.role_of(by) if by and by != AUTOMATION else "",
                                     detail=detail))
        return t

    def _refuse(self, step: StepState, by: str, why: str) -> DeskRefusal:
        self._journal_step(step, "refused", by, why=why)
        self._tell("step", {"step": step.id, "event": "refused", "by": by, "why": why})
        return DeskRefusal(why)

    def ready(self, step_id: str) -> None:
        """The runner reached this step: the one before it counted done."""
        step = self._step(step_id)
        with self._cond:
            if step.ready_t is not None:
                return
            step.ready_t = self.journal.t()
            if step.status == "pending":
                step.status = "ready"
        self._journal_step(step, "ready")
        self._tell("step", {"step": step_id, "event": "ready"})

    def start(self, step_id: str, by: str) -> StepState:
        """``by`` starts the step (allowed out of sequence; analysis shows it)."""
        by = _name(by)
        step = self._step(step_id)
        with self._cond:
            problem = "" if step.started_t is None else f"step {step_id} was started already by {step.started_by}"
            if not problem and self.runbook_status == "abandoned":
                problem = "the runbook was abandoned: its steps are no longer done"
            if not problem and step.status in ("skipped", "failed", "abandoned"):
                problem = f"step {step_id} is {step.status}"
            if not problem:
                step.started_t, step.started_by, step.status = self.journal.t(), by, "started"
        if problem:
            raise self._refuse(step, by, problem)
        self._journal_step(step, "started", by)
        self._tell("step", {"step": step_id, "event": "started", "by": by})
        return step

    def done(self, step_id: str, by: str, **detail: Any) -> StepState:
        """``by`` marks the step done (a step not started counts as started when it was ready)."""
        by = _name(by)
        step = self._step(step_id)
        with self._cond:
            problem = ""
            if step.done_t is not None:
                problem = f"step {step_id} is done already ({step.done_by})"
            elif step.status in ("skipped", "failed", "abandoned"):
                problem = f"step {step_id} is {step.status}"
            implied_start = not problem and step.started_t is None
            if implied_start:
                step.started_t = step.ready_t if step.ready_t is not None else self.journal.t()
                step.started_by = by
            if not problem:
                step.done_t, step.done_by, step.status = self.journal.t(), by, "done"
        if problem:
            raise self._refuse(step, by, problem)
        if implied_start:
            self.journal.write(StepEvent(t=step.started_t or 0.0, step=step.id, event="started",
                                         runbook=self.runbook_id, kind=step.kind, by=by, role=self.role_of(by),
                                         detail={"implied": "marked done without a start: started when ready"}))
        self._journal_step(step, "done", by, **detail)
        self._tell("step", {"step": step_id, "event": "done", "by": by})
        return step

    def confirm(self, step_id: str, by: str) -> StepState:
        """``by``, a second person, confirms a four-eyes step someone else did."""
        by = _name(by)
        step = self._step(step_id)
        with self._cond:
            if not step.four_eyes:
                problem = f"step {step_id} needs no second person"
            elif step.done_t is None:
                problem = f"step {step_id} is not done yet: nothing to confirm"
            elif step.confirmed_by:
                problem = f"step {step_id} was confirmed already by {step.confirmed_by}"
            elif by in (step.done_by, step.started_by):
                problem = f"{by} did step {step_id}: the second person must be someone else"
            elif by == AUTOMATION:
                problem = "the second person must be a person"
            else:
                problem = ""
                step.confirmed_t, step.confirmed_by = self.journal.t(), by
        if problem:
            raise self._refuse(step, by, problem)
        self._journal_step(step, "confirmed", by, first=step.done_by)
        self._tell("step", {"step": step_id, "event": "confirmed", "by": by})
        return step

    def skip(self, step_id: str, by: str, reason: str = "") -> StepState:
        """``by`` decides to skip a step that is not done (a deviation the report shows)."""
        by = _name(by)
        step = self._step(step_id)
        with self._cond:
            problem = f"step {step_id} is {step.status}" if step.status in ("done", "skipped", "failed") else ""
            if not problem:
                step.status, step.note = "skipped", reason
        if problem:
            raise self._refuse(step, by, problem)
        self._journal_step(step, "skipped", by, reason=reason)
        self._tell("step", {"step": step_id, "event": "skipped", "by": by})
        return step

    def fail(self, step_id: str, event: str, why: str, **detail: Any) -> None:
        """The runner gives up on a step: ``failed``, ``timed_out`` or ``unconfirmed``."""
        step = self._step(step_id)
        with self._cond:
            step.status, step.note = "failed", why
        self._journal_step(step, event, AUTOMATION, why=why, **detail)
        self._tell("step", {"step": step_id, "event": event, "why": why})

    def set_runbook_status(self, status: str) -> None:
        with self._cond:
            self.runbook_status = status
        self._tell("runbook", {"status": status})

    # --- decisions --------------------------------------------------------------------------

    def decision_triggered(self, rule: DecisionRule, values: Mapping[str, Any], since_t: float | None) -> float:
        """A rule's condition held for its ``for``: journalled with its trigger values."""
        state = self.decisions[rule.id]
        t = self.journal.t()
        with self._cond:
            state.status = "awaiting" if rule.confirm else "deciding"
            state.triggered_t, state.values = t, dict(values)
        self.journal.write(Decision(t=t, what=rule.id, why=rule.rule, event="triggered", values=dict(values),
                                    since_t=since_t))
        self._tell("decision", {"decision": rule.id, "event": "triggered"})
        return t

    def confirm_decision(self, rule_id: str, by: str) -> DecisionState:
        """``by`` confirms a decision awaiting a person: one with the role the rule names."""
        by = _name(by)
        state = self.decisions.get(rule_id)
        if state is None:
            raise DeskRefusal(f"no decision rule {rule_id!r}")
        with self._cond:
            problem = "" if state.status == "awaiting" else f"decision {rule_id} is {state.status}, not awaiting anyone"
            role = self.people.get(by, "")
            if not problem and state.role and role.casefold() != state.role.casefold():
                problem = (f"decision {rule_id} is confirmed by the {state.role}; {by} is "
                           + (f"the {role}" if role else "not among the drill's people"))
            if not problem:
                state.status, state.by, state.decided_t = "confirmed", by, self.journal.t()
        if problem:
            self._tell("decision", {"decision": rule_id, "event": "refused", "by": by, "why": problem})
            raise DeskRefusal(problem)
        self._tell("decision", {"decision": rule_id, "event": "confirmed", "by": by})
        return state

    def decision_closed(self, rule: DecisionRule, event: str, by: str, actions: list[str]) -> None:
        """The decision was taken (``decided``) or nobody confirmed it in time (``lapsed``)."""
        state = self.decisions[rule.id]
        t = self.journal.t()
        with self._cond:
            state.status, state.decided_t, state.by = event, t, by
        self.journal.write(Decision(t=t, what=rule.id, why=rule.rule, event=event, by=by, actions=actions,
                                    values=dict(state.values), since_t=state.triggered_t))
        self._tell("decision", {"decision": rule.id, "event": event, "by": by})

    # --- the console's view ---------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Everything the console shows of the desk, as JSON-ready data."""
        with self._cond:
            return {
                "runbook": self.runbook_status,
                "steps": [s.to_json() for s in self.steps.values()],
                "decisions": [d.to_json() for d in self.decisions.values()],
                "people": [{"name": n, "role": r} for n, r in self.people.items()],
                "recent": list(self.recent)[-50:],
            }


def _name(by: str) -> str:
    name = " ".join(str(by or "").split())
    if not name:
        raise DeskRefusal("say who you are: a name is needed")
    if len(name) > 80:
        raise DeskRefusal("a name of at most 80 characters")
    return name
