"""The drill programme as it went, from the journal alone: the runbook as carried out against the
runbook as documented, the decisions, the communications, the people, and the health of the
system from each job's deadline on.

Pure: reads typed records (``runbook``, ``step``, ``action``, ``decision``, ``participants``,
``job``) and the windows; no engine, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from faultlab.analysis.model import Deviation, Measure, MeasureStatus, Window
from faultlab.journal import ActionEvent, Decision, JobEvent, ParticipantEvent, Phase, Run, RunbookEvent, StepEvent

__all__ = [
    "StepResult",
    "RunbookResult",
    "DecisionResult",
    "Communication",
    "ParticipantRow",
    "DeadlineHealth",
    "ProgrammeResult",
    "programme",
    "programme_deviations",
    "deadline_health",
]

AUTOMATION = "faultlab"
_JOURNAL_RESOLUTION_S = 0.001


@dataclass(frozen=True)
class StepResult:
    """One step: as documented (title, kind, expected duration, four-eyes, role) and as done.

    ``counted_done_t`` is when it counted done (its confirmation for a four-eyes step);
    ``duration_s`` is from its start to then. ``deviations`` name what went otherwise than
    documented: ``over_time``, ``out_of_sequence``, ``skipped``, ``missing_second_person``,
    ``second_person_refused``, ``failed``, ``timed_out``, ``not_done``.
    """

    id: str
    title: Mapping[str, Any]
    kind: str
    expect_s: float | None
    four_eyes: bool
    role: str | None
    status: str
    ready_t: float | None = None
    started_t: float | None = None
    started_by: str = ""
    done_t: float | None = None
    done_by: str = ""
    confirmed_t: float | None = None
    confirmed_by: str = ""
    counted_done_t: float | None = None
    duration_s: float | None = None
    deviations: list[str] = field(default_factory=list)
    note: str = ""
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunbookResult:
    """The runbook as carried out: which document (id, version, SHA-256, file), when it started
    and on what trigger, how it ended (``completed``, ``abandoned``, ``not_started``,
    ``unfinished`` when the journal ends first), and each step."""

    id: str
    version: str
    sha256: str
    file: str
    title: Mapping[str, Any]
    owner: str | None
    trigger: str
    started_t: float | None
    ended_t: float | None
    status: str
    reason: str
    duration: Measure
    steps: list[StepResult]


@dataclass(frozen=True)
class DecisionResult:
    """A decision rule that triggered: the rule, when its condition began to hold and when
    it triggered (held for its ``for``), the values it was judged on, who took it and when,
    the actions taken; ``time_to_decision`` is triggered to decided."""

    id: str
    rule: str
    status: str
    since_t: float | None
    triggered_t: float | None
    decided_t: float | None
    by: str
    values: Mapping[str, Any]
    actions: list[str]
    time_to_decision: Measure


@dataclass(frozen=True)
class Communication:
    """A notify step: who was told what, by whom, when (and how long after the fault took
    effect), and how long telling them took."""

    step: str
    title: Mapping[str, Any]
    to: list[str]
    about: Mapping[str, Any] | None
    channel: str | None
    by: str
    started_t: float | None
    done_t: float | None
    took_s: float | None
    after_fault_s: float | None
    status: str


@dataclass(frozen=True)
class ParticipantRow:
    """A person: planned or not, and what they actually did (steps done, confirmations,
    decisions taken)."""

    name: str
    role: str
    planned: bool
    joined: bool
    did: list[str]
    confirmed: list[str]
    decided: list[str]

    @property
    def took_part(self) -> bool:
        return self.joined or bool(self.did or self.confirmed or self.decided)


@dataclass(frozen=True)
class DeadlineHealth:
    """A job's deadline (the stack's words for it) and the system's health from it to the end
    of the load: windows judged, unhealthy ones, and the unhealthy time."""

    job: str
    deadline_t: float
    deadline_name: Any
    windows: int
    unhealthy: int
    unhealthy_s: Measure
    job_state: str


@dataclass(frozen=True)
class ProgrammeResult:
    """Everything of the drill programme in one run."""

    mode: str
    runbook: RunbookResult | None
    decisions: list[DecisionResult]
    communications: list[Communication]
    participants: list[ParticipantRow]
    actions: list[dict[str, Any]]
    deadlines: list[DeadlineHealth]
    refusals: list[dict[str, Any]]


def _documented_steps(loaded: RunbookEvent | None) -> list[Mapping[str, Any]]:
    if loaded is None:
        return []
    steps = loaded.documented.get("steps")
    return [s for s in steps if isinstance(s, Mapping)] if isinstance(steps, list) else []


def _events_by_step(records: Iterable[StepEvent]) -> dict[str, dict[str, StepEvent]]:
    found: dict[str, dict[str, StepEvent]] = {}
    for r in records:
        found.setdefault(r.step, {}).setdefault(r.event, r)
    return found


def _step_status(events: Mapping[str, StepEvent], four_eyes: bool) -> str:
    for final in ("skipped", "failed", "timed_out", "unconfirmed"):
        if final in events:
            return final
    if "done" in events and (not four_eyes or "confirmed" in events):
        return "done"
    if "done" in events:
        return "unconfirmed"
    return "not_done"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _step(doc: Mapping[str, Any], events: Mapping[str, StepEvent], previous_done: float | None,
          refusals: list[dict[str, Any]]) -> StepResult:
    four_eyes = bool(doc.get("four_eyes"))
    status = _step_status(events, four_eyes)
    started, done, confirmed = events.get("started"), events.get("done"), events.get("confirmed")
    counted = confirmed.t if four_eyes and confirmed else done.t if done and not four_eyes else None
    expect = _number(doc.get("expect"))
    duration = None if counted is None or started is None else round(counted - started.t, 3)
    deviations = []
    if status == "unconfirmed" or (four_eyes and done is not None and confirmed is None):
        deviations.append("missing_second_person")
    if any(r["step"] == doc.get("id") and "someone else" in r["why"] for r in refusals):
        deviations.append("second_person_refused")
    if duration is not None and expect is not None and duration > expect + _JOURNAL_RESOLUTION_S:
        deviations.append("over_time")
    if started is not None and previous_done is not None and started.t < previous_done - _JOURNAL_RESOLUTION_S:
        deviations.append("out_of_sequence")
    if status in ("skipped", "failed", "timed_out", "not_done"):
        deviations.append(status)
    final = next((events[k] for k in ("skipped", "failed", "timed_out", "unconfirmed") if k in events), None)
    detail = dict(done.detail) if done is not None else {}
    return StepResult(
        id=str(doc.get("id", "")), title=dict(doc.get("title") or {}), kind=str(doc.get("kind", "")),
        expect_s=expect, four_eyes=four_eyes, role=doc.get("role"), status=status,
        ready_t=events["ready"].t if "ready" in events else None,
        started_t=started.t if started else None, started_by=started.by if started else "",
        done_t=done.t if done else None, done_by=done.by if done else "",
        confirmed_t=confirmed.t if confirmed else None, confirmed_by=confirmed.by if confirmed else "",
        counted_done_t=counted, duration_s=duration, deviations=deviations,
        note=str(final.detail.get("why", "")) if final is not None else "", detail=detail,
    )


def _runbook(run: Run, refusals: list[dict[str, Any]]) -> RunbookResult | None:
    records = run.of(RunbookEvent)
    if not records:
        return None
    by_event = {r.event: r for r in records}
    loaded = by_event.get("loaded")
    started = by_event.get("started")
    ended = by_event.get("completed") or by_event.get("abandoned") or by_event.get("not_started")
    status = ended.event if ended is not None else ("unfinished" if started is not None else "not_started")
    events = _events_by_step(run.of(StepEvent))
    steps: list[StepResult] = []
    previous_done: float | None = None
    for doc in _documented_steps(loaded):
        step = _step(doc, events.get(str(doc.get("id")), {}), previous_done, refusals)
        steps.append(step)
        if step.counted_done_t is not None:
            previous_done = step.counted_done_t
    if status == "completed" and started is not None and ended is not None:
        duration = Measure(round(ended.t - started.t, 3), "s", _JOURNAL_RESOLUTION_S, "journal")
    else:
        duration = Measure(None, "s", _JOURNAL_RESOLUTION_S, "journal", MeasureStatus.NOT_MEASURED)
    any_record = loaded or started or records[0]
    return RunbookResult(
        id=any_record.runbook, version=loaded.version if loaded else "", sha256=loaded.sha256 if loaded else "",
        file=str(loaded.documented.get("file", "")) if loaded else "",
        title=dict(loaded.documented.get("title") or {}) if loaded else {},
        owner=loaded.documented.get("owner") if loaded else None,
        trigger=started.trigger if started else "", started_t=started.t if started else None,
        ended_t=ended.t if ended else None, status=status, reason=ended.reason if ended else "",
        duration=duration, steps=steps,
    )


def _decisions(run: Run) -> list[DecisionResult]:
    rules: dict[str, dict[str, Decision]] = {}
    for r in run.of(Decision):
        if r.event:
            rules.setdefault(r.what, {})[r.event] = r
    out = []
    for rule_id, events in rules.items():
        triggered, closed = events.get("triggered"), events.get("decided") or events.get("lapsed")
        status = closed.event if closed is not None else "awaiting"
        decided_t = closed.t if closed is not None and closed.event == "decided" else None
        if decided_t is not None and triggered is not None:
            took = Measure(round(decided_t - triggered.t, 3), "s", _JOURNAL_RESOLUTION_S, "journal")
        else:
            took = Measure(None, "s", _JOURNAL_RESOLUTION_S, "journal", MeasureStatus.NOT_MEASURED)
        first = triggered or closed
        assert first is not None
        out.append(DecisionResult(
            id=rule_id, rule=first.why, status=status, since_t=first.since_t,
            triggered_t=triggered.t if triggered else None, decided_t=decided_t,
            by=closed.by if closed is not None else "", values=dict(first.values),
            actions=list(closed.actions) if closed is not None else [], time_to_decision=took,
        ))
    return out


def _communications(runbook: RunbookResult | None, docs: list[Mapping[str, Any]],
                    t_fault: float | None) -> list[Communication]:
    if runbook is None:
        return []
    by_id = {str(d.get("id")): d for d in docs}
    out = []
    for step in runbook.steps:
        if step.kind != "notify":
            continue
        doc = by_id.get(step.id, {})
        took = None if step.done_t is None or step.started_t is None else round(step.done_t - step.started_t, 3)
        after = None if step.done_t is None or t_fault is None else round(step.done_t - t_fault, 3)
        out.append(Communication(
            step=step.id, title=step.title, to=[str(x) for x in doc.get("to") or []],
            about=doc.get("about") if isinstance(doc.get("about"), Mapping) else None,
            channel=doc.get("channel"), by=step.done_by, started_t=step.started_t, done_t=step.done_t,
            took_s=took, after_fault_s=after,
            status=step.status,
        ))
    return out


def _people(run: Run) -> tuple[dict[str, str], dict[str, str]]:
    """Planned participants and those who joined at the console: name -> role."""
    planned: dict[str, str] = {}
    joined: dict[str, str] = {}
    for r in run.of(ParticipantEvent):
        if r.event == "planned":
            planned.update({str(p.get("name")): str(p.get("role", "")) for p in r.people if p.get("name")})
        elif r.event == "joined" and r.name:
            joined[r.name] = r.role
    return planned, joined


def _participants(run: Run, runbook: RunbookResult | None, decisions: list[DecisionResult]) -> list[ParticipantRow]:
    planned, joined = _people(run)
    did: dict[str, list[str]] = {}
    confirmed: dict[str, list[str]] = {}
    decided: dict[str, list[str]] = {}
    roles: dict[str, str] = {}
    for r in run.of(StepEvent):
        if r.by and r.by != AUTOMATION and r.role:
            roles.setdefault(r.by, r.role)
    for step in runbook.steps if runbook else []:
        for who in {step.started_by, step.done_by} - {"", AUTOMATION}:
            did.setdefault(who, []).append(step.id)
        if step.confirmed_by:
            confirmed.setdefault(step.confirmed_by, []).append(step.id)
    for d in decisions:
        if d.by and d.by not in ("rule", AUTOMATION):
            decided.setdefault(d.by, []).append(d.id)
    names = list(planned) + [n for n in [*joined, *did, *confirmed, *decided] if n not in planned]
    seen: set[str] = set()
    rows = []
    for name in names:
        if name in seen:
            continue
        seen.add(name)
        rows.append(ParticipantRow(name=name, role=planned.get(name) or joined.get(name) or roles.get(name, ""),
                                   planned=name in planned, joined=name in joined, did=did.get(name, []),
                                   confirmed=confirmed.get(name, []), decided=decided.get(name, [])))
    return rows


def deadline_health(run: Run, windows: Sequence[Window], step_s: float) -> list[DeadlineHealth]:
    """From each job's deadline (its ``started`` record's ``deadline_s``) to the end of the
    load: how many windows were unhealthy, and for how long."""
    load_end = next((p.t for p in run.of(Phase) if p.name == "load" and p.state == "end"), None)
    states: dict[str, str] = {}
    starts: dict[str, JobEvent] = {}
    for r in run.of(JobEvent):
        states[r.job] = r.event
        if r.event == "started":
            starts.setdefault(r.job, r)
    out = []
    for job, started in starts.items():
        deadline_s = _number(started.detail.get("deadline_s"))
        if deadline_s is None:
            continue
        deadline_t = started.t + deadline_s
        end = load_end if load_end is not None else float("inf")
        judged = [w for w in windows if w.start >= deadline_t and w.end <= end]
        if not judged:
            measure = Measure(None, "s", step_s, "window_step", MeasureStatus.NOT_MEASURED)
            unhealthy = 0
        else:
            unhealthy = sum(1 for w in judged if not w.healthy)
            measure = Measure(round(unhealthy * step_s, 3), "s", step_s, "window_step")
        out.append(DeadlineHealth(job=job, deadline_t=round(deadline_t, 3),
                                  deadline_name=started.detail.get("deadline_name"), windows=len(judged),
                                  unhealthy=unhealthy, unhealthy_s=measure, job_state=states.get(job, "")))
    return out


def programme(run: Run, windows: Sequence[Window], step_s: float, t_fault: float | None) -> ProgrammeResult | None:
    """The drill programme of a run, or None when the run had none (no runbook, no decision
    rule, no participants, no deadline)."""
    refusals = [{"t": r.t, "step": r.step, "by": r.by, "why": str(r.detail.get("why", ""))}
                for r in run.of(StepEvent) if r.event == "refused"]
    runbook = _runbook(run, refusals)
    decisions = _decisions(run)
    planned = [r for r in run.of(ParticipantEvent) if r.event == "planned"]
    deadlines = deadline_health(run, windows, step_s)
    if runbook is None and not decisions and not planned and not deadlines:
        return None
    loaded = next((r for r in run.of(RunbookEvent) if r.event == "loaded"), None)
    actions = [{"t": r.t, "action": r.action, "event": r.event, "by": r.by, "purpose": r.purpose,
                "error": r.error} for r in run.of(ActionEvent) if r.event != "started"]
    return ProgrammeResult(
        mode=planned[0].mode if planned else "",
        runbook=runbook, decisions=decisions,
        communications=_communications(runbook, _documented_steps(loaded), t_fault),
        participants=_participants(run, runbook, decisions), actions=actions, deadlines=deadlines,
        refusals=refusals,
    )


def programme_deviations(result: ProgrammeResult | None) -> list[Deviation]:
    """The programme's deviations for the report's list: each step's, a runbook abandoned or
    unfinished, a decision that lapsed."""
    if result is None:
        return []
    out: list[Deviation] = []
    rb = result.runbook
    if rb is not None:
        for step in rb.steps:
            for kind in step.deviations:
                t = step.counted_done_t or step.done_t or step.started_t or step.ready_t
                out.append(Deviation(f"step_{kind}", t, {"step": step.id, "expect": step.expect_s,
                                                         "took": step.duration_s, "by": step.done_by,
                                                         "reason": step.note}))
        if rb.status in ("abandoned", "not_started", "unfinished"):
            out.append(Deviation(f"runbook_{rb.status}", rb.ended_t, {"runbook": rb.id, "reason": rb.reason}))
    for d in result.decisions:
        if d.status != "decided":
            out.append(Deviation(f"decision_{d.status}", d.triggered_t, {"rule": d.id}))
    return out
