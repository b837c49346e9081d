"""The run journal: typed, schema-versioned records appended as JSON lines.

This module implements the journal contract of ``docs/architecture.md``. The engine
appends with :class:`JournalWriter`; analysis and reports read with :func:`read_run`.
Files of a run directory:

- ``journal.jsonl`` — a :class:`RunHeader` first, then events (:class:`Phase`,
  :class:`FaultEvent`, :class:`JobEvent`, :class:`Integrity`, :class:`JobResult`,
  :class:`Cleanup`, :class:`Decision`, :class:`Note`, :class:`Tools`, :class:`End`), each
  with ``type``;
- ``canary.jsonl``, ``monitor.jsonl``, ``requests.jsonl`` — probe and load samples;
- ``completions.jsonl`` — each acknowledged request's completion delay (:class:`CompletionSample`).

:func:`read_lines` is the one reading of the JSON-lines format (a torn last line, a garbled
line) and :func:`read_header` the one check of the header and its schema; :func:`read_run`
and the analysis's tolerant ``faultlab.analysis.load_run`` are both built on them.

Every line is flushed as it is written; records that matter after a crash (the header,
fault planned/injected/active/reverted/revert_failed, end) are also fsynced. A killed
harness leaves a readable prefix: the reader drops a truncated last line and a run with no
``end`` record is reported as crashed. Pure: no UI, docker or network imports.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from faultlab.errors import InputError, Problem

__all__ = [
    "SCHEMA",
    "JOURNAL_FILE",
    "CANARY_FILE",
    "MONITOR_FILE",
    "REQUESTS_FILE",
    "COMPLETIONS_FILE",
    "Record",
    "RunHeader",
    "Phase",
    "FaultEvent",
    "JobEvent",
    "Integrity",
    "JobResult",
    "Cleanup",
    "Decision",
    "Note",
    "Tools",
    "End",
    "UnknownRecord",
    "CanarySample",
    "MonitorSample",
    "RequestSample",
    "CompletionSample",
    "RECORD_TYPES",
    "record_from_dict",
    "register_record",
    "JournalWriter",
    "Lines",
    "read_lines",
    "read_header",
    "Run",
    "read_run",
]

SCHEMA = "faultlab.journal/2"
JOURNAL_FILE = "journal.jsonl"
CANARY_FILE = "canary.jsonl"
MONITOR_FILE = "monitor.jsonl"
REQUESTS_FILE = "requests.jsonl"
COMPLETIONS_FILE = "completions.jsonl"
SCHEMA_PREFIX = "faultlab.journal/"

RECORD_TYPES: dict[str, type[Record]] = {}
"""The journal's record classes keyed by their ``type``; new kinds register with
:func:`register_record`."""


def register_record(cls: type[Record]) -> type[Record]:
    """Class decorator adding a record type to :data:`RECORD_TYPES`."""
    RECORD_TYPES[cls.type] = cls
    return cls


def _known_fields(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls) if f.init and f.name != "extra"}


@dataclass(frozen=True)
class Record:
    """Base of journal lines. ``extra`` keeps keys this version does not know (round-trips)."""

    type: ClassVar[str] = ""
    extra: Mapping[str, Any] = field(default_factory=dict, kw_only=True, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of this record, ``type`` first."""
        out: dict[str, Any] = {"type": self.type} if self.type else {}
        for f in dataclasses.fields(self):
            if f.name != "extra":
                out[f.name] = getattr(self, f.name)
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Record:
        """Build from a JSON object; unknown keys go to ``extra``, missing ones take defaults."""
        known = _known_fields(cls)
        kwargs = {k: v for k, v in data.items() if k in known}
        extra = {k: v for k, v in data.items() if k not in known and k != "type"}
        return cls(**kwargs, extra=extra)


@register_record
@dataclass(frozen=True)
class RunHeader(Record):
    """The first line of ``journal.jsonl``: what ran, when (wall time of the origin), targets,
    and the stack plugin's declaration (its words and integrity checks, for the reports)."""

    type: ClassVar[str] = "run"
    run_id: str = ""
    schema: str = SCHEMA
    scenario: Mapping[str, Any] = field(default_factory=dict)
    stack: Mapping[str, Any] = field(default_factory=dict)
    origin_wall: str = ""
    faultlab_version: str = ""
    host: str = ""
    targets: Mapping[str, Any] = field(default_factory=dict)
    steady_state: Mapping[str, Any] = field(default_factory=dict)
    window_s: float = 1.0
    hold_s: float = 5.0
    probe_interval_s: float = 0.1
    duration_s: float | None = None
    plugin: str = ""
    declaration: Mapping[str, Any] = field(default_factory=dict)


@register_record
@dataclass(frozen=True)
class Phase(Record):
    """A phase of the run begins or ends (``stack_up``, ``baseline``, ``load``, ...)."""

    type: ClassVar[str] = "phase"
    t: float
    name: str
    state: str


@register_record
@dataclass(frozen=True)
class FaultEvent(Record):
    """A fault's life: ``planned`` (with its revert plan, before injecting), ``injected``,
    ``active`` (the actual moment it took effect), ``reverted`` or ``revert_failed``."""

    type: ClassVar[str] = "fault"
    t: float
    event: str
    fault_id: str
    kind: str = ""
    target: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)
    planned_t: float | None = None
    revert_plan: str | None = None
    error: str | None = None


@register_record
@dataclass(frozen=True)
class JobEvent(Record):
    """A job of the stack ``started``, ``finished`` or ``failed``."""

    type: ClassVar[str] = "job"
    t: float
    job: str
    event: str
    detail: Mapping[str, Any] = field(default_factory=dict)


@register_record
@dataclass(frozen=True)
class Integrity(Record):
    """The data-integrity check after the run: violations counted per check the plugin ran,
    and every violation (``{"check", "ids", "detail"}``)."""

    type: ClassVar[str] = "integrity"
    t: float
    acknowledged: int = 0
    checked: Mapping[str, int] = field(default_factory=dict)
    violations: list[Mapping[str, Any]] = field(default_factory=list)


@register_record
@dataclass(frozen=True)
class JobResult(Record):
    """A job that finished, against its window and its deadline: when it ran and the margin
    left before the deadline (``deadline_name`` says what happens then)."""

    type: ClassVar[str] = "job_result"
    t: float
    job: str = ""
    started_t: float | None = None
    finished_t: float | None = None
    window_s: float | None = None
    deadline_t: float | None = None
    deadline_name: Any = None
    margin_s: float | None = None
    ok: bool | None = None


@register_record
@dataclass(frozen=True)
class Cleanup(Record):
    """Clean-up evidence: one thing reverted or removed, and whether that worked."""

    type: ClassVar[str] = "cleanup"
    t: float
    what: str
    ok: bool = True


@register_record
@dataclass(frozen=True)
class Decision(Record):
    """A decision taken during the run (``abort``, ...) and why."""

    type: ClassVar[str] = "decision"
    t: float
    what: str
    why: str = ""


@register_record
@dataclass(frozen=True)
class Note(Record):
    """A free-form note (``info`` or ``warning``)."""

    type: ClassVar[str] = "note"
    t: float
    message: str
    level: str = "info"


@register_record
@dataclass(frozen=True)
class Tools(Record):
    """Versions of the tools the run used (``python``, ``locust``, ``postgres``...), written
    once the stack is up: a server's version is only known once it runs."""

    type: ClassVar[str] = "tools"
    t: float
    tools: Mapping[str, str] = field(default_factory=dict)


@register_record
@dataclass(frozen=True)
class End(Record):
    """The last line of a run that ended: ``completed``, ``aborted``, ``interrupted``, ``failed``."""

    type: ClassVar[str] = "end"
    t: float
    status: str
    reason: str = ""


@dataclass(frozen=True)
class UnknownRecord(Record):
    """A line whose ``type`` this version does not know; kept verbatim."""

    raw: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The line as it was read."""
        return dict(self.raw)


@dataclass(frozen=True)
class CanarySample(Record):
    """One canary request: sent at ``t_send``, done at ``t_done``; ``ack`` is what the
    system acknowledged (an id), None if nothing was acknowledged."""

    t_send: float
    t_done: float
    ok: bool
    latency_s: float
    status: int | None = None
    error: str | None = None
    ack: str | None = None


@dataclass(frozen=True)
class MonitorSample(Record):
    """One poll of the stack's own monitoring (readiness endpoint, metrics)."""

    t: float
    ready: bool
    status: int | None = None
    latency_s: float | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RequestSample(Record):
    """One request of the load generator; ``t`` is its send time."""

    t: float
    name: str
    ok: bool
    latency_s: float
    status: int | None = None
    ack: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class CompletionSample(Record):
    """How long an acknowledged request waited to be completed, as the stack's plugin measured
    it after the run; ``t`` is the send time of the request that was acknowledged ``ack``."""

    t: float
    ack: str
    delay_s: float


_SAMPLE_FILES: dict[str, type[Record]] = {
    CANARY_FILE: CanarySample,
    MONITOR_FILE: MonitorSample,
    REQUESTS_FILE: RequestSample,
    COMPLETIONS_FILE: CompletionSample,
}

_FSYNCED_FAULT_EVENTS = frozenset({"planned", "injected", "active", "reverted", "revert_failed"})


def record_from_dict(data: Mapping[str, Any]) -> Record:
    """The typed record of one ``journal.jsonl`` object (``UnknownRecord`` if unknown)."""
    cls = RECORD_TYPES.get(str(data.get("type", "")))
    if cls is None:
        return UnknownRecord(raw=dict(data))
    return cls.from_dict(data)


def _dumps(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=_json_default) + "\n"


def _json_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class _AppendFile:
    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._fh = open(path, "a", encoding="utf-8")

    def append(self, line: str, *, sync: bool) -> None:
        with self._lock:
            if self._fh.closed:
                raise ValueError(f"{self.path} is closed")
            self._fh.write(line)
            self._fh.flush()
            if sync:
                os.fsync(self._fh.fileno())

    def close(self) -> None:
        with self._lock:
            if not self._fh.closed:
                self._fh.flush()
                os.fsync(self._fh.fileno())
                self._fh.close()


class JournalWriter:
    """Appends a run's journal and sample files; safe to use from many threads.

    Open it with :meth:`open`, which writes the header first. ``t(...)`` gives seconds since
    the run's origin on ``clock`` (``time.monotonic`` when not given).
    """

    def __init__(self, run_dir: str | os.PathLike[str], *, origin: float, clock: Any = None):
        from faultlab.engine.clock import MonotonicClock

        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.origin = origin
        self.clock = clock or MonotonicClock()
        self._files: dict[str, _AppendFile] = {}
        self._files_lock = threading.Lock()
        self._header_written = (self.run_dir / JOURNAL_FILE).exists() and (
            self.run_dir / JOURNAL_FILE
        ).stat().st_size > 0

    @classmethod
    def open(
        cls,
        run_dir: str | os.PathLike[str],
        header: RunHeader,
        *,
        origin: float,
        clock: Any = None,
    ) -> JournalWriter:
        """Create the run directory and write ``header`` as the first, fsynced line."""
        writer = cls(run_dir, origin=origin, clock=clock)
        if writer._header_written:
            raise FileExistsError(f"{writer.run_dir / JOURNAL_FILE} already has a header")
        writer._file(JOURNAL_FILE).append(_dumps(header.to_dict()), sync=True)
        writer._header_written = True
        return writer

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def t(self) -> float:
        """Seconds since the run's origin, now."""
        return self.clock.now() - self.origin

    def _file(self, name: str) -> _AppendFile:
        with self._files_lock:
            handle = self._files.get(name)
            if handle is None:
                handle = self._files[name] = _AppendFile(self.run_dir / name)
            return handle

    def write(self, record: Record) -> None:
        """Append one event to ``journal.jsonl`` (fsynced when it matters after a crash)."""
        if isinstance(record, RunHeader):
            raise ValueError("the header is written by JournalWriter.open")
        if not self._header_written:
            raise ValueError("write the header first (JournalWriter.open)")
        sync = isinstance(record, End) or (
            isinstance(record, FaultEvent) and record.event in _FSYNCED_FAULT_EVENTS
        )
        self._file(JOURNAL_FILE).append(_dumps(record.to_dict()), sync=sync)

    def _sample(self, name: str, cls: type[Record], sample: Record | Mapping[str, Any]) -> None:
        data = sample.to_dict() if isinstance(sample, Record) else cls.from_dict(sample).to_dict()
        self._file(name).append(_dumps(data), sync=False)

    def canary(self, sample: CanarySample | Mapping[str, Any]) -> None:
        """Append a canary sample to ``canary.jsonl``."""
        self._sample(CANARY_FILE, CanarySample, sample)

    def monitor(self, sample: MonitorSample | Mapping[str, Any]) -> None:
        """Append a monitor sample to ``monitor.jsonl``."""
        self._sample(MONITOR_FILE, MonitorSample, sample)

    def request(self, sample: RequestSample | Mapping[str, Any]) -> None:
        """Append a load-generator request to ``requests.jsonl``."""
        self._sample(REQUESTS_FILE, RequestSample, sample)

    def completions(self, samples: Iterable[CompletionSample | Mapping[str, Any]]) -> int:
        """Append completion delays to ``completions.jsonl`` in one write; returns how many."""
        lines = [
            _dumps(s.to_dict() if isinstance(s, Record) else CompletionSample.from_dict(s).to_dict())
            for s in samples
        ]
        if lines:
            self._file(COMPLETIONS_FILE).append("".join(lines), sync=True)
        return len(lines)

    def phase(self, name: str, state: str) -> Phase:
        """Journal that phase ``name`` begins or ends now."""
        record = Phase(t=self.t(), name=name, state=state)
        self.write(record)
        return record

    def note(self, message: str, level: str = "info") -> Note:
        """Journal a note now."""
        record = Note(t=self.t(), message=message, level=level)
        self.write(record)
        return record

    def fault(self, event: str, fault_id: str, **fields: Any) -> FaultEvent:
        """Journal a fault event now (``fields`` are the other :class:`FaultEvent` fields)."""
        record = FaultEvent(t=self.t(), event=event, fault_id=fault_id, **fields)
        self.write(record)
        return record

    def end(self, status: str, reason: str = "") -> End:
        """Journal the end of the run (fsynced)."""
        record = End(t=self.t(), status=status, reason=reason)
        self.write(record)
        return record

    def close(self) -> None:
        """Flush, fsync and close every file (idempotent)."""
        with self._files_lock:
            files, self._files = list(self._files.values()), {}
        for handle in files:
            handle.close()


@dataclass(frozen=True)
class Run:
    """A run directory as read back: header, events in order, and the samples.

    ``crashed`` is True when there is no ``end`` record (the harness was killed);
    ``truncated`` lists files whose last line was cut off and dropped.
    """

    run_dir: Path
    header: RunHeader
    records: tuple[Record, ...]
    canary: tuple[CanarySample, ...]
    monitor: tuple[MonitorSample, ...]
    requests: tuple[RequestSample, ...]
    completions: tuple[CompletionSample, ...] = ()
    truncated: tuple[str, ...] = ()
    skipped_lines: int = 0

    @property
    def end(self) -> End | None:
        """The end record, or None when the run crashed."""
        for record in reversed(self.records):
            if isinstance(record, End):
                return record
        return None

    @property
    def crashed(self) -> bool:
        """True when the harness never wrote an ``end`` record."""
        return self.end is None

    @property
    def status(self) -> str:
        """The end status, or ``crashed``."""
        end = self.end
        return end.status if end is not None else "crashed"

    def events(self, type_: str | type[Record]) -> list[Record]:
        """The records of one type (by ``type`` string or class), in journal order."""
        name = type_ if isinstance(type_, str) else type_.type
        return self.by_type.get(name, [])

    @property
    def by_type(self) -> dict[str, list[Record]]:
        """Every record grouped by ``type``."""
        groups: dict[str, list[Record]] = {}
        for r in self.records:
            key = r.type if not isinstance(r, UnknownRecord) else str(r.raw.get("type", ""))
            groups.setdefault(key, []).append(r)
        return groups

    @property
    def faults(self) -> list[FaultEvent]:
        """Every fault event, in journal order."""
        return [r for r in self.records if isinstance(r, FaultEvent)]

    @property
    def phases(self) -> list[Phase]:
        """Every phase record, in journal order."""
        return [r for r in self.records if isinstance(r, Phase)]


TORN = "torn last line (the writer was stopped mid-line)"


@dataclass(frozen=True)
class Lines:
    """The JSON objects of one JSON-lines file, with what could not be read.

    ``rows`` are ``(line number, object)`` in file order. ``bad`` are ``(line number, why)``
    for lines that are not a JSON object; the last non-blank line failing is ``TORN`` (a
    writer stopped mid-line), not corruption. A missing file reads as no lines.
    """

    path: Path
    rows: list[tuple[int, dict[str, Any]]]
    bad: list[tuple[int, str]]

    @property
    def truncated(self) -> bool:
        """True when the last line was cut off (and dropped)."""
        return bool(self.bad) and self.bad[-1][1] == TORN

    @property
    def corrupt(self) -> list[tuple[int, str]]:
        """The unreadable lines that are not a torn last line."""
        return [b for b in self.bad if b[1] != TORN]

    def problems(self) -> list[str]:
        """One ``file:line: why; line skipped`` sentence per unreadable line."""
        return [f"{self.path.name}:{number}: {why}; line skipped" for number, why in self.bad]


def read_lines(path: str | os.PathLike[str]) -> Lines:
    """Read a JSON-lines file of a run directory; never raises for bad lines (see :class:`Lines`)."""
    path = Path(path)
    if not path.exists():
        return Lines(path, [], [])
    lines = path.read_bytes().split(b"\n")
    last = len(lines)
    while last and not lines[last - 1].strip():
        last -= 1
    rows: list[tuple[int, dict[str, Any]]] = []
    bad: list[tuple[int, str]] = []
    loads = json.loads
    # A run holds hundreds of thousands of small acyclic objects; the cyclic collector
    # would rescan them again and again while they are built, for nothing to collect.
    collecting = gc.isenabled()
    gc.disable()
    try:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                obj = loads(line)
            except ValueError:
                bad.append((number, TORN if number == last else "not JSON"))
                continue
            if isinstance(obj, dict):
                rows.append((number, obj))
            else:
                bad.append((number, "not a JSON object"))
    finally:
        if collecting:
            gc.enable()
    return Lines(path, rows, bad)


def read_header(run_dir: str | os.PathLike[str]) -> tuple[RunHeader, Lines]:
    """The header of ``run_dir``'s journal and the journal's lines.

    Raises ``InputError`` when the directory is not a run directory or the header is
    missing, unreadable or of another major schema version (``faultlab.journal/2.x`` reads
    as version 2).
    """
    run_dir = Path(run_dir)
    path = run_dir / JOURNAL_FILE
    if not run_dir.is_dir():
        raise InputError([Problem(str(run_dir), 0, 0, "", "not a directory")])
    if not path.is_file():
        raise InputError([Problem(str(run_dir), 0, 0, "", f"not a run directory: it has no {JOURNAL_FILE}")])
    lines = read_lines(path)
    first_bad = lines.bad[0][0] if lines.bad else None
    if first_bad is not None and (not lines.rows or first_bad < lines.rows[0][0]):
        raise InputError([Problem(str(path), first_bad, 1, "", "the journal header is not readable JSON")])
    if not lines.rows or lines.rows[0][1].get("type") != "run":
        raise InputError([Problem(str(path), 1, 1, "", 'the first line is not a {"type": "run"} header')])
    raw = lines.rows[0][1]
    schema = str(raw.get("schema", ""))
    major = schema[len(SCHEMA_PREFIX):].split(".")[0] if schema.startswith(SCHEMA_PREFIX) else ""
    if major != SCHEMA[len(SCHEMA_PREFIX):]:
        raise InputError([Problem(str(path), lines.rows[0][0], 1, "schema",
                                  f"unsupported schema {schema!r}, expected {SCHEMA!r}")])
    return RunHeader.from_dict(raw), lines


def _samples(path: Path, cls: type[Record]) -> tuple[list, bool, int]:
    lines = read_lines(path)
    skipped = len(lines.corrupt)
    samples = []
    for _, obj in lines.rows:
        try:
            samples.append(cls.from_dict(obj))
        except TypeError:
            skipped += 1
    return samples, lines.truncated, skipped


def read_run(run_dir: str | os.PathLike[str]) -> Run:
    """Read a run directory back into a typed :class:`Run`.

    Tolerates a truncated last line in every file (a killed harness); a journal line that
    cannot be read elsewhere, a missing header or an unknown schema is an ``InputError``.
    Sample files skip unreadable lines (counted in ``skipped_lines``): several processes
    append to them.
    """
    run_dir = Path(run_dir)
    header, lines = read_header(run_dir)
    journal_path = lines.path
    problems = [Problem(str(journal_path), number, 1, "", f"unreadable journal line: {why}")
                for number, why in lines.corrupt]
    records: list[Record] = []
    for number, obj in lines.rows[1:]:
        try:
            records.append(record_from_dict(obj))
        except TypeError as exc:
            problems.append(Problem(str(journal_path), number, 1, str(obj.get("type", "")), f"bad record: {exc}"))
    if problems:
        raise InputError(problems)
    truncated = [JOURNAL_FILE] if lines.truncated else []
    skipped_total = 0
    loaded: dict[str, list] = {}
    for name, cls in _SAMPLE_FILES.items():
        samples, was_truncated, skipped = _samples(run_dir / name, cls)
        loaded[name] = samples
        skipped_total += skipped
        if was_truncated:
            truncated.append(name)
    return Run(
        run_dir=run_dir,
        header=header,
        records=tuple(records),
        canary=tuple(loaded[CANARY_FILE]),
        monitor=tuple(loaded[MONITOR_FILE]),
        requests=tuple(sorted(loaded[REQUESTS_FILE], key=lambda r: r.t)),
        completions=tuple(loaded[COMPLETIONS_FILE]),
        truncated=tuple(truncated),
        skipped_lines=skipped_total,
    )
