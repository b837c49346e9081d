"""Detection from real monitoring: a run's Prometheus and Alertmanager, and the drill seen by them.

A stack with a ``monitoring:`` section (:class:`faultlab.model.stack.Monitoring`) runs real
Prometheus and Alertmanager beside it for the length of a run (:mod:`.prometheus`), from the
configuration files :mod:`.config` writes. Alertmanager sends every alert to faultlab's
receiver (:mod:`.receiver`), which journals each one firing and resolving; the same server
serves the drill's own metrics (the faults in effect, the phase, the canary's success),
which that Prometheus scrapes, so a dashboard of the monitoring under test shows the drill.
Scenario conditions written in PromQL are evaluated against that Prometheus
(:class:`.prometheus.PromqlProbe`).

Imported by the engine when a run needs it, never by the model, the loader or analysis.
"""

from faultlab.monitoring.prometheus import (
    PACKAGES,
    Binaries,
    PromqlCondition,
    PromqlProbe,
    RunMonitoring,
    bring_up,
    find_binaries,
    query_value,
    tool_versions,
)
from faultlab.monitoring.receiver import DrillMetrics, Receiver

__all__ = [
    "PACKAGES",
    "Binaries",
    "find_binaries",
    "tool_versions",
    "bring_up",
    "RunMonitoring",
    "query_value",
    "PromqlCondition",
    "PromqlProbe",
    "Receiver",
    "DrillMetrics",
]
