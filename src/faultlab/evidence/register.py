"""The evidence register: one line per sealed package, appended, hash-chained.

The register is a JSON-lines file (``$FAULTLAB_REGISTER``, else
``$XDG_DATA_HOME/faultlab/evidence-register.jsonl``, else
``~/.local/share/faultlab/evidence-register.jsonl``). Each seal appends one line::

    {"seq": 7, "sealed_at": "2026-11-30T09:43:15+00:00", "schema": "faultlab.seal/1",
     "manifest": "manifest.json", "manifest_sha256": "...", "files_sha256": "...", "kind": "run",
     "id": "FT-01-...", "signed": true, "algorithm": "ed25519", "key_id": "...", "key_name": "lead",
     "public_key": "<base64>", "signature": "<base64>", "path": "/abs/reports/FT-01/FT-01-...",
     "prev": "<SHA-256 of the line before>"}

``prev`` chains the lines as the journal's are chained (:mod:`faultlab.journal.chain`), so a
line removed, changed or reordered is found; a line's ``signature`` (the seal's, over
:func:`faultlab.evidence.seal.statement`) can be checked without the package. The digest of a
line is what a change ticket quotes (:func:`anchor`). Lines are appended under an exclusive
lock, so runs sealing at the same time each get their own line.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from faultlab.journal.chain import GENESIS, PREV, check_chain, line_digest

__all__ = ["REGISTER_ENV", "Entry", "register_path", "append_entry", "read_register", "anchor", "check_register"]

REGISTER_ENV = "FAULTLAB_REGISTER"


def register_path() -> Path:
    """``$FAULTLAB_REGISTER``, else ``$XDG_DATA_HOME/faultlab/evidence-register.jsonl``, else
    ``~/.local/share/faultlab/evidence-register.jsonl``."""
    named = os.environ.get(REGISTER_ENV)
    if named:
        return Path(named)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "faultlab" / "evidence-register.jsonl"


@dataclass(frozen=True)
class Entry:
    """One line of the register, as read, with its line number and digest."""

    line: int
    digest: str
    data: dict[str, Any]


@contextmanager
def _locked(path: Path) -> Iterator[Any]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield handle
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _last_line(handle: Any) -> tuple[int, bytes | None]:
    handle.seek(0)
    lines = [line for line in handle.read().split(b"\n") if line.strip()]
    return len(lines), (lines[-1] if lines else None)


def append_entry(fields: dict[str, Any], path: Path | None = None) -> Entry:
    """Append one line to the register (``seq``, ``sealed_at`` and ``prev`` added here)."""
    path = path or register_path()
    with _locked(path) as handle:
        count, last = _last_line(handle)
        prev = line_digest(last) if last is not None else GENESIS
        data = {"seq": count + 1, "sealed_at": datetime.now(UTC).isoformat(timespec="seconds"),
                **fields, PREV: prev}
        line = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        handle.seek(0, os.SEEK_END)
        handle.write(line + b"\n")
        handle.flush()
        os.fsync(handle.fileno())
    return Entry(count + 1, line_digest(line), data)


def read_register(path: Path | None = None) -> list[Entry]:
    """Every line of the register that reads as a JSON object, with its digest."""
    path = path or register_path()
    if not path.is_file():
        return []
    entries = []
    for number, line in enumerate(path.read_bytes().split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError:
            data = None
        entries.append(Entry(number, line_digest(line), data if isinstance(data, dict) else {}))
    return entries


def anchor(entry: Entry) -> str:
    """The one line to paste into a change ticket: what was sealed, its manifest's SHA-256,
    who signed it, and the register line that records it (number and digest)."""
    d = entry.data
    signer = (f"signed by {d.get('key_name') or 'key'} {str(d.get('key_id'))[:16]}" if d.get("signed")
              else "UNSIGNED")
    return (f"faultlab evidence {d.get('kind')} {d.get('id')} manifest sha256:{d.get('manifest_sha256')} "
            f"{signer}; register line {d.get('seq')} sha256:{entry.digest}")


def _signature_problem(entry: Entry) -> str:
    from faultlab.evidence.keys import PublicKey
    from faultlab.evidence.seal import statement

    d = entry.data
    if not d.get("signed"):
        return ""
    try:
        key = PublicKey.from_base64(str(d.get("public_key", "")), str(d.get("key_name") or ""))
        signature = base64.b64decode(str(d.get("signature", "")), validate=True)
    except ValueError as exc:
        return f"its key or signature is not readable ({exc})"
    if key.key_id != d.get("key_id"):
        return "its key id does not match its public key"
    if not key.verifies(signature, statement(d)):
        return "its signature does not match what the line records (the line was changed)"
    return ""


def check_register(path: Path | None = None) -> list[tuple[int, str]]:
    """Every problem of the register as ``(line, what)``: a break in the chain, a line that
    is not a register entry, a signature that does not match the line."""
    path = path or register_path()
    chain = check_chain(path)
    problems = [(n, f"the chain breaks here: {why}") for n, why in chain.breaks]
    if path.is_file() and path.stat().st_size and not chain.chained:
        problems.append((1, "no line carries a chain link: this is not an evidence register"))
    seqs = []
    for entry in read_register(path):
        if not entry.data:
            problems.append((entry.line, "not a JSON object"))
            continue
        seqs.append(entry.data.get("seq"))
        why = _signature_problem(entry)
        if why:
            problems.append((entry.line, why))
    if seqs != list(range(1, len(seqs) + 1)):
        problems.append((0, f"the sequence numbers do not run 1..{len(seqs)}: lines were removed or reordered"))
    return sorted(problems)
