"""Approvals pinned to the hashes of everything a plan runs: `faultlab approve` signs them;
`faultlab drill` refuses to start (exit 2, naming the file) when one is missing, expired, made
by the requester or made for other bytes, and starts when they match."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from faultlab.errors import InputError
from faultlab.loader import load_plan
from faultlab.programme.approvals import approval_folder, pinned, verify_approvals

ROOT = Path(__file__).resolve().parents[2]
DRILL = ROOT / "tests" / "drill"
ROLES = {"drill lead": ("Aiko Tanaka", "lead"), "independent reviewer": ("Chie Mori", "reviewer"),
         "management": ("Eri Kondo", "board")}

PLAN = """title: Approved truth drill
environment: the test's temporary folder
scenarios: [scenarios/truth-pause.yaml]
requested_by: Ben Carter
require_approvals:
  - {role: drill lead}
  - {role: independent reviewer, key: keys/reviewer.pub}
  - {role: management, valid_for: 1h}
participants:
  - {name: Ben Carter, role: requester}
languages: [en]
"""


CONFIG: dict[str, str] = {}
"""This module's own config folder: its approvers' keys must not become the session's signing keys."""


def faultlab(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "faultlab", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd, env={**os.environ, **CONFIG}, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    CONFIG["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("approvers") / "config")
    for _, key in [*ROLES.values(), ("", "intruder")]:
        done = faultlab("keys", "new", "--name", key)
        assert done.returncode == 0, done.stderr
    yield Path(CONFIG["XDG_CONFIG_HOME"]) / "faultlab" / "keys"
    CONFIG.clear()


@pytest.fixture
def drill(tmp_path, keys):
    (tmp_path / "scenarios").mkdir()
    (tmp_path / "stacks").mkdir()
    (tmp_path / "keys").mkdir()
    shutil.copy(DRILL / "scenarios" / "truth-pause.yaml", tmp_path / "scenarios")
    shutil.copy(DRILL / "stacks" / "truth.yaml", tmp_path / "stacks")
    shutil.copy(DRILL / "truth_plugin.py", tmp_path / "stacks")
    shutil.copy(keys / "reviewer.pub", tmp_path / "keys")
    plan = tmp_path / "approved.yaml"
    plan.write_text(PLAN)
    return plan


def approve_all(plan: Path) -> None:
    for role, (name, key) in ROLES.items():
        done = faultlab("approve", str(plan), "--as", name, "--role", role, "--key", key)
        assert done.returncode == 0, done.stdout + done.stderr


def test_a_plan_requiring_approval_refuses_to_start_without_them(drill, tmp_path):
    done = faultlab("drill", str(drill), "--reports", str(tmp_path / "reports"))
    assert done.returncode == 2, done.stdout + done.stderr
    for role in ROLES:
        assert f"the {role} approval is missing" in done.stderr
    assert not (tmp_path / "reports").exists()


def test_one_byte_changed_after_the_approval_refuses_the_start_naming_the_file(drill, tmp_path):
    approve_all(drill)
    verify_approvals(load_plan(drill))
    scenario = tmp_path / "scenarios" / "truth-pause.yaml"
    data = bytearray(scenario.read_bytes())
    data[data.index(b"3s")] = ord("4")  # one byte: the pause now starts at 4 s
    scenario.write_bytes(bytes(data))
    done = faultlab("drill", str(drill), "--reports", str(tmp_path / "reports"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "made for other bytes: scenarios/truth-pause.yaml changed since it was approved" in done.stderr
    assert not (tmp_path / "reports").exists()


@pytest.mark.processes
def test_the_plan_starts_when_the_approvals_match_and_the_report_lists_them(drill, tmp_path):
    approve_all(drill)
    done = faultlab("drill", str(drill), "--reports", str(tmp_path / "reports"), "--sign-with", "lead")
    assert done.returncode in (0, 1), done.stdout + done.stderr  # started and ran: a verdict, not a refusal
    runs = sorted((tmp_path / "reports").glob("approved/*/runs/*/journal.jsonl"))
    assert len(runs) == 1
    registration = json.loads(next((tmp_path / "reports").glob("approved/*/inputs/registration.json")).read_text())
    assert sum(1 for f in registration["inputs"] if f["role"] == "approval") == 3
    report = (runs[0].parent / "report.md").read_text()
    assert "Approvals verified before the start" in report
    for name, _ in ROLES.values():
        assert name in report


def test_the_requester_cannot_approve(drill):
    done = faultlab("approve", str(drill), "--as", "Ben Carter", "--role", "drill lead", "--key", "lead")
    assert done.returncode == 2 and "requested this drill and cannot approve it" in done.stderr


def test_an_approval_with_another_key_than_the_pinned_one_is_refused(drill):
    approve_all(drill)
    done = faultlab("approve", str(drill), "--as", "Chie Mori", "--role", "independent reviewer", "--key", "intruder")
    assert done.returncode == 0
    for path in approval_folder(load_plan(drill)).glob("independent-reviewer--*.json"):
        body = json.loads(path.read_text())
        assert body["key_id"]  # the intruder's approval replaced the reviewer's
    with pytest.raises(InputError, match="not the key the plan pins for this role"):
        verify_approvals(load_plan(drill))


def test_an_expired_or_altered_approval_is_refused(drill):
    approve_all(drill)
    plan = load_plan(drill)
    later = datetime.now(UTC) + timedelta(hours=2)
    with pytest.raises(InputError, match="the management approval is missing or invalid: the approval by Eri Kondo "
                                         "expired"):
        verify_approvals(plan, now=later)
    path = next(approval_folder(plan).glob("drill-lead--*.json"))
    body = json.loads(path.read_text())
    body["statement"]["name"] = "Someone Else"
    path.write_text(json.dumps(body))
    with pytest.raises(InputError, match="altered after signing"):
        verify_approvals(plan)


def test_the_pinned_hash_covers_plan_scenario_stack_and_runbook():
    plan = load_plan(ROOT / "drills" / "recovery-rehearsal.yaml")
    roles = sorted({f["role"] for f in pinned(plan).files})
    assert roles == ["plan", "runbook", "scenario", "stack"]
    paths = {f["path"] for f in pinned(plan).files}
    assert "../runbooks/rb-25-database-and-gateway-recovery.yaml" in paths
