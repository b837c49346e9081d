"""Build synthetic run directories per the journal contract, with outages at known moments.

Used by the analysis and report tests: the truth (when the outage began and ended, when
monitoring noticed) is chosen here, so measures can be checked against it. The runs are of
the trading stack, with its plugin's declaration in the header (its integrity checks and
words), as a real run records it.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tradingstack.plugin import DECLARATION

ORIGIN_WALL = "2026-11-25T10:00:00.000000+00:00"


@dataclass
class Outage:
    """Canary requests sent in ``[start, end)`` fail; ``end=None`` never recovers.

    ``held``: they are not failed but held until ``end`` and answered then (a paused
    service), failing only when that takes over the 1 s timeout. ``late``: they are answered
    at once but completed only at ``end`` (an exchange that cannot be reached).
    """

    start: float = 20.0
    end: float | None = 30.0
    detect_lag: float | None = 1.0
    rejected: bool = False
    held: bool = False
    late: bool = False


@dataclass
class RunSpec:
    """What to write: the fault, the outage it causes, and the optional extra records."""

    run_id: str = "run-0001"
    scenario_id: str = "FT-01"
    duration: float = 60.0
    probe_interval: float = 0.05
    monitor_interval: float = 0.1
    fault_at: float = 20.0
    fault_for: float = 10.0
    planned_at: float | None = None
    outage: Outage | None = field(default_factory=Outage)
    targets: dict[str, Any] = field(
        default_factory=lambda: {"detect_within": 5.0, "recover_within": 30.0, "lost_orders": 0}
    )
    integrity_violations: list[dict[str, Any]] = field(default_factory=list)
    failed_at: tuple[float, ...] = ()
    steady_state: dict[str, Any] = field(
        default_factory=lambda: {"success_rate": {"min": 0.99}, "p99_latency": {"max": 0.25}})
    integrity: bool = True
    job: dict[str, Any] | None = None
    load: bool = True
    completion_delay: bool = True
    completed: bool = True
    seed: int = 7
    scenario_texts: dict[str, Any] = field(default_factory=dict)
    """Overrides of the header's scenario texts (title, description, assumptions), as journalled."""


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _down(outage: Outage | None, t: float) -> bool:
    return outage is not None and t >= outage.start and (outage.end is None or t < outage.end)


def _load_request(outage: Outage | None, t: float, i: int) -> dict[str, Any]:
    latency = 0.03
    ok = not _down(outage, t)
    if outage is not None and not ok and outage.end is not None and (outage.held or outage.late):
        latency = round(outage.end - t + 0.005, 6) if outage.held else latency
        ok = latency <= 1.0
    return {"t": t, "name": "get_order" if i % 8 == 0 else "place_order", "ok": ok, "latency_s": latency if ok else 1.0,
            "status": 201 if ok else None, "ack": f"l-{i}" if ok else None}


def _requests(spec: RunSpec, rng: random.Random) -> tuple[list[dict[str, Any]], ...]:
    """Canary and load requests every probe interval, and the completion delays."""
    outage = spec.outage
    canary, requests, completions = [], [], []
    n = int(round(spec.duration / spec.probe_interval))
    for i in range(n):
        t = round(i * spec.probe_interval, 6)
        if t in spec.failed_at:
            canary.append({"t_send": t, "t_done": t + 0.01, "ok": False, "latency_s": 0.01,
                           "status": 500, "error": "a stray failure", "ack": None})
        elif outage is not None and outage.held and outage.end is not None and _down(outage, t):
            latency = round(outage.end - t + 0.005, 6)
            ok = latency <= 1.0
            canary.append({"t_send": t, "t_done": t + latency, "ok": ok, "latency_s": latency,
                           "status": 201 if ok else None, "error": None if ok else "timeout",
                           "ack": f"c-{i}" if ok else None})
        elif outage is not None and outage.late and outage.end is not None and _down(outage, t):
            canary.append({"t_send": t, "t_done": t + 0.02, "ok": True, "latency_s": 0.02,
                           "status": 201, "error": None, "ack": f"c-{i}"})
            completions.append({"t": t, "ack": f"c-{i}", "delay_s": round(outage.end - t + 0.1, 6)})
        elif outage is not None and _down(outage, t):
            status = 503 if outage.rejected else None
            latency = 0.01 if outage.rejected else 1.0
            canary.append({"t_send": t, "t_done": t + latency, "ok": False, "latency_s": latency,
                           "status": status, "error": "unavailable" if status else "timeout", "ack": None})
        else:
            latency = round(rng.uniform(0.01, 0.05), 4)
            canary.append({"t_send": t, "t_done": t + latency, "ok": True, "latency_s": latency,
                           "status": 201, "error": None, "ack": f"c-{i}"})
            if spec.completion_delay:
                after = outage is not None and outage.end is not None and outage.end <= t < outage.end + 3
                delay = round(rng.uniform(0.002, 0.01) + (0.5 if after else 0.0), 4)
                completions.append({"t": t, "ack": f"c-{i}", "delay_s": delay})
        if spec.load and i % 2 == 0:
            requests.append(_load_request(outage, t + 0.01, i))
    return canary, requests, completions


def _monitor(spec: RunSpec) -> list[dict[str, Any]]:
    """Readiness polls: not ready from the outage start plus the detection lag until it ends."""
    outage = spec.outage
    monitor = []
    for i in range(int(round(spec.duration / spec.monitor_interval))):
        t = round(i * spec.monitor_interval, 6)
        ready = True
        backlog = 0
        if outage is not None and outage.detect_lag is not None:
            seen = outage.start + outage.detect_lag
            if t >= seen and (outage.end is None or t < outage.end):
                ready = False
        if outage is not None and t >= outage.start and (outage.end is None or t < outage.end + 2.0):
            backlog = 5
        monitor.append({"t": t, "ready": ready, "status": 200 if ready else 503,
                        "latency_s": 0.002, "detail": {"body": {"outbox_backlog": backlog}}})
    return monitor


def write_run(parent: Path, spec: RunSpec | None = None) -> Path:
    """Write a run directory under ``parent`` and return its path."""
    spec = spec or RunSpec()
    rng = random.Random(spec.seed)
    run_dir = parent / spec.run_id
    (run_dir / "services").mkdir(parents=True, exist_ok=True)
    canary, requests, completions = _requests(spec, rng)
    monitor = _monitor(spec)

    planned = spec.planned_at if spec.planned_at is not None else spec.fault_at
    fault = {"fault_id": "timeline[0]", "kind": "db_stall", "target": "db",
             "params": {"mode": "freeze", "for": spec.fault_for}, "planned_t": planned,
             "revert_plan": "SIGCONT the postgres processes"}
    header = {
        "type": "run", "schema": "faultlab.journal/2", "run_id": spec.run_id,
        "scenario": {"id": spec.scenario_id, "title": "Order database stalls for 10 s",
                     "file": f"scenarios/{spec.scenario_id}.yaml", "sha256": "ab" * 32,
                     **spec.scenario_texts},
        "stack": {"name": "trading", "file": "stacks/trading.yaml", "sha256": "cd" * 32},
        "origin_wall": ORIGIN_WALL, "faultlab_version": "0.1.0", "host": "drill-host",
        "targets": spec.targets,
        "steady_state": spec.steady_state,
        "window_s": 1.0, "hold_s": 5.0, "probe_interval_s": spec.probe_interval,
        "duration_s": spec.duration,
        "plugin": "tradingstack.plugin", "declaration": DECLARATION.to_json(),
    }
    records: list[dict[str, Any]] = [
        header,
        {"type": "phase", "t": 0.0, "name": "baseline", "state": "begin"},
        {"type": "phase", "t": spec.fault_at - 0.5, "name": "baseline", "state": "end"},
        {"type": "phase", "t": spec.fault_at - 0.5, "name": "faults", "state": "begin"},
        {"type": "fault", "t": spec.fault_at - 0.5, "event": "planned", **fault},
        {"type": "fault", "t": spec.fault_at - 0.01, "event": "injected", **fault},
        {"type": "fault", "t": spec.fault_at, "event": "active", **fault},
        {"type": "fault", "t": spec.fault_at + spec.fault_for, "event": "reverted", **fault},
        {"type": "cleanup", "t": spec.fault_at + spec.fault_for + 0.01,
         "what": "postgres processes resumed", "ok": True},
        {"type": "decision", "t": spec.fault_at + 2.0, "what": "stop_order_intake",
         "why": "readiness failed"},
    ]
    if spec.job:
        records.append({"type": "job", "t": spec.job["started_t"], "job": "batch", "event": "started", "detail": {}})
        records.append({"type": "job_result", "t": spec.job["finished_t"], "job": "batch", **spec.job})
    if not spec.completed:
        records.append({"type": "note", "t": 40.0, "level": "info", "message": "still running"})
        _write_jsonl(run_dir / "journal.jsonl", records)
        (run_dir / "journal.jsonl").open("a").write('{"type":"note","t":41.0,"lev')
    else:
        if spec.integrity:
            checked = dict.fromkeys(DECLARATION.check_names, 0)
            for v in spec.integrity_violations:
                checked[v["check"]] += len(v.get("ids", [])) or 1
            records.append({"type": "integrity", "t": spec.duration - 1.0, "acknowledged": 1000,
                            "checked": checked, "violations": spec.integrity_violations})
        records.append({"type": "end", "t": spec.duration, "status": "completed", "reason": ""})
        _write_jsonl(run_dir / "journal.jsonl", records)
    _write_jsonl(run_dir / "canary.jsonl", canary)
    _write_jsonl(run_dir / "monitor.jsonl", monitor)
    if spec.load:
        _write_jsonl(run_dir / "requests.jsonl", requests)
    if completions:
        _write_jsonl(run_dir / "completions.jsonl", completions)
    (run_dir / "services" / "gateway.log").write_text("gateway started\n", encoding="utf-8")
    return run_dir
