"""The drill plugin: what a system under drill tells faultlab about itself.

A stack file names a module (``plugin: package.module``) whose ``faultlab_*`` functions are
the hooks of :mod:`faultlab.plugin.hookspecs`: the canary request, the integrity check, the
completion delays, the load generator, job progress, and ``faultlab_declare`` returning the
system's :class:`Declaration` (its words, its integrity checks with their labels in English
and Japanese, its readiness JSON keys). The module is checked before anything starts.
"""

from faultlab.plugin.declaration import (
    ABSENT,
    CHECK_NAME,
    Completion,
    Declaration,
    IntegrityCheck,
    MonitorContract,
    Outcome,
    Text,
)
from faultlab.plugin.hookspecs import hookimpl
from faultlab.plugin.manager import HOOKS, DrillPlugin, PluginProblem, load_plugin
from faultlab.plugin.results import CanaryOutcome, IntegrityReport, Violation, canary_outcome, integrity_report

__all__ = [
    "ABSENT",
    "CHECK_NAME",
    "HOOKS",
    "CanaryOutcome",
    "Completion",
    "Declaration",
    "DrillPlugin",
    "IntegrityCheck",
    "IntegrityReport",
    "MonitorContract",
    "Outcome",
    "PluginProblem",
    "Text",
    "Violation",
    "canary_outcome",
    "hookimpl",
    "integrity_report",
    "load_plugin",
]
