"""Scheduling slip of the drill engine in a real run.

Runs a scenario with many short faults (a ``process_pause`` of a plain HTTP service every
300 ms, each held 150 ms) on the local runtime, then reads the journal:

- start slip: the ``injected`` record's time minus the fault's planned time;
- revert slip: the ``reverted`` record's time minus (planned time + ``for``);
- inject latency: ``active`` minus ``injected`` (the time the fault took to take effect).

Usage: ``python benchmarks/engine_bench.py [--faults 50]``. Prints p50 / p99 / max in ms.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TRUTH = ROOT / "tests" / "drill"


def _scenario(folder: Path, faults: int) -> Path:
    lines = [
        "id: BENCH-SLIP",
        "title: Many short faults, to measure scheduling slip",
        f"stack: {TRUTH / 'stacks' / 'truth.yaml'}",
        "canary: {rate: 10/s, timeout: 200ms}",
        "steady_state: {success_rate: {min: 0.5}}",
        "timeline:",
    ]
    for i in range(faults):
        lines.append(f"  - {{at: {1.0 + 0.3 * i:.1f}s, fault: process_pause, target: svc, for: 150ms}}")
    lines.append(f"duration: {2.0 + 0.3 * faults:.1f}s")
    lines.append("settle: 1s")
    path = folder / "slip.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _quantiles(values: list[float]) -> str:
    values = sorted(values)
    p99 = values[min(len(values) - 1, int(0.99 * len(values)))]
    return (f"p50 {statistics.median(values) * 1000:6.2f} ms   p99 {p99 * 1000:6.2f} ms   "
            f"max {values[-1] * 1000:6.2f} ms   (n={len(values)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", type=int, default=50)
    args = parser.parse_args()
    sys.path.insert(0, str(TRUTH))

    from faultlab.engine.run import run_scenario
    from faultlab.loader import load_scenario

    with tempfile.TemporaryDirectory() as tmp:
        scenario = load_scenario(_scenario(Path(tmp), args.faults))
        result = run_scenario(scenario, reports_dir=Path(tmp) / "reports", state_dir=Path(tmp) / "state")
        events = [json.loads(line) for line in (result.run_dir / "journal.jsonl").read_text().splitlines()]
    faults = {e["fault_id"]: [] for e in events if e.get("type") == "fault"}
    for event in events:
        if event.get("type") == "fault":
            faults[event["fault_id"]].append(event)
    start_slip, revert_slip, inject_latency = [], [], []
    for records in faults.values():
        by_event = {r["event"]: r for r in records}
        planned = by_event["injected"]["planned_t"]
        start_slip.append(by_event["injected"]["t"] - planned)
        inject_latency.append(by_event["active"]["t"] - by_event["injected"]["t"])
        revert_slip.append(by_event["reverted"]["t"] - (planned + 0.15))
    print(f"run status: {result.status}; {len(faults)} faults")
    print(f"start slip      {_quantiles(start_slip)}")
    print(f"revert slip     {_quantiles(revert_slip)}")
    print(f"inject latency  {_quantiles(inject_latency)}")


if __name__ == "__main__":
    main()
