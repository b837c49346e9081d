"""Job faults on a stack's one-shot jobs (a nightly run, say)."""

from __future__ import annotations

import signal
from typing import Any, ClassVar

from pydantic import Field

from faultlab.faults.base import FaultKind, FaultParams
from faultlab.faults.process import Signal
from faultlab.model.types import Percentage

__all__ = ["JobCrash"]


class JobCrashParams(FaultParams):
    at_progress: Percentage | None = Field(
        None,
        description="crash once the job reports this progress (like 50%); default: at `at`",
    )
    signal: Signal = Field("SIGKILL", description="signal sent to the job's process")
    rerun: bool = Field(True, description="start the job again after the crash")


class JobCrash(FaultKind):
    """Crash a running job mid-run (and rerun it, to check it resumes from its checkpoint)."""

    name: ClassVar[str] = "job_crash"
    summary: ClassVar[str] = "crash a running job (at a time or a progress), then rerun it"
    Params = JobCrashParams
    target_types = frozenset({"job"})
    needs_for = False

    def inject(self, ctx: Any, target: str, params: Any) -> None:
        ctx.jobs.crash(target, sig=signal.Signals[params.signal], at_progress=params.at_progress,
                       mark_active=ctx.mark_active)
        if params.rerun:
            ctx.jobs.start(target)

    def revert(self, ctx: Any, target: str, params: Any) -> None:
        """Nothing to undo: the rerun (``rerun: true``) resumes the job from its checkpoint."""
