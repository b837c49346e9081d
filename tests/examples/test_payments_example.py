"""The payments example (examples/payments/): a system that is not a brokerage, drilled with
its own stack file, plugin and scenarios, reported in its own words in English and Japanese."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "payments"
FAULTLAB = shutil.which("faultlab")

TRADING_WORDS = re.compile(r"\border|\bexecution|注文|約定", re.IGNORECASE)
"""Words of the trading stack (``border`` and the like are not them)."""


def test_faultlab_validate_accepts_the_example() -> None:
    if FAULTLAB is None:
        pytest.skip("faultlab is not installed (pip install -e '.[test]')")
    result = subprocess.run([FAULTLAB, "validate", "examples/payments"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "ok  examples/payments/scenarios/pay-01-db-freeze.yaml (scenario PAY-01)",
        "ok  examples/payments/scenarios/pay-02-settler-partition.yaml (scenario PAY-02)",
        "ok  examples/payments/stack.yaml (stack payments)",
    ]


@pytest.mark.processes
def test_stack_up_lists_the_settler_which_has_no_port(tmp_path: Path) -> None:
    """``faultlab stack up`` prints every service, a background worker without a port too,
    and tears everything down on Ctrl-C."""
    if FAULTLAB is None:
        pytest.skip("faultlab is not installed (pip install -e '.[test]')")
    proc = subprocess.Popen([FAULTLAB, "stack", "up", str(EXAMPLE / "stack.yaml"), "--run-dir", str(tmp_path / "run")],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line.rstrip())
            if line.startswith("  link    settler-db"):
                break
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, (lines, out, err)
    assert "Traceback" not in err and "internal error" not in err, err
    assert "  service settler      (no port)" in lines, lines
    assert any(line.startswith("  link    api-db") for line in lines), lines


def _pay(plugin: Any, stack: Any, count: int) -> list[str]:
    place = plugin.canary(stack)
    acks = []
    for _ in range(count):
        outcome = place(2.0)
        assert outcome.ok, outcome
        assert outcome.ack is not None
        acks.append(outcome.ack)
    return acks


@pytest.mark.processes
def test_integrity_check_finds_what_was_done_to_the_database(tmp_path: Path) -> None:
    """The real stack, real payments; then one deleted, one charged twice and one accepted
    while the settler is cut off: each check names exactly that payment."""
    from faultlab.loader import load_stack
    from faultlab.plugin import load_plugin
    from faultlab.runtime.local import bring_up, proxy_client

    plugin = load_plugin("payments_plugin", folder=EXAMPLE)
    with bring_up(load_stack(EXAMPLE / "stack.yaml"), tmp_path / "run") as stack:
        acks = _pay(plugin, stack, 5)
        clean = plugin.integrity(stack, acks, settle_s=5.0)
        assert clean is not None
        assert clean.acknowledged == 5 and not clean.violations
        assert dict(clean.checked) == {"lost_payments": 0, "duplicate_charges": 0, "unsettled_payments": 0}
        delays = plugin.completion_delays(stack, acks)
        assert sorted(delays) == sorted(acks) and all(0 < d < 5 for d in delays.values()), delays

        lost, charged_twice = acks[0], acks[1]
        with psycopg.connect(stack.dsn("db"), autocommit=True) as conn, conn.transaction():
            conn.execute("DELETE FROM charges WHERE payment_id = (SELECT id FROM payments WHERE idempotency_key = %s)",
                         (lost,))
            conn.execute("DELETE FROM payments WHERE idempotency_key = %s", (lost,))
            conn.execute("INSERT INTO charges (payment_id, payer, amount_cents, currency)"
                         " SELECT id, payer, amount_cents, currency FROM payments WHERE idempotency_key = %s",
                         (charged_twice,))
        settler_link = proxy_client(stack.proxy_api).get_proxy("settler-db")
        settler_link.disable()
        try:
            (unsettled,) = _pay(plugin, stack, 1)
            found = plugin.integrity(stack, [*acks, unsettled], settle_s=1.0)
        finally:
            settler_link.enable()
        assert found is not None
        assert found.acknowledged == 6
        assert dict(found.checked) == {"lost_payments": 1, "duplicate_charges": 1, "unsettled_payments": 1}
        assert {v.check: v.ids for v in found.violations} == {
            "lost_payments": (lost,), "duplicate_charges": (charged_twice,), "unsettled_payments": (unsettled,),
        }

        settled = plugin.integrity(stack, [*acks[1:], unsettled], settle_s=10.0)
        assert settled is not None
        assert dict(settled.checked)["unsettled_payments"] == 0, "settled once the settler is back"


@pytest.mark.processes
def test_db_freeze_drill_is_reported_in_payments_words(tmp_path: Path) -> None:
    """PAY-01 for real: every target met, and the reports (md, html, junit, result.json) in
    English and Japanese speak of payments and settlement, never of orders or executions."""
    from faultlab.analysis import analyse
    from faultlab.engine.run import run_scenario
    from faultlab.loader import load_scenario
    from faultlab.report import write_reports

    result = run_scenario(load_scenario(EXAMPLE / "scenarios" / "pay-01-db-freeze.yaml"),
                          reports_dir=tmp_path / "reports", state_dir=tmp_path / "state")
    assert result.status == "completed", result.reason

    analysis = analyse(result.run_dir)
    assert {v.target: v.outcome for v in analysis.verdicts} == {
        "detect_within": "met", "recover_within": "met", "recover_after_clear_within": "met",
        "lost_payments": "met", "duplicate_charges": "met", "unsettled_payments": "met",
        "settlement_delay_p99": "met",
    }, [(v.target, v.outcome, v.measured) for v in analysis.verdicts]
    assert analysis.integrity is not None and (analysis.integrity.acknowledged or 0) > 100
    # Settlement delays were measured for the run's payments. Whether one was still waiting
    # for the settler when the freeze began is a race of a few milliseconds (seen both ways
    # in repeated runs), so no figure of the held ones is asserted here.
    assert analysis.completion_delay.recorded and analysis.completion_delay.before.count > 50

    files = write_reports(result.run_dir, langs=("en", "ja"))
    en_md, en_html = files.reports["en"]
    ja_md, ja_html = files.reports["ja"]
    for path in (en_md, en_html):
        text = path.read_text(encoding="utf-8")
        assert "Lost payments" in text and "Settlement delay" in text, path.name
    for path in (ja_md, ja_html):
        text = path.read_text(encoding="utf-8")
        assert "消失した支払" in text and "決済遅延" in text, path.name
    for path in (en_md, en_html, ja_md, ja_html, files.junit, files.result):
        text = path.read_text(encoding="utf-8")
        leaks = [text[max(0, m.start() - 40):m.end() + 40] for m in TRADING_WORDS.finditer(text)]
        assert not leaks, f"{path.name} speaks of trading: {leaks[:5]}"
