"""Pure analysis of a saved run: windows, MTTD, RTO, customer impact, integrity verdicts.

Nothing here touches the network, a UI, docker, matplotlib or jinja2: a saved journal in,
typed results out (``analyse(run) -> Analysis``). The journal is read by the one reader,
:func:`faultlab.journal.read_run`; ``analyse`` takes its :class:`~faultlab.journal.Run` or a
run directory.
"""

from faultlab.analysis.core import analyse
from faultlab.analysis.model import (
    Analysis,
    Baseline,
    CompletionDelay,
    CustomerImpact,
    Deviation,
    ErrorBudget,
    FaultDetection,
    FaultSpan,
    Finding,
    FiredAlert,
    ImpactCounts,
    IntegrityResult,
    JobResult,
    LatencyStats,
    Measure,
    MeasureStatus,
    MonitoringResult,
    PromqlResult,
    TimelineEvent,
    Verdict,
    Window,
)

__all__ = [
    "analyse",
    "Analysis",
    "Baseline",
    "JobResult",
    "CustomerImpact",
    "Deviation",
    "ErrorBudget",
    "CompletionDelay",
    "FaultSpan",
    "FaultDetection",
    "FiredAlert",
    "Finding",
    "ImpactCounts",
    "IntegrityResult",
    "LatencyStats",
    "Measure",
    "MeasureStatus",
    "MonitoringResult",
    "PromqlResult",
    "TimelineEvent",
    "Verdict",
    "Window",
]
