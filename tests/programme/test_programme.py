"""The drill programme without a stack: invalid runbooks and rules refused before anything starts,
the desk's four-eyes rules, decision rules with their trigger values, the runbook runner with
scripted people, and the analysis of what they did (deviations) - on real journals."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest
from programme_helpers import HERE, programme, records

from faultlab.analysis.programme import programme as analyse_programme
from faultlab.journal import read_run
from faultlab.model.operators import OperatorScript
from faultlab.model.runbook import DecisionRule, RunbookStart
from faultlab.programme.conditions import Condition, Reading, Readings
from faultlab.programme.desk import DeskRefusal
from faultlab.programme.operators import ScriptedOperator
from faultlab.programme.run import Crew
from faultlab.registry import conditions

ROOT = Path(__file__).resolve().parents[2]


def faultlab(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "faultlab", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env={**os.environ}, stdin=subprocess.DEVNULL)


# --- invalid input: file:line, exit 2, before anything starts -------------------------------------

BAD_RUNBOOK = """\
id: RB-BAD
version: "1"
title: {en: A runbook with mistakes}
steps:
  - {id: one, kind: action, title: {en: x}, action: restart_servce, with: {service: gateway}, expect: 2s}
  - {id: two, kind: action, title: {en: x}, action: restart_service, with: {service: nowhere}, expect: 2s}
  - {id: three, kind: check, title: {en: x}, check: {database_up: gateway}, expect: 2s}
  - {id: one, kind: manual, title: {en: x}, expect: 2}
  - {id: five, kind: notify, title: {en: x}, expect: 2s}
  - {id: six, kind: chek, title: {en: x}, expect: 2s}
"""

BAD_SCENARIO = """\
id: FT-BAD
title: Bad programme
stack: {stack}
canary: {{rate: 5/s}}
steady_state: {{success_rate: {{min: 0.9}}}}
timeline:
  - {{at: 2s, fault: process_kill, target: gateway}}
duration: 20s
runbook:
  file: bad-runbook.yaml
  start: {{on: decision, decision: no-such-rule}}
decisions:
  - id: halt
    rule: intake failing
    when: {{alert: order_intake_failing, extra: 1}}
    then: [{{action: halt_order_intak}}]
  - id: halt
    rule: again
    when: {{job_finished: nightly}}
    for: soon
targets: {{decide_within: 2s, runbook_within: 10s}}
"""


def test_invalid_runbooks_and_rules_are_reported_with_file_line_and_exit_2_before_anything_starts(tmp_path):
    (tmp_path / "bad-runbook.yaml").write_text(BAD_RUNBOOK)
    scenario = tmp_path / "bad.yaml"
    scenario.write_text(BAD_SCENARIO.format(stack=ROOT / "stacks" / "trading.yaml"))
    done = faultlab("run", str(scenario), "--reports", str(tmp_path / "reports"))
    assert done.returncode == 2, done.stdout + done.stderr
    err = done.stderr
    expected = [
        "bad-runbook.yaml:5:", "unknown action 'restart_servce'; did you mean 'restart_service'?",
        "bad-runbook.yaml:6:", "unknown service 'nowhere'",
        "bad-runbook.yaml:7:", "condition database_up takes a postgres service; 'gateway' is a service",
        "bad-runbook.yaml:8:", "step id 'one' is used twice",
        "2 has no unit",
        "bad-runbook.yaml:9:", "required key 'to' is missing",
        "bad-runbook.yaml:10:", "a step needs `kind:` action, manual, check or notify",
        "bad.yaml:11:", "unknown decision rule 'no-such-rule'",
        "bad.yaml:15:", "decisions[0].when: has 2 entries; at most 1",
        "bad.yaml:16:", "unknown action 'halt_order_intak'; did you mean 'halt_order_intake'?",
        "bad.yaml:17:", "decision rule id 'halt' is used twice",
        "bad.yaml:19:", "unknown job 'nightly'",
        "bad.yaml:20:", "'soon' is not a duration",
    ]
    for text in expected:
        assert text in err, f"{text!r} not in:\n{err}"
    assert "Traceback" not in err
    assert not (tmp_path / "reports").exists(), "nothing may start on invalid input"


def test_an_operator_script_that_names_unknown_steps_or_people_is_refused_before_the_start(tmp_path):
    script = tmp_path / "ops.yaml"
    script.write_text(textwrap.dedent("""\
        participants: [{name: Aiko Tanaka, role: incident commander}]
        steps:
          declare: {done: {by: Aiko Tanaka, after: 1s}}
          reconcil: {done: {by: Aiko Tanaka}}
          start-db: {confirm: {by: Nobody Known}}
        """))
    done = faultlab("run", str(ROOT / "scenarios" / "ft-25-combined-recovery.yaml"), "--operator-script", str(script),
                    "--reports", str(tmp_path / "reports"))
    assert done.returncode == 2
    assert "ops.yaml:5:" in done.stderr and "unknown participant 'Nobody Known'" in done.stderr
    assert not (tmp_path / "reports").exists()
    fixed = script.read_text().replace("Nobody Known", "Aiko Tanaka")
    script.write_text(fixed)
    done = faultlab("run", str(ROOT / "scenarios" / "ft-25-combined-recovery.yaml"), "--operator-script", str(script),
                    "--reports", str(tmp_path / "reports"))
    assert done.returncode == 2
    assert "ops.yaml:4:" in done.stderr and "unknown runbook step 'reconcil'; did you mean 'reconcile'?" in done.stderr


@pytest.mark.parametrize("participants", ["[{name: {en: Aiko Tanaka, ja: 田中 愛子}, role: lead}]",
                                          "{name: Aiko Tanaka}", "Aiko Tanaka"])
def test_malformed_participants_are_problems_not_a_crash(tmp_path, participants):
    # Found by the loader fuzz test: a plan's localised participant name ({en, ja}) in an
    # operator script raised TypeError (unhashable dict) instead of a problem with its line.
    from faultlab.loader.runbook import load_operator_script_file

    script = tmp_path / "ops.yaml"
    script.write_text(f"participants: {participants}\nsteps:\n  declare: {{done: {{by: Aiko Tanaka}}}}\n",
                      encoding="utf-8")
    loaded, _, problems = load_operator_script_file(script)
    assert loaded is None and problems
    assert all(problem.line in (1, 3) for problem in problems)


def test_a_runbook_that_needs_people_is_refused_without_anyone_to_answer(tmp_path):
    done = faultlab("run", str(ROOT / "scenarios" / "ft-25-combined-recovery.yaml"),
                    "--reports", str(tmp_path / "reports"))
    assert done.returncode == 2 and "FT-25 need people" in done.stderr and "--operator-script" in done.stderr
    assert not (tmp_path / "reports").exists()


def test_every_committed_runbook_and_operator_script_validates():
    done = faultlab("validate", "runbooks", "drills/operators", "drills/recovery-rehearsal.yaml", cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "runbook RB-25 version 1.0, 11 steps" in done.stdout


# --- the desk ---------------------------------------------------------------------------------------


def test_the_desk_enforces_four_eyes_and_journals_who_and_when(tmp_path):
    made, writer = programme(tmp_path, HERE / "console-runbook.yaml", crew=Crew())
    desk = made.desk
    desk.ready("assess")
    with pytest.raises(DeskRefusal, match="not done yet"):
        desk.confirm("assess", "Ben Carter")
    desk.start("assess", "Aiko Tanaka")
    with pytest.raises(DeskRefusal, match="started already by Aiko Tanaka"):
        desk.start("assess", "Ben Carter")
    desk.done("assess", "Aiko Tanaka")
    assert not desk.steps["assess"].counted_done
    with pytest.raises(DeskRefusal, match="must be someone else"):
        desk.confirm("assess", "Aiko Tanaka")
    with pytest.raises(DeskRefusal, match="must be a person"):
        desk.confirm("assess", "faultlab")
    with pytest.raises(DeskRefusal, match="a name is needed"):
        desk.confirm("assess", "  ")
    desk.confirm("assess", "Ben Carter")
    assert desk.steps["assess"].counted_done
    with pytest.raises(DeskRefusal, match="needs no second person"):
        desk.confirm("escalate", "Ben Carter")
    writer.close()
    events = [(r.step, r.event, r.by) for r in records(tmp_path, "step")]
    assert events == [
        ("assess", "ready", ""), ("assess", "refused", "Ben Carter"), ("assess", "started", "Aiko Tanaka"),
        ("assess", "refused", "Ben Carter"), ("assess", "done", "Aiko Tanaka"), ("assess", "refused", "Aiko Tanaka"),
        ("assess", "refused", "faultlab"), ("assess", "confirmed", "Ben Carter"), ("escalate", "refused", "Ben Carter"),
    ]


# --- decision rules ---------------------------------------------------------------------------------


class Flag(Condition):
    """A condition a test sets by hand: ``{test_flag: NAME}``."""

    name: ClassVar[str] = "test_flag"
    summary: ClassVar[str] = "a flag the test sets"
    Params = str
    flags: ClassVar[dict[str, Any]] = {}

    def evaluate(self, readings: Readings, params: str) -> Reading:
        value = self.flags.get(params)
        return Reading(bool(value), {"flag": params, "value": value})


@pytest.fixture
def flag():
    conditions.register("test_flag", Flag)
    Flag.flags.clear()
    return Flag.flags


def _rule(**fields: Any) -> DecisionRule:
    return DecisionRule.model_validate({"id": "protect", "rule": "flag up for 0.3 s -> act",
                                        "when": {"test_flag": "up"}, "for": "300ms", **fields})


def test_a_decision_rule_is_journalled_with_its_rule_trigger_values_and_time(tmp_path, flag):
    made, writer = programme(tmp_path, None, crew=Crew(), rules=[_rule()])
    made.start(0.0)
    try:
        time.sleep(0.5)
        flag["up"] = 0.42  # begins to hold now
        raised = writer.t()
        assert made.desk.wait_for(lambda: made.desk.decisions["protect"].status == "decided", 5.0)
    finally:
        made.stop()
        writer.close()
    decisions = [r for r in read_run(tmp_path).records if r.type == "decision"]
    triggered, decided = decisions
    assert (triggered.event, decided.event, decided.by) == ("triggered", "decided", "rule")
    assert triggered.why == "flag up for 0.3 s -> act"
    assert triggered.values["flag"] == "up" and triggered.values["value"] == 0.42
    assert triggered.since_t is not None and abs(triggered.since_t - raised) < 0.5
    assert triggered.t - triggered.since_t >= 0.3  # held for its `for`
    result = analyse_programme(read_run(tmp_path), [], 0.1, None)
    assert result is not None and result.decisions[0].time_to_decision.value is not None


def test_a_decision_awaiting_a_person_lapses_without_one_and_is_taken_with_one(tmp_path, flag):
    rule = _rule(confirm={"role": "incident commander", "within": "600ms"})
    made, writer = programme(tmp_path / "lapsed", None, crew=Crew(), rules=[rule])
    made.start(0.0)
    flag["up"] = True
    try:
        assert made.desk.wait_for(lambda: made.desk.decisions["protect"].status == "lapsed", 5.0)
    finally:
        made.stop()
        writer.close()
    script = OperatorScript.model_validate({"participants": [{"name": "Aiko Tanaka", "role": "incident commander"}],
                                            "decisions": {"protect": {"confirm": {"by": "Aiko Tanaka",
                                                                                  "after": "100ms"}}}})
    made, writer = programme(tmp_path / "taken", None, crew=Crew(operators=[ScriptedOperator(script)]), rules=[rule])
    made.start(0.0)
    try:
        assert made.desk.wait_for(lambda: made.desk.decisions["protect"].status == "decided", 5.0)
    finally:
        made.stop()
        writer.close()
    taken = [r for r in read_run(tmp_path / "taken").records if r.type == "decision"]
    assert [(r.event, r.by) for r in taken] == [("triggered", ""), ("decided", "Aiko Tanaka")]
    assert taken[1].t - taken[0].t >= 0.1


def test_a_decision_is_confirmed_only_by_someone_with_the_role_its_rule_names(tmp_path, flag):
    rule = _rule(confirm={"role": "incident commander", "within": "5s"})
    people = [{"name": "Aiko Tanaka", "role": "Incident Commander"}, {"name": "Ben Carter", "role": "DBA"}]
    made, writer = programme(tmp_path, None, crew=Crew(participants=people), rules=[rule])
    made.start(0.0)
    flag["up"] = True
    try:
        assert made.desk.wait_for(lambda: made.desk.decisions["protect"].status == "awaiting", 5.0)
        with pytest.raises(DeskRefusal, match="confirmed by the incident commander; Ben Carter is the DBA"):
            made.desk.confirm_decision("protect", "Ben Carter")
        with pytest.raises(DeskRefusal, match="Chie Mori is not among the drill's people"):
            made.desk.confirm_decision("protect", "Chie Mori")
        made.desk.confirm_decision("protect", "Aiko Tanaka")  # roles compare without case
        assert made.desk.wait_for(lambda: made.desk.decisions["protect"].status == "decided", 5.0)
    finally:
        made.stop()
        writer.close()


# --- the runbook runner and the analysis of what people did ----------------------------------------------


def test_the_runner_abandons_a_runbook_whose_four_eyes_step_nobody_confirms(tmp_path):
    script = OperatorScript.model_validate({
        "participants": [{"name": "Aiko Tanaka", "role": "incident commander"}, {"name": "Ben Carter", "role": "DBA"}],
        "steps": {"assess": {"start": {"by": "Aiko Tanaka"}, "done": {"by": "Aiko Tanaka", "after": "100ms"}}},
    })
    runbook = tmp_path / "rb.yaml"
    runbook.write_text((HERE / "console-runbook.yaml").read_text().replace("expect: 30s", "expect: 200ms", 1))
    made, writer = programme(tmp_path / "run", runbook, crew=Crew(operators=[ScriptedOperator(script)]))
    made.start(0.0)
    try:
        assert made.desk.wait_for(lambda: made.desk.runbook_status == "abandoned", 10.0)
    finally:
        made.stop()
        writer.close()
    result = analyse_programme(read_run(tmp_path / "run"), [], 0.1, None)
    assert result is not None and result.runbook is not None
    assert result.runbook.status == "abandoned" and "no second person" in result.runbook.reason
    steps = {s.id: s for s in result.runbook.steps}
    assert steps["assess"].status == "unconfirmed" and "missing_second_person" in steps["assess"].deviations
    assert steps["escalate"].status == "not_done" and "not_done" in steps["escalate"].deviations


def test_steps_done_out_of_sequence_over_time_or_skipped_are_deviations(tmp_path):
    made, writer = programme(tmp_path, HERE / "console-runbook.yaml", crew=Crew(), start=RunbookStart(at="1h"))
    desk = made.desk
    desk.start("escalate", "Ben Carter")  # before the step before it was done
    desk.done("escalate", "Ben Carter")
    desk.skip("run-fix", "Aiko Tanaka", "the fix was not needed")
    time.sleep(0.05)
    desk.ready("assess")
    desk.start("assess", "Aiko Tanaka")
    desk.done("assess", "Aiko Tanaka")
    desk.confirm("assess", "Ben Carter")
    writer.close()
    result = analyse_programme(read_run(tmp_path), [], 0.1, None)
    assert result is not None and result.runbook is not None
    steps = {s.id: s for s in result.runbook.steps}
    assert "out_of_sequence" in steps["escalate"].deviations
    assert steps["run-fix"].status == "skipped" and "skipped" in steps["run-fix"].deviations
    assert steps["assess"].deviations == [] and steps["assess"].confirmed_by == "Ben Carter"
    assert result.runbook.status == "not_started"
    people = {p.name: p for p in result.participants}
    assert people["Ben Carter"].did == ["escalate"] and people["Ben Carter"].confirmed == ["assess"]
