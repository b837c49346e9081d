"""The charts: points placed as the tables place windows, jobs and deadlines drawn, fast errors marked."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from synthetic_run import Outage, RunSpec, write_run

from faultlab.analysis import analyse
from faultlab.report import verify, write_reports
from faultlab.report.charts import chart_points, fast_error_spans, fast_error_windows, render_charts

JOB = {"started_t": 1.0, "finished_t": 50.0, "window_s": 60, "deadline_t": 55.0, "ok": True,
       "deadline_name": {"en": "the market opens", "ja": "取引開始"}}


@pytest.fixture(scope="module")
def outage(tmp_path_factory):
    return analyse(write_run(tmp_path_factory.mktemp("charts"), RunSpec(job=JOB)))


def test_the_curve_turns_healthy_exactly_at_the_recovery_line(outage):
    a = outage
    floor = a.steady_state["success_rate_min"]
    xs, ys = chart_points(a, lambda w: w.success_rate)
    recovery, resolution = a.recovery_point.value, a.recovery_point.resolution
    assert recovery is not None and resolution is not None
    # The recovery point is the first answer to a request of the first window of the healthy
    # run (no earlier than that window's start); that window's point is the last one at or
    # before the line, and the curve turns healthy there.
    at = max(i for i, x in enumerate(xs) if x <= recovery)
    assert ys[at] >= floor and ys[at - 1] < floor, "the curve crosses into health at the recovery line"
    assert recovery - resolution <= xs[at] <= recovery, "within the recovery point's stated resolution"
    assert all(y >= floor for x, y in zip(xs, ys, strict=True) if xs[at] <= x <= recovery + a.hold_s - a.window_s)
    # the same convention as timeseries.csv and the recovery point: a window is placed at its start
    assert xs == [w.start for w in a.windows]
    first_bad = next(x for x, y in zip(xs, ys, strict=True) if x > 10 and y < floor)
    impact = a.impact_start.value
    assert impact is not None and impact - a.window_s < first_bad <= impact, \
        "the fall shows at most one window before the first failed request, never after it"


def test_jobs_and_their_deadline_are_drawn_with_its_name_in_the_report_language(outage):
    for lang, name in (("en", "the market opens"), ("ja", "取引開始")):
        charts = render_charts(outage, lang)
        assert [c.key for c in charts] == ["success_rate", "p99_latency", "throughput", "completion_delay"]
        for chart in charts:
            texts = re.findall(r"<text[^>]*>([^<]*)</text>", chart.svg)
            assert any(name in t for t in texts), (lang, chart.key, texts)
            assert any("batch" in t for t in texts), (lang, chart.key)


def test_charts_without_jobs_draw_no_deadline(tmp_path):
    charts = render_charts(analyse(write_run(tmp_path, RunSpec())), "en")
    assert charts and not any("the market opens" in c.svg or ">batch" in c.svg for c in charts)


def test_fast_errors_that_pull_latency_down_are_marked_with_a_note(tmp_path):
    # every failure of the outage is an error answered in 10 ms (no load generator's timeouts)
    rejected = analyse(write_run(tmp_path / "fast", RunSpec(outage=Outage(rejected=True), load=False)))
    windows = fast_error_windows(rejected)
    assert windows and all(w.p99_latency_s <= 0.25 and w.success_rate < 0.99 for w in windows)
    assert fast_error_spans(rejected) == [(pytest.approx(19.05), pytest.approx(30.0))]
    charts = {c.key: c for c in render_charts(rejected, "ja")}
    assert charts["p99_latency"].note_key == "chart.fast_errors"
    assert all(c.note_key == "" for key, c in charts.items() if key != "p99_latency")
    # failures that time out push latency up: nothing to mark
    timeouts = analyse(write_run(tmp_path / "slow", RunSpec()))
    assert fast_error_windows(timeouts) == [] and all(not c.note_key for c in render_charts(timeouts))


def test_the_fast_error_note_is_in_the_html_report(tmp_path):
    run = write_run(tmp_path, RunSpec(outage=Outage(rejected=True), load=False))
    write_reports(run, langs=("en", "ja"))
    assert "Hatched: windows whose failed requests were answered fast" in (run / "report.html").read_text()
    assert "斜線：失敗したリクエストにエラー応答がすぐに返ったウィンドウです" in (run / "report.ja.html").read_text()


def test_the_evidence_digest_is_sha256sum_of_the_evidence_files_and_verify_checks_it(tmp_path):
    run = write_run(tmp_path, RunSpec())
    write_reports(run, langs=("en", "ja"))
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    files = manifest["evidence"]["files"]
    assert "journal.jsonl" in files and not any(f.startswith("report") or f == "manifest.json" for f in files)
    listing = subprocess.run(["sha256sum", *files], cwd=run, capture_output=True, check=True).stdout
    again = subprocess.run(["sha256sum"], input=listing, capture_output=True, check=True).stdout.split()[0].decode()
    assert manifest["evidence"]["sha256"] == again
    for name in ("report.md", "report.ja.md", "report.html", "report.ja.html"):
        assert again in (run / name).read_text(encoding="utf-8"), name
    assert verify(run) == []
    manifest["evidence"]["sha256"] = "0" * 64
    (run / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    assert any("evidence digest" in m.problem for m in verify(run))
