"""Job faults on a stack's one-shot jobs (a nightly run, say)."""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from faultlab.faults.base import FaultKind, FaultParams
from faultlab.faults.process import Signal
from faultlab.model.types import Percentage

if TYPE_CHECKING:
    from faultlab.engine.context import FaultContext

__all__ = ["JobCrash"]


class JobCrashParams(FaultParams):
    at_progress: Percentage | None = Field(
        None,
        description="crash once the job reports this progress (like 50%); default: at `at`",
    )
    signal: Signal = Field("SIGKILL", description="signal sent to the job's process")
    rerun: bool = Field(True, description="start the job again after the crash")


class JobCrash(FaultKind[JobCrashParams, None]):
    """Crash a running job mid-run (and rerun it, to check it resumes from its checkpoint)."""

    name: ClassVar[str] = "job_crash"
    summary: ClassVar[str] = "crash a running job (at a time or a progress), then rerun it"
    Params = JobCrashParams
    target_types = frozenset({"job"})
    needs_for = False

    def inject(self, ctx: FaultContext, target: str, params: JobCrashParams) -> None:
        jobs = ctx.require_jobs()
        jobs.crash(target, sig=signal.Signals[params.signal], at_progress=params.at_progress,
                   mark_active=ctx.mark_active)
        if params.rerun:
            jobs.start(target)

    def revert(self, ctx: FaultContext, target: str, params: JobCrashParams, injected: None) -> None:
        """Nothing to undo: the rerun (``rerun: true``) resumes the job from its checkpoint."""
