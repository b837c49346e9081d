"""The programme's register over synthetic run folders of chosen dates: overdue failure tests,
findings carried forward until a passing run retests them, tolerances, the CLI and its files."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from synthetic_run import Outage, RunSpec, write_run

from faultlab.loader import load_programme
from faultlab.model.programme import Operation
from faultlab.register import FailureTestInfo, build_register, collect_runs, programme_register
from faultlab.report.register import drill_view, register_document, write_register
from faultlab.report.writer import render_markdown

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
PASSING = {"detect_within": 5.0, "recover_within": 30.0, "lost_orders": 0}
FAILING = {"detect_within": 5.0, "recover_within": 2.0, "lost_orders": 0}


def _run(reports: Path, test_id: str, when: datetime, targets: dict, drill: str | None = None,
         outage: Outage | None = None) -> Path:
    """A synthetic run of ``test_id`` started at ``when``, in a drill folder when ``drill`` is named."""
    stamp = when.strftime("%Y%m%dT%H%M%S")
    parent = reports / "quarterly" / drill / "runs" if drill else reports / test_id  # as run_plan writes them
    run_dir = write_run(parent, RunSpec(run_id=f"{test_id}-{stamp}", scenario_id=test_id, targets=targets,
                                        outage=outage or Outage()))
    journal = run_dir / "journal.jsonl"
    lines = journal.read_text().splitlines()
    header = json.loads(lines[0])
    header["origin_wall"] = when.isoformat()
    journal.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    return run_dir


OPERATIONS = {"intake": Operation(label="Request intake", tolerance="15s", measure="impact"),
              "batch": Operation(label={"en": "Nightly batch", "ja": "夜間バッチ"}, tolerance="0s",
                                 measure="job_overrun")}
TESTS = [FailureTestInfo("FT-01", "database freeze", ("intake",), ("postgres",), owner="Database team"),
         FailureTestInfo("FT-02", "runaway lock", ("intake",), ("postgres",)),
         FailureTestInfo("FT-03", "never run yet", ("intake",), ("service",), in_plan=False)]


def test_a_failure_test_last_run_longer_ago_than_the_period_is_overdue(tmp_path: Path) -> None:
    _run(tmp_path, "FT-01", NOW - timedelta(days=120), PASSING)
    _run(tmp_path, "FT-02", NOW - timedelta(days=200), PASSING)
    _run(tmp_path, "FT-02", NOW - timedelta(days=10), PASSING)
    register = build_register("programme", OPERATIONS, TESTS, collect_runs(tmp_path), NOW, period_days=91)
    status = {t.test.id: t for t in register.tests}
    assert status["FT-01"].verdict == "passed" and status["FT-01"].overdue
    assert round(status["FT-01"].age_days or 0) == 120
    assert not status["FT-02"].overdue and round(status["FT-02"].age_days or 0) == 10 and status["FT-02"].runs == 2
    assert status["FT-03"].verdict == "never_run" and status["FT-03"].overdue and status["FT-03"].last is None
    assert register.counts()["overdue"] == 2
    # A longer period: nothing run within it is overdue.
    relaxed = build_register("programme", OPERATIONS, TESTS, collect_runs(tmp_path), NOW, period_days=365)
    assert [t.test.id for t in relaxed.tests if t.overdue] == ["FT-03"]


def test_a_finding_is_carried_forward_until_a_passing_run_of_the_same_test_retests_it(tmp_path: Path) -> None:
    first = _run(tmp_path, "FT-01", NOW - timedelta(days=60), FAILING, drill="20261002T090000")
    _run(tmp_path, "FT-02", NOW - timedelta(days=59), PASSING, drill="20261002T090000")

    def carried(now: datetime) -> list:
        register = build_register("p", OPERATIONS, TESTS, collect_runs(tmp_path), now, 91)
        return [f for f in register.findings if f.run.run_dir == first]

    found = carried(NOW)
    assert found and {f.status for f in found} == {"open"} and all(f.owner == "Database team" for f in found)
    assert any(f.finding.kind == "target_missed" and f.finding.params["target"] == "recover_within" for f in found)

    # Another drill: FT-01 fails again; FT-02's pass does not retest FT-01's finding.
    second = _run(tmp_path, "FT-01", NOW - timedelta(days=30), FAILING, drill="20261101T090000")
    _run(tmp_path, "FT-02", NOW - timedelta(days=30), PASSING, drill="20261101T090000")
    found = carried(NOW)
    assert {f.status for f in found} == {"retested_failing"}
    assert all(f.retested_by is not None and f.retested_by.run_dir == second for f in found)

    # A passing run of FT-01 closes it.
    third = _run(tmp_path, "FT-01", NOW - timedelta(days=1), PASSING, drill="20261130T090000")
    found = carried(NOW)
    assert {f.status for f in found} == {"closed"} and all(not f.carried for f in found)
    assert all(f.retested_by is not None and f.retested_by.run_dir == third for f in found)
    register = build_register("p", OPERATIONS, TESTS, collect_runs(tmp_path), NOW, 91)
    assert register.counts()["carried"] == 0  # the second failure's findings were closed by the same pass
    assert register.last_drill is not None and register.last_drill.name == "20261130T090000"


def test_tolerances_take_the_worst_outage_of_the_last_drill_only(tmp_path: Path) -> None:
    # An old drill with a long outage, then the last drill with two short ones.
    _run(tmp_path, "FT-01", NOW - timedelta(days=90), PASSING, drill="20260902T090000",
         outage=Outage(start=20.0, end=50.0))
    _run(tmp_path, "FT-01", NOW - timedelta(days=2), PASSING, drill="20261129T090000",
         outage=Outage(start=20.0, end=26.0))
    _run(tmp_path, "FT-02", NOW - timedelta(days=2), PASSING, drill="20261129T090000",
         outage=Outage(start=20.0, end=30.0))
    register = build_register("p", OPERATIONS, TESTS, collect_runs(tmp_path), NOW, 91)
    intake = next(c for c in register.tolerances if c.operation == "intake")
    assert intake.worst_test == "FT-02" and intake.worst_s is not None and 9.5 <= intake.worst_s <= 11
    assert intake.within is True and intake.measured_by == ("FT-01", "FT-02")
    batch = next(c for c in register.tolerances if c.operation == "batch")
    assert batch.worst_s is None and batch.within is None  # no failure test of the drill measured it
    tight = build_register("p", {"intake": Operation(label="intake", tolerance="5s", measure="impact")}, TESTS,
                           collect_runs(tmp_path), NOW, 91)
    assert tight.tolerances[0].within is False


def test_the_register_renders_in_both_languages_and_as_json(tmp_path: Path) -> None:
    _run(tmp_path, "FT-01", NOW - timedelta(days=120), FAILING, drill="20260803T090000")
    register = build_register("Brokerage programme", OPERATIONS, TESTS, collect_runs(tmp_path), NOW, 91)
    written = write_register(register, tmp_path / "out", langs=["en", "ja"])
    assert sorted(p.name for p in written) == ["register.html", "register.ja.html", "register.ja.md",
                                               "register.json", "register.md"]
    md = (tmp_path / "out" / "register.md").read_text()
    assert "| FT-01 |" in md and "Database team" in md and "carried: not retested" in md
    assert "Request intake" in md and "Nightly batch" in md
    assert "期限超過" in (tmp_path / "out" / "register.ja.md").read_text()
    data = json.loads((tmp_path / "out" / "register.json").read_text())
    assert data["counts"]["overdue"] == 3 and data["failure_tests"][0]["overdue"] is True
    assert data["findings"][0]["status"] == "open" and data["findings"][0]["owner"] == "Database team"
    view = drill_view(register, "en")
    assert "missed: failed" in render_markdown(register_document(register, "en")) or view.blocks
    assert any("missed: failed" in str(block) for block in view.blocks)


def _programme(tmp_path: Path) -> Path:
    plan = tmp_path / "drills" / "quarterly.yaml"
    plan.parent.mkdir()
    plan.write_text("title: q\nenvironment: e\nscenarios:\n"
                    f"  - {ROOT / 'scenarios' / 'ft-01-db-freeze.yaml'}\n"
                    f"  - {ROOT / 'scenarios' / 'ft-16-gateway-killed.yaml'}\n")
    path = tmp_path / "programme.yaml"
    path.write_text("title: Test programme\nplan: drills/quarterly.yaml\nperiod: 13w\nowner: Ops\n"
                    "operations:\n  order_intake: {label: Order intake, tolerance: 90s}\n"
                    "failure_tests:\n  FT-01: {operations: [order_intake], owner: DBA}\n"
                    "  FT-99: {operations: [order_intake]}\n")
    return path


def test_a_programme_file_names_its_plan_and_its_failure_tests(tmp_path: Path) -> None:
    programme = load_programme(_programme(tmp_path))
    assert programme.period == 91.0 and programme.owner_of("FT-01") == "DBA" and programme.owner_of("FT-16") == "Ops"
    reports = tmp_path / "reports"
    _run(reports, "FT-16", NOW - timedelta(days=3), PASSING)
    register = programme_register(programme, reports, NOW)
    by_id = {t.test.id: t for t in register.tests}
    assert list(by_id) == ["FT-01", "FT-16", "FT-99"]
    assert by_id["FT-01"].test.classes == ("postgres",) and by_id["FT-16"].test.classes == ("service",)
    assert by_id["FT-99"].test.in_plan is False and by_id["FT-99"].verdict == "never_run"
    assert not by_id["FT-16"].overdue and by_id["FT-01"].overdue


def test_the_programme_command_prints_and_writes_the_register(tmp_path: Path, faultlab_cmd: str,
                                                               cli_env: dict[str, str]) -> None:
    path = _programme(tmp_path)
    reports = tmp_path / "reports"
    _run(reports, "FT-01", NOW - timedelta(days=100), FAILING, drill="20260822T090000")
    result = subprocess.run([faultlab_cmd, "programme", str(path), "--reports", str(reports), "--now",
                             NOW.isoformat(), "--lang", "en", "--lang", "ja"],
                            capture_output=True, text=True, env=cli_env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "OVERDUE" in result.stdout and "FT-01" in result.stdout and "failed" in result.stdout
    out = reports / "quarterly"
    assert (out / "register.json").exists() and (out / "register.ja.html").exists()
    assert json.loads((out / "register.json").read_text())["counts"]["carried"] > 0


@pytest.mark.parametrize("args, message", [
    (["--now", "yesterday"], "not an ISO time"),
    (["--reports", "no-such-folder"], "no such reports folder"),
])
def test_bad_input_is_exit_code_2_without_a_traceback(tmp_path: Path, faultlab_cmd: str, cli_env: dict[str, str],
                                                      args: list[str], message: str) -> None:
    path = _programme(tmp_path)
    (tmp_path / "reports").mkdir()
    result = subprocess.run([faultlab_cmd, "programme", str(path), "--reports", str(tmp_path / "reports"), *args],
                            capture_output=True, text=True, env=cli_env, cwd=tmp_path, timeout=60)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_a_programme_naming_an_unknown_operation_is_refused_at_its_line(tmp_path: Path, faultlab_cmd: str,
                                                                         cli_env: dict[str, str]) -> None:
    path = _programme(tmp_path)
    path.write_text(path.read_text().replace("FT-99: {operations: [order_intake]}", "FT-99: {operations: [intake]}"))
    result = subprocess.run([faultlab_cmd, "validate", str(path)], capture_output=True, text=True, env=cli_env,
                            timeout=60)
    assert result.returncode == 2 and "unknown operation(s) intake" in result.stderr


def test_the_drill_book_shows_the_register_view_of_that_drill(tmp_path: Path) -> None:
    from faultlab.analysis import analyse
    from faultlab.report.book import write_book

    _run(tmp_path, "FT-02", NOW - timedelta(days=200), FAILING, drill="20260501T090000")
    drill = "20261130T090000"
    runs = [_run(tmp_path, "FT-01", NOW - timedelta(hours=1), FAILING, drill=drill)]
    register = build_register("Brokerage programme", OPERATIONS, TESTS, collect_runs(tmp_path), NOW, 91)
    plan_dir = tmp_path / "quarterly" / drill
    write_book(plan_dir, [analyse(r) for r in runs], {"title": "Quarterly"}, langs=["en", "ja"], register=register)
    book = (plan_dir / "index.md").read_text()
    assert "Programme register: this drill" in book
    assert "| FT-01 | database freeze | missed: failed | no |" in book
    assert "| FT-02 | runaway lock | missed: not run | yes |" in book    # last run 200 days ago: overdue
    assert "| FT-03 | never run yet | missed: not run | yes |" in book
    assert "carried: not retested" in book                              # FT-01's findings, and FT-02's old ones
    assert "訓練プログラム台帳" in (plan_dir / "index.ja.md").read_text()
