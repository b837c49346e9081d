"""Reading a run directory as the journal contract in docs/architecture.md describes it.

This is analysis's own small reader; ``load_run`` is the one function the rest of the
package calls, so it can be swapped for ``faultlab.engine.journal.read_run`` later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from faultlab.errors import InputError, Problem

__all__ = ["JOURNAL_FILE", "SCHEMA_PREFIX", "RunJournal", "load_run"]

JOURNAL_FILE = "journal.jsonl"
SCHEMA_PREFIX = "faultlab.journal/"
SUPPORTED_MAJOR = 1


@dataclass
class RunJournal:
    """Everything a run directory holds that analysis needs, as plain records.

    ``records`` are the journal lines after the header, in file order. ``problems`` lists
    what could not be read (a torn last line after a kill, a garbled sample); analysis
    reports them as deviations instead of failing.
    """

    run_dir: Path
    header: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    canary: list[dict[str, Any]] = field(default_factory=list)
    monitor: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        """The journal records whose ``type`` is ``kind``, in file order."""
        return [r for r in self.records if r.get("type") == kind]

    @property
    def end(self) -> dict[str, Any] | None:
        """The ``end`` record, or None when the harness was killed before writing it."""
        ends = self.of_type("end")
        return ends[-1] if ends else None


def _read_jsonl(path: Path, problems: list[str]) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    rows: list[dict[str, Any]] = []
    lines = path.read_bytes().split(b"\n")
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except ValueError:
            last = number == len(lines) or all(not rest.strip() for rest in lines[number:])
            what = "torn last line (the writer was stopped mid-line)" if last else "not JSON"
            problems.append(f"{path.name}:{number}: {what}; line skipped")
            continue
        if not isinstance(row, dict):
            problems.append(f"{path.name}:{number}: not a JSON object; line skipped")
            continue
        rows.append(row)
    return rows


def load_run(run_dir: str | Path) -> RunJournal:
    """Read ``run_dir`` per the journal contract.

    Raises ``InputError`` when the directory is not a run directory or the journal's
    header is missing, unreadable or of an unknown schema.
    """
    run_dir = Path(run_dir)
    journal = run_dir / JOURNAL_FILE
    if not run_dir.is_dir():
        raise InputError([Problem(str(run_dir), 0, 0, "", "not a directory")])
    if not journal.is_file():
        raise InputError(
            [Problem(str(run_dir), 0, 0, "", f"not a run directory: it has no {JOURNAL_FILE}")]
        )
    try:
        first = journal.read_bytes().split(b"\n", 1)[0]
        header = json.loads(first)
    except (OSError, ValueError) as exc:
        raise InputError(
            [Problem(str(journal), 1, 1, "", f"the journal header is not readable JSON ({exc})")]
        ) from exc
    if not isinstance(header, dict) or header.get("type") != "run":
        raise InputError(
            [Problem(str(journal), 1, 1, "", 'the first line is not a {"type": "run"} header')]
        )
    schema = str(header.get("schema", ""))
    major = schema[len(SCHEMA_PREFIX):].split(".")[0] if schema.startswith(SCHEMA_PREFIX) else ""
    if major != str(SUPPORTED_MAJOR):
        raise InputError(
            [
                Problem(
                    str(journal), 1, 1, "schema",
                    f"unsupported journal schema {schema!r} (expected {SCHEMA_PREFIX}{SUPPORTED_MAJOR})",
                )
            ]
        )
    problems: list[str] = []
    rows = _read_jsonl(journal, problems)
    return RunJournal(
        run_dir=run_dir,
        header=header,
        records=rows[1:],
        canary=_read_jsonl(run_dir / "canary.jsonl", problems),
        monitor=_read_jsonl(run_dir / "monitor.jsonl", problems),
        requests=_read_jsonl(run_dir / "requests.jsonl", problems),
        problems=problems,
    )
