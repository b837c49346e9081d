"""Every failure test of the catalogue (shared/CATALOG.md, FT-01 ... FT-25) can be written down."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from foundation_paths import ROOT

from faultlab.loader import load_scenario

CATALOGUE = {
    "FT-01": [{"at": "10s", "fault": "db_stall", "target": "db", "for": "20s", "mode": "freeze"}],
    "FT-02": [
        {"at": "10s", "fault": "db_stall", "target": "db", "for": "30s", "mode": "lock",
         "tables": ["orders", "executions"]}
    ],
    "FT-03": [{"at": "10s", "fault": "db_restart", "target": "db", "mode": "fast"}],
    "FT-04": [{"at": "10s", "fault": "latency", "target": "gateway-db", "for": "60s", "latency": "200ms"}],
    "FT-05": [{"at": "10s", "fault": "db_connection_exhaustion", "target": "db", "for": "20s"}],
    "FT-06": [{"at": "10s", "fault": "db_read_only", "target": "db", "for": "20s"}],
    "FT-07": [{"at": "10s", "fault": "partition", "target": "gateway-db", "for": "30s"}],
    "FT-08": [{"at": "10s", "fault": "partition", "target": "router-exchange", "for": "30s"}],
    "FT-09": [{"at": "10s", "fault": "latency", "target": "router-exchange", "for": "60s", "latency": "2s"}],
    "FT-10": [
        {"at": f"{10 + 6 * i}s", "fault": "partition", "target": "router-exchange", "for": "3s"} for i in range(5)
    ],
    "FT-11": [{"at": "10s", "fault": "reset_peer", "target": "gateway-db", "for": "10s", "timeout": "0s"}],
    "FT-12": [{"at": "10s", "fault": "stall", "target": "gateway-db", "for": "20s"}],
    "FT-13": [{"at": "10s", "fault": "load_spike", "for": "30s", "multiplier": 10}],
    "FT-14": [{"at": "10s", "fault": "load_shape", "for": "20s", "shape": "stop_cascade"}],
    "FT-15": [
        {"at": "10s", "fault": "load_spike", "for": "30s", "multiplier": 10},
        {"at": "10s", "fault": "latency", "target": "gateway-db", "for": "30s", "latency": "200ms"},
    ],
    "FT-16": [{"at": "10s", "fault": "process_kill", "target": "gateway"}],
    "FT-17": [{"at": "10s", "fault": "process_pause", "target": "gateway", "for": "15s"}],
    "FT-18": [{"at": "10s", "fault": "process_kill", "target": "router"}],
    "FT-19": [{"at": "10s", "fault": "process_kill", "target": "exchange", "signal": "SIGKILL"}],
    "FT-20": [{"at": "3s", "job": "batch"}, {"at": "10s", "fault": "db_stall", "target": "db", "for": "20s"}],
    "FT-21": [
        {"at": "3s", "job": "batch"},
        {"at": "4s", "fault": "job_crash", "target": "batch", "at_progress": "50%"},
    ],
    "FT-22": [
        {"at": "3s", "job": "batch"},
        {"at": "5s", "fault": "latency", "target": "batch-db", "for": "60s", "latency": "500ms"},
    ],
    "FT-23": [{"at": "10s", "fault": "exchange_silent", "target": "exchange", "for": "30s"}],
    "FT-24": [
        {"at": "10s", "fault": "latency", "target": "gateway-db", "for": "40s", "latency": "1s", "jitter": "200ms"}
    ],
    "FT-25": [
        {"at": "10s", "fault": "db_restart", "target": "db", "mode": "immediate"},
        {"at": "10s", "fault": "process_kill", "target": "gateway"},
    ],
}


def test_catalogue_is_complete() -> None:
    assert sorted(CATALOGUE) == [f"FT-{n:02d}" for n in range(1, 26)]


@pytest.mark.parametrize("ft", sorted(CATALOGUE))
def test_failure_test_is_expressible(tmp_path: Path, ft: str) -> None:
    document = {
        "id": ft,
        "title": f"catalogue entry {ft}",
        "stack": str(ROOT / "stacks" / "trading.yaml"),
        "load": {"users": 10, "spawn_rate": 10},
        "steady_state": {"success_rate": {"min": 0.99}, "p99_latency": {"max": "250ms"}},
        "timeline": CATALOGUE[ft],
        "duration": "90s",
        "targets": {"lost_orders": 0, "duplicate_executions": 0},
    }
    path = tmp_path / f"{ft}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    scenario = load_scenario(path)
    assert len(scenario.timeline) == len(CATALOGUE[ft])
    for _, step in scenario.fault_steps():
        assert step.kind_params is not None and step.target
