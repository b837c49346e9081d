"""What the reports say: crashed runs, both languages complete, the drill-plan book."""

from __future__ import annotations

import re
import string

from synthetic_run import Outage, RunSpec, write_run

from faultlab.report import verify, write_book, write_reports
from faultlab.report.messages import LANGUAGES, MESSAGES


def placeholders(text):
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_both_languages_have_every_message_with_the_same_placeholders():
    en, ja = MESSAGES["en"], MESSAGES["ja"]
    assert set(en) == set(ja) and LANGUAGES == ("en", "ja")
    for key in en:
        assert en[key].strip() and ja[key].strip(), key
        assert placeholders(en[key]) == placeholders(ja[key]), key


def test_a_crashed_run_says_so_prominently(tmp_path):
    run = write_run(tmp_path, RunSpec(completed=False))
    write_reports(run, langs=("en", "ja"))
    md = (run / "report.md").read_text(encoding="utf-8")
    page = (run / "report.html").read_text(encoding="utf-8")
    head = md.split("## 1.")[0]
    assert "THIS RUN CRASHED" in head
    assert '<div class="banner" role="alert">⚠ THIS RUN CRASHED' in page
    assert "この実施は異常終了しました" in (run / "report.ja.md").read_text(encoding="utf-8").split("## 1.")[0]
    junit = (run / "junit.xml").read_text(encoding="utf-8")
    assert "the run crashed" in junit and 'errors="1"' in junit


def test_the_japanese_report_renders_every_section_in_japanese(tmp_path):
    spec = RunSpec(
        integrity_violations=[{"check": "lost_orders", "ids": ["c-77"]}],
        job={"started_t": 1.0, "finished_t": 50.0, "window_s": 60, "deadline_t": 55.0, "ok": True,
             "deadline_name": {"en": "the market opens", "ja": "取引開始"}},
        planned_at=18.0,
    )
    run = write_run(tmp_path, spec)
    write_reports(run, langs=("ja",), plan_info={"title": "訓練", "participants": [{"name": "佐藤", "role": "責任者"}]})
    md = (run / "report.md").read_text(encoding="utf-8")
    page = (run / "report.html").read_text(encoding="utf-8")
    ja = MESSAGES["ja"]
    sections = [k for k in ja if k.startswith("sec.")]
    assert len(sections) == 12
    for number, key in enumerate(sections, start=1):
        assert f"## {number}. {ja[key]}" in md
        assert f"<h2>{number}. {ja[key]}</h2>" in page
    for english in ("Identification", "Measured results", "Findings", "MISSED", "Timeline of events"):
        assert english not in md
    assert not re.search(r"\{[a-z_]+\}", md)
    assert "c-77" in md and "未達" in md and "予定から 2.000 秒ずれました" in md
    assert '<html lang="ja">' in page


def test_the_book_indexes_every_scenario_with_totals_and_a_manifest(tmp_path):
    plan_dir = tmp_path / "plan"
    ok = write_run(plan_dir / "FT-01", RunSpec(run_id="r1", scenario_id="FT-01"))
    bad = write_run(plan_dir / "FT-07",
                    RunSpec(run_id="r2", scenario_id="FT-07", outage=Outage(end=None), fault_for=40.0))
    again = write_run(plan_dir / "FT-07", RunSpec(run_id="r3", scenario_id="FT-07"))
    plan = {"title": "Q4 drill", "participants": [{"name": "Sato", "role": "lead"}]}
    files = write_book(plan_dir, [ok, bad, again], plan, langs=("en", "ja"))
    md = files.index_md.read_text(encoding="utf-8")
    assert "# Drill plan: Q4 drill" in md
    assert md.count("| FT-01 — ") == 1 and md.count("| FT-07 — ") == 1
    assert "Totals: 2 scenarios, 3 runs; 2 passed, 1 failed" in md
    for link in re.findall(r"\]\(([^)]+)\)", md):
        assert (plan_dir / link).is_file(), link
    assert "FAILED" in md and "PASSED" in md and "not recovered within the run" in md
    page = files.index_html.read_text(encoding="utf-8")
    assert 'href="FT-01/r1/report.html"' in page
    assert (plan_dir / "index.ja.md").read_text(encoding="utf-8").startswith("# 訓練計画：Q4 drill")
    assert verify(plan_dir) == []
    (plan_dir / "FT-07" / "r2" / "journal.jsonl").write_text("{}", encoding="utf-8")
    assert [m.path for m in verify(plan_dir)] == ["FT-07/r2/journal.jsonl"]


def test_report_public_api_is_frozen():
    import faultlab.report

    assert sorted(faultlab.report.__all__) == sorted(
        ["write_reports", "write_book", "verify", "write_manifest", "Mismatch", "ReportFiles"]
    )
    assert all(getattr(faultlab.report, name).__doc__ for name in faultlab.report.__all__)


def test_the_manifest_records_hashes_versions_and_the_checkout(tmp_path):
    import json

    run = write_run(tmp_path)
    write_reports(run)
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["scenario"]["sha256"] == "ab" * 32
    assert {"python", "faultlab"} <= set(manifest["tools"])
    assert set(manifest["files"]) >= {"journal.jsonl", "report.md", "report.html", "result.json", "junit.xml",
                                      "timeseries.csv", "services/gateway.log"}
    assert "manifest.json" not in manifest["files"] and len(manifest["self_sha256"]) == 64


def test_recovery_before_the_clear_is_written_in_words_not_as_a_negative_time(tmp_path):
    spec = RunSpec(fault_at=20.0, fault_for=30.0, outage=Outage(start=20.0, end=30.0, detect_lag=1.0),
                   targets={"recover_after_clear_within": 10.0})
    run = write_run(tmp_path, spec)
    write_reports(run, langs=("en", "ja"))
    md = (run / "report.md").read_text(encoding="utf-8")
    assert "recovered before the fault cleared" in md
    assert not re.search(r"-\d+\.\d{3} s", md)
    row = next(line for line in md.splitlines() if line.startswith("| RTO after the fault cleared"))
    assert "met" in row and "MISSED" not in row
    assert "障害解除より前に復旧" in (run / "report.ja.md").read_text(encoding="utf-8")


def test_tools_recorded_by_the_run_reach_the_manifest_and_the_appendix(tmp_path):
    import json

    from faultlab.analysis import analyse

    run = write_run(tmp_path, RunSpec())
    with open(run / "journal.jsonl") as fh:
        lines = fh.read().splitlines()
    tools = {"type": "tools", "t": 0.5, "tools": {"python": "3.11.7", "locust": "2.31.8", "postgres": "16.4"}}
    lines.insert(1, json.dumps(tools))
    (run / "journal.jsonl").write_text("\n".join(lines) + "\n")
    write_reports(run)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["tools"]["postgres (recorded by the run)"] == "16.4"
    assert manifest["tools"]["locust (recorded by the run)"] == "2.31.8"
    md = (run / "report.md").read_text(encoding="utf-8")
    assert "postgres (recorded by the run)" in md and "16.4" in md
    assert "tools" not in [e.kind for e in analyse(run).timeline]
