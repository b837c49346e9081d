"""The clean-up ledger: every resource a run creates, written down before it is created.

A :class:`Ledger` is a JSON file ``<state_dir>/runs/<run-id>.json`` (``state_dir`` defaults
to ``~/.local/state/faultlab``, or ``$FAULTLAB_STATE_DIR``) labelled with the run id and
the harness's pid and start time. The engine records each resource *before* creating or
injecting it (process groups with their start time, stopped processes, data directories,
proxies, PostgreSQL sessions holding locks, settings to undo) and forgets it once it is
reverted. Processes also carry the label ``FAULTLAB_RUN_ID`` in their environment, like
testcontainers' session labels, so one started between "recorded" and "pid known" is
still found.

:func:`cleanup` is what ``faultlab cleanup`` runs: for every ledger whose harness is dead
(or every ledger, with ``force``) it reverts and removes everything, idempotently, through
the cleaner of each entry's kind, and returns a :class:`CleanupReport`; failures are
collected and raised together as ``CleanupError``. An entry of a kind no cleaner is
registered for is reported as a failure (and its ledger kept), never dropped.

Cleaners are registered by kind in the ``faultlab.cleaners`` entry-point group, the
built-in ones in pyproject.toml exactly as a plugin registers its own, so ``faultlab
cleanup`` also reverts a third-party fault kind's leftovers after a ``kill -9``::

    [project.entry-points."faultlab.cleaners"]
    widget = "mypackage.cleanup:clean_widget"

    # mypackage/cleanup.py
    from faultlab.runtime.ledger import cleaner

    @cleaner(rank=50)
    def clean_widget(entry, **kwargs):
        ...                                  # undo what the entry describes, idempotently
        return [("remove widget " + entry["name"], True, "")]

:data:`faultlab.registry.cleaners` holds them; :func:`register_cleaner` adds one by hand
(tests, embedding).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psutil

from faultlab.errors import CleanupError

__all__ = [
    "LEDGER_SCHEMA",
    "RUN_LABEL",
    "default_state_dir",
    "Ledger",
    "CleanupAction",
    "CleanupReport",
    "Cleaner",
    "cleaner",
    "register_cleaner",
    "cleanup",
]

log = logging.getLogger(__name__)

LEDGER_SCHEMA = "faultlab.ledger/1"
RUN_LABEL = "FAULTLAB_RUN_ID"
#: psutil's create_time is derived from clock ticks since boot; allow for rounding.
_START_TIME_TOLERANCE_S = 0.05


def default_state_dir() -> Path:
    """``$FAULTLAB_STATE_DIR``, else ``$XDG_STATE_HOME/faultlab``, else ``~/.local/state/faultlab``."""
    if os.environ.get("FAULTLAB_STATE_DIR"):
        return Path(os.environ["FAULTLAB_STATE_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "faultlab"


def _process_start_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _same_process(pid: int, start_time: float | None) -> bool:
    """True when ``pid`` is alive (not a zombie) and is the process that started at ``start_time``."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        created = proc.create_time()
    except psutil.Error:
        return False
    return start_time is None or abs(created - start_time) <= _START_TIME_TOLERANCE_S


class Ledger:
    """The ledger file of one run; thread-safe, every change written atomically and fsynced.

    Use :meth:`record` (or the helpers named after resource kinds) before creating a
    resource; it returns the entry id. :meth:`update` adds what is known only afterwards
    (a pid), :meth:`forget` drops an entry once the resource is reverted or removed, and
    :meth:`close` deletes the file when nothing is left.
    """

    def __init__(self, run_id: str, *, state_dir: str | os.PathLike[str] | None = None):
        self.run_id = run_id
        self.state_dir = Path(state_dir) if state_dir is not None else default_state_dir()
        self.path = self.state_dir / "runs" / f"{run_id}.json"
        self._lock = threading.Lock()
        pid = os.getpid()
        self._doc: dict[str, Any] = {
            "schema": LEDGER_SCHEMA,
            "run_id": run_id,
            "harness_pid": pid,
            "harness_start_time": _process_start_time(pid),
            "host": socket.gethostname(),
            "created_wall": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "entries": [],
        }
        self._save()

    @property
    def label(self) -> dict[str, str]:
        """Environment variables labelling a process as this run's."""
        return {RUN_LABEL: self.run_id}

    @property
    def entries(self) -> list[dict[str, Any]]:
        """A copy of the current entries."""
        with self._lock:
            return [dict(e) for e in self._doc["entries"]]

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(self._doc, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)

    def record(self, kind: str, **data: Any) -> str:
        """Write down a resource of ``kind`` about to be created; returns its entry id."""
        from faultlab.registry import cleaners

        if kind not in cleaners:
            raise ValueError(f"no cleaner for resource kind {kind!r}; known: {', '.join(cleaners.names())}")
        entry_id = uuid.uuid4().hex[:12]
        with self._lock:
            self._doc["entries"].append({"id": entry_id, "kind": kind, **data})
            self._save()
        return entry_id

    def update(self, entry_id: str, **data: Any) -> None:
        """Add facts to an entry (say, the pid once the process exists)."""
        with self._lock:
            for entry in self._doc["entries"]:
                if entry["id"] == entry_id:
                    entry.update(data)
                    break
            else:
                raise KeyError(entry_id)
            self._save()

    def forget(self, entry_id: str) -> None:
        """Drop an entry whose resource was reverted or removed (unknown ids are ignored)."""
        with self._lock:
            before = len(self._doc["entries"])
            self._doc["entries"] = [e for e in self._doc["entries"] if e["id"] != entry_id]
            if len(self._doc["entries"]) != before:
                self._save()

    def close(self) -> bool:
        """Delete the ledger file if every entry was forgotten; True when deleted."""
        with self._lock:
            if self._doc["entries"]:
                return False
            self.path.unlink(missing_ok=True)
            return True

    def process_group(self, name: str, pgid: int | None = None, start_time: float | None = None) -> str:
        """A process group (a service); record before spawning, then :meth:`update` the pgid."""
        return self.record("process_group", name=name, pgid=pgid, start_time=start_time)

    def stopped_process(self, pid: int, start_time: float | None = None, *, group: bool = False) -> str:
        """A process (or group) about to be SIGSTOPped; cleanup continues it."""
        if start_time is None:
            start_time = _process_start_time(pid)
        return self.record("stopped_process", pid=pid, start_time=start_time, group=group)

    def data_dir(self, path: str | os.PathLike[str]) -> str:
        """A directory the run creates and owns; cleanup removes it."""
        return self.record("data_dir", path=str(Path(path).resolve()))

    def proxy(self, api_url: str, names: Iterable[str]) -> str:
        """Proxies about to be created through a Toxiproxy API; cleanup deletes them."""
        return self.record("proxy", api_url=api_url, names=list(names))

    def pg_session(self, dsn: str, backend_pid: int | None = None, backend_start: str | None = None) -> str:
        """A PostgreSQL session that will hold locks; cleanup terminates its backend."""
        return self.record("pg_session", dsn=dsn, backend_pid=backend_pid, backend_start=backend_start)

    def pg_setting(self, dsn: str, undo_sql: Iterable[str], what: str = "") -> str:
        """A server setting about to be changed (read-only...); cleanup runs ``undo_sql``."""
        return self.record("pg_setting", dsn=dsn, undo_sql=list(undo_sql), what=what)


@dataclass(frozen=True)
class CleanupAction:
    """One thing cleanup did (or failed to do) for one ledger entry."""

    run_id: str
    kind: str
    what: str
    ok: bool
    detail: str = ""


@dataclass
class CleanupReport:
    """What :func:`cleanup` did: actions per ledger, ledgers skipped (harness alive)."""

    actions: list[CleanupAction] = field(default_factory=list)
    cleaned_runs: list[str] = field(default_factory=list)
    skipped_runs: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[CleanupAction]:
        """The actions that failed."""
        return [a for a in self.actions if not a.ok]

    def __str__(self) -> str:
        lines = [f"{'ok  ' if a.ok else 'FAIL'} {a.run_id} {a.kind}: {a.what}" + (f" ({a.detail})" if a.detail else "")
                 for a in self.actions]
        lines += [f"skip {run}: its harness is still running" for run in self.skipped_runs]
        return "\n".join(lines) or "nothing to clean up"


CleanupResults = list[tuple[str, bool, str]]
"""What a cleaner did: ``(what, ok, detail)`` per thing it reverted or removed."""

DEFAULT_RANK = 50
"""The rank of a cleaner that does not say (a lower rank runs first)."""


class Cleaner(Protocol):
    """Reverts or removes the resource of one ledger entry, returning ``[(what, ok, detail)]``.

    Must be idempotent (a resource already gone is a success) and may raise (counted as a
    failure). Takes keyword arguments ``run_id`` and ``http_timeout_s`` and must accept
    others, so new ones can be added. Its ``rank`` says which kinds are cleaned first (the
    lowest first: proxies, then sessions, processes, data directories); without one it is
    :data:`DEFAULT_RANK`.
    """

    def __call__(self, entry: Mapping[str, Any], **kwargs: Any) -> CleanupResults: ...


@dataclass(frozen=True)
class _Ranked:
    clean: Callable[..., CleanupResults]
    rank: int

    def __call__(self, entry: Mapping[str, Any], **kwargs: Any) -> CleanupResults:
        return self.clean(entry, **kwargs)


def cleaner(*, rank: int = DEFAULT_RANK) -> Callable[[Callable[..., CleanupResults]], Cleaner]:
    """Make a function a cleaner of rank ``rank`` (register it in ``faultlab.cleaners``)."""

    def decorate(fn: Callable[..., CleanupResults]) -> Cleaner:
        return _Ranked(fn, rank)

    return decorate


def register_cleaner(kind: str, *, rank: int = DEFAULT_RANK) -> Callable[[Callable[..., CleanupResults]], Cleaner]:
    """Register a function as the cleaner of ``kind`` by hand (tests, embedding); plugins use
    the ``faultlab.cleaners`` entry points instead."""

    def decorate(fn: Callable[..., CleanupResults]) -> Cleaner:
        from faultlab.registry import cleaners

        registered = cleaner(rank=rank)(fn)
        cleaners.register(kind, registered, source=f"{fn.__module__}:{fn.__qualname__}")
        return registered

    return decorate


def _rank(found: object) -> int:
    rank = getattr(found, "rank", DEFAULT_RANK)
    return rank if isinstance(rank, int) else DEFAULT_RANK


@cleaner(rank=10)
def _undo_pg_setting(entry: Mapping[str, Any], **_: Any) -> list[tuple[str, bool, str]]:
    import psycopg

    what = entry.get("what") or "; ".join(entry.get("undo_sql", []))
    try:
        with psycopg.connect(entry["dsn"], autocommit=True, connect_timeout=5) as conn:
            for sql in entry.get("undo_sql", []):
                conn.execute(sql)
    except psycopg.OperationalError as exc:
        if _server_gone(exc):
            return [(f"undo setting {what}", True, "server not running; nothing to undo")]
        raise
    return [(f"undo setting {what}", True, "")]


@cleaner(rank=20)
def _terminate_pg_session(entry: Mapping[str, Any], **_: Any) -> list[tuple[str, bool, str]]:
    import psycopg

    backend = entry.get("backend_pid")
    if backend is None:
        return [("lock-holding session (never opened)", True, "")]
    what = f"terminate PostgreSQL backend {backend}"
    try:
        with psycopg.connect(entry["dsn"], autocommit=True, connect_timeout=5) as conn:
            query = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = %s"
            params: list[Any] = [backend]
            if entry.get("backend_start"):
                query += " AND backend_start = %s::timestamptz"
                params.append(entry["backend_start"])
            row = conn.execute(query, params).fetchone()
    except psycopg.OperationalError as exc:
        if _server_gone(exc):
            return [(what, True, "server not running; session gone")]
        raise
    return [(what, True, "terminated" if row and row[0] else "already gone")]


def _server_gone(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "connection refused" in text or "no such file" in text or "could not connect" in text


@cleaner(rank=30)
def _continue_process(entry: Mapping[str, Any], **_: Any) -> list[tuple[str, bool, str]]:
    pid = int(entry["pid"])
    what = f"SIGCONT {'group' if entry.get('group') else 'process'} {pid}"
    if not _same_process(pid, entry.get("start_time")):
        return [(what, True, "already gone")]
    try:
        if entry.get("group"):
            os.killpg(pid, signal.SIGCONT)
        else:
            os.kill(pid, signal.SIGCONT)
    except ProcessLookupError:
        return [(what, True, "already gone")]
    return [(what, True, "continued")]


def _labelled_processes(run_id: str) -> list[psutil.Process]:
    me = os.getpid()
    found = []
    for proc in psutil.process_iter():
        if proc.pid == me:
            continue
        try:
            if proc.status() == psutil.STATUS_ZOMBIE:
                continue
            if proc.environ().get(RUN_LABEL) == run_id:
                found.append(proc)
        except psutil.Error:
            continue
    return found


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Those of ``procs`` still alive after ``timeout``; zombies count as gone (PID 1 in a
    container may reap orphans late or never)."""
    deadline = time.monotonic() + timeout
    alive = list(procs)
    while True:
        alive = [p for p in alive if _same_process(p.pid, p.create_time())]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(0.02)


def _kill_processes(procs: list[psutil.Process], grace_s: float = 2.0) -> list[int]:
    """Continue, terminate, then kill what is left after ``grace_s``; the pids now gone."""
    for proc in procs:
        for sig in (signal.SIGCONT, signal.SIGTERM, signal.SIGCONT):
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)
    alive = _wait_gone(procs, grace_s)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    alive = _wait_gone(alive, 3.0)
    return [p.pid for p in procs if p not in alive]


@cleaner(rank=40)
def _kill_process_group(entry: Mapping[str, Any], *, run_id: str, **_: Any) -> list[tuple[str, bool, str]]:
    pgid = entry.get("pgid")
    name = entry.get("name", "")
    what = f"kill process group {pgid} ({name})" if pgid else f"kill processes of {name} (never started)"
    if not pgid:
        return [(what, True, "")]
    pgid = int(pgid)
    leader_matches = _same_process(pgid, entry.get("start_time"))
    targets = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) != pgid or proc.pid == os.getpid() or proc.status() == psutil.STATUS_ZOMBIE:
                continue
            # a recycled pgid belongs to someone else: only kill members proven to be ours
            if leader_matches or proc.environ().get(RUN_LABEL) == run_id:
                targets.append(proc)
        except (psutil.Error, ProcessLookupError):
            continue
    if not targets:
        return [(what, True, "already gone")]
    _kill_processes(targets)
    left = [p.pid for p in targets if _same_process(p.pid, None)]
    if left:
        return [(what, False, f"still alive: {left}")]
    return [(what, True, f"killed {len(targets)} process(es)")]


@cleaner(rank=60)
def _remove_data_dir(entry: Mapping[str, Any], **_: Any) -> list[tuple[str, bool, str]]:
    path = Path(entry["path"])
    what = f"remove {path}"
    if not path.exists():
        return [(what, True, "already gone")]
    shutil.rmtree(path)
    return [(what, True, "removed")]


@cleaner(rank=5)
def _delete_proxies(entry: Mapping[str, Any], *, http_timeout_s: float = 5.0, **_: Any) -> list[tuple[str, bool, str]]:
    import httpx

    api = str(entry["api_url"]).rstrip("/")
    results = []
    try:
        with httpx.Client(timeout=http_timeout_s) as client:
            for name in entry.get("names", []):
                what = f"delete proxy {name} at {api}"
                response = client.delete(f"{api}/proxies/{name}")
                if response.status_code in (200, 204):
                    results.append((what, True, "deleted"))
                elif response.status_code == 404:
                    results.append((what, True, "already gone"))
                else:
                    results.append((what, False, f"status {response.status_code}: {response.text[:200]}"))
    except httpx.ConnectError:
        return [(f"delete proxies {entry.get('names')} at {api}", True, "proxy server not running; listeners gone")]
    return results


def _harness_alive(doc: Mapping[str, Any]) -> bool:
    pid = doc.get("harness_pid")
    if not isinstance(pid, int):
        return False
    if pid == os.getpid():
        return True
    return _same_process(pid, doc.get("harness_start_time"))


def cleanup(
    state_dir: str | os.PathLike[str] | None = None,
    *,
    force: bool = False,
    run_id: str | None = None,
    http_timeout_s: float = 5.0,
    on_action: Callable[..., None] | None = None,
) -> CleanupReport:
    """Revert and remove what runs left behind; returns what was done.

    Only ledgers whose harness is dead are touched, unless ``force`` (the caller's own run
    is never skipped when named by ``run_id`` with ``force``). Processes labelled with a
    run's id are killed even when the ledger never learned their pid. A ledger is deleted
    once all its entries were cleaned; any failure keeps it and raises ``CleanupError``
    carrying the report (``exc.report``). ``on_action(action=...)`` sees each action.
    """
    root = Path(state_dir) if state_dir is not None else default_state_dir()
    report = CleanupReport()
    runs_dir = root / "runs"
    paths = sorted(runs_dir.glob("*.json")) if runs_dir.is_dir() else []
    for path in paths:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            report.actions.append(CleanupAction(path.stem, "ledger", f"read {path}", False, str(exc)))
            continue
        rid = str(doc.get("run_id", path.stem))
        if run_id is not None and rid != run_id:
            continue
        if not force and _harness_alive(doc):
            report.skipped_runs.append(rid)
            continue
        ok = _clean_ledger(doc, rid, report, http_timeout_s=http_timeout_s, on_action=on_action)
        if ok:
            path.unlink(missing_ok=True)
            report.cleaned_runs.append(rid)
    if report.failures:
        error = CleanupError("clean-up failed:\n" + "\n".join(
            f"{a.run_id} {a.kind}: {a.what}: {a.detail}" for a in report.failures))
        error.report = report  # type: ignore[attr-defined]
        raise error
    return report


def _no_cleaner(kind: str) -> str:
    """Why an entry of ``kind`` cannot be cleaned: its cleaner failed to load, or there is none."""
    from faultlab.registry import cleaners

    broken = cleaners.broken.get(kind)
    if broken:
        return f"the cleaner of kind {kind!r} could not be loaded: {broken}; the entry is kept"
    return (f"no cleaner is registered for kind {kind!r} (a plugin registers one under the "
            f"faultlab.cleaners entry points); the entry is kept; known: {', '.join(cleaners.names())}")


def _clean_ledger(
    doc: Mapping[str, Any],
    rid: str,
    report: CleanupReport,
    *,
    http_timeout_s: float,
    on_action: Callable[..., None] | None,
) -> bool:
    def add(action: CleanupAction) -> None:
        report.actions.append(action)
        if on_action is not None:
            try:
                on_action(action=action)
            except Exception:
                log.exception("cleanup observer failed")

    from faultlab.registry import cleaners

    ok = True
    entries = list(doc.get("entries", []))
    entries.sort(key=lambda e: _rank(cleaners.get(e["kind"])) if e.get("kind") in cleaners else 99)
    for entry in entries:
        kind = entry.get("kind", "")
        if kind not in cleaners:
            add(CleanupAction(rid, kind, f"entry {entry.get('id')}", False, _no_cleaner(kind)))
            ok = False
            continue
        try:
            results = cleaners.get(kind)(entry, run_id=rid, http_timeout_s=http_timeout_s)
        except Exception as exc:
            add(CleanupAction(rid, kind, f"entry {entry.get('id')}", False, f"{type(exc).__name__}: {exc}"))
            ok = False
            continue
        for what, good, detail in results:
            add(CleanupAction(rid, kind, what, good, detail))
            ok = ok and good
    leftovers = _labelled_processes(rid)
    if leftovers:
        gone = _kill_processes(leftovers)
        missed = [p.pid for p in leftovers if p.pid not in gone]
        add(CleanupAction(rid, "labelled_processes", f"kill processes labelled {RUN_LABEL}={rid}",
                          not missed, f"still alive: {missed}" if missed else f"killed {len(gone)}"))
        ok = ok and not missed
    return ok
