"""Fault proxy benchmark: what a proxy hop costs, direct vs through faultlab's proxy.

Run:  PYTHONPATH=src python benchmarks/proxy_bench.py [--quick]

Everything is on loopback. The proxy runs in its own process (so its resident memory is
its own and the measuring clients do not share its GIL); the echo/sink server runs in
another. Measured side by side in one run:

- added latency: 64-byte ping-pong round trips, p50 and p99, direct vs proxied
- bulk throughput (MB/s), direct vs proxied: 512 MB sent with ``sendall`` from a reused 4 MiB
  buffer, drained with splice to /dev/null (the cheapest endpoints measured, see :func:`bulk`)
- the same bulk run through a plain blocking Python relay (thread per direction), the
  reference the throughput target is stated against
- 200 concurrent connections x 200 ping-pongs: wall time, direct vs proxied
- the proxy's peak resident memory while 512 MB flow through it, and its CPU time per GB
  (a figure the machine's load does not distort, unlike MB/s on a shared box)
- API: time to create and delete 100 proxies
- toxic add and remove latency (p50, p99 of the API call) with 0, 200 and 2,000 live
  connections through the proxy, the proxy's thread count while they hold, and 20 threads
  adding and removing toxics at once
- 2,000 concurrent connections relayed at once (each does a round trip; errors counted)
- the ping-pong RTT both unpinned and pinned (every proxy thread on CPU 0, echo server and client on CPU 1)

Results are printed as a Markdown table (paste into benchmarks/RESULTS.md).
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import multiprocessing as mp
import os
import resource
import select
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.queues import Queue
from typing import Any

import httpx
import psutil

MB = 1 << 20
NODELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
Row = tuple[str, str, str, str]
"""A result row: measure, direct, through proxy, note."""


# -- servers (own process) -----------------------------------------------------------------


_Conns = dict[int, tuple[socket.socket, str, tuple[int, int] | None]]


def _accept_all(listener: socket.socket, kind: str, ep: select.epoll, conns: _Conns) -> None:
    while True:
        try:
            c, _ = listener.accept()
        except BlockingIOError:
            return
        c.setblocking(False)
        c.setsockopt(*NODELAY)
        pipe = os.pipe() if kind == "sink" else None
        if pipe:
            fcntl.fcntl(pipe[1], 1031, MB)
        conns[c.fileno()] = (c, kind, pipe)
        ep.register(c.fileno(), select.EPOLLIN)


def _serve(fd: int, conns: _Conns, buf: bytearray, devnull: int, ep: select.epoll) -> None:
    """Echo or swallow what one connection has; close it at EOF (a sink says "k" first)."""
    c, kind, pipe = conns[fd]
    try:
        if kind == "echo":
            n = c.recv_into(buf)
            if n:
                c.sendall(memoryview(buf)[:n])
        else:
            assert pipe is not None
            n = os.splice(fd, pipe[1], MB, flags=os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK)
            moved = 0
            while moved < n:
                moved += os.splice(pipe[0], devnull, n - moved, flags=os.SPLICE_F_MOVE)
    except BlockingIOError:
        return
    except OSError:
        n = 0
    if not n:
        ep.unregister(fd)
        if kind == "sink":
            with contextlib.suppress(OSError):
                c.sendall(b"k")
        c.close()
        if pipe:
            os.close(pipe[0])
            os.close(pipe[1])
        del conns[fd]


def _echo_and_sink(ready: Queue) -> None:
    """One epoll loop: port A echoes, port B swallows everything (splice to /dev/null)."""
    _raise_nofile()
    echo = socket.create_server(("127.0.0.1", 0), backlog=1024)
    sink = socket.create_server(("127.0.0.1", 0), backlog=64)
    ready.put((echo.getsockname()[1], sink.getsockname()[1]))
    devnull = os.open(os.devnull, os.O_WRONLY)
    ep = select.epoll()
    for s in (echo, sink):
        s.setblocking(False)
        ep.register(s.fileno(), select.EPOLLIN)
    listeners = {echo.fileno(): (echo, "echo"), sink.fileno(): (sink, "sink")}
    conns: _Conns = {}
    buf = bytearray(65536)
    while True:
        for fd, _ in ep.poll():
            if fd in listeners:
                _accept_all(*listeners[fd], ep, conns)
            else:
                _serve(fd, conns, buf, devnull, ep)


def _blocking_relay(upstream: int, ready: Queue) -> None:
    """The reference the throughput target names: a plain blocking relay, a thread per direction.

    recv_into a reused 1 MiB buffer and sendall, no event loop, no splice. Serves one client
    at a time (the bulk run needs no more); killed with its process.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    ready.put(listener.getsockname()[1])

    def copy(src: socket.socket, dst: socket.socket) -> None:
        buf = bytearray(MB)
        view = memoryview(buf)
        while n := src.recv_into(buf):
            dst.sendall(view[:n])
        dst.shutdown(socket.SHUT_WR)

    while True:
        client, _ = listener.accept()
        upstream_sock = socket.create_connection(("127.0.0.1", upstream))
        threads = [threading.Thread(target=copy, args=pair) for pair in
                   ((client, upstream_sock), (upstream_sock, client))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        client.close()
        upstream_sock.close()


def _start_proxy_process(nofile: int | None = None) -> tuple[subprocess.Popen[str], str]:
    """The proxy in a child interpreter; ``nofile`` caps its descriptor limit (soft = hard = N)."""
    code = (
        "import sys, time\n"
        "from faultlab.proxy import ProxyServer\n"
        "with ProxyServer(host='127.0.0.1', port=0) as s:\n"
        "    print(s.url, flush=True)\n"
        "    sys.stdin.read()\n"
    )
    env = dict(os.environ)
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [os.path.abspath(src), env.get("PYTHONPATH")]))

    def limit() -> None:
        if nofile is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True, env=env, preexec_fn=limit)
    assert proc.stdout is not None
    url = proc.stdout.readline().strip()
    return proc, url


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# -- measurements --------------------------------------------------------------------------


def ping_pong(port: int, rounds: int) -> tuple[float, float]:
    """p50 and p99 round-trip time (µs) of 64-byte messages on one connection."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(*NODELAY)
    msg = b"x" * 64
    times = []
    for i in range(rounds + 200):
        t0 = time.perf_counter()
        s.sendall(msg)
        got = 0
        while got < 64:
            got += len(s.recv(64 - got))
        if i >= 200:
            times.append(time.perf_counter() - t0)
    s.close()
    times.sort()
    return times[len(times) // 2] * 1e6, times[int(len(times) * 0.99)] * 1e6


def bulk(port: int, total: int) -> float:
    """MB/s for ``total`` bytes sent from one reused 4 MiB buffer and acknowledged by the sink after EOF.

    Not ``sendfile``: from a memfd it hands TCP one 4 KiB page reference at a time, which cost
    the sender ~0.4 CPU-s/GB (and the sink twice the splice work) against ~0.2 for ``sendall``
    of a large buffer, and held even the direct path under 1.9 GB/s on 2 vCPUs (3.3-3.6 GB/s
    with ``sendall``). The cheapest sender is the same for the direct and the proxied run.
    """
    data = memoryview(os.urandom(4 * MB))
    s = socket.create_connection(("127.0.0.1", port))
    t0 = time.perf_counter()
    sent = 0
    while sent < total:
        n = min(len(data), total - sent)
        s.sendall(data[:n])
        sent += n
    s.shutdown(socket.SHUT_WR)
    s.recv(1)
    elapsed = time.perf_counter() - t0
    s.close()
    return total / MB / elapsed


def _many_client(port: int, conns: int, rounds: int, out: Queue) -> None:
    ep = select.epoll()
    socks = {}
    left = {}
    for _ in range(conns):
        s = socket.create_connection(("127.0.0.1", port))
        s.setsockopt(*NODELAY)
        s.setblocking(False)
        socks[s.fileno()] = s
        left[s.fileno()] = rounds
    msg = b"x" * 64
    got = dict.fromkeys(socks, 0)
    t0 = time.perf_counter()
    for fd, s in socks.items():
        ep.register(fd, select.EPOLLIN)
        s.send(msg)
    active = len(socks)
    while active:
        for fd, _ in ep.poll():
            s = socks[fd]
            try:
                data = s.recv(4096)
            except BlockingIOError:
                continue
            got[fd] += len(data)
            while got[fd] >= 64:
                got[fd] -= 64
                left[fd] -= 1
                if left[fd] == 0:
                    ep.unregister(fd)
                    active -= 1
                else:
                    s.send(msg)
    out.put(time.perf_counter() - t0)
    for s in socks.values():
        s.close()


def many(port: int, conns: int, rounds: int) -> float:
    """Wall time of ``conns`` connections doing ``rounds`` ping-pongs each, all at once."""
    out: Queue = mp.Queue()
    p = mp.Process(target=_many_client, args=(port, conns, rounds, out))
    p.start()
    result = out.get(timeout=120)
    p.join()
    return result


def rss_during(pid: int, work: Callable[[], float]) -> tuple[float, float]:
    proc = psutil.Process(pid)
    peak = [proc.memory_info().rss]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.01)

    t = threading.Thread(target=sample)
    t.start()
    try:
        result = work()
    finally:
        stop.set()
        t.join()
    return peak[0] / MB, result


def api_timing(url: str, upstream: int, count: int) -> tuple[float, float]:
    with httpx.Client(base_url=url) as c:
        t0 = time.perf_counter()
        for i in range(count):
            r = c.post("/proxies", json={"name": f"b{i}", "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{upstream}"})
            assert r.status_code == 201, r.text
        created = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i in range(count):
            assert c.delete(f"/proxies/b{i}").status_code == 204
        return created, time.perf_counter() - t0


def _round_all(socks: list[socket.socket], deadline_s: float = 30.0) -> tuple[int, float]:
    """One 64 B round trip on every socket at once: (errors, seconds)."""
    msg = b"r" * 64
    ep = select.epoll()
    got: dict[int, int] = {}
    errors = 0
    t0 = time.perf_counter()
    for s in socks:
        try:
            s.send(msg)
        except OSError:
            errors += 1
            continue
        got[s.fileno()] = 0
        ep.register(s.fileno(), select.EPOLLIN)
    by_fd = {s.fileno(): s for s in socks}
    deadline = time.monotonic() + deadline_s
    while got and time.monotonic() < deadline:
        for fd, _ in ep.poll(0.5):
            try:
                data = by_fd[fd].recv(4096)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                errors += 1
                ep.unregister(fd)
                del got[fd]
                continue
            got[fd] += len(data)
            if got[fd] >= 64:
                ep.unregister(fd)
                del got[fd]
    errors += len(got)  # never answered
    ep.close()
    return errors, time.perf_counter() - t0


def _holder(port: int, conns: int, commands: Queue, out: Queue) -> None:
    """Hold ``conns`` connections through the proxy; a round trip on all of them per command."""
    _raise_nofile()
    socks: list[socket.socket] = []
    refused = 0
    for _ in range(conns):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
        except OSError:
            refused += 1
            continue
        s.setsockopt(*NODELAY)
        s.setblocking(False)
        socks.append(s)
    errors, seconds = _round_all(socks)
    out.put((len(socks), refused, errors, seconds))
    while commands.get() == "round":
        out.put(_round_all(socks))
    for s in socks:
        s.close()
    out.put("closed")


class Held:
    """``conns`` live connections through a proxy, held by a child process."""

    def __init__(self, ctx: Any, port: int, conns: int):
        self.commands, self.out = ctx.Queue(), ctx.Queue()
        self.process = ctx.Process(target=_holder, args=(port, conns, self.commands, self.out), daemon=True)
        self.process.start()
        self.opened, self.refused, self.errors, self.seconds = self.out.get(timeout=300)

    def round(self) -> tuple[int, float]:
        self.commands.put("round")
        errors, seconds = self.out.get(timeout=300)
        return errors, seconds

    def close(self) -> None:
        self.commands.put("stop")
        self.out.get(timeout=120)
        self.process.join(30)


def _percentiles(samples: list[float]) -> tuple[float, float, float]:
    """p50, p99 and max in ms."""
    ordered = sorted(samples)
    return (ordered[len(ordered) // 2] * 1e3, ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3,
            ordered[-1] * 1e3)


def toxic_timing(c: httpx.Client, proxy: str, cycles: int) -> tuple[list[float], list[float]]:
    """Seconds each add and each remove of a 1 ms latency toxic took (one client, keep-alive)."""
    added: list[float] = []
    removed: list[float] = []
    toxic = {"name": "lat", "type": "latency", "stream": "downstream", "attributes": {"latency": 1}}
    for _ in range(cycles):
        t0 = time.perf_counter()
        r = c.post(f"/proxies/{proxy}/toxics", json=toxic)
        added.append(time.perf_counter() - t0)
        assert r.status_code == 200, r.text
        t0 = time.perf_counter()
        r = c.delete(f"/proxies/{proxy}/toxics/lat")
        removed.append(time.perf_counter() - t0)
        assert r.status_code == 204, r.text
    return added, removed


def toxic_churn(url: str, proxy: str, workers: int, cycles: int) -> list[float]:
    """``workers`` threads each adding and removing their own toxic ``cycles`` times: every answer's seconds."""
    times: list[float] = []
    lock = threading.Lock()

    def work(i: int) -> None:
        mine: list[float] = []
        with httpx.Client(base_url=url, timeout=120) as c:
            toxic = {"name": f"churn{i}", "type": "latency", "stream": "upstream", "attributes": {"latency": 1}}
            for _ in range(cycles):
                t0 = time.perf_counter()
                assert c.post(f"/proxies/{proxy}/toxics", json=toxic).status_code == 200
                mine.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                assert c.delete(f"/proxies/{proxy}/toxics/churn{i}").status_code == 204
                mine.append(time.perf_counter() - t0)
        with lock:
            times.extend(mine)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return times


class PeakThreads:
    """The proxy process's largest thread count while the block runs (sampled every 5 ms)."""

    def __init__(self, pid: int):
        self.proc = psutil.Process(pid)
        self.peak = self.proc.num_threads()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.num_threads())
            time.sleep(0.005)

    def __enter__(self) -> PeakThreads:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def under_connections(ctx: Any, c: httpx.Client, url: str, pid: int, echo_port: int, counts: list[int],
                      cycles: int, churn_cycles: int) -> list[Row]:
    """Toxic add/remove latency, threads and RSS with ``counts`` live connections held through a proxy."""
    listen = c.post("/proxies", json={"name": "held", "listen": "127.0.0.1:0",
                                      "upstream": f"127.0.0.1:{echo_port}"}).json()["listen"]
    port = int(listen.rsplit(":", 1)[1])
    proc = psutil.Process(pid)
    rows: list[Row] = []
    for count in counts:
        rss_before = proc.memory_info().rss / MB
        held = Held(ctx, port, count) if count else None
        try:
            rss_held = proc.memory_info().rss / MB
            with PeakThreads(pid) as threads:
                added, removed = toxic_timing(c, "held", cycles)
            a50, a99, amax = _percentiles(added)
            r50, r99, rmax = _percentiles(removed)
            rows.append((f"toxic add, {count} live conns: p50 / p99 / max (ms)", "-",
                         f"{a50:.1f} / {a99:.1f} / {amax:.1f}", f"{cycles} adds; proxy threads peak {threads.peak}"))
            rows.append((f"toxic remove, {count} live conns: p50 / p99 / max (ms)", "-",
                         f"{r50:.1f} / {r99:.1f} / {rmax:.1f}", f"{cycles} removes"))
            if held is not None:
                rows.append((f"{count} conns held: opened / refused / failed round trips", "-",
                             f"{held.opened} / {held.refused} / {held.errors}",
                             f"first round trip on all at once {held.seconds:.2f} s; proxy RSS "
                             f"{rss_before:.1f} -> {rss_held:.1f} MB"))
                if count == max(counts):
                    with PeakThreads(pid) as threads:
                        churn = toxic_churn(url, "held", 20, churn_cycles)
                    c50, c99, cmax = _percentiles(churn)
                    rows.append((f"20 threads adding/removing toxics, {count} live conns: p50 / p99 / max (ms)",
                                 "-", f"{c50:.1f} / {c99:.1f} / {cmax:.1f}",
                                 f"{len(churn)} answers; proxy threads peak {threads.peak}"))
                    assert c.post("/proxies/held/toxics", json={"name": "on", "type": "latency",
                                                                "attributes": {"latency": 1}}).status_code == 200
                    errors, seconds = held.round()
                    rss_toxic = proc.memory_info().rss / MB
                    t0 = time.perf_counter()
                    assert c.delete("/proxies/held/toxics/on").status_code == 204
                    removal = (time.perf_counter() - t0) * 1e3
                    rows.append((f"{count} conns, round trip on all with a latency toxic on", "-",
                                 f"{errors} failed", f"{seconds:.2f} s; proxy RSS {rss_toxic:.1f} MB; removing it "
                                 f"from {count} conns on the toxic path took {removal:.1f} ms"))
                    errors, seconds = held.round()
                    rows.append((f"{count} conns, round trip on all after it is removed", "-",
                                 f"{errors} failed", f"{seconds:.2f} s"))
        finally:
            if held is not None:
                held.close()
    c.delete("/proxies/held")
    return rows


def _tasks(pid: int) -> list[int]:
    """Every thread of a process: sched_setaffinity(pid) alone moves only its main thread."""
    return [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]


def pinned_ping_pong(proxy_pid: int, server_pid: int, port: int, rounds: int) -> tuple[float, float]:
    """ping_pong with the proxy (every thread) on CPU 0 and the echo server and this client on CPU 1."""
    cpus = os.sched_getaffinity(0)
    if len(cpus) < 2:
        return float("nan"), float("nan")
    first, second = sorted(cpus)[:2]
    moved = [(tid, {first}) for tid in _tasks(proxy_pid)] + [(tid, {second}) for tid in _tasks(server_pid)]
    try:
        for tid, cpu in moved:
            os.sched_setaffinity(tid, cpu)
        os.sched_setaffinity(0, {second})
        return ping_pong(port, rounds)
    finally:
        for tid, _ in moved:
            with contextlib.suppress(OSError):
                os.sched_setaffinity(tid, cpus)
        os.sched_setaffinity(0, cpus)


def _proxy_port(c: httpx.Client, name: str, upstream: int) -> int:
    listen = c.post("/proxies", json={"name": name, "listen": "127.0.0.1:0", "upstream": f"127.0.0.1:{upstream}"})
    return int(listen.json()["listen"].rsplit(":", 1)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller volumes (a smoke run)")
    parser.add_argument("--only", choices=["latency", "data", "toxics"],
                        help="only the RTT rows, only the data-plane rows (no toxics), or only the toxic rows")
    parser.add_argument("--held", default="0,200,2000", help="live connection counts for the toxic rows")
    parser.add_argument("--cycles", type=int, default=100, help="toxic add/remove cycles per count")
    parser.add_argument("--rtt-runs", type=int, default=5, help="ping-pong runs the RTT rows take the median of")
    parser.add_argument("--nofile", type=int, help="the proxy's descriptor limit (soft = hard), e.g. 1024")
    opts = parser.parse_args()
    rounds, total, conns, per_conn = (2000, 128 * MB, 50, 50) if opts.quick else (10000, 512 * MB, 200, 200)
    held_counts = [int(n) for n in opts.held.split(",") if n != ""]
    _raise_nofile()

    ctx = mp.get_context("fork")
    ready = ctx.Queue()
    servers = ctx.Process(target=_echo_and_sink, args=(ready,), daemon=True)
    servers.start()
    echo_port, sink_port = ready.get(timeout=10)
    relay_ready = ctx.Queue()
    plain = ctx.Process(target=_blocking_relay, args=(sink_port, relay_ready), daemon=True)
    plain.start()
    plain_port = relay_ready.get(timeout=10)
    proxy, url = _start_proxy_process(opts.nofile)
    rows: list[Row] = []
    try:
        with httpx.Client(base_url=url, timeout=300) as c:
            echo_proxy = _proxy_port(c, "echo", echo_port)
            sink_proxy = _proxy_port(c, "sink", sink_port)
            load = os.getloadavg()
            if opts.only != "toxics":
                assert servers.pid is not None
                rows += measure_data_plane(proxy.pid, servers.pid, echo_port, sink_port, plain_port, echo_proxy,
                                           sink_proxy, url, rounds, total, conns, per_conn, opts.only == "latency",
                                           opts.rtt_runs)
            if opts.only not in ("latency", "data"):
                rows += under_connections(ctx, c, url, proxy.pid, echo_port, held_counts, opts.cycles,
                                          max(5, opts.cycles // 5))
            load_after = os.getloadavg()
    finally:
        assert proxy.stdin is not None
        proxy.stdin.close()
        proxy.wait(10)
        for child in (servers, plain):
            child.terminate()
            child.join()

    print(f"load average before {load[0]:.2f} {load[1]:.2f}, after {load_after[0]:.2f}; "
          f"{os.cpu_count()} CPUs; Python {sys.version.split()[0]}")
    print("| measure | direct | through proxy | note |")
    print("| --- | --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")


def measure_data_plane(proxy_pid: int, server_pid: int, echo_port: int, sink_port: int, plain_port: int,
                       echo_proxy: int, sink_proxy: int, url: str, rounds: int, total: int, conns: int,
                       per_conn: int, latency_only: bool, repeats: int = 5) -> list[Row]:
    """The RTT, bulk, many-connection, memory and API rows."""
    runs = []
    for _ in range(repeats):  # the RTT moves with the scheduler's placement: median of several runs
        runs.append(ping_pong(echo_port, rounds) + ping_pong(echo_proxy, rounds)
                    + pinned_ping_pong(proxy_pid, server_pid, echo_port, rounds)
                    + pinned_ping_pong(proxy_pid, server_pid, echo_proxy, rounds))
    rows = []
    for label, index in (("", 0), ("pinned: ", 4)):
        for name, offset in (("p50", 0), ("p99", 1)):
            direct = sorted(r[index + offset] for r in runs)
            proxied = sorted(r[index + 2 + offset] for r in runs)
            added = sorted(r[index + 2 + offset] - r[index + offset] for r in runs)
            rows.append((f"{label}64 B ping-pong RTT {name} (µs), median of {repeats}",
                         f"{statistics.median(direct):.1f}", f"{statistics.median(proxied):.1f}",
                         f"added {statistics.median(added):+.1f} (runs {added[0]:+.1f} to {added[-1]:+.1f}); "
                         f"through proxy {proxied[0]:.1f}-{proxied[-1]:.1f}"))
    if latency_only:
        return rows
    direct_bulk = bulk(sink_port, total)
    proxy_ps = psutil.Process(proxy_pid)
    cpu_before = proxy_ps.cpu_times()
    rss, proxy_bulk = rss_during(proxy_pid, lambda: bulk(sink_proxy, total))
    cpu_after = proxy_ps.cpu_times()
    cpu_per_gb = ((cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)) / (total / (1 << 30))
    plain_bulk = bulk(plain_port, total)
    direct_many = many(echo_port, conns, per_conn)
    cpu_before = proxy_ps.cpu_times()
    proxy_many = many(echo_proxy, conns, per_conn)
    cpu_after = proxy_ps.cpu_times()
    traversals = conns * per_conn * 2
    cpu_per_hop = ((cpu_after.user - cpu_before.user) + (cpu_after.system - cpu_before.system)) / traversals
    idle_rss = proxy_ps.memory_info().rss / MB
    created, deleted = api_timing(url, echo_port, 100)
    return rows + [
        (f"bulk throughput, {total // MB} MB (MB/s)", f"{direct_bulk:.0f}", f"{proxy_bulk:.0f}",
         f"{proxy_bulk / direct_bulk * 100:.0f}% of direct"),
        (f"bulk, plain blocking Python relay, {total // MB} MB (MB/s)", f"{direct_bulk:.0f}", f"{plain_bulk:.0f}",
         f"{plain_bulk / direct_bulk * 100:.0f}% of direct; the reference: thread per direction, recv_into/sendall"),
        ("proxy CPU per GB relayed (s, user+sys)", "-", f"{cpu_per_gb:.3f}",
         f"load-independent: one core could relay ~{1024 / max(cpu_per_gb, 1e-9):.0f} MB/s"),
        (f"{conns} conns x {per_conn} ping-pongs (s)", f"{direct_many:.3f}", f"{proxy_many:.3f}",
         f"+{proxy_many - direct_many:.3f}"),
        ("proxy CPU per 64 B traversal, many-conn run (µs)", "-", f"{cpu_per_hop * 1e6:.1f}",
         "load-independent; a round trip is 2 traversals"),
        (f"proxy peak RSS while {total // MB} MB flow (MB)", "-", f"{rss:.1f}", f"idle after: {idle_rss:.1f}"),
        ("API: create 100 proxies (s)", "-", f"{created:.3f}", f"{created * 10:.2f} ms each"),
        ("API: delete 100 proxies (s)", "-", f"{deleted:.3f}", f"{deleted * 10:.2f} ms each"),
    ]


if __name__ == "__main__":
    main()
