"""Trading-stack throughput: saturation, then p50/p99 at 70 % of it, locust on the same box.

    python benchmarks/stack_bench.py [--users 8,16,32,48,64] [--seconds 20] [--steady-seconds 30]
                                     [--write benchmarks/RESULTS.md]

1. Brings the whole stack up (PostgreSQL with fsync on, exchange, router, gateway; no proxy).
2. Saturation: closed-loop locust (no think time) at each user count; the highest rate of
   accepted orders (``POST /orders`` answered 201/200) over the steady window is saturation.
3. Sustained: every user paced (``constant_throughput``) so the total request rate is 70 %
   of the saturated one; accepted orders/s and the p50/p99 latency of ``POST /orders`` are
   computed from locust's per-request records (warm-up excluded), plus the execution delay
   (acceptance to recorded execution) from the database and the outbox backlog at the end.
   Every step also records how many orders the gateway committed per transaction (its
   ``gateway_order_batch_size`` histogram), since group commit is what the rate rests on.

Results are printed as JSON; ``--write`` replaces the ``## Trading stack`` section of the
results file. The machine's load average is recorded, since it may be shared.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

WARMUP_S = 4.0


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def run_locust(stack, workdir: Path, users: int, seconds: float, rate_per_user: float | None = None) -> dict:
    """One headless locust run; returns rates and latencies over the steady window."""
    from tradingstack.drill import locustfile_path

    records = workdir / f"requests-{users}-{rate_per_user or 'max'}.jsonl"
    origin = time.monotonic()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "FAULTLAB_REQUESTS_FILE": str(records),
           "FAULTLAB_ORIGIN_MONOTONIC": repr(origin), "LOAD_ACCOUNTS": "1000"}
    env.pop("LOAD_SHAPE", None)
    if rate_per_user:
        env["LOAD_RATE_PER_USER"] = f"{rate_per_user:.4f}"
    load_before = os.getloadavg()[0]
    cpu_before = _service_cpu(stack)
    commits_before = _commits(stack)
    from faultlab.engine.load import RECORDER_PATH

    locust = subprocess.Popen([sys.executable, "-m", "locust", "-f", f"{locustfile_path()},{RECORDER_PATH}",
                               "--headless", "-u", str(users),
                               "-r", str(users), "-t", f"{int(seconds)}s", "--host", stack.gateway_url,
                               "--only-summary", "--loglevel", "WARNING", "--stop-timeout", "5"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    locust_cpu = 0.0
    try:
        import psutil

        handle = psutil.Process(locust.pid)
        while locust.poll() is None:
            try:
                times = handle.cpu_times()
                locust_cpu = times.user + times.system
            except psutil.Error:
                pass
            time.sleep(0.25)
    finally:
        if locust.poll() is None:
            locust.kill()
        locust.wait()
    cpu_after = _service_cpu(stack)
    commits_after = _commits(stack)
    load_after = os.getloadavg()[0]
    rows = [json.loads(line) for line in records.read_text().splitlines() if line.strip()]
    window = [r for r in rows if WARMUP_S <= r["t"] <= seconds - 1.0]
    span = max(1e-9, (seconds - 1.0) - WARMUP_S)
    orders = [r for r in window if r["name"] == "place_order"]
    accepted = [r for r in orders if r["ok"]]
    latencies_ms = [r["latency_s"] * 1000 for r in accepted]
    all_accepted = sum(1 for r in rows if r["name"] == "place_order" and r["ok"]) or 1
    cpu = {name: cpu_after[name] - cpu_before.get(name, 0.0) for name in cpu_after}
    cpu["locust"] = locust_cpu
    cpu_ms_per_order = {name: round(1000 * v / all_accepted, 3) for name, v in cpu.items()}
    total_ms = sum(cpu_ms_per_order.values())
    return {"users": users, "rate_per_user": rate_per_user, "seconds": seconds,
            "cpu_ms_per_order": cpu_ms_per_order, "cpu_ms_per_order_total": round(total_ms, 3),
            "dedicated_2_core_orders_per_s": round(2000 / total_ms, 1) if total_ms else None,
            "requests_per_s": round(len(window) / span, 1), "accepted_orders_per_s": round(len(accepted) / span, 1),
            "order_errors": len(orders) - len(accepted),
            "order_failures_by_status": dict(sorted(Counter(str(r.get("status")) for r in orders
                                                            if not r["ok"]).items())),
            "orders_per_commit": round((commits_after[1] - commits_before[1])
                                       / max(1.0, commits_after[0] - commits_before[0]), 2),
            "p50_ms": round(_percentile(latencies_ms, 0.50), 2), "p99_ms": round(_percentile(latencies_ms, 0.99), 2),
            "mean_ms": round(statistics.fmean(latencies_ms), 2) if latencies_ms else None,
            "loadavg_before": round(load_before, 2), "loadavg_after": round(load_after, 2)}


def _commits(stack) -> tuple[float, float]:
    """(order commits, orders committed) so far, from the gateway's metrics."""
    import httpx

    values = {}
    for line in httpx.get(stack.gateway_url + "/metrics", timeout=5).text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("gateway_order_batch_size_count", "gateway_order_batch_size_sum"):
            values[name] = float(value)
    return values.get("gateway_order_batch_size_count", 0.0), values.get("gateway_order_batch_size_sum", 0.0)


def _service_cpu(stack) -> dict[str, float]:
    """CPU seconds used so far by each service (PostgreSQL with all its backends)."""
    import psutil

    out = {}
    pids = {name: service.pid for name, service in stack.services.items()}
    pids["postgres"] = stack.postgres.postmaster_pid
    for name, pid in pids.items():
        if pid is None:
            continue
        try:
            process = psutil.Process(pid)
            family = [process] + (process.children(recursive=True) if name == "postgres" else [])
        except psutil.Error:
            continue
        total = 0.0
        for member in family:
            try:
                times = member.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                pass
        out[name] = total
    return out


def execution_delay(dsn: str) -> dict:
    """Acceptance -> recorded execution, p50 / p99 over every execution, and the backlog."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        p50, p99, n = conn.execute(
            "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d), percentile_cont(0.99) WITHIN GROUP (ORDER BY d), "
            "count(*) FROM (SELECT extract(epoch FROM e.recorded_at - o.created_at) * 1000 AS d "
            "FROM executions e JOIN orders o ON o.id = e.order_id WHERE o.type = 'market') x").fetchone()
        backlog = conn.execute("SELECT count(*) FROM outbox WHERE sent_at IS NULL").fetchone()[0]
    return {"market_executions": n, "exec_delay_p50_ms": round(float(p50 or 0), 1),
            "exec_delay_p99_ms": round(float(p99 or 0), 1), "outbox_backlog_at_end": backlog}


def _failures(step: dict) -> str:
    """Orders not accepted, by HTTP status (422 is the risk check refusing, not a failure)."""
    counts = step["order_failures_by_status"]
    return ", ".join(f"{n} × {status}" for status, n in counts.items()) or "none"


def write_section(path: Path, result: dict) -> None:
    """Replace (or append) the ``## Trading stack`` section of the results file."""
    sat, sus = result["saturation"], result["sustained"]
    lines = [
        "## Trading stack",
        "",
        f"`benchmarks/stack_bench.py`, {result['date']}, {result['host']}: {result['cpus']} cores, "
        f"Python {result['python']}, PostgreSQL from the pgserver wheel with fsync on and synchronous commit, "
        "gateway + router + exchange + locust (FastHttpUser, one process) all on this machine, no proxy.",
        f"Load average {result['loadavg_start']} at the start; during the run the benchmark itself keeps "
        "both cores busy, so this is not a clean-room figure.",
        "",
        "Saturation (closed loop, no think time; accepted orders/s over the steady window):",
        "",
        "| users | requests/s | accepted orders/s | p50 ms | p99 ms | orders not accepted (by status) "
        "| orders per commit |",
        "|---:|---:|---:|---:|---:|---|---:|",
    ]
    for r in result["sweep"]:
        lines.append(f"| {r['users']} | {r['requests_per_s']} | {r['accepted_orders_per_s']} | {r['p50_ms']} | "
                     f"{r['p99_ms']} | {_failures(r)} | {r['orders_per_commit']} |")
    lines += [
        "",
        f"Saturation: **{sat['accepted_orders_per_s']} accepted orders/s** ({sat['requests_per_s']} requests/s "
        f"in the full mix) at {sat['users']} users.",
        "",
        f"Sustained at 70 % of saturation ({sus['users']} paced users, target {result['target_requests_per_s']} "
        f"requests/s, {sus['seconds']:g} s): **{sus['accepted_orders_per_s']} accepted orders/s, "
        f"p50 {sus['p50_ms']} ms, p99 {sus['p99_ms']} ms**, orders not accepted: {_failures(sus)}, "
        f"{sus['orders_per_commit']} orders per commit.",
        f"Execution delay (market orders, acceptance to recorded execution): p50 "
        f"{result['execution']['exec_delay_p50_ms']} ms, p99 {result['execution']['exec_delay_p99_ms']} ms; "
        f"outbox backlog at the end {result['execution']['outbox_backlog_at_end']}.",
        "",
        "CPU cost per accepted order during the sustained run (ms of CPU, all requests of the mix "
        "included; PostgreSQL counts every backend) — this does not depend on what else the machine runs:",
        "",
        "| " + " | ".join(sus["cpu_ms_per_order"]) + " | total |",
        "|" + "---:|" * (len(sus["cpu_ms_per_order"]) + 1),
        "| " + " | ".join(str(v) for v in sus["cpu_ms_per_order"].values()) + f" | {sus['cpu_ms_per_order_total']} |",
        "",
        f"So two dedicated cores would carry at most about **{sus['dedicated_2_core_orders_per_s']} accepted "
        "orders/s** with locust on the same cores (an upper bound: it ignores scheduling and fsync waits).",
        "",
        "An order not accepted with status 422 was refused by the risk check (the account's buying power "
        "or position ran out under the load), an answer the stack is meant to give; any other status would "
        "be a failure.",
        "",
        f"Target: >= 1,000 accepted orders/s at p99 < 50 ms. Result: "
        f"{'met' if sus['accepted_orders_per_s'] >= 1000 and sus['p99_ms'] < 50 else 'not met'} "
        f"on this 2-core machine.",
        "",
    ]
    text = path.read_text() if path.exists() else "# Benchmark results\n\n"
    start = text.find("## Trading stack")
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + "\n".join(lines) + (text[end:] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(lines)
    path.write_text(text)


def main() -> int:
    """Run the benchmark; print the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", default="8,16,32,48,64")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--steady-seconds", type=float, default=30)
    parser.add_argument("--steady-users", type=int, default=0,
                        help="paced users in the sustained run (default: the saturating user count)")
    parser.add_argument("--write", type=Path)
    args = parser.parse_args()

    from tradingstack.localstack import LocalStack

    result = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "host": platform.node(),
              "cpus": os.cpu_count(), "python": platform.python_version(),
              "loadavg_start": round(os.getloadavg()[0], 2)}
    with tempfile.TemporaryDirectory(prefix="stack-bench-") as tmp:
        work = Path(tmp)
        with LocalStack(work / "stack", seed_accounts=1000, env={"LOG_LEVEL": "WARNING"}) as stack:
            sweep = []
            for users in (int(u) for u in args.users.split(",")):
                sweep.append(run_locust(stack, work, users, args.seconds))
                print(json.dumps(sweep[-1]), flush=True)
            saturation = max(sweep, key=lambda r: r["accepted_orders_per_s"])
            target = 0.7 * saturation["requests_per_s"]
            steady_users = args.steady_users or saturation["users"]
            sustained = run_locust(stack, work, steady_users, args.steady_seconds,
                                   rate_per_user=target / steady_users)
            print(json.dumps(sustained), flush=True)
            time.sleep(2)
            result.update(sweep=sweep, saturation=saturation, target_requests_per_s=round(target, 1),
                          sustained=sustained, execution=execution_delay(stack.dsn))
    print(json.dumps(result, indent=2))
    if args.write:
        write_section(args.write, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
