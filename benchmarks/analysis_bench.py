"""How long ``faultlab.analysis.analyse()`` takes on a large saved run.

    python benchmarks/analysis_bench.py [--requests 200000] [--canary 2000] [--monitor 1000]
                                        [--repeat 3] [--keep DIR]

Writes a synthetic run directory per the journal contract (a 100 s run; a 30 s fault from
t=30 s during which canary orders fail and load orders are accepted slowly and held until it
clears; load requests spread evenly; every acknowledged order with its completion delay in
``completions.jsonl``), then times ``faultlab.journal.read_run`` and ``analyse`` on it. Results are printed as
JSON with wall and CPU seconds and the machine's load average (it may be shared: judge by
CPU seconds).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

DURATION_S = 100.0
FAULT_AT_S = 30.0
FAULT_FOR_S = 30.0


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r, separators=(",", ":")) + "\n" for r in rows)


def write_big_run(parent: Path, *, requests: int, canary: int, monitor: int, probe_interval: float = 0.1,
                  seed: int = 1) -> Path:
    """A run directory with ``requests`` load requests, ``canary`` canary and ``monitor`` monitor samples."""
    rng = random.Random(seed)
    run_dir = parent / "bench-run"
    run_dir.mkdir(parents=True, exist_ok=True)

    def down(t: float) -> bool:
        return FAULT_AT_S <= t < FAULT_AT_S + FAULT_FOR_S

    completions = []
    canary_rows = []
    for i in range(canary):
        t = round(i * DURATION_S / canary, 6)
        if down(t):
            canary_rows.append({"t_send": t, "t_done": t + 1.0, "ok": False, "latency_s": 1.0,
                                "status": None, "error": "timeout", "ack": None})
            continue
        latency = rng.uniform(0.005, 0.05)
        canary_rows.append({"t_send": t, "t_done": t + latency, "ok": True, "latency_s": latency,
                            "status": 201, "error": None, "ack": f"c-{i}"})
        completions.append({"t": t, "ack": f"c-{i}", "delay_s": rng.uniform(0.002, 0.02)})
    request_rows = []
    for i in range(requests):
        # During the fault load orders are still accepted, slowly, and held until it clears.
        t = round(i * DURATION_S / requests, 6)
        held = down(t)
        request_rows.append({"t": t, "name": "place_order", "ok": True,
                             "latency_s": rng.uniform(0.3, 0.6) if held else rng.uniform(0.005, 0.08),
                             "status": 201, "ack": f"l-{i}"})
        delay = FAULT_AT_S + FAULT_FOR_S - t if held else 0.0
        completions.append({"t": t, "ack": f"l-{i}", "delay_s": delay + rng.uniform(0.002, 0.02)})
    monitor_rows = []
    for i in range(monitor):
        t = round(i * DURATION_S / monitor, 6)
        ready = not (FAULT_AT_S + 1.0 <= t < FAULT_AT_S + FAULT_FOR_S)
        monitor_rows.append({"t": t, "ready": ready, "status": 200 if ready else 503, "latency_s": 0.002,
                             "detail": {"body": {"backlog": 5 if down(t) else 0}}})
    fault = {"fault_id": "timeline[0]", "kind": "partition", "target": "router-exchange",
             "params": {"for": FAULT_FOR_S}, "planned_t": FAULT_AT_S}
    records = [
        {"type": "run", "schema": "faultlab.journal/2", "run_id": "bench-run",
         "scenario": {"id": "BENCH", "title": "analysis benchmark"}, "stack": {"name": "synthetic"},
         "origin_wall": "2026-11-25T10:00:00+00:00", "faultlab_version": "bench", "host": "bench",
         "targets": {"detect_within": 5.0, "recover_within": 40.0, "execution_delay_p99": 40.0, "lost_orders": 0},
         "steady_state": {"success_rate": {"min": 0.99}, "p99_latency": {"max": 0.25}},
         "window_s": 1.0, "hold_s": 5.0, "probe_interval_s": probe_interval, "duration_s": DURATION_S,
         "plugin": "bench", "declaration": {
             "integrity_checks": [{"name": "lost_orders", "label": "Lost orders"}],
             "completion": {"name": "execution_delay", "label": "Execution delay"},
             "monitor": {"backlog": "backlog"}}},
        {"type": "phase", "t": 0.0, "name": "load", "state": "begin"},
        {"type": "fault", "t": FAULT_AT_S - 0.5, "event": "planned", **fault},
        {"type": "fault", "t": FAULT_AT_S, "event": "active", **fault},
        {"type": "fault", "t": FAULT_AT_S + FAULT_FOR_S, "event": "reverted", **fault},
        {"type": "integrity", "t": DURATION_S - 0.5, "acknowledged": len(completions),
         "checked": {"lost_orders": 0}, "violations": []},
        {"type": "end", "t": DURATION_S, "status": "completed", "reason": ""},
    ]
    _write_jsonl(run_dir / "journal.jsonl", records)
    _write_jsonl(run_dir / "canary.jsonl", canary_rows)
    _write_jsonl(run_dir / "requests.jsonl", request_rows)
    _write_jsonl(run_dir / "monitor.jsonl", monitor_rows)
    _write_jsonl(run_dir / "completions.jsonl", completions)
    return run_dir


def main(argv: list[str] | None = None) -> int:
    """Write the synthetic run, time the analysis ``--repeat`` times, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--canary", type=int, default=2_000)
    parser.add_argument("--monitor", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--probe-interval", type=float, default=0.1,
                        help="the window step (the header's probe_interval_s); smaller = more windows")
    parser.add_argument("--keep", type=Path, help="write the run directory here and keep it")
    args = parser.parse_args(argv)

    from faultlab.analysis import analyse
    from faultlab.journal import read_run

    with tempfile.TemporaryDirectory() as tmp:
        parent = args.keep or Path(tmp)
        run_dir = write_big_run(parent, requests=args.requests, canary=args.canary, monitor=args.monitor,
                                probe_interval=args.probe_interval)
        load_s, load_cpu_s, analyse_s, analyse_cpu_s = [], [], [], []
        result = None
        for _ in range(args.repeat):
            started, started_cpu = time.perf_counter(), time.process_time()
            run = read_run(run_dir)
            loaded, cpu = time.perf_counter(), time.process_time()
            load_cpu_s.append(cpu - started_cpu)
            result = analyse(run)
            done = time.perf_counter()
            analyse_cpu_s.append(time.process_time() - cpu)
            load_s.append(loaded - started)
            analyse_s.append(done - loaded)
    print(json.dumps({
        "requests": args.requests, "canary": args.canary, "monitor": args.monitor,
        "probe_interval_s": args.probe_interval,
        "windows": len(result.windows) if result else None,
        "read_run_s": [round(x, 3) for x in load_s],
        "read_run_cpu_s": [round(x, 3) for x in load_cpu_s],
        "analyse_s": [round(x, 3) for x in analyse_s],
        "best_analyse_s": round(min(analyse_s), 3),
        "analyse_cpu_s": [round(x, 3) for x in analyse_cpu_s],
        "best_total_s": round(min(a + b for a, b in zip(load_s, analyse_s, strict=True)), 3),
        "completion_delay_during_p99_s": result.completion_delay.during.p99_s if result else None,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
