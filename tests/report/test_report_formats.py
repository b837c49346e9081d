"""Every report format carries exactly the analysis's numbers."""

from __future__ import annotations

import csv
import html
import json
import xml.etree.ElementTree as ET

import pytest
from synthetic_run import Outage, RunSpec, write_run

from faultlab.analysis import analyse
from faultlab.report import write_reports
from faultlab.report.document import verdict_row
from faultlab.report.format import measure_text, resolution_text
from faultlab.report.junit import verdict_message
from faultlab.report.messages import Catalogue
from faultlab.report.writer import TIMESERIES_COLUMNS, _md_escape, inline_html, result_data

SPECS = {
    "met": RunSpec(),
    "missed": RunSpec(
        outage=Outage(start=20.0, end=None, detect_lag=6.5), fault_for=40.0,
        targets={"detect_within": 5.0, "recover_within": 30.0, "lost_orders": 0, "job_margin_min": 10.0},
        integrity_violations=[{"check": "lost_orders", "ids": ["c-123", "c-124"]}],
        job={"started_t": 1.0, "finished_t": 50.0, "window_s": 60, "deadline_t": 55.0, "ok": True},
    ),
}


@pytest.fixture(scope="module", params=sorted(SPECS))
def reported(request, tmp_path_factory):
    run = write_run(tmp_path_factory.mktemp(request.param), SPECS[request.param])
    write_reports(run, langs=("en", "ja"))
    return run, analyse(run)


def md_row(cells):
    return "| " + " | ".join(_md_escape(c) for c in cells) + " | "


def html_row(cells):
    """The cells as report.html writes them: escaped, journal text quoted as ``<code>``."""
    return "".join(f"<td>{inline_html(c)}</td>" for c in cells)


def test_result_json_equals_the_analysis(reported):
    run, a = reported
    saved = json.loads((run / "result.json").read_text(encoding="utf-8"))
    assert saved == json.loads(json.dumps(result_data(a)))
    assert saved["analysis"]["detection"] == {
        "value": a.detection.value, "unit": "s", "resolution": a.detection.resolution,
        "basis": a.detection.basis, "status": a.detection.status,
    }


def test_csv_time_series_equals_the_windows(reported):
    run, a = reported
    with (run / "timeseries.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(a.windows) > 0
    for row, w in zip(rows, a.windows, strict=True):
        for column in TIMESERIES_COLUMNS:
            value = getattr(w, column)
            if value is None:
                assert row[column] == ""
            elif isinstance(value, bool):
                assert row[column] == str(value).lower()
            elif isinstance(value, int):
                assert int(row[column]) == value
            else:
                assert float(row[column]) == value


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_markdown_and_html_show_every_verdict_and_measure(reported, lang):
    run, a = reported
    suffix = "" if lang == "en" else ".ja"
    md = (run / f"report{suffix}.md").read_text(encoding="utf-8")
    page = (run / f"report{suffix}.html").read_text(encoding="utf-8")
    cat = Catalogue(lang, a.declaration)
    assert a.verdicts
    for v in a.verdicts:
        row = verdict_row(v, cat)
        assert md_row(row) in md
        assert html_row(row) in page
    for m in (a.detection, a.rto_from_inject, a.rto_from_clear, a.backlog_drain, a.error_budget.consumed):
        for text in (measure_text(m, cat), resolution_text(m, cat)):
            assert _md_escape(text) in md
            assert html.escape(text) in page


def test_junit_has_one_case_per_target_with_measured_vs_target(reported):
    run, a = reported
    suite = ET.parse(run / "junit.xml").getroot().find("testsuite")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {v.target for v in a.verdicts}
    assert int(suite.get("failures")) == sum(1 for v in a.verdicts if not v.met)
    for v in a.verdicts:
        failure = cases[v.target].find("failure")
        if v.met:
            assert failure is None
        else:
            assert failure.get("message") == verdict_message(v, Catalogue("en", a.declaration))
            assert "measured " + measure_text(v.measured, Catalogue("en")) in failure.get("message")
            assert "vs target " in failure.get("message")


def test_the_missed_report_names_the_lost_orders_everywhere(tmp_path):
    run = write_run(tmp_path, SPECS["missed"])
    write_reports(run)
    for name in ("report.md", "report.html", "result.json", "junit.xml"):
        text = (run / name).read_text(encoding="utf-8")
        assert "c-123" in text and "c-124" in text, name
    md = (run / "report.md").read_text(encoding="utf-8")
    assert "not recovered within the run" in md and "MISSED" in md
