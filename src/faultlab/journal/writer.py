"""Appending a run's journal: :class:`JournalWriter`, the engine's one way to write it.

Every line is flushed as it is written; the lines that matter after a crash (the header,
a fault's ``planned`` / ``injected`` / ``active`` / ``reverted`` / ``revert_failed``, the
``end``) are also fsynced, so a killed harness leaves a readable prefix. Several threads
may write at once; each line is written whole.

Every line of ``journal.jsonl`` carries ``prev``, the digest of the line before it, the
header's being that of the pre-registration record (:mod:`faultlab.journal.chain`): the
digest is taken and the line written under one lock, so the chain follows the file line by line.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from faultlab.journal.chain import PREV, check_chain, genesis_of, line_digest
from faultlab.journal.records import (
    CANARY_FILE,
    COMPLETIONS_FILE,
    JOURNAL_FILE,
    MONITOR_FILE,
    REQUESTS_FILE,
    CanarySample,
    CompletionSample,
    End,
    FaultEvent,
    MonitorSample,
    Note,
    Phase,
    Record,
    RequestSample,
    RunHeader,
)

__all__ = ["JournalWriter"]

_FSYNCED_FAULT_EVENTS = frozenset({"planned", "injected", "active", "reverted", "revert_failed"})


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
        # Open for the life of the run, closed by close(): not a with-block.
        self._fh = open(path, "a", encoding="utf-8")  # noqa: SIM115

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


class _ChainedFile(_AppendFile):
    """The journal: each object gets ``prev``, the digest of the line written before it."""

    def __init__(self, path: Path, head: str):
        super().__init__(path)
        self.head = head

    def append_record(self, obj: Mapping[str, Any], *, sync: bool) -> None:
        with self._lock:
            if self._fh.closed:
                raise ValueError(f"{self.path} is closed")
            line = _dumps({**{k: v for k, v in obj.items() if k != PREV}, PREV: self.head})
            self._fh.write(line)
            self._fh.flush()
            if sync:
                os.fsync(self._fh.fileno())
            self.head = line_digest(line.encode("utf-8"))


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
        self._journal: _ChainedFile | None = None

    @classmethod
    def open(
        cls,
        run_dir: str | os.PathLike[str],
        header: RunHeader,
        *,
        origin: float,
        clock: Any = None,
    ) -> JournalWriter:
        """Create the run directory and write ``header`` as the first, fsynced line, chained
        to the pre-registration record when the run directory has one (``inputs/``)."""
        writer = cls(run_dir, origin=origin, clock=clock)
        if writer._header_written:
            raise FileExistsError(f"{writer.run_dir / JOURNAL_FILE} already has a header")
        writer._chained().append_record(header.to_dict(), sync=True)
        writer._header_written = True
        return writer

    @property
    def head(self) -> str | None:
        """The digest of the last journal line: the chain's head (None before the header)."""
        with self._files_lock:
            journal = self._journal
        if journal is not None:
            return journal.head
        return check_chain(self.run_dir / JOURNAL_FILE).head if self._header_written else None

    def _chained(self) -> _ChainedFile:
        with self._files_lock:
            if self._journal is None:
                path = self.run_dir / JOURNAL_FILE
                head = check_chain(path).head if self._header_written else None
                self._journal = _ChainedFile(path, head or genesis_of(self.run_dir))
                self._files[JOURNAL_FILE] = self._journal
            return self._journal

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
        self._chained().append_record(record.to_dict(), sync=sync)

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
            self._journal = None
        for handle in files:
            handle.close()
