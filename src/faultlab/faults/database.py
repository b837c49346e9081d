"""Database faults on a built-in PostgreSQL service."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from faultlab.errors import FaultError
from faultlab.faults.base import FaultKind, FaultParams, NoParams, start_background, stop_background

__all__ = ["DbStall", "DbRestart", "DbReadOnly", "DbConnectionExhaustion"]

_POSTGRES = frozenset({"postgres"})

#: How long a lock or a connection may take before the fault counts as not injected.
_LOCK_TIMEOUT_S = 10


def _connect(dsn: str, **kwargs: Any) -> Any:
    import psycopg

    try:
        return psycopg.connect(dsn, connect_timeout=5, **kwargs)
    except psycopg.Error as exc:
        raise FaultError(f"cannot connect to the database: {exc}".strip()) from exc


def _freeze(ctx: Any, target: str) -> None:
    """SIGSTOP the postmaster (no new backends) and then every child, one by one: each
    PostgreSQL child calls setsid(), so signalling the postmaster's group is not enough."""
    import psutil

    server = ctx.stack.postgres[target]
    pids = server.pids()
    if not pids:
        raise FaultError(f"postgres {target!r} is not running")
    frozen = ctx.state.setdefault("frozen", [])
    for pid in pids:  # every pid is in the ledger before any is stopped
        try:
            start_time = psutil.Process(pid).create_time()
        except psutil.Error:
            continue
        frozen.append((pid, ctx.ledger.stopped_process(pid, start_time) if ctx.ledger is not None else None))
    for pid, _ in frozen:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGSTOP)
    _wait_stopped([pid for pid, _ in frozen])
    ctx.mark_active()


def _wait_stopped(pids: list[int], timeout_s: float = 0.2) -> None:
    import psutil

    deadline = time.monotonic() + timeout_s
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                if psutil.Process(pid).status() in (psutil.STATUS_STOPPED, psutil.STATUS_ZOMBIE):
                    break
            except psutil.Error:
                break
            time.sleep(0.001)


def _thaw(ctx: Any) -> None:
    frozen = ctx.state.pop("frozen", [])
    for pid, entry in reversed(frozen):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
        if entry is not None and ctx.ledger is not None:
            ctx.ledger.forget(entry)


def _lock(ctx: Any, target: str, tables: list[str]) -> None:
    from psycopg import sql

    dsn = ctx.stack.dsn(target)
    conn = _connect(dsn)
    ctx.state["lock_conn"] = conn
    if ctx.ledger is not None:
        ctx.state["ledger_entry"] = ctx.ledger.pg_session(dsn, backend_pid=conn.info.backend_pid)
    conn.execute(f"SET lock_timeout = '{_LOCK_TIMEOUT_S}s'")
    conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
        sql.SQL(", ").join(sql.Identifier(t) for t in tables)))
    ctx.mark_active()


def _unlock(ctx: Any, target: str) -> None:
    conn = ctx.state.pop("lock_conn", None)
    if conn is not None:
        backend = conn.info.backend_pid
        try:
            conn.rollback()
            conn.close()
        except Exception:
            with _connect(ctx.stack.dsn(target), autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
    entry = ctx.state.pop("ledger_entry", None)
    if entry is not None and ctx.ledger is not None:
        ctx.ledger.forget(entry)


def _stall_links(ctx: Any, target: str) -> None:
    from faultlab.faults.link import add_toxics

    links = ctx.stack.links_to(target)
    if not links:
        raise FaultError(f"no link leads to {target!r}, so there is no network to stall")
    for link in links:
        add_toxics(ctx, link, "timeout", "both", 1.0, {"timeout": 0})
    ctx.mark_active()


class DbStallParams(FaultParams):
    mode: Literal["freeze", "lock", "network"] = Field(
        "freeze",
        description=(
            "freeze: stop the server processes (SIGSTOP); lock: a session holds an exclusive "
            "lock on `tables`; network: stall every link into the database"
        ),
    )
    tables: list[str] | None = Field(
        None, description="tables to lock (mode lock only)", min_length=1
    )

    @model_validator(mode="after")
    def _tables_only_for_lock(self) -> DbStallParams:
        if self.mode == "lock" and not self.tables:
            raise ValueError("mode lock needs `tables`: the tables to hold an exclusive lock on")
        if self.mode != "lock" and self.tables is not None:
            raise ValueError(f"`tables` is for mode lock only, not mode {self.mode}")
        return self


class DbStall(FaultKind):
    """Stall the database: frozen processes, a held lock, or a stalled network."""

    name: ClassVar[str] = "db_stall"
    summary: ClassVar[str] = "stall the database (freeze its processes, hold a lock, or stall its links)"
    Params = DbStallParams
    target_types = _POSTGRES

    def inject(self, ctx: Any, target: str, params: Any) -> None:
        if params.mode == "freeze":
            _freeze(ctx, target)
        elif params.mode == "lock":
            _lock(ctx, target, params.tables)
        else:
            _stall_links(ctx, target)

    def revert(self, ctx: Any, target: str, params: Any) -> None:
        from faultlab.faults.link import remove_toxics

        _thaw(ctx)
        _unlock(ctx, target)
        remove_toxics(ctx)


class DbRestartParams(FaultParams):
    mode: Literal["fast", "immediate"] = Field(
        "fast",
        description="fast: clean shutdown then start; immediate: crash-like stop then start (recovery)",
    )


class DbRestart(FaultKind):
    """Restart the database server (the fault is active from the moment it shuts down)."""

    name: ClassVar[str] = "db_restart"
    summary: ClassVar[str] = "restart the database server (fast or immediate shutdown)"
    Params = DbRestartParams
    target_types = _POSTGRES
    needs_for = False

    def inject(self, ctx: Any, target: str, params: Any) -> None:
        from faultlab.runtime.local import start_postgres

        ctx.mark_active()
        ctx.stack.postgres[target].stop(mode=params.mode)
        start_postgres(ctx.stack, target)

    def revert(self, ctx: Any, target: str, params: Any) -> None:
        from faultlab.runtime.local import start_postgres

        if ctx.stack.postgres[target].postmaster_pid is None:
            start_postgres(ctx.stack, target)


_READ_WRITE = ["SET default_transaction_read_only = off",
               "ALTER SYSTEM RESET default_transaction_read_only", "SELECT pg_reload_conf()"]


class DbReadOnly(FaultKind):
    """Make the database refuse writes (``default_transaction_read_only``), like a full disk.

    The setting is changed server-wide and reloaded, so open sessions get it at their next
    transaction, as they would when a disk is full."""

    name: ClassVar[str] = "db_read_only"
    summary: ClassVar[str] = "make the database read-only (writes refused, reads served)"
    Params = NoParams
    target_types = _POSTGRES

    def inject(self, ctx: Any, target: str, params: Any) -> None:
        dsn = ctx.stack.dsn(target)
        if ctx.ledger is not None:
            ctx.state["ledger_entry"] = ctx.ledger.pg_setting(dsn, _READ_WRITE, what="default_transaction_read_only")
        ctx.state["read_only"] = True
        with _connect(dsn, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET default_transaction_read_only = on")
            conn.execute("SELECT pg_reload_conf()")
        ctx.mark_active()

    def revert(self, ctx: Any, target: str, params: Any) -> None:
        if not ctx.state.pop("read_only", False):
            return
        with _connect(ctx.stack.dsn(target), autocommit=True) as conn:
            for statement in _READ_WRITE:
                conn.execute(statement)
        entry = ctx.state.pop("ledger_entry", None)
        if entry is not None and ctx.ledger is not None:
            ctx.ledger.forget(entry)


class DbConnectionExhaustionParams(FaultParams):
    leave_free: int = Field(
        0, ge=0, le=10000, description="connections left free for others (0: take every one)"
    )


class DbConnectionExhaustion(FaultKind):
    """Take the database's free connections with another client.

    The client connects as the stack's own user until the server refuses it for want of a
    slot (with ``leave_free``, until that many slots are left), so slots reserved for
    superusers stay free, as they would for a real runaway client. A session someone
    closed a moment ago keeps its slot until its backend has exited: the fault keeps
    taking slots until none has come free for ``settle_s`` before it returns, and goes on
    taking any slot given back every ``regrab_s`` for as long as it is active.
    """

    name: ClassVar[str] = "db_connection_exhaustion"
    summary: ClassVar[str] = "take every free database connection (or all but leave_free)"
    Params = DbConnectionExhaustionParams
    target_types = _POSTGRES

    #: How often the greedy client looks for connections someone else gave back.
    regrab_s: ClassVar[float] = 0.1
    #: How long no slot may come free before the fault counts as injected.
    settle_s: ClassVar[float] = 0.25
    #: How long inject waits at most for slots to stop coming free.
    settle_limit_s: ClassVar[float] = 5.0

    def inject(self, ctx: Any, target: str, params: Any) -> None:
        held: list[Any] = []
        ctx.state["connections"] = held
        self._grab(ctx, target, params.leave_free, held)
        ctx.mark_active()
        limit = time.monotonic() + self.settle_limit_s
        while time.monotonic() < limit:
            time.sleep(self.settle_s)
            try:
                if not self._grab(ctx, target, params.leave_free, held):
                    break
            except FaultError:
                break  # the background grabber below keeps trying

        def keep_grabbing(stop: Any) -> None:
            while not stop.wait(self.regrab_s):
                with contextlib.suppress(FaultError):  # the server is busy or down: next round
                    self._grab(ctx, target, params.leave_free, held, stop)

        start_background(ctx, "faultlab-conn-grabber", keep_grabbing)

    @staticmethod
    def _grab(ctx: Any, target: str, leave_free: int, held: list[Any], stop: Any = None) -> int:
        """Open connections as the stack's own user until the server refuses one for want of
        a slot (or, with ``leave_free``, until only that many are left); how many it opened.
        Raises :class:`FaultError` when the server refuses for another reason."""
        import psycopg

        spec = ctx.stack.stack.services[target].postgres
        wanted = _MAX_CONNECTIONS if leave_free == 0 else _free_slots(ctx.stack.dsn(target)) - leave_free
        dsn = ctx.stack.dsn(target, user=spec.user)
        taken = 0
        while taken < wanted and not (stop is not None and stop.is_set()):
            try:
                held.append(psycopg.connect(dsn, connect_timeout=5, autocommit=True))
            except psycopg.OperationalError as exc:
                if _out_of_slots(exc):
                    break
                raise FaultError(f"cannot connect to the database: {exc}".strip()) from exc
            taken += 1
        return taken

    def revert(self, ctx: Any, target: str, params: Any) -> None:
        stop_background(ctx)
        for conn in ctx.state.pop("connections", []):
            with contextlib.suppress(Exception):
                conn.close()


#: More connections than any server takes (``max_connections`` is at most 10000 here).
_MAX_CONNECTIONS = 10_001


def _out_of_slots(exc: Exception) -> bool:
    """Whether PostgreSQL refused a connection for want of a free slot (SQLSTATE 53300,
    which libpq reports only in the message)."""
    message = str(exc)
    return "too many clients" in message or "remaining connection slots are reserved" in message


def _free_slots(admin_dsn: str) -> int:
    """Slots an ordinary role could still take: ``max_connections`` less the reserved ones
    and every other client's, not counting this query's own session."""
    with _connect(admin_dsn, autocommit=True) as admin:
        row = admin.execute(
            "SELECT current_setting('max_connections')::int"
            " - current_setting('superuser_reserved_connections')::int"
            " - coalesce(current_setting('reserved_connections', true)::int, 0)"
            " - (SELECT count(*) FROM pg_stat_activity"
            "    WHERE backend_type = 'client backend' AND pid <> pg_backend_pid())"
        ).fetchone()
    return int(row[0])
