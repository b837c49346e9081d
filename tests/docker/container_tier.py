"""Helpers of the container tier's tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def run_label(run_id: str) -> dict[str, str]:
    """The label filter of one run's containers, networks and volumes."""
    return {"label": f"faultlab.run={run_id}"}


def leftovers(client: Any, run_id: str) -> list[str]:
    """Names of the containers, networks and volumes of a run that still exist."""
    found = [f"container {c.name}" for c in client.containers.list(all=True, filters=run_label(run_id))]
    found += [f"network {n.name}" for n in client.networks.list(filters=run_label(run_id))]
    found += [f"volume {v.name}" for v in client.volumes.list(filters=run_label(run_id))]
    return found
