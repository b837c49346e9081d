"""Reading a run directory back: :func:`read_run`, the one reader of the journal format.

It gives typed records and samples plus the list of what it could not read, and refuses
only a directory it cannot read at all (no journal, no header, a header of another major
schema: ``InputError``). Everything else is a :class:`JournalProblem` naming the file and
line: a torn last line (a writer stopped mid-line by ``kill -9``), a line that is not a
JSON object, a journal record without a ``type``, a record or sample whose fields have the
wrong types (a required field: the line is skipped; an optional one: it is read as its
default). A record of a ``type`` this version does not know is kept as an
:class:`~faultlab.journal.records.UnknownRecord`: a newer minor schema may add kinds.

It also checks the evidence (:mod:`faultlab.journal.chain`): the journal's hash chain from
the pre-registration record, and that the header says what was pre-registered. What does
not hold is ``tampering`` (also listed in ``problems``): a break in the chain naming the
line, a header whose targets differ from the registered ones. The run is judged on the
registered targets only (:attr:`Run.judged_header`).
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from operator import attrgetter
from pathlib import Path
from typing import Any, TypeVar

from faultlab.errors import InputError, Problem
from faultlab.journal.chain import (
    JUDGED_KEYS,
    PREV,
    REGISTRATION_FILE,
    Chain,
    check_chain,
    genesis_of,
    read_registration,
)
from faultlab.journal.records import (
    CANARY_FILE,
    COMPLETIONS_FILE,
    JOURNAL_FILE,
    MONITOR_FILE,
    RECORD_TYPES,
    REQUESTS_FILE,
    SCHEMA,
    SCHEMA_PREFIX,
    CanarySample,
    CompletionSample,
    End,
    FaultEvent,
    MonitorSample,
    NotFinite,
    Phase,
    Record,
    RequestSample,
    RunHeader,
    UnknownRecord,
    typed_record,
)

__all__ = ["TORN", "Lines", "read_lines", "JournalProblem", "read_samples", "Run", "read_run", "gc_paused",
           "JournalEvidence", "check_journal"]

R = TypeVar("R", bound=Record)

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


# NaN and Infinity are not JSON; they decode as NotFinite so that no float field takes them.
# raw_decode on a stripped line is what decode() does, minus two regular expressions a line.
_raw_decode: Callable[[str], tuple[Any, int]] = json.JSONDecoder(parse_constant=NotFinite).raw_decode


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a run's objects are built.

    A run holds hundreds of thousands of small acyclic objects (records, samples, the
    tuples analysis makes of them); the collector would rescan them all again and again
    while they are built, for nothing to collect. Reference counting still frees them.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


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
    decode = _raw_decode
    with gc_paused():
        for number, line in enumerate(lines, start=1):
            stripped = line.strip()
            if not stripped:
                continue
            try:
                text = stripped.decode("utf-8")
                obj, end = decode(text)
                if end != len(text):
                    raise ValueError("more after the JSON value")
            except (ValueError, RecursionError):  # UnicodeDecodeError, JSONDecodeError; nesting too deep
                bad.append((number, TORN if number == last else "not JSON"))
                continue
            if type(obj) is dict:
                rows.append((number, obj))
            else:
                bad.append((number, "not a JSON object"))
    return Lines(path, rows, bad)


@dataclass(frozen=True)
class JournalProblem:
    """A line of a run directory that could not be read as written: the file (its name in
    the run directory), the line number and what was wrong, ending in what the reader did
    (``line skipped``, ``read as null``)."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


def _unreadable(lines: Lines) -> list[JournalProblem]:
    return [JournalProblem(lines.path.name, number, f"{why}; line skipped") for number, why in lines.bad]


def _problem(file: str, number: int, what: str, skipped: bool, why: list[str]) -> JournalProblem:
    return JournalProblem(file, number, what + "; ".join(why) + ("; line skipped" if skipped else ""))


def _typed(cls: type[R], number: int, obj: dict[str, Any], file: str, what: str,
           problems: list[JournalProblem]) -> R | None:
    record, why = typed_record(cls, obj)
    if why:
        problems.append(_problem(file, number, what, record is None, why))
    return record


def _samples(path: Path, cls: type[R]) -> tuple[list[R], list[JournalProblem], bool]:
    lines = read_lines(path)
    problems = _unreadable(lines)
    samples: list[R] = []
    append, name = samples.append, path.name
    with gc_paused():
        for number, obj in lines.rows:
            sample, why = typed_record(cls, obj)
            if why:
                problems.append(_problem(name, number, "", sample is None, why))
            if sample is not None:
                append(sample)
    problems.sort(key=attrgetter("line"))
    return samples, problems, lines.truncated


def read_samples(path: str | os.PathLike[str], cls: type[R]) -> tuple[list[R], list[JournalProblem]]:
    """The samples of one sample file (``requests.jsonl``: :class:`RequestSample`...) as they
    appear in it, and the problems of the lines that could not be read as ``cls``."""
    samples, problems, _ = _samples(Path(path), cls)
    return samples, problems


@dataclass(frozen=True)
class Run:
    """A run directory as read back: header, events in journal order, the samples (requests
    sorted by send time), and what could not be read.

    ``crashed`` is True when there is no ``end`` record (the harness was killed);
    ``truncated`` lists the files whose last line was cut off and dropped. ``chain`` is the
    journal's hash chain, ``registration`` the pre-registration record (None for a run
    without one), ``tampering`` what shows the evidence was changed after it was written.
    """

    run_dir: Path
    header: RunHeader
    records: tuple[Record, ...] = ()
    canary: tuple[CanarySample, ...] = ()
    monitor: tuple[MonitorSample, ...] = ()
    requests: tuple[RequestSample, ...] = ()
    completions: tuple[CompletionSample, ...] = ()
    problems: tuple[JournalProblem, ...] = ()
    truncated: tuple[str, ...] = ()
    chain: Chain | None = None
    registration: Mapping[str, Any] | None = None
    tampering: tuple[JournalProblem, ...] = ()

    @property
    def tampered(self) -> bool:
        """True when the journal or its pre-registration was changed after it was written."""
        return bool(self.tampering)

    @property
    def judged_header(self) -> RunHeader:
        """The header with what the run is judged by (``targets``, ``steady_state``,
        ``window_s``, ``hold_s``) taken from the pre-registration record when there is one."""
        if self.registration is None:
            return self.header
        registered = {k: self.registration[k] for k in JUDGED_KEYS if k in self.registration}
        return dataclasses.replace(self.header, **registered)

    @property
    def end(self) -> End | None:
        """The end record, or None when the run crashed."""
        ends = self.of(End)
        return ends[-1] if ends else None

    @property
    def crashed(self) -> bool:
        """True when the harness never wrote an ``end`` record."""
        return self.end is None

    @property
    def status(self) -> str:
        """The end status, or ``crashed``."""
        end = self.end
        return end.status if end is not None else "crashed"

    @cached_property
    def by_type(self) -> dict[str, list[Record]]:
        """Every record grouped by ``type`` (an unknown record by the ``type`` it was written with)."""
        groups: dict[str, list[Record]] = {}
        for r in self.records:
            key = r.type if not isinstance(r, UnknownRecord) else str(r.raw.get("type", ""))
            groups.setdefault(key, []).append(r)
        return groups

    def events(self, type_: str | type[Record]) -> list[Record]:
        """The records of one type (by ``type`` string or class), in journal order."""
        name = type_ if isinstance(type_, str) else type_.type
        return list(self.by_type.get(name, []))

    def of(self, cls: type[R]) -> list[R]:
        """The records of class ``cls``, typed, in journal order."""
        return [r for r in self.by_type.get(cls.type, []) if isinstance(r, cls)]

    @property
    def faults(self) -> list[FaultEvent]:
        """Every fault event, in journal order."""
        return self.of(FaultEvent)

    @property
    def phases(self) -> list[Phase]:
        """Every phase record, in journal order."""
        return self.of(Phase)


def _header(run_dir: Path) -> tuple[RunHeader, Lines, list[JournalProblem]]:
    path = run_dir / JOURNAL_FILE
    if not run_dir.is_dir():
        raise InputError([Problem(str(run_dir), 0, 0, "", "not a directory")])
    if not path.is_file():
        raise InputError([Problem(str(run_dir), 0, 0, "", f"not a run directory: it has no {JOURNAL_FILE}")])
    lines = read_lines(path)
    first_bad = lines.bad[0][0] if lines.bad else None
    if first_bad is not None and (not lines.rows or first_bad < lines.rows[0][0]):
        raise InputError([Problem(str(path), first_bad, 1, "", "the journal header is not readable JSON")])
    if not lines.rows or lines.rows[0][1].get("type") != RunHeader.type:
        raise InputError([Problem(str(path), 1, 1, "", 'the first line is not a {"type": "run"} header')])
    number, raw = lines.rows[0]
    raw.pop(PREV, None)
    schema = raw.get("schema")
    schema = schema if isinstance(schema, str) else ""
    major = schema[len(SCHEMA_PREFIX):].split(".")[0] if schema.startswith(SCHEMA_PREFIX) else ""
    if major != SCHEMA[len(SCHEMA_PREFIX):]:
        raise InputError([Problem(str(path), number, 1, "schema",
                                  f"unsupported schema {schema!r}, expected {SCHEMA!r}")])
    problems: list[JournalProblem] = []
    header = _typed(RunHeader, number, raw, JOURNAL_FILE, "header: ", problems)
    assert header is not None, "every header field has a default"
    return header, lines, problems


def _record(number: int, obj: dict[str, Any], problems: list[JournalProblem]) -> Record | None:
    obj.pop(PREV, None)
    kind = obj.get("type")
    if not isinstance(kind, str) or not kind:
        problems.append(JournalProblem(JOURNAL_FILE, number, "a record without a type; line skipped"))
        return None
    cls = RECORD_TYPES.get(kind)
    if cls is None:
        return UnknownRecord(raw=obj)
    if cls is RunHeader:
        problems.append(JournalProblem(JOURNAL_FILE, number, "a second run header; line skipped"))
        return None
    return _typed(cls, number, obj, JOURNAL_FILE, f"{kind} record: ", problems)


def read_run(run_dir: str | os.PathLike[str]) -> Run:
    """Read a run directory into a typed :class:`Run`, with every line it could not read
    listed in ``problems`` (in file order, the journal first).

    Raises ``InputError`` only when the directory is not a run directory, or the journal's
    header is missing, unreadable or of another major schema (``faultlab.journal/2.x``
    reads as version 2). A missing sample file reads as no samples.
    """
    run_dir = Path(run_dir)
    header, lines, problems = _header(run_dir)
    problems += _unreadable(lines)
    records: list[Record] = []
    for number, obj in lines.rows[1:]:
        record = _record(number, obj, problems)
        if record is not None:
            records.append(record)
    chain, registration, tampering = _evidence(run_dir, header)
    problems += tampering
    problems.sort(key=attrgetter("line"))
    truncated = [JOURNAL_FILE] if lines.truncated else []

    def samples(name: str, cls: type[R]) -> tuple[R, ...]:
        found, found_problems, torn = _samples(run_dir / name, cls)
        problems.extend(found_problems)
        if torn:
            truncated.append(name)
        return tuple(found)

    canary = samples(CANARY_FILE, CanarySample)
    monitor = samples(MONITOR_FILE, MonitorSample)
    requests = samples(REQUESTS_FILE, RequestSample)
    completions = samples(COMPLETIONS_FILE, CompletionSample)
    return Run(
        run_dir=run_dir,
        header=header,
        records=tuple(records),
        canary=canary,
        monitor=monitor,
        requests=tuple(sorted(requests, key=attrgetter("t"))),
        completions=completions,
        problems=tuple(problems),
        truncated=tuple(truncated),
        chain=chain,
        registration=registration,
        tampering=tuple(tampering),
    )


def _differences(said: Any, registered: Any) -> str:
    if isinstance(said, Mapping) and isinstance(registered, Mapping):
        keys = sorted(set(said) | set(registered), key=str)
        parts = [f"{k} {json.dumps(said.get(k))} here, {json.dumps(registered.get(k))} registered"
                 for k in keys if said.get(k) != registered.get(k)]
        return "; ".join(parts)
    return f"{json.dumps(said)} here, {json.dumps(registered)} registered"


def _registered_file(registration: Mapping[str, Any], role: str) -> Mapping[str, Any] | None:
    files = registration.get("inputs")
    if not isinstance(files, list):
        return None
    return next((f for f in files if isinstance(f, Mapping) and f.get("role") == role), None)


def _against_registration(header: RunHeader, registration: Mapping[str, Any]) -> list[JournalProblem]:
    """Where the header says other than the pre-registration record (line 1 of the journal)."""
    found = []
    for key in JUDGED_KEYS:
        if key in registration and getattr(header, key) != registration[key]:
            found.append(JournalProblem(JOURNAL_FILE, 1, (
                f"tampered: the header's {key} differ from the pre-registered ones in {REGISTRATION_FILE} "
                f"({_differences(getattr(header, key), registration[key])}); the run is judged only on the "
                "registered ones")))
    for role, said in (("scenario", header.scenario), ("stack", header.stack)):
        entry = _registered_file(registration, role)
        if entry is not None and said.get("sha256") and said.get("sha256") != entry.get("sha256"):
            found.append(JournalProblem(JOURNAL_FILE, 1, (
                f"tampered: the header names a {role} file with SHA-256 {said.get('sha256')}, but the "
                f"pre-registered {role} ({entry.get('file')}) has {entry.get('sha256')}")))
    return found


def _evidence(run_dir: Path, header: RunHeader) -> tuple[Chain, Mapping[str, Any] | None, list[JournalProblem]]:
    """The journal's chain, the pre-registration record, and every sign of tampering."""
    registration, unreadable = read_registration(run_dir)
    chain = check_chain(run_dir / JOURNAL_FILE, genesis_of(run_dir))
    tampering = [JournalProblem(JOURNAL_FILE, number, f"tampered: the hash chain breaks here: {why}")
                 for number, why in chain.breaks]
    if unreadable:
        tampering.append(JournalProblem(JOURNAL_FILE, 1, f"tampered: {unreadable}"))
    if registration is not None:
        tampering += _against_registration(header, registration)
    return chain, registration, tampering


@dataclass(frozen=True)
class JournalEvidence:
    """The evidence of a run's journal alone: its hash chain, the pre-registration record
    (None without one), and every sign of tampering (each naming the line)."""

    chain: Chain
    registration: Mapping[str, Any] | None
    tampering: tuple[JournalProblem, ...]


def check_journal(run_dir: str | os.PathLike[str]) -> JournalEvidence:
    """Check a run's journal chain and header against its pre-registration, without reading
    the samples. Raises ``InputError`` as :func:`read_run` does for a directory that is no run."""
    run_dir = Path(run_dir)
    header, _, _ = _header(run_dir)
    chain, registration, tampering = _evidence(run_dir, header)
    return JournalEvidence(chain, registration, tuple(tampering))
