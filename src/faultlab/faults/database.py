"""Database faults on a built-in PostgreSQL service."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from faultlab.faults.base import FaultKind, FaultParams, NoParams

__all__ = ["DbStall", "DbRestart", "DbReadOnly", "DbConnectionExhaustion"]

_POSTGRES = frozenset({"postgres"})


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
    def _tables_only_for_lock(self) -> "DbStallParams":
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


class DbRestartParams(FaultParams):
    mode: Literal["fast", "immediate"] = Field(
        "fast",
        description="fast: clean shutdown then start; immediate: crash-like stop then start (recovery)",
    )


class DbRestart(FaultKind):
    """Restart the database server."""

    name: ClassVar[str] = "db_restart"
    summary: ClassVar[str] = "restart the database server (fast or immediate shutdown)"
    Params = DbRestartParams
    target_types = _POSTGRES
    needs_for = False


class DbReadOnly(FaultKind):
    """Make the database refuse writes (``default_transaction_read_only``), like a full disk."""

    name: ClassVar[str] = "db_read_only"
    summary: ClassVar[str] = "make the database read-only (writes refused, reads served)"
    Params = NoParams
    target_types = _POSTGRES


class DbConnectionExhaustionParams(FaultParams):
    leave_free: int = Field(
        0, ge=0, le=10000, description="connections left free for others (0: take every one)"
    )


class DbConnectionExhaustion(FaultKind):
    """Take the database's free connections with another client."""

    name: ClassVar[str] = "db_connection_exhaustion"
    summary: ClassVar[str] = "take every free database connection (or all but leave_free)"
    Params = DbConnectionExhaustionParams
    target_types = _POSTGRES
