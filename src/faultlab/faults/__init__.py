"""Fault kinds, one module per family: link, database, process, network, load, job.

The built-in kinds are registered through the ``faultlab.faults`` entry points in
pyproject.toml, exactly as a plugin's would be; look them up with
``faultlab.registry.fault_kinds``. Importing this package loads no family module.
"""

from faultlab.faults.base import TARGET_TYPES, FaultKind, FaultParams, NoParams

__all__ = ["FaultKind", "FaultParams", "NoParams", "TARGET_TYPES"]
