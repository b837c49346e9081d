"""Database faults on a built-in PostgreSQL service, through the runtime's
:class:`~faultlab.runtime.base.DatabaseControl` (freeze, stop, start) and plain SQL."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator

from faultlab.errors import FaultError
from faultlab.faults.base import Background, FaultKind, FaultParams, NoParams, start_background, stop_background
from faultlab.faults.link import Toxics, add_toxics, remove_toxics

if TYPE_CHECKING:
    import threading

    from faultlab.engine.context import FaultContext

__all__ = ["DbStall", "DbRestart", "DbCrash", "DbReadOnly",
           "DbConnectionExhaustion", "Stalled", "HeldLock", "Restarted",
           "ReadOnly", "ConnectionsHeld"]

_POSTGRES = frozenset({"postgres"})

#: How long a lock or a connection may take before the fault counts as not injected.
_LOCK_TIMEOUT_S = 10


def _connect(dsn: str, **kwargs: Any) -> Any:
    import psycopg

    try:
        return psycopg.connect(dsn, connect_timeout=5, **kwargs)
    except psycopg.Error as exc:
        raise FaultError(f"cannot connect to the database: {exc}".strip()) from exc


@dataclass
class HeldLock:
    """The session holding the lock (None once closed) and its ledger entry."""

    dsn: str
    conn: Any = None
    ledger_entry: str | None = None


@dataclass
class Stalled:
    """What a ``db_stall`` did: froze the server, holds a lock, or added toxics to its links."""

    database: str
    frozen: bool = False
    lock: HeldLock | None = None
    toxics: Toxics = field(default_factory=Toxics)


def _lock(ctx: FaultContext, target: str, tables: list[str], stalled: Stalled) -> None:
    """Open a session (in the ledger before it locks anything) and lock ``tables`` in it."""
    import psycopg
    from psycopg import sql

    dsn = ctx.stack.dsn(target)
    held = stalled.lock = HeldLock(dsn)
    held.conn = _connect(dsn)
    if ctx.ledger is not None:
        held.ledger_entry = ctx.ledger.pg_session(dsn, backend_pid=held.conn.info.backend_pid)
    try:
        held.conn.execute(f"SET lock_timeout = '{_LOCK_TIMEOUT_S}s'")
        found = held.conn.execute("SELECT t, to_regclass(quote_ident(t)) IS NOT NULL FROM unnest(%s::text[]) AS t",
                                  (tables,)).fetchall()
        missing = [t for t, exists in found if not exists]
        if missing:
            raise FaultError(f"could not lock {', '.join(tables)} in {target!r}: no table {', '.join(missing)}")
        # The fault acts from the moment the lock is asked for, not when it is granted: a
        # queued exclusive lock request already makes every later request on the tables wait
        # behind it, while it waits for the transactions in progress to end.
        ctx.mark_active()
        held.conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(
            sql.SQL(", ").join(sql.Identifier(t) for t in tables)))
    except psycopg.Error as exc:
        raise FaultError(f"could not lock {', '.join(tables)} in {target!r}: {exc}".strip()) from exc


def _unlock(ctx: FaultContext, held: HeldLock | None) -> None:
    if held is None:
        return
    conn, held.conn = held.conn, None
    if conn is not None:
        backend = conn.info.backend_pid
        try:
            conn.rollback()
            conn.close()
        except Exception:
            with _connect(held.dsn, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
    if held.ledger_entry is not None and ctx.ledger is not None:
        ctx.ledger.forget(held.ledger_entry)
        held.ledger_entry = None


def _stall_links(ctx: FaultContext, target: str, stalled: Stalled) -> None:
    links = ctx.stack.links_to(target)
    if not links:
        raise FaultError(f"no link leads to {target!r}, so there is no network to stall")
    for link in links:
        add_toxics(ctx, stalled.toxics, link, "timeout", "both", 1.0, {"timeout": 0})
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


_STALL_NEEDS = {"freeze": "database_control", "lock": "database_sql", "network": "proxy"}


class DbStall(FaultKind[DbStallParams, Stalled]):
    """Stall the database: frozen processes, a held lock, or a stalled network."""

    name: ClassVar[str] = "db_stall"
    summary: ClassVar[str] = "stall the database (freeze its processes, hold a lock, or stall its links)"
    Params = DbStallParams
    target_types = _POSTGRES
    requires = frozenset(_STALL_NEEDS.values())

    @classmethod
    def needs(cls, params: Any) -> frozenset[str]:
        mode = getattr(params, "mode", None)
        return frozenset({_STALL_NEEDS[mode]}) if mode in _STALL_NEEDS else cls.requires

    def inject(self, ctx: FaultContext, target: str, params: DbStallParams) -> Stalled:
        stalled = ctx.keep(Stalled(target))
        if params.mode == "freeze":
            database = ctx.stack.database(target)
            stalled.frozen = True  # before the call: thaw undoes a freeze that stopped half the processes
            with ctx.taking_effect():
                database.freeze()
        elif params.mode == "lock":
            _lock(ctx, target, params.tables or [], stalled)
        else:
            _stall_links(ctx, target, stalled)
        return stalled

    def revert(self, ctx: FaultContext, target: str, params: DbStallParams, injected: Stalled | None) -> None:
        if injected is None:
            return
        if injected.frozen:
            ctx.stack.database(injected.database).thaw()
            injected.frozen = False
        _unlock(ctx, injected.lock)
        remove_toxics(ctx, injected.toxics)


class DbRestartParams(FaultParams):
    mode: Literal["fast", "immediate"] = Field(
        "fast",
        description="fast: clean shutdown then start; immediate: crash-like stop then start (recovery)",
    )


@dataclass
class Restarted:
    """A restart in progress: ``down`` until the server started again."""

    database: str
    down: bool = False


class DbRestart(FaultKind[DbRestartParams, Restarted]):
    """Restart the database server (the fault is active from the moment it shuts down)."""

    name: ClassVar[str] = "db_restart"
    summary: ClassVar[str] = "restart the database server (fast or immediate shutdown)"
    Params = DbRestartParams
    target_types = _POSTGRES
    needs_for = False
    requires = frozenset({"database_control"})

    def inject(self, ctx: FaultContext, target: str, params: DbRestartParams) -> Restarted:
        database = ctx.stack.database(target)
        restarted = ctx.keep(Restarted(target))
        ctx.mark_active()
        restarted.down = True
        database.stop(params.mode)
        database.start()
        restarted.down = False
        return restarted

    def revert(self, ctx: FaultContext, target: str, params: DbRestartParams, injected: Restarted | None) -> None:
        """Start the server again when the restart stopped it and did not start it."""
        if injected is None or not injected.down:
            return
        database = ctx.stack.database(injected.database)
        if not database.is_running():
            database.start()
        injected.down = False


class DbCrash(FaultKind[NoParams, Restarted]):
    """Crash the database server (immediate shutdown) and leave it down: recovery must start it
    (a runbook's ``start_database``); it is started again at ``at + for`` if nobody did."""

    name: ClassVar[str] = "db_crash"
    summary: ClassVar[str] = "crash the database server and leave it down (started again after `for` at the latest)"
    Params = NoParams
    target_types = _POSTGRES
    requires = frozenset({"database_control"})

    def inject(self, ctx: FaultContext, target: str, params: NoParams) -> Restarted:
        crashed = ctx.keep(Restarted(target, down=True))
        ctx.mark_active()  # in effect from the first signal: requests fail while the server goes down
        ctx.stack.database(target).stop("immediate")
        return crashed

    def revert(self, ctx: FaultContext, target: str, params: NoParams, injected: Restarted | None) -> None:
        """Start the server when it is still down (a runbook may have started it already)."""
        if injected is None or not injected.down:
            return
        database = ctx.stack.database(injected.database)
        if not database.is_running():
            database.start()
        injected.down = False


_READ_WRITE = ["SET default_transaction_read_only = off",
               "ALTER SYSTEM RESET default_transaction_read_only", "SELECT pg_reload_conf()"]


@dataclass
class ReadOnly:
    """A server made read-only (``on``), with the ledger entry that undoes it after a ``kill -9``."""

    dsn: str
    on: bool = False
    ledger_entry: str | None = None


class DbReadOnly(FaultKind[NoParams, ReadOnly]):
    """Make the database refuse writes (``default_transaction_read_only``), like a full disk.

    The setting is changed server-wide and reloaded, so open sessions get it at their next
    transaction, as they would when a disk is full."""

    name: ClassVar[str] = "db_read_only"
    summary: ClassVar[str] = "make the database read-only (writes refused, reads served)"
    Params = NoParams
    target_types = _POSTGRES
    requires = frozenset({"database_sql"})

    def inject(self, ctx: FaultContext, target: str, params: NoParams) -> ReadOnly:
        read_only = ctx.keep(ReadOnly(ctx.stack.dsn(target)))
        if ctx.ledger is not None:
            read_only.ledger_entry = ctx.ledger.pg_setting(read_only.dsn, _READ_WRITE,
                                                           what="default_transaction_read_only")
        read_only.on = True
        with _connect(read_only.dsn, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET default_transaction_read_only = on")
            conn.execute("SELECT pg_reload_conf()")
        ctx.mark_active()
        return read_only

    def revert(self, ctx: FaultContext, target: str, params: NoParams, injected: ReadOnly | None) -> None:
        if injected is None or not injected.on:
            return
        with _connect(injected.dsn, autocommit=True) as conn:
            for statement in _READ_WRITE:
                conn.execute(statement)
        injected.on = False
        if injected.ledger_entry is not None and ctx.ledger is not None:
            ctx.ledger.forget(injected.ledger_entry)
            injected.ledger_entry = None


class DbConnectionExhaustionParams(FaultParams):
    leave_free: int = Field(
        0, ge=0, le=10000, description="connections left free for others (0: take every one)"
    )


@dataclass
class ConnectionsHeld:
    """The connections a greedy client holds, and the thread taking any slot given back."""

    connections: list[Any] = field(default_factory=list)
    background: Background | None = None


class DbConnectionExhaustion(FaultKind[DbConnectionExhaustionParams, ConnectionsHeld]):
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
    requires = frozenset({"database_sql"})

    #: How often the greedy client looks for connections someone else gave back.
    regrab_s: ClassVar[float] = 0.1
    #: How long no slot may come free before the fault counts as injected.
    settle_s: ClassVar[float] = 0.25
    #: How long inject waits at most for slots to stop coming free.
    settle_limit_s: ClassVar[float] = 5.0

    def inject(self, ctx: FaultContext, target: str, params: DbConnectionExhaustionParams) -> ConnectionsHeld:
        held = ctx.keep(ConnectionsHeld())
        self._grab(ctx, target, params.leave_free, held.connections)
        ctx.mark_active()
        limit = time.monotonic() + self.settle_limit_s
        while time.monotonic() < limit:
            time.sleep(self.settle_s)
            try:
                if not self._grab(ctx, target, params.leave_free, held.connections):
                    break
            except FaultError:
                break  # the background grabber below keeps trying

        def keep_grabbing(stop: threading.Event) -> None:
            while not stop.wait(self.regrab_s):
                with contextlib.suppress(FaultError):  # the server is busy or down: next round
                    self._grab(ctx, target, params.leave_free, held.connections, stop)

        held.background = start_background("faultlab-conn-grabber", keep_grabbing)
        return held

    @staticmethod
    def _grab(ctx: FaultContext, target: str, leave_free: int, held: list[Any],
              stop: threading.Event | None = None) -> int:
        """Open connections as the stack's own user until the server refuses one for want of
        a slot (or, with ``leave_free``, until only that many are left); how many it opened.
        Raises :class:`FaultError` when the server refuses for another reason."""
        import psycopg

        database = ctx.stack.database(target)
        wanted = _MAX_CONNECTIONS if leave_free == 0 else _free_slots(database.dsn()) - leave_free
        dsn = database.dsn(user=database.user)
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

    def revert(self, ctx: FaultContext, target: str, params: DbConnectionExhaustionParams,
               injected: ConnectionsHeld | None) -> None:
        if injected is None:
            return
        stop_background(injected.background)
        injected.background = None
        while injected.connections:
            with contextlib.suppress(Exception):
                injected.connections.pop().close()


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
