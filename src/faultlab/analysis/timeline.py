"""The timeline of a run: every journalled event and the derived moments (impact start,
detection, recovery, backlog drained), in time order, with wall-clock times.

Each record class has a describer in :data:`DESCRIBERS` (what happened, a detail, and
whether it went well); a record type without one, or unknown to this version, is shown by
its ``type`` alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from faultlab.analysis.model import TimelineEvent
from faultlab.journal import (
    ActionEvent,
    Alert,
    Cleanup,
    Decision,
    End,
    FaultEvent,
    Integrity,
    JobEvent,
    JobResult,
    Note,
    ParticipantEvent,
    Phase,
    PromqlSample,
    Record,
    RunbookEvent,
    RunHeader,
    StepEvent,
    Tools,
    UnknownRecord,
    json_number,
)

__all__ = ["DESCRIBERS", "record_time", "wall_time", "timeline"]

Described = tuple[str, str, bool]


def _phase(r: Phase) -> Described:
    return f"phase.{r.state}", r.name, True


def _fault(r: FaultEvent) -> Described:
    return f"fault.{r.event}", f"{r.fault_id} {r.kind} → {r.target}", r.event != "revert_failed"


def _job(r: JobEvent) -> Described:
    return f"job.{r.event}", r.job, r.event != "failed"


def _decision(r: Decision) -> Described:
    if r.event:
        who = f" ({r.by})" if r.by else ""
        return f"decision.{r.event}", f"{r.what}{who}: {r.why}", r.event != "lapsed"
    return "decision", f"{r.what}: {r.why}".strip(": "), True


def _runbook(r: RunbookEvent) -> Described:
    detail = f"{r.runbook} {r.version}".strip() + (f": {r.trigger or r.reason}" if r.trigger or r.reason else "")
    return f"runbook.{r.event}", detail, r.event not in ("abandoned", "not_started")


def _step(r: StepEvent) -> Described:
    who = f" ({r.by})" if r.by else ""
    why = r.detail.get("why")
    return f"step.{r.event}", f"{r.step}{who}" + (f": {why}" if why else ""), r.event not in (
        "failed", "timed_out", "unconfirmed", "refused")


def _action(r: ActionEvent) -> Described:
    return f"action.{r.event}", f"{r.action} ({r.purpose}, {r.by})" + (f": {r.error}" if r.error else ""), \
        r.event != "failed"


def _note(r: Note) -> Described:
    return f"note.{r.level}", r.message, r.level != "warning"


def _cleanup(r: Cleanup) -> Described:
    return "cleanup", r.what, r.ok


def _integrity(r: Integrity) -> Described:
    violations = sum(len(v.get("ids") or []) or 1 for v in r.violations)
    return "integrity", f"acknowledged={r.acknowledged} violations={violations}", violations == 0


def _job_result(r: JobResult) -> Described:
    return "job_result", r.job, bool(r.ok)


def _alert(r: Alert) -> Described:
    return f"alert.{r.status}", r.name, True


def _end(r: End) -> Described:
    return "end", f"{r.status} {r.reason}".strip(), r.status == "completed"


DESCRIBERS: dict[type[Record], Callable[[Any], Described]] = {
    Phase: _phase,
    FaultEvent: _fault,
    JobEvent: _job,
    Decision: _decision,
    RunbookEvent: _runbook,
    StepEvent: _step,
    ActionEvent: _action,
    Note: _note,
    Cleanup: _cleanup,
    Integrity: _integrity,
    JobResult: _job_result,
    Alert: _alert,
    End: _end,
}
"""How each record class reads in the timeline: ``(what, detail, ok)``."""

_NOT_SHOWN = (RunHeader, Tools, PromqlSample, ParticipantEvent)


def record_time(record: Record) -> float | None:
    """A record's ``t``, if it has one (an unknown record: if it was written as a number)."""
    if isinstance(record, UnknownRecord):
        return json_number(record.raw.get("t"))
    return json_number(getattr(record, "t", None))


def wall_time(origin: datetime | None, t: float | None) -> str | None:
    """The UTC wall-clock time of run time ``t``, to the millisecond."""
    if origin is None or t is None:
        return None
    return (origin + timedelta(seconds=t)).astimezone(UTC).isoformat(timespec="milliseconds")


def _kind(record: Record) -> str:
    return str(record.raw.get("type", "")) if isinstance(record, UnknownRecord) else record.type


def timeline(records: Iterable[Record], origin: datetime | None,
             derived: Sequence[tuple[float | None, str, str]]) -> list[TimelineEvent]:
    """Every timed record (not the header and tool versions) and every derived moment
    ``(t, what, detail)`` that has a time, sorted by time, journalled events first on a tie."""
    events: list[TimelineEvent] = []
    for record in records:
        t = record_time(record)
        if t is None or isinstance(record, _NOT_SHOWN):
            continue
        kind = _kind(record)
        describe = DESCRIBERS.get(type(record))
        what, detail, ok = describe(record) if describe is not None else (kind, "", True)
        events.append(TimelineEvent(t=t, wall=wall_time(origin, t), kind=kind, what=what, detail=detail, ok=ok))
    for t, what, detail in derived:
        if t is not None:
            events.append(TimelineEvent(t=t, wall=wall_time(origin, t), kind="derived", what=what,
                                        detail=detail, derived=True))
    events.sort(key=lambda e: (e.t, e.derived))
    return events
