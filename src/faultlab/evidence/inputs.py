"""Pre-registration: the exact inputs and the targets, written into the package first.

Before anything starts, a run copies the exact bytes of its scenario, its stack file and
its drill plan into ``inputs/<role>/<file name>`` and writes ``inputs/registration.json``::

    {"schema": "faultlab.registration/1", "kind": "run", "id": "FT-01-...",
     "registered_at": "...", "inputs": [{"role": "scenario", "file": "inputs/scenario/ft-01.yaml",
     "source": "/abs/scenarios/ft-01.yaml", "sha256": "...", "size": 812}, ...],
     "scenario": {"id": "FT-01", "title": "..."}, "targets": {...}, "steady_state": {...},
     "window_s": 1.0, "hold_s": 5.0, "settle_s": 5.0, "duration_s": 90.0}

The journal's header is chained to this record (its ``prev`` is the record's SHA-256,
:mod:`faultlab.journal.chain`), so the record comes first and cannot be rewritten after
the run without breaking the chain; analysis judges the run on these targets only. A drill
plan's or a gate's folder registers the plan, every scenario and stack (and the gate's
baseline) the same way, with the targets of each scenario under ``scenarios``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from faultlab.journal.chain import INPUTS_DIR, REGISTRATION_FILE, REGISTRATION_SCHEMA
from faultlab.model.types import text_json

__all__ = ["judged", "register_inputs", "preregister_run", "preregister_plan"]


def judged(scenario: Any) -> dict[str, Any]:
    """What a scenario's runs are judged by, as the journal's header records it."""
    return {
        "targets": scenario.targets.model_dump(mode="json", exclude_none=True),
        "steady_state": scenario.steady_state.model_dump(mode="json", exclude_none=True),
        "window_s": scenario.window,
        "hold_s": scenario.hold,
        "settle_s": scenario.settle,
        "duration_s": scenario.duration,
    }


def _copy(root: Path, role: str, source: Path, taken: set[str]) -> dict[str, Any]:
    data = source.read_bytes()
    name = source.name
    rel = f"{INPUTS_DIR}/{role}/{name}"
    number = 1
    while rel in taken:
        number += 1
        rel = f"{INPUTS_DIR}/{role}/{number}-{name}"
    taken.add(rel)
    target = root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    return {"role": role, "file": rel, "source": str(source), "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data)}


def register_inputs(root: str | Path, files: Iterable[tuple[str, str | os.PathLike[str]]],
                    record: dict[str, Any]) -> Path:
    """Copy ``files`` (``(role, path)``, each path once) into ``root/inputs/`` and write the
    registration record (``record`` adds what is registered), fsynced. Returns its path."""
    root = Path(root)
    taken: set[str] = set()
    seen: set[Path] = set()
    inputs = []
    for role, path in files:
        source = Path(os.path.abspath(path))
        if source in seen:
            continue
        seen.add(source)
        inputs.append(_copy(root, role, source, taken))
    body = {"schema": REGISTRATION_SCHEMA, **record,
            "registered_at": datetime.now(UTC).isoformat(timespec="microseconds"), "inputs": inputs}
    path = root / REGISTRATION_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        handle.write(json.dumps(body, indent=2, ensure_ascii=False, allow_nan=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return path


def preregister_run(run_dir: str | Path, scenario: Any, run_id: str,
                    extra: Sequence[tuple[str, str | os.PathLike[str]]] = ()) -> Path:
    """Register a run's inputs (scenario, stack, and ``extra`` such as its plan) and targets."""
    files = [("scenario", scenario.source), ("stack", scenario.resolved_stack.source), *extra]
    record = {"kind": "run", "id": run_id, "scenario": {"id": scenario.id, "title": text_json(scenario.title)},
              **judged(scenario)}
    return register_inputs(run_dir, [(role, path) for role, path in files if path], record)


def preregister_plan(root: str | Path, plan: Any, *, kind: str, id: str,
                     extra: Sequence[tuple[str, str | os.PathLike[str]]] = ()) -> Path:
    """Register a drill plan's inputs (the plan, every scenario and stack, ``extra`` such as
    the gate's baseline) and the targets of every scenario."""
    scenarios = plan.resolved_scenarios
    files: list[tuple[str, str | os.PathLike[str]]] = [("plan", plan.source)]
    files += [("scenario", s.source) for s in scenarios]
    files += [("stack", s.resolved_stack.source) for s in scenarios]
    files += list(extra)
    record = {"kind": kind, "id": id,
              "scenarios": {s.id: {"title": text_json(s.title), **judged(s)} for s in scenarios}}
    return register_inputs(root, [(role, path) for role, path in files if path], record)
