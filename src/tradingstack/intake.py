"""Order intake halted or open: the gateway's switch, kept in the database.

A halt is a decision (a person's, or a drill rule's): ``POST /admin/intake`` on the gateway
(127.0.0.1 only) with ``{"state": "halted", "reason": "...", "reopen_when": "batch_finished"}``
or ``{"state": "open"}``. While halted, ``POST /orders`` answers 503 ``intake_halted`` without
touching the database; reads and cancels still work. The state is written to
``intake_control`` so a restarted gateway keeps it, and re-read every monitor interval. With
``reopen_when: batch_finished`` (the market open delayed until the nightly batch is done) the
gateway opens intake itself once the newest batch run finished. Halting works even when the
database cannot be written (the gateway halts at once and says the halt was not persisted);
opening needs the database, so a gateway that restarts never reopens by mistake.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import asyncpg

__all__ = ["IntakeState", "IntakeControl", "READ_SQL"]

READ_SQL = "SELECT halted, reason, reopen_when, extract(epoch FROM changed_at)::float8 AS changed FROM intake_control"
_WRITE_SQL = ("UPDATE intake_control SET halted = $1, reason = $2, reopen_when = $3, changed_at = clock_timestamp() "
              "RETURNING extract(epoch FROM changed_at)::float8")
_BATCH_FINISHED_SQL = "SELECT status = 'finished' FROM batch_runs ORDER BY id DESC LIMIT 1"


@dataclass(frozen=True)
class IntakeState:
    """Whether intake is halted, why, what reopens it, and since when (wall seconds)."""

    halted: bool = False
    reason: str | None = None
    reopen_when: str | None = None
    since: float | None = None
    persisted: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"state": "halted" if self.halted else "open", "reason": self.reason,
                "reopen_when": self.reopen_when, "since": self.since, "persisted": self.persisted}


class IntakeControl:
    """The gateway's intake switch (see the module docstring)."""

    def __init__(self, database_url: str):
        self.database_url = database_url
        self.state = IntakeState()

    @property
    def halted(self) -> bool:
        return self.state.halted

    async def _connect(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.database_url, timeout=2.0,
                                     server_settings={"application_name": "gateway-intake"})

    async def set(self, halted: bool, reason: str | None, reopen_when: str | None) -> IntakeState:
        """Halt or open intake and persist it; a halt that cannot be written still halts."""
        if halted:
            self.state = IntakeState(True, reason, reopen_when, time.time(), persisted=False)
        try:
            conn = await self._connect()
            try:
                changed = await conn.fetchval(_WRITE_SQL, halted, reason, reopen_when, timeout=2.0)
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresError, TimeoutError):
            if halted:
                return self.state
            raise
        self.state = IntakeState(halted, reason, reopen_when, changed)
        return self.state

    async def refresh(self, conn: asyncpg.Connection) -> None:
        """Re-read the switch (monitor loop); reopen a delayed open once the batch finished."""
        row = await conn.fetchrow(READ_SQL)
        if row is None:
            return
        if not self.state.persisted and self.state.halted and not row["halted"]:
            await conn.execute(_WRITE_SQL, True, self.state.reason, self.state.reopen_when)
            return
        if row["halted"] and row["reopen_when"] == "batch_finished" and await conn.fetchval(_BATCH_FINISHED_SQL):
            changed = await conn.fetchval(_WRITE_SQL, False, "batch finished: delayed open", None)
            self.state = IntakeState(False, "batch finished: delayed open", None, changed)
            return
        self.state = IntakeState(row["halted"], row["reason"], row["reopen_when"], row["changed"])
