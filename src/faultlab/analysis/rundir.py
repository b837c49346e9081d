"""A run directory as analysis reads it: the engine's journal reading, kept tolerant.

The journal format is read in one place, :mod:`faultlab.engine.journal` (pure): its
``read_header`` checks the header and schema, its ``read_lines`` reads every JSON-lines
file. Analysis keeps the objects as plain dicts instead of typed records so that an odd line
(a sample missing a field, a record of an unknown or malformed kind) is judged by the
analysis's own rules and reported as a problem, never a reason to refuse the whole run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faultlab.engine.journal import (
    CANARY_FILE,
    COMPLETIONS_FILE,
    JOURNAL_FILE,
    MONITOR_FILE,
    REQUESTS_FILE,
    read_header,
    read_lines,
)

__all__ = ["JOURNAL_FILE", "RunJournal", "load_run"]


@dataclass
class RunJournal:
    """Everything a run directory holds that analysis needs, as plain records.

    ``records`` are the journal lines after the header, in file order. ``completions`` are
    the rows of ``completions.jsonl`` (an acknowledged request's send time and completion
    delay). ``problems`` lists what could not be read (a torn last line after a kill, a
    garbled sample); analysis reports them as deviations instead of failing.
    """

    run_dir: Path
    header: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    canary: list[dict[str, Any]] = field(default_factory=list)
    monitor: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    completions: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        """The journal records whose ``type`` is ``kind``, in file order."""
        return [r for r in self.records if r.get("type") == kind]

    @property
    def end(self) -> dict[str, Any] | None:
        """The ``end`` record, or None when the harness was killed before writing it."""
        ends = self.of_type("end")
        return ends[-1] if ends else None


def load_run(run_dir: str | Path) -> RunJournal:
    """Read ``run_dir`` per the journal contract (docs/architecture.md).

    Raises ``InputError`` when the directory is not a run directory or the journal's
    header is missing, unreadable or of an unknown schema; unreadable lines anywhere else
    are skipped and listed in ``problems``.
    """
    run_dir = Path(run_dir)
    _, journal = read_header(run_dir)
    problems = journal.problems()
    samples: dict[str, list[dict[str, Any]]] = {}
    for name in (CANARY_FILE, MONITOR_FILE, REQUESTS_FILE, COMPLETIONS_FILE):
        lines = read_lines(run_dir / name)
        problems += lines.problems()
        samples[name] = [obj for _, obj in lines.rows]
    return RunJournal(
        run_dir=run_dir,
        header=journal.rows[0][1],
        records=[obj for _, obj in journal.rows[1:]],
        canary=samples[CANARY_FILE],
        monitor=samples[MONITOR_FILE],
        requests=samples[REQUESTS_FILE],
        completions=samples[COMPLETIONS_FILE],
        problems=problems,
    )
