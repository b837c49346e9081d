"""The auditor's tests T1-T8 on a real drill's evidence: each must fail ``faultlab verify --trust``
with a message naming what is wrong, and the untouched package must verify.

One short real drill of the trading stack (a plan of one scenario, a gateway kill) is run
once, sealed with the drill lead's key; every case tampers with a copy of its folder.

- T1: a byte of a raw file changed (manifest untouched);
- T2: a figure of result.json changed and its hash written into the manifest, without the
  manifest's self-hash;
- T3: a file removed, a file added;
- T4: the run resealed with another key (a forger's own);
- T5: a figure changed in report.md, its SHA-256 rewritten in manifest.json, the manifest's
  self-hash recomputed; T5b: the plan's manifest resealed the same way;
- T6: a pre-registered target changed (registration and scenario copy), hashes rewritten;
- T7: a target changed in journal.jsonl, then ``faultlab report``;
- T8: the "fault took effect" time moved +10 s, then ``faultlab report``; and again with the
  whole chain recomputed and the package resealed by ``faultlab report``;
- journal lines deleted, added, reordered.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from tamper import edit_record, faultlab, journal_lines, rechain, reseal_manifest, write_journal

pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "tests" / "drill" / "scenarios" / "trading-short.yaml"


@pytest.fixture(scope="module")
def drill(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One sealed drill: its plan folder, its run folder, the lead's public key, the env."""
    home = tmp_path_factory.mktemp("drill")
    env = dict(os.environ, XDG_CONFIG_HOME=str(home / "config"), FAULTLAB_REGISTER=str(home / "register.jsonl"))
    env.pop("PYTHONPATH", None)
    made = faultlab("keys", "new", "--name", "lead", env=env)
    assert made.returncode == 0, made.stderr
    plan = home / "plan.yaml"
    plan.write_text(f"title: Evidence drill\nenvironment: local\nscenarios: [{SCENARIO}]\ntrials: 1\n"
                    "participants:\n  - {name: Lead, role: drill lead}\n", encoding="utf-8")
    ran = faultlab("drill", plan, "--reports", home / "reports", "--state-dir", home / "state",
                   "--sign-with", "lead", env=env, timeout=300)
    assert ran.returncode in (0, 1), ran.stdout + ran.stderr
    assert "evidence anchor (paste into the change ticket): faultlab evidence plan" in ran.stdout, ran.stdout
    assert "sealed and signed by lead" in ran.stdout
    plan_dir = next((home / "reports" / "plan").iterdir())
    run_dir = next((plan_dir / "runs").iterdir())
    return {"home": home, "env": env, "plan": plan_dir, "run": run_dir,
            "pub": home / "config" / "faultlab" / "keys" / "lead.pub", "stdout": ran.stdout}


def copy_of(drill: dict[str, object], tmp_path: Path) -> tuple[Path, Path]:
    plan = tmp_path / "plan"
    shutil.copytree(drill["plan"], plan)
    run = plan / Path(drill["run"]).relative_to(drill["plan"])  # type: ignore[arg-type]
    return plan, run


def verify(drill: dict[str, object], where: Path, *more: str) -> tuple[int, str]:
    done = faultlab("verify", where, "--trust", drill["pub"], *more, env=drill["env"])  # type: ignore[arg-type]
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stdout + done.stderr


def test_the_untouched_drill_verifies_with_its_lead_key(drill):
    for where in (drill["plan"], drill["run"]):
        code, out = verify(drill, where)
        assert code == 0, out
        assert "signed by lead" in out and "a trusted key: integrity and authorship checked" in out
    assert "2 package(s) intact" in verify(drill, drill["plan"])[1]
    run = Path(drill["run"])
    registration = json.loads((run / "inputs" / "registration.json").read_text())
    assert {f["role"] for f in registration["inputs"]} == {"scenario", "stack", "plan", "plan-registration"}
    assert registration["targets"] == {"recover_within": 10.0, "lost_orders": 0}
    assert all("prev" in json.loads(line) for line in journal_lines(run))


def test_without_trust_it_says_that_authorship_was_not_checked(drill):
    done = faultlab("verify", drill["plan"], env=drill["env"])
    assert done.returncode == 0, done.stdout
    assert "NOT CHECKED: who sealed it" in done.stdout and "Only the integrity" in done.stdout


def test_another_key_is_not_trusted(drill, tmp_path):
    env = dict(drill["env"], XDG_CONFIG_HOME=str(tmp_path / "other"))
    assert faultlab("keys", "new", "--name", "someone", env=env).returncode == 0
    done = faultlab("verify", drill["run"], "--trust", tmp_path / "other" / "faultlab" / "keys" / "someone.pub",
                    env=env)
    assert done.returncode == 1
    assert "signed by lead" in done.stdout and "which is not among the trusted keys (someone" in done.stdout


def test_recompute_agrees_with_the_reports_of_the_real_drill(drill):
    code, out = verify(drill, drill["plan"], "--recompute")
    assert code == 0, out
    assert "every figure and report recomputed from the raw files agrees" in out
    assert "the integrity check re-performed on state/ through tradingstack.plugin agrees" in out


def _t1(plan: Path, run: Path) -> None:
    data = bytearray((run / "canary.jsonl").read_bytes())
    data[len(data) // 2] ^= 0x01
    (run / "canary.jsonl").write_bytes(bytes(data))


def _t2(plan: Path, run: Path) -> None:
    result = json.loads((run / "result.json").read_text())
    result["analysis"]["rto_from_inject"]["value"] = 0.5
    (run / "result.json").write_text(json.dumps(result, indent=2))
    manifest = json.loads((run / "manifest.json").read_text())
    from tamper import sha256

    manifest["files"]["result.json"]["sha256"] = sha256(run / "result.json")
    (run / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def _t3(plan: Path, run: Path) -> None:
    (run / "state" / "orders.csv.gz").unlink()
    (run / "services" / "notes.txt").write_text("added later")


def _change_report_figure(run: Path) -> None:
    md = (run / "report.md").read_text(encoding="utf-8")
    line = next(x for x in md.splitlines() if x.startswith("| Recovery time from injection"))
    cells = line.split("|")
    cells[3] = " 0.100 s "
    md = md.replace(line, "|".join(cells), 1)
    (run / "report.md").write_text(md, encoding="utf-8")
    reseal_manifest(run, "report.md")


def _t4(plan: Path, run: Path) -> None:
    _change_report_figure(run)
    env = dict(os.environ, XDG_CONFIG_HOME=str(plan.parent / "forger"),
               FAULTLAB_REGISTER=str(plan.parent / "forger.jsonl"))
    assert faultlab("keys", "new", "--name", "lead", env=env).returncode == 0  # same name, another key
    done = faultlab("report", run, env=env)
    assert done.returncode in (0, 1) and "sealed and signed by lead" in done.stdout, done.stdout


def _t5(plan: Path, run: Path) -> None:
    _change_report_figure(run)


def _t5b(plan: Path, run: Path) -> None:
    _change_report_figure(run)
    reseal_manifest(plan, run.relative_to(plan).as_posix() + "/manifest.json")


def _t6(plan: Path, run: Path) -> None:
    registration = json.loads((run / "inputs" / "registration.json").read_text())
    registration["targets"]["recover_within"] = 30.0
    (run / "inputs" / "registration.json").write_text(json.dumps(registration, indent=2) + "\n")
    copy = run / "inputs" / "scenario" / "trading-short.yaml"
    copy.write_text(copy.read_text().replace("recover_within: 10s", "recover_within: 30s"))
    reseal_manifest(run, "inputs/registration.json", "inputs/scenario/trading-short.yaml")


def _t7(plan: Path, run: Path) -> None:
    edit_record(run, '"type":"run"', lambda h: h["targets"].update(recover_within=0.5))
    done = faultlab("report", run, env=dict(os.environ))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "tampered: the header's targets differ from the pre-registered ones" in done.stdout
    assert "not re-judged and no report was written" in done.stdout


def _move_fault_active(obj: dict) -> None:
    obj["t"] += 10.0


def _t8(plan: Path, run: Path) -> None:
    edit_record(run, '"event":"active"', _move_fault_active)
    done = faultlab("report", run, env=dict(os.environ))
    assert done.returncode == 1 and "tampered: the hash chain breaks here" in done.stdout, done.stdout


def _t8_rechained(plan: Path, run: Path) -> None:
    edit_record(run, '"event":"active"', _move_fault_active)
    rechain(run)
    done = faultlab("report", run, env=dict(os.environ, XDG_CONFIG_HOME=str(plan.parent / "nokeys")))
    assert "sealed UNSIGNED" in done.stdout, done.stdout + done.stderr


def _delete_line(plan: Path, run: Path) -> None:
    lines = journal_lines(run)
    del lines[6]
    write_journal(run, lines)


def _add_line(plan: Path, run: Path) -> None:
    lines = journal_lines(run)
    lines.insert(7, '{"type":"note","t":6.0,"level":"info","message":"operator confirmed recovery"}')
    write_journal(run, lines)


def _reorder_lines(plan: Path, run: Path) -> None:
    lines = journal_lines(run)
    lines[5], lines[6] = lines[6], lines[5]
    write_journal(run, lines)


def _append_line_resealed(plan: Path, run: Path) -> None:
    lines = journal_lines(run)
    lines.append(lines[-1])
    write_journal(run, lines)
    rechain(run)
    reseal_manifest(run, "journal.jsonl")


CASES: list[tuple[str, Callable[[Path, Path], None], str, list[str]]] = [
    ("T1", _t1, "run", ["canary.jsonl: changed (SHA-256 differs)"]),
    ("T2", _t2, "run", ["manifest.json: changed (its own digest does not match)"]),
    ("T3", _t3, "run", ["state/orders.csv.gz: missing", "services/notes.txt: extra (not in the manifest)"]),
    ("T4", _t4, "run", ["manifest.sig: signed by lead (key", "which is not among the trusted keys"]),
    ("T5", _t5, "run", ["manifest.json: changed after it was sealed",
                        "report.md: changed after the package was sealed"]),
    ("T5-plan", _t5, "plan", ["/manifest.json: changed (SHA-256 differs)",
                              "/report.md: changed after the package was sealed"]),
    ("T5b", _t5b, "plan", ["differs from the plan's record of it (runs[0].manifest_sha256",
                           "manifest.json: changed after it was sealed"]),
    ("T6", _t6, "run", ["inputs/registration.json: changed after the package was sealed",
                        "journal.jsonl:1: tampered: the hash chain breaks here: the header does not follow the "
                        "pre-registration record inputs/registration.json",
                        "the header's targets differ from the pre-registered ones in inputs/registration.json "
                        "(recover_within 10.0 here, 30.0 registered)"]),
    ("T7", _t7, "run", ["journal.jsonl: changed (SHA-256 differs)",
                        "journal.jsonl:1: tampered: the header's targets differ from the pre-registered ones "
                        "in inputs/registration.json (recover_within 0.5 here, 10.0 registered)",
                        "journal.jsonl:2: tampered: the hash chain breaks here: this line does not follow line 1"]),
    ("T8", _t8, "run", ["journal.jsonl: changed (SHA-256 differs)",
                        "(a fault record (active)) was changed, or a line after it was removed"]),
    ("T8-rechained", _t8_rechained, "run", ["manifest.sig: sealed unsigned (there was no signing key)"]),
    ("T8-rechained-plan", _t8_rechained, "plan", ["differs from the plan's record of it (runs[0].manifest_sha256",
                                                  "/manifest.sig: sealed unsigned"]),
    ("delete", _delete_line, "run", ["journal.jsonl:7: tampered: the hash chain breaks here: this line does not "
                                     "follow line 6", "lines were removed or inserted before its end"]),
    ("add", _add_line, "run", ["journal.jsonl:8: tampered: the hash chain breaks here: this line carries no chain "
                               "link", "line 8 (a note record) was inserted or moved here"]),
    ("reorder", _reorder_lines, "run", ["journal.jsonl:6: tampered: the hash chain breaks here: lines 6 to 7 are "
                                        "not in the sequence the run wrote them in (it wrote line 7, then line 6)"]),
    ("append-resealed", _append_line_resealed, "run",
     ["manifest.json: changed after it was sealed", "journal.jsonl: 1 line(s) after line"]),
]


@pytest.mark.parametrize(("name", "tamper", "level", "expected"), CASES, ids=[c[0] for c in CASES])
def test_tampering_is_caught_and_named(drill, tmp_path, name, tamper, level, expected):
    plan, run = copy_of(drill, tmp_path)
    tamper(plan, run)
    code, out = verify(drill, plan if level == "plan" else run)
    assert code == 1, out
    for needle in expected:
        assert needle in out, (name, needle, out)


def test_recompute_names_the_first_figure_that_differs(drill, tmp_path):
    plan, run = copy_of(drill, tmp_path)
    result = json.loads((run / "result.json").read_text())
    said = result["analysis"]["t_inject"]  # when the fault took effect: a number in every run that injected it
    result["analysis"]["t_inject"] = said + 10.0
    (run / "result.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    _change_report_figure(run)
    reseal_manifest(run, "result.json")
    code, out = verify(drill, run, "--recompute")
    assert code == 1
    assert (f"result.json: recomputed: analysis.t_inject: the report says {json.dumps(said + 10.0)}, "
            f"the raw files give {json.dumps(said)}") in out, out
    assert "report.md:" in out and "recomputed: the report shows '| Recovery time from injection" in out


def test_recompute_re_performs_the_integrity_check_on_the_end_state(drill, tmp_path):
    import gzip

    plan, run = copy_of(drill, tmp_path)
    orders = run / "state" / "orders.csv.gz"
    rows = gzip.decompress(orders.read_bytes()).decode().splitlines(keepends=True)
    acked = {json.loads(line).get("ack") for line in (run / "canary.jsonl").read_text().splitlines()}
    victim = next(i for i, row in enumerate(rows[1:], start=1) if any(a and a in row for a in acked))
    del rows[victim]
    orders.write_bytes(gzip.compress("".join(rows).encode()))
    reseal_manifest(run, "state/orders.csv.gz")
    code, out = verify(drill, run, "--recompute")
    assert code == 1
    assert "journal.jsonl (integrity record, re-performed on state/): recomputed: checked.lost_orders: the report " \
           "says 0, the raw files give 1" in out, out


def test_the_register_lists_both_seals_and_its_chain_holds(drill):
    env = drill["env"]
    listed = faultlab("evidence", "list", env=env)
    assert listed.returncode == 0
    assert " run " in listed.stdout and " plan " in listed.stdout and "lead" in listed.stdout
    checked = faultlab("evidence", "verify", "--trust", drill["pub"], env=env)
    assert checked.returncode == 0, checked.stdout
    assert "2 line(s), chain intact" in checked.stdout
