"""The journal's hash chain and the pre-registration record it starts from.

Every line of ``journal.jsonl`` carries ``prev``: the SHA-256 (hex) of the exact bytes of the
line before it, without its newline. The header's ``prev`` is the SHA-256 of the run's
pre-registration record, ``inputs/registration.json``, written before anything started (or
:data:`GENESIS` for a journal without one), so the record of the inputs and targets is the
first link of the chain. The digest of the last line is the chain's *head*; the manifest
keeps it, so a line changed, removed, inserted or reordered is found even when every file
hash was recomputed.

:func:`check_chain` walks a journal's bytes and names every break as tampering, with the
line where it shows and what most likely happened. A torn last line (a writer stopped by
``kill -9``) is not part of the chain and is not a break. A journal in which no line
carries ``prev`` was written before the chain existed: ``chained`` is False and nothing can
be said.

Pure: hashing and JSON only.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "GENESIS",
    "PREV",
    "INPUTS_DIR",
    "REGISTRATION_FILE",
    "REGISTRATION_SCHEMA",
    "JUDGED_KEYS",
    "line_digest",
    "genesis_of",
    "Chain",
    "check_chain",
    "read_registration",
]

GENESIS = "0" * 64
"""The ``prev`` of a header that has no pre-registration record to follow."""

PREV = "prev"
"""The key of each journal line holding the digest of the line before."""

INPUTS_DIR = "inputs"
"""The folder of a package holding its pre-registered inputs."""

REGISTRATION_FILE = f"{INPUTS_DIR}/registration.json"
"""The pre-registration record, relative to the run directory."""

REGISTRATION_SCHEMA = "faultlab.registration/1"

JUDGED_KEYS = ("targets", "steady_state", "window_s", "hold_s")
"""What a run is judged by: pre-registered, and taken only from the registration."""


def line_digest(line: bytes) -> str:
    """The SHA-256 (hex) of one journal line's bytes, without its newline."""
    return hashlib.sha256(line.rstrip(b"\r\n")).hexdigest()


def genesis_of(run_dir: str | os.PathLike[str]) -> str:
    """What the header's ``prev`` must be: the digest of ``inputs/registration.json``, or
    :data:`GENESIS` when the run has none."""
    path = Path(run_dir) / REGISTRATION_FILE
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else GENESIS


@dataclass(frozen=True)
class Chain:
    """What :func:`check_chain` found: whether the journal is chained, its head (the digest
    of its last complete line), how many lines are in the chain, and every break as
    ``(line number, what is wrong)``."""

    chained: bool
    head: str | None
    lines: int
    breaks: tuple[tuple[int, str], ...] = field(default_factory=tuple)

    @property
    def intact(self) -> bool:
        """True when the journal is chained and nothing breaks the chain."""
        return self.chained and not self.breaks


def _prev_of(line: bytes) -> tuple[bool, Any]:
    """``(parsed, prev)``: whether the line is a JSON object, and its ``prev`` (None if absent)."""
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):  # garbled, or nested too deep to read
        return False, None
    if not isinstance(obj, dict):
        return False, None
    return True, obj.get(PREV)


def _split(raw: bytes) -> list[tuple[int, bytes]]:
    """The non-blank lines with their numbers; a last line that is not JSON (torn by a
    killed writer) is left out."""
    lines = [(n, line) for n, line in enumerate(raw.split(b"\n"), start=1) if line.strip()]
    if lines and not _prev_of(lines[-1][1])[0]:
        lines.pop()
    return lines


def _kind(line: bytes) -> str:
    """``a fault record (active)``: what a journal line is, for messages."""
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):
        return "an unreadable line"
    if not isinstance(obj, dict):
        return "not a record"
    kind = str(obj.get("type") or "untyped")
    detail = obj.get("event") or obj.get("name") or obj.get("status")
    return f"a {kind} record ({detail})" if isinstance(detail, str) and detail else f"a {kind} record"


def _diagnose(prev: Any, number: int, expected_from: int | None, seen: dict[str, int], digests: dict[str, int],
              genesis: str, kinds: dict[int, str]) -> str:
    if prev is None:
        return "this line carries no chain link (prev): the run did not write it (inserted or rewritten by hand)"
    if expected_from is None:
        if prev == GENESIS:
            return (f"the header is not chained to the pre-registration record {REGISTRATION_FILE}: "
                    "the record was added or the header rewritten after the run")
        if genesis == GENESIS:
            return (f"the header is chained to a pre-registration record that is missing ({REGISTRATION_FILE}): "
                    "it was removed")
        return (f"the header does not follow the pre-registration record {REGISTRATION_FILE}: "
                "the record or the header was changed after the run started")
    if prev in seen:
        between = (f"line {expected_from} ({kinds[expected_from]})" if seen[prev] + 1 >= expected_from
                   else f"the lines after line {seen[prev]} up to line {expected_from}")
        return f"this line follows line {seen[prev]}, not line {expected_from}: {between} was inserted or moved here"
    if digests.get(prev, 0) > number:
        return f"this line follows line {digests[prev]}, which comes after it: the lines were reordered"
    return (f"this line does not follow line {expected_from}: line {expected_from} ({kinds[expected_from]}) was "
            "changed, or a line after it was removed")


Link = tuple[int, bytes, bool, Any]


def _reordering(links: list[Link], genesis: str) -> tuple[int, str] | None:
    """When every line is there and only their sequence changed: the first line out of place
    and the sequence they were written in; None otherwise."""
    following: dict[Any, int] = {}
    for number, _, _, prev in links:
        if prev is None or prev in following:
            return None
        following[prev] = number
    lines = {number: line for number, line, _, _ in links}
    written: list[int] = []
    at = genesis
    while at in following and len(written) <= len(links):
        number = following.pop(at)
        written.append(number)
        at = line_digest(lines[number])
    in_file = [number for number, _, _, _ in links]
    if sorted(written) != in_file:
        return None
    moved = [f for f, w in zip(in_file, written, strict=True) if f != w]
    if not moved:
        return None
    first, last = moved[0], moved[-1]
    sequence = ", then ".join(f"line {w}" for f, w in zip(in_file, written, strict=True) if first <= f <= last)
    return first, (f"lines {first} to {last} are not in the sequence the run wrote them in (it wrote {sequence}): "
                   "they were reordered")


def check_chain(path: str | os.PathLike[str], genesis: str = GENESIS) -> Chain:
    """Walk the hash chain of the journal at ``path``, its header chained to ``genesis``
    (see :func:`genesis_of`). After a break the walk follows the line as it is, so one edit
    is reported once; lines that are all there but moved about are reported once."""
    path = Path(path)
    lines = _split(path.read_bytes()) if path.is_file() else []
    links: list[Link] = [(number, line, *_prev_of(line)) for number, line in lines]
    if not any(prev is not None for _, _, _, prev in links):
        return Chain(False, None, len(links))
    digests = {line_digest(line): number for number, line, _, _ in links}
    kinds = {number: _kind(line) for number, line, _, _ in links}
    breaks: list[tuple[int, str]] = []
    head, head_line = genesis, None
    seen: dict[str, int] = {}
    for number, line, _parsed, prev in links:
        if prev != head:
            breaks.append((number, _diagnose(prev, number, head_line, seen, digests, genesis, kinds)))
        head, head_line = line_digest(line), number
        seen[head] = number
    reordered = _reordering(links, genesis) if breaks else None
    return Chain(True, head, len(links), (reordered,) if reordered else tuple(breaks))


def read_registration(run_dir: str | os.PathLike[str]) -> tuple[Mapping[str, Any] | None, str]:
    """The pre-registration record of a run directory and what is wrong with it ('' when it
    reads, or when there is none: ``(None, '')``)."""
    path = Path(run_dir) / REGISTRATION_FILE
    if not path.is_file():
        return None, ""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        return None, f"{REGISTRATION_FILE} is not readable JSON ({exc})"
    if not isinstance(data, dict) or data.get("schema") != REGISTRATION_SCHEMA:
        return None, f"{REGISTRATION_FILE} is not a {REGISTRATION_SCHEMA} record"
    return data, ""
