"""The trading stack's own drill actions, registered like faultlab's built-in ones.

``pyproject.toml`` registers them in the ``faultlab.actions`` entry-point group, so a runbook
step or a decision rule names them (``action: halt_order_intake``) exactly as it names
``restart_service``:

- ``halt_order_intake {reason}``: the gateway refuses new orders (503 ``intake_halted``);
- ``resume_order_intake``: the gateway takes orders again;
- ``halt_batch``: the nightly batch stops at its next checkpoint (resumable later);
- ``delay_market_open``: intake stays halted until the nightly batch finished, then the
  gateway opens it itself.

The gateway's switch is its ``/admin/intake`` endpoint (:mod:`tradingstack.intake`); when the
gateway does not answer (it is restarting), the switch is written in the database, which the
gateway reads when it starts and every second.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field

from faultlab.errors import FaultError
from faultlab.model.types import Duration, as_written
from faultlab.programme.actions import Action, ActionContext, ActionParams, NoActionParams

__all__ = ["HaltOrderIntake", "ResumeOrderIntake", "HaltBatch", "DelayMarketOpen"]

_GATEWAY, _DATABASE = "gateway", "db"


def _switch(ctx: ActionContext, halted: bool, reason: str | None, reopen_when: str | None) -> dict[str, Any]:
    """Set the intake switch through the gateway, or in the database when it does not answer."""
    import httpx
    import psycopg

    body = {"state": "halted" if halted else "open", "reason": reason, "reopen_when": reopen_when}
    try:
        response = httpx.post(ctx.stack.url(_GATEWAY, "/admin/intake"), json=body, timeout=3.0)
    except httpx.HTTPError as exc:
        gateway_error = f"{type(exc).__name__}"
    else:
        if response.status_code in (200, 202):
            return {"via": "gateway", **response.json()}
        gateway_error = f"{response.status_code} {response.text[:200]}"
    try:
        with psycopg.connect(ctx.stack.dsn(_DATABASE), connect_timeout=3, autocommit=True) as conn:
            conn.execute("UPDATE intake_control SET halted = %s, reason = %s, reopen_when = %s, "
                         "changed_at = clock_timestamp()", (halted, reason, reopen_when))
    except psycopg.Error as exc:
        raise FaultError(f"order intake could not be {'halted' if halted else 'opened'}: the gateway "
                         f"({gateway_error}) and the database ({type(exc).__name__}) are unreachable") from exc
    return {"via": "database", "state": body["state"], "reason": reason, "gateway": gateway_error}


class IntakeParams(ActionParams):
    reason: str = Field("halted by decision", min_length=1, description="why, shown to customers and in logs")


class HaltOrderIntake(Action):
    """Halt order intake at the gateway (new orders refused, reads and cancels still served)."""

    name: ClassVar[str] = "halt_order_intake"
    summary: ClassVar[str] = "halt order intake at the gateway (new orders refused with 503)"
    Params = IntakeParams

    def perform(self, ctx: ActionContext, params: IntakeParams) -> Mapping[str, Any]:
        return _switch(ctx, True, params.reason, None)


class ResumeOrderIntake(Action):
    """Resume order intake at the gateway."""

    name: ClassVar[str] = "resume_order_intake"
    summary: ClassVar[str] = "resume order intake at the gateway"
    Params = NoActionParams

    def perform(self, ctx: ActionContext, params: NoActionParams) -> Mapping[str, Any]:
        return _switch(ctx, False, f"resumed by {ctx.by}", None)


class HaltBatchParams(ActionParams):
    grace: Duration = Field(default=as_written("30s"), description="how long the batch may take to reach a checkpoint")


class HaltBatch(Action):
    """Halt the nightly batch at its next checkpoint; its progress is kept and a rerun resumes."""

    name: ClassVar[str] = "halt_batch"
    summary: ClassVar[str] = "halt the nightly batch at its next checkpoint (resumable)"
    Params = HaltBatchParams

    def perform(self, ctx: ActionContext, params: HaltBatchParams) -> Mapping[str, Any]:
        stopped = dict(ctx.require_jobs().halt("batch", grace_s=params.grace))
        progress = ctx.plugin.job_progress(ctx.stack, "batch") if ctx.plugin is not None else None
        return {**stopped, "progress": None if progress is None else round(progress, 4)}


class DelayMarketOpen(Action):
    """Keep order intake halted until the nightly batch finished (the gateway then opens it)."""

    name: ClassVar[str] = "delay_market_open"
    summary: ClassVar[str] = "delay the market open: intake halted until the nightly batch finished"
    Params = NoActionParams

    def perform(self, ctx: ActionContext, params: NoActionParams) -> Mapping[str, Any]:
        return _switch(ctx, True, "market open delayed until the nightly batch finishes", "batch_finished")
