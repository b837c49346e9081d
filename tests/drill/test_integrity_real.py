"""Data integrity on a real run: an acknowledged order deleted from the database on purpose,
just before the check, must come out as a missed target naming that order."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

pytestmark = pytest.mark.processes

HERE = Path(__file__).parent


def test_a_deleted_acknowledged_order_is_a_missed_target_naming_it(tmp_path, monkeypatch):
    import tradingstack.plugin
    from faultlab.analysis import analyse
    from faultlab.engine.run import run_scenario
    from faultlab.loader import load_scenario
    from faultlab.report import write_reports

    deleted: list[str] = []
    export = tradingstack.plugin.faultlab_export_state
    acknowledged_ids: list[str] = []
    original_check = tradingstack.plugin.faultlab_check_state

    def check_remembering_the_acks(directory, acknowledged, attempted, settle_s):
        acknowledged_ids.extend(sorted(acknowledged))
        return original_check(directory, acknowledged, attempted, settle_s)

    def export_after_losing_one(stack, directory):
        canary = [json.loads(line) for line in (stack.run_dir / "canary.jsonl").read_text().splitlines()]
        victim = next(row["ack"] for row in canary if row.get("ack"))
        with psycopg.connect(stack.dsn("db"), autocommit=True) as conn, conn.transaction():
            (order_id,) = conn.execute("SELECT id FROM orders WHERE client_order_id = %s", (victim,)).fetchone()
            conn.execute("DELETE FROM executions WHERE order_id = %s", (order_id,))
            conn.execute("DELETE FROM outbox WHERE order_id = %s", (order_id,))
            conn.execute("DELETE FROM orders WHERE id = %s", (order_id,))
        deleted.append(victim)
        export(stack, directory)

    monkeypatch.setattr(tradingstack.plugin, "faultlab_export_state", export_after_losing_one)
    monkeypatch.setattr(tradingstack.plugin, "faultlab_check_state", check_remembering_the_acks)
    result = run_scenario(load_scenario(HERE / "scenarios" / "trading-short.yaml"), reports_dir=tmp_path,
                          state_dir=tmp_path / "state")
    assert result.status == "completed" and deleted
    assert deleted[0] in acknowledged_ids
    assert (result.run_dir / "state" / "orders.csv.gz").is_file()  # the end state is in the evidence

    analysis = analyse(result.run_dir)
    lost = next(v for v in analysis.verdicts if v.target == "lost_orders")
    assert lost.outcome == "missed" and lost.measured.value == 1
    assert deleted[0] in " ".join(lost.evidence)
    assert not analysis.passed

    write_reports(result.run_dir)
    assert deleted[0] in (result.run_dir / "report.md").read_text()
    assert deleted[0] in (result.run_dir / "junit.xml").read_text()
    assert json.loads((result.run_dir / "result.json").read_text())["analysis"]["passed"] is False


def test_orders_executed_late_are_customer_impact_on_a_real_run(tmp_path):
    """FT-08's lesson on a short real run: the exchange out of reach, orders accepted at once
    and executed seconds later. With the execution delay bounded by the steady state, the
    report shows customer impact and counts the orders executed late."""
    from faultlab.analysis import analyse
    from faultlab.engine.run import run_scenario
    from faultlab.loader import load_scenario

    result = run_scenario(load_scenario(HERE / "scenarios" / "trading-late-execution.yaml"), reports_dir=tmp_path,
                          state_dir=tmp_path / "state")
    analysis = analyse(result.run_dir)
    assert analysis.impact_start.measured, analysis.impact_start
    canary = next(r for r in analysis.customer_impact.whole_run if r.source == "canary")
    assert canary.late > 10 and canary.rejected == 0 and canary.failed == 0
    assert analysis.completion_delay.during.max_s is not None and analysis.completion_delay.during.max_s > 2.0
