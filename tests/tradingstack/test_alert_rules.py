"""The trading stack's alert rules: promtool's unit tests (alert_rules_test.yaml) of every rule,
and the monitored stack file is the trading stack file plus its monitoring, nothing else."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from faultlab.loader import load_rules, load_stack

HERE = Path(__file__).resolve().parent
STACKS = HERE.parents[1] / "stacks"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian's prometheus) is not installed")
def test_every_alert_rule_fires_on_trouble_and_stays_quiet_otherwise() -> None:
    result = subprocess.run(["promtool", "test", "rules", "alert_rules_test.yaml"], cwd=HERE,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_rules_define_the_alerts_the_issue_names() -> None:
    assert load_rules(STACKS / "trading-alerts.yaml") == (
        "DatabaseUnreachable", "OrderIntakeFailing", "ExecutionDelayHigh", "OutboxBacklogGrowing",
        "NightlyBatchBehindSchedule")


def test_the_monitored_stack_is_the_trading_stack_plus_its_monitoring() -> None:
    plain = yaml.safe_load((STACKS / "trading.yaml").read_text())
    monitored = yaml.safe_load((STACKS / "trading-monitored.yaml").read_text())
    monitoring = monitored.pop("monitoring")
    assert monitored == plain
    assert monitoring["rules"] == "trading-alerts.yaml"
    stack = load_stack(STACKS / "trading-monitored.yaml")
    assert stack.monitoring is not None and stack.monitoring.alerts[0] == "DatabaseUnreachable"
    assert set(stack.monitoring.scrape) == {"gateway", "router", "exchange"}
    assert stack.monitoring.resolution == pytest.approx(1.5)
