"""Detection by the run's real monitoring, analysed offline from a journal whose truth is chosen
here: the alerts Alertmanager delivered, per fault, beside readiness detection; PromQL
steady-state conditions judging the windows; the report's words for all of it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from synthetic_run import Outage, RunSpec, write_run

from faultlab.analysis import MeasureStatus, analyse
from faultlab.report.document import build_document

SECTION = {
    "scrape_interval_s": 0.5, "evaluation_interval_s": 0.5, "group_wait_s": 0.0, "group_interval_s": 0.5,
    "resolution_s": 1.0, "resolved_resolution_s": 1.5, "scrape": {"gateway": "/metrics"},
    "rules": {"file": "stacks/trading-alerts.yaml", "sha256": "ef" * 32},
    "alerts": ["DatabaseUnreachable", "OrderIntakeFailing", "ExecutionDelayHigh", "OutboxBacklogGrowing"],
    "promql": [],
}


def alert(name: str, active: float, received: float, *, resolved: tuple[float, float] | None = None,
          fingerprint: str | None = None) -> list[dict[str, Any]]:
    """The journal records of one alert: firing, and resolved when ``resolved`` is (ended, received)."""
    fp = fingerprint or f"fp-{name}"
    base = {"type": "alert", "name": name, "labels": {"alertname": name, "job": "gateway"}, "fingerprint": fp,
            "active_t": active, "active_wall": f"wall+{active}"}
    rows = [{**base, "t": received, "status": "firing"}]
    if resolved is not None:
        rows.append({**base, "t": resolved[1], "status": "resolved", "ended_t": resolved[0]})
    return rows


def monitored(run_dir: Path, records: list[dict[str, Any]], *, section: dict[str, Any] | None = None,
              targets: dict[str, Any] | None = None) -> Path:
    """Give a synthetic run the monitoring section in its header and ``records`` before its end."""
    journal = run_dir / "journal.jsonl"
    lines = [json.loads(line) for line in journal.read_text().splitlines()]
    lines[0]["monitoring"] = SECTION if section is None else section
    if targets is not None:
        lines[0]["targets"] = targets
    lines[-1:-1] = records
    journal.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return run_dir


def test_detection_is_the_first_alert_to_arrive_beside_the_readiness_poll(tmp_path: Path) -> None:
    # The fault takes effect at 20.0; readiness shows it at 21.0 (Outage.detect_lag = 1.0).
    run = monitored(write_run(tmp_path), [
        *alert("OutboxBacklogGrowing", 5.0, 5.01, resolved=(6.0, 6.2)),  # before any fault: not detection
        *alert("ExecutionDelayHigh", 19.9, 20.2),  # active before the fault took effect: not news of it
        *alert("DatabaseUnreachable", 21.4, 21.45, resolved=(30.4, 30.9)),
        *alert("OrderIntakeFailing", 22.4, 22.41),
    ])
    a = analyse(run)
    assert a.detection.status == MeasureStatus.MEASURED
    assert a.detection.value == pytest.approx(1.45)
    assert (a.detection.resolution, a.detection.basis) == (1.0, "alert_pipeline")
    assert a.detection_signal == "alert DatabaseUnreachable"
    m = a.monitoring
    assert m is not None and m.alert_name == "DatabaseUnreachable"
    assert m.readiness_detection.value == pytest.approx(1.0) and "not ready" in m.readiness_signal
    [fault] = m.faults
    assert [x.name for x in fault.alerts] == ["DatabaseUnreachable", "OrderIntakeFailing"]
    assert [x.detect_s for x in fault.alerts] == [pytest.approx(1.45), pytest.approx(2.41)]
    assert fault.readiness_changed and fault.only_by is None and fault.expected_missing == []
    first = {x.name: x for x in m.alerts}
    assert first["OutboxBacklogGrowing"].fault_id is None and first["ExecutionDelayHigh"].fault_id is None
    assert first["DatabaseUnreachable"].resolved_received_t == pytest.approx(30.9)
    assert first["OrderIntakeFailing"].resolved_received_t is None
    assert next(v for v in a.verdicts if v.target == "detect_within").met
    events = [(e.what, e.detail) for e in a.timeline]
    assert ("alert.firing", "DatabaseUnreachable") in events and ("detected", "alert DatabaseUnreachable") in events
    assert ("detected_by_readiness", m.readiness_signal) in events


def test_detect_by_names_the_alert_the_target_judges(tmp_path: Path) -> None:
    records = [*alert("DatabaseUnreachable", 21.4, 21.45), *alert("OrderIntakeFailing", 22.4, 22.41)]
    targets = {"detect_within": 2.0, "detect_by": "OrderIntakeFailing"}
    a = analyse(monitored(write_run(tmp_path), records, targets=targets))
    assert a.detection.value == pytest.approx(2.41)
    verdicts = {v.target: v for v in a.verdicts}
    assert "detect_by" not in verdicts  # it says how detect_within is measured
    assert not verdicts["detect_within"].met


def test_an_expected_alert_that_never_fired_is_not_detected_and_said_so(tmp_path: Path) -> None:
    targets = {"detect_within": 5.0, "detect_by": "ExecutionDelayHigh"}
    a = analyse(monitored(write_run(tmp_path), alert("DatabaseUnreachable", 21.4, 21.45), targets=targets))
    assert a.detection.status == MeasureStatus.NOT_DETECTED
    verdict = next(v for v in a.verdicts if v.target == "detect_within")
    assert not verdict.met
    assert a.monitoring is not None and a.monitoring.faults[0].expected_missing == ["ExecutionDelayHigh"]
    text = "\n".join(str(block) for s in build_document(a, "en").sections for block in s.blocks)
    assert "The expected alert ExecutionDelayHigh never fired for fault timeline[0] (db_stall → db)." in text


def test_a_fault_seen_by_one_alert_only_is_reported_so(tmp_path: Path) -> None:
    # The readiness endpoint never changes (a silent failure): only one alert sees the fault.
    spec = RunSpec(outage=Outage(start=20.0, end=30.0, detect_lag=None, late=True))
    a = analyse(monitored(write_run(tmp_path, spec), alert("ExecutionDelayHigh", 23.9, 23.95)))
    assert a.monitoring is not None
    [fault] = a.monitoring.faults
    assert fault.only_by == "ExecutionDelayHigh" and not fault.readiness_changed
    assert a.monitoring.readiness_detection.status == MeasureStatus.NOT_DETECTED
    en = "\n".join(str(block) for s in build_document(a, "en").sections for block in s.blocks)
    assert ("Fault timeline[0] (db_stall → db) was detected only by the alert ExecutionDelayHigh: no other alert "
            "fired, and the readiness endpoint stayed ready while it lasted.") in en
    ja = "\n".join(str(block) for s in build_document(a, "ja").sections for block in s.blocks)
    assert "障害 timeline[0]（db_stall → db）を検知したのはアラート ExecutionDelayHigh だけでした。" in ja


def test_two_alerts_or_a_readiness_change_mean_no_single_alert_saw_it(tmp_path: Path) -> None:
    spec = RunSpec(outage=Outage(start=20.0, end=30.0, detect_lag=None, late=True))
    records = [*alert("ExecutionDelayHigh", 23.9, 23.95), *alert("OutboxBacklogGrowing", 24.4, 24.45)]
    a = analyse(monitored(write_run(tmp_path, spec), records))
    assert a.monitoring is not None and a.monitoring.faults[0].only_by is None


def test_a_resolution_pairs_with_its_firing_and_a_repeat_is_not_a_second_alert(tmp_path: Path) -> None:
    records = [*alert("DatabaseUnreachable", 21.4, 21.45), *alert("DatabaseUnreachable", 21.4, 22.0),
               {**alert("DatabaseUnreachable", 21.4, 21.45, resolved=(30.4, 30.9))[1]}]
    a = analyse(monitored(write_run(tmp_path), records))
    assert a.monitoring is not None
    [only] = a.monitoring.alerts
    assert (only.received_t, only.ended_t, only.resolved_received_t) == (21.45, 30.4, 30.9)


def test_without_monitoring_detection_stays_the_readiness_poll(tmp_path: Path) -> None:
    a = analyse(write_run(tmp_path))
    assert a.monitoring is None
    assert a.detection.basis == "monitor_interval" and a.detection.value == pytest.approx(1.0)
    assert "Detection by the monitoring's alerts" not in str(build_document(a, "en").sections)


def promql(t: float, ok: bool, value: float) -> dict[str, Any]:
    return {"type": "promql", "t": t, "condition": "steady_state.promql[0]", "value": value, "ok": ok}


CONDITION = {"name": "steady_state.promql[0]", "role": "steady_state", "query": "sum(rate(errors[5s]))",
             "min": None, "max": 0.5}


def test_a_promql_steady_state_breach_is_impact_and_keeps_the_windows_unhealthy(tmp_path: Path) -> None:
    # No request fails; the PromQL condition alone breaks from 25.0 until 27.0.
    spec = RunSpec(outage=None)
    samples = [promql(round(t * 0.5, 3), not 25.0 <= t * 0.5 < 27.0, 2.0 if 25.0 <= t * 0.5 < 27.0 else 0.0)
               for t in range(0, 120)]
    a = analyse(monitored(write_run(tmp_path, spec), samples, section={**SECTION, "promql": [CONDITION]}))
    assert a.impact_start.value == pytest.approx(25.0)
    assert a.recovery_point.measured and a.recovery_point.value == pytest.approx(27.0, abs=0.1)
    unhealthy = [w for w in a.windows if not w.healthy]
    assert unhealthy and min(w.end for w in unhealthy) > 25.0 and max(w.start for w in unhealthy) < 27.0
    assert a.baseline is not None and a.baseline.met_steady_state is True
    [result] = a.monitoring.promql if a.monitoring else []
    assert result.breaches == [(25.0, 27.0)] and result.evaluations == 120 and result.held == 116
    text = "\n".join(str(block) for s in build_document(a, "en").sections for block in s.blocks)
    assert "sum(rate(errors[5s]))" in text and "4 (25.000)" not in text and "1 (25.000)" in text


def test_a_promql_breach_before_the_fault_makes_the_baseline_unsteady(tmp_path: Path) -> None:
    samples = [promql(round(t * 0.5, 3), t * 0.5 != 5.0, 0.0) for t in range(0, 120)]
    a = analyse(monitored(write_run(tmp_path, RunSpec(outage=None)), samples,
                          section={**SECTION, "promql": [CONDITION]}))
    assert a.baseline is not None and a.baseline.met_steady_state is False
    assert a.outcome == "inconclusive"


def test_a_promql_condition_never_evaluated_counts_nothing(tmp_path: Path) -> None:
    a = analyse(monitored(write_run(tmp_path), [], section={**SECTION, "promql": [CONDITION]}))
    assert a.monitoring is not None
    [result] = a.monitoring.promql
    assert (result.evaluations, result.breaches) == (0, [])


def test_no_alert_after_the_fault_is_a_finding_that_nobody_was_told(tmp_path: Path) -> None:
    a = analyse(monitored(write_run(tmp_path), alert("OutboxBacklogGrowing", 5.0, 5.01),
                          targets={"recover_within": 30.0}))
    assert a.detection.status == MeasureStatus.NOT_DETECTED
    assert a.monitoring is not None and a.monitoring.readiness_detection.measured  # readiness saw it
    assert [f.kind for f in a.findings if f.kind.startswith("not_")] == ["not_alerted"]
    text = "\n".join(str(block) for s in build_document(a, "en").sections for block in s.blocks)
    assert "the people on call would not have been told" in text
