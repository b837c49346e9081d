"""Pre-registration records a scenario's title as written, in both languages (a localised
title is no plain string, and the registration is JSON)."""

from __future__ import annotations

import json
from pathlib import Path

from faultlab.evidence.inputs import preregister_plan, preregister_run
from faultlab.journal.chain import REGISTRATION_FILE
from faultlab.loader import load_plan, load_scenario

ROOT = Path(__file__).resolve().parents[2]


def test_a_localised_title_is_registered_with_both_languages(tmp_path: Path) -> None:
    scenario = load_scenario(ROOT / "scenarios" / "ft-01-db-freeze.yaml")
    path = preregister_run(tmp_path / "run", scenario, "FT-01-test")
    title = json.loads(path.read_text())["scenario"]["title"]
    assert title["en"] == "Order database freezes in market hours" and title["ja"]
    plan = load_plan(ROOT / "drills" / "smoke.yaml")
    preregister_plan(tmp_path / "plan", plan, kind="plan", id="smoke-test")
    record = json.loads((tmp_path / "plan" / REGISTRATION_FILE).read_text())
    assert record["scenarios"]["FT-01"]["title"]["ja"]
