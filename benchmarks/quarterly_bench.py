"""The quarterly drill's wall time, and where it goes: every failure test of the catalogue.

    python benchmarks/quarterly_bench.py [--runs 3] [--reports DIR] [--write benchmarks/RESULTS.md]

Runs ``faultlab drill drills/quarterly.yaml`` (FT-22's and FT-25's people scripted by
``drills/operators/quarterly-ci.yaml``) ``--runs`` times in a row and, for each, reports the
plan's wall time (measured here, around the command), and per failure test: its outcome,
the scenario's own load time, the time the stack took to come up and the whole run as its
journal spans it (header to end record). What the runs do not account for is the plan's own
work: pre-registration, the book, sealing.

Results are printed as JSON; ``--write`` replaces the ``## Quarterly drill`` section of the
results file. The machine's load average is recorded, since it may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Quarterly drill"


def _journal_times(run_dir: Path) -> dict[str, float | None]:
    """The stack's bring-up and the run's span, in seconds, from the run's journal."""
    begin: dict[str, float] = {}
    spans: dict[str, float] = {}
    last = 0.0
    for line in (run_dir / "journal.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        t = record.get("t")
        if isinstance(t, (int, float)):
            last = max(last, float(t))
        if record.get("type") == "phase" and isinstance(t, (int, float)):
            if record.get("state") == "begin":
                begin[record["name"]] = float(t)
            elif record.get("state") == "end" and record.get("name") in begin:
                spans[record["name"]] = float(t) - begin[record["name"]]
    return {"stack_up_s": spans.get("stack_up"), "journal_s": last}


def collect(reports: Path) -> list[dict[str, Any]]:
    """Every run of the drill written under ``reports``: outcome, missed targets, times."""
    runs = []
    for result_file in sorted((reports / "quarterly").glob("*/runs/*/result.json")):
        analysis = json.loads(result_file.read_text(encoding="utf-8"))["analysis"]
        missed = [v["target"] for v in analysis["verdicts"] if v.get("outcome") == "missed"]
        runs.append({"id": analysis["scenario"]["id"], "outcome": analysis["outcome"], "missed": missed,
                     "load_s": analysis["header"].get("duration_s"), **_journal_times(result_file.parent)})
    return sorted(runs, key=lambda r: r["id"])


def one_drill(reports: Path) -> dict[str, Any]:
    """Run the quarterly drill once into ``reports``; its wall time and every run's figures."""
    command = [str(Path(sys.executable).with_name("faultlab")), "drill", str(ROOT / "drills" / "quarterly.yaml"),
               "--operator-script", str(ROOT / "drills" / "operators" / "quarterly-ci.yaml"),
               "--reports", str(reports), "--lang", "en"]
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.monotonic() - started
    runs = collect(reports)
    in_runs = sum(r["journal_s"] or 0.0 for r in runs)
    return {"exit_code": result.returncode, "wall_s": round(wall, 1), "in_runs_s": round(in_runs, 1),
            "load_s": sum(r["load_s"] or 0.0 for r in runs), "passed": sum(r["outcome"] == "passed" for r in runs),
            "scenarios": len(runs), "load_average_before": round(load_before, 2),
            "load_average_after": round(os.getloadavg()[0], 2), "runs": runs,
            "tail": result.stdout[-1500:] if result.returncode else ""}


def markdown(drills: list[dict[str, Any]], when: str) -> str:
    """The results section: one line per drill, then a table of verdicts per failure test."""
    lines = [SECTION, "",
             f"Measured {when} on {platform.node()} ({os.cpu_count()} cores, Python "
             f"{platform.python_version()}) with `python benchmarks/quarterly_bench.py --runs {len(drills)}`: "
             "`faultlab drill drills/quarterly.yaml --operator-script drills/operators/quarterly-ci.yaml`, "
             "runs in a row. Wall time is measured around the command; a run's time is its journal's span "
             "(stack up to the end record); the rest is the plan's own work (pre-registration, book, seal).",
             "", "| drill | exit | wall time | in runs | load time | stack up (sum) | passed | load avg before/after |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for n, d in enumerate(drills, start=1):
        stack_up = sum(r["stack_up_s"] or 0.0 for r in d["runs"])
        lines.append(f"| {n} | {d['exit_code']} | {d['wall_s']:.0f} s | {d['in_runs_s']:.0f} s | {d['load_s']:.0f} s "
                     f"| {stack_up:.0f} s | {d['passed']}/{d['scenarios']} | {d['load_average_before']} / "
                     f"{d['load_average_after']} |")
    ids = sorted({r["id"] for d in drills for r in d["runs"]})
    lines += ["", "| failure test | " + " | ".join(f"drill {n}" for n in range(1, len(drills) + 1)) + " |",
              "| --- |" + " --- |" * len(drills)]
    for test_id in ids:
        cells = []
        for d in drills:
            run = next((r for r in d["runs"] if r["id"] == test_id), None)
            if run is None:
                cells.append("not run")
            else:
                missed = f" (missed: {', '.join(run['missed'])})" if run["missed"] else ""
                cells.append(f"{run['outcome']}{missed}, {run['journal_s']:.0f} s")
        lines.append(f"| {test_id} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_section(results: Path, section: str) -> None:
    """Replace (or append) the quarterly section of the results file."""
    text = results.read_text(encoding="utf-8")
    start = text.find(SECTION)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + section + (text[end + 1:] if end >= 0 else "")
    results.write_text(text, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="drills in a row (default 3)")
    parser.add_argument("--reports", type=Path, help="where the drills' reports go (default: a temporary folder)")
    parser.add_argument("--write", type=Path, help="replace the quarterly section of this results file")
    args = parser.parse_args()
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    drills = []
    with tempfile.TemporaryDirectory(prefix="faultlab-quarterly-") as scratch:
        base = args.reports or Path(scratch)
        for n in range(1, args.runs + 1):
            drill = one_drill(base / f"drill-{n}")
            drills.append(drill)
            print(json.dumps({k: v for k, v in drill.items() if k != "runs"}), file=sys.stderr, flush=True)
    print(json.dumps(drills, indent=2))
    if args.write:
        write_section(args.write, markdown(drills, when))
    return 0 if all(d["exit_code"] == 0 for d in drills) else 1


if __name__ == "__main__":
    raise SystemExit(main())
