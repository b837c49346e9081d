"""What only the loader can tell about a scenario's timing: a hold that cannot fit after the faults."""

from __future__ import annotations

from pathlib import Path

import pytest
from foundation_paths import ROOT

from faultlab.errors import InputError
from faultlab.loader import load_scenario

SCENARIO = """\
id: FT-90
title: t
stack: {stack}
steady_state: {{success_rate: {{min: 0.99}}}}
timeline:
  - {{at: 5s, fault: partition, target: gateway-db, for: 10s}}
  - {{at: 20s, fault: {last}}}
duration: 60s
{hold}"""


def scenario(tmp_path: Path, last: str, hold: str = "") -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(SCENARIO.format(stack=ROOT / "stacks" / "trading.yaml", last=last, hold=hold))
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(InputError) as info:
        load_scenario(path)
    return [f"{p.line}: {p.path}: {p.message}" for p in info.value.problems]


def test_written_hold_longer_than_the_rest_of_the_run(tmp_path: Path) -> None:
    path = scenario(tmp_path, "stall, target: router-db, for: 25s", "hold: 20s\n")
    assert problems(path) == [
        "9: hold: recovery must stay healthy for 20s, but the last fault clears at 45s (timeline[1]), "
        "15s before the end of the run (60s): recovery could never be shown; the longest hold here is 15s "
        "(or clear the faults earlier, or run longer)"
    ]


def test_default_hold_longer_than_the_rest_of_the_run(tmp_path: Path) -> None:
    path = scenario(tmp_path, "stall, target: router-db, for: 38s")
    assert problems(path) == [
        "7: timeline[1].for: clears at 58s, 2s before the end of the run (60s), and recovery must stay "
        "healthy for 5s (`hold`, 5s unless written): recovery could never be shown; the longest hold "
        "here is 2s (or clear the faults earlier, or run longer)"
    ]


def test_fault_clearing_at_the_very_end(tmp_path: Path) -> None:
    path = scenario(tmp_path, "stall, target: router-db, for: 40s", "hold: 1s\n")
    assert problems(path) == [
        "9: hold: recovery must stay healthy for 1s, but the last fault clears at 60s (timeline[1]), "
        "0s before the end of the run (60s): recovery could never be shown; no hold fits "
        "(clear the faults earlier, or run longer)"
    ]


def test_instantaneous_fault_clears_when_it_happens(tmp_path: Path) -> None:
    path = scenario(tmp_path, "process_kill, target: gateway", "hold: 41s\n")
    assert problems(path)[0].startswith("9: hold: recovery must stay healthy for 41s, but the last fault clears at 20s")


@pytest.mark.parametrize("hold", ["hold: 15s\n", "hold: 100ms\n", ""])
def test_a_hold_that_fits(tmp_path: Path, hold: str) -> None:
    load_scenario(scenario(tmp_path, "stall, target: router-db, for: 25s", hold))
