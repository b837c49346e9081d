"""The gateway's readiness verdict and monitoring statistics as pure functions (no database)."""

from __future__ import annotations

import dataclasses
import time
from types import SimpleNamespace

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tradingstack.gateway import GatewaySettings
from tradingstack.health import Evidence, GatewayMetrics, Health, monitoring_stats, readiness

NOW = 1000.0

_GOOD_STATS = {"outbox_backlog": 0, "outbox_oldest_age_s": 0.0, "oldest_unfilled_market_age_s": 0.0,
               "router_heartbeat_age_s": 0.5}


@pytest.fixture
def settings(monkeypatch) -> GatewaySettings:
    """The gateway's own settings, with the thresholds the tests rely on set explicitly."""
    for name, value in {"GATEWAY_PORT": "1", "DATABASE_URL": "postgresql://nowhere/trading",
                        "TRADINGSTACK_PROFILE": "strong", "READY_STALE": "0.7", "MONITOR_INTERVAL": "1.0",
                        "OUTBOX_AGE_ALERT": "3", "EXEC_DELAY_ALERT": "3", "ROUTER_STALE_ALERT": "3"}.items():
        monkeypatch.setenv(name, value)
    return GatewaySettings()


def _healthy(**changes) -> Evidence:
    """A gateway whose database answered just now and whose statistics are fresh and quiet."""
    seen = Evidence(now=NOW, db_ok_at=NOW - 0.1, db_error="", circuit="closed", failed_requests=0, failed_at=0.0,
                    read_only_at=0.0, stats=_GOOD_STATS, stats_at=NOW - 0.5, pool_open=True)
    return dataclasses.replace(seen, **changes)


def test_a_healthy_gateway_is_ready_and_its_body_carries_the_statistics(settings):
    verdict = readiness(_healthy(), settings)
    assert verdict == {"ready": True, "profile": "strong",
                       "db": {"ok": True, "last_ok_age_s": 0.1, "error": None, "circuit": "closed"},
                       "exchange_link": "ok", "alerts": [], **_GOOD_STATS,
                       "outbox_oldest_waiting_s": 0.0}


def test_the_oldest_outbox_wait_is_aged_by_the_time_since_the_statistics(settings):
    # A drill judges the drain of a fault's backlog by it: an upper bound of the wait now.
    waiting = {**_GOOD_STATS, "outbox_backlog": 12, "outbox_oldest_age_s": 2.0}
    assert readiness(_healthy(stats=waiting, stats_at=NOW - 0.5), settings)["outbox_oldest_waiting_s"] == 2.5
    assert readiness(_healthy(stats={**waiting, "outbox_backlog": 0}), settings)["outbox_oldest_waiting_s"] == 0.0
    assert "outbox_oldest_waiting_s" not in readiness(_healthy(stats={}, stats_at=0.0), settings)


def test_a_gateway_that_never_reached_its_database_is_not_ready(settings):
    seen = _healthy(db_ok_at=0.0, db_error="not probed yet", stats={}, stats_at=0.0)
    verdict = readiness(seen, settings)
    assert verdict["ready"] is False
    assert verdict["alerts"] == ["database_unreachable"]
    assert verdict["db"] == {"ok": False, "last_ok_age_s": None, "error": "not probed yet", "circuit": "closed"}
    assert verdict["exchange_link"] == "unknown"


def test_the_database_counts_as_unreachable_once_its_last_answer_is_older_than_ready_stale(settings):
    assert readiness(_healthy(db_ok_at=NOW - 0.69), settings)["ready"] is True
    late = readiness(_healthy(db_ok_at=NOW - 0.71), settings)
    assert late["ready"] is False and late["alerts"] == ["database_unreachable"]


def test_order_intake_fails_after_three_failed_requests_in_a_row_for_two_seconds(settings):
    assert readiness(_healthy(failed_requests=2, failed_at=NOW - 0.1), settings)["ready"] is True
    failing = readiness(_healthy(failed_requests=3, failed_at=NOW - 1.9), settings)
    assert failing["ready"] is False and failing["alerts"] == ["order_intake_failing"]
    assert readiness(_healthy(failed_requests=3, failed_at=NOW - 2.1), settings)["ready"] is True


def test_an_open_circuit_or_a_read_only_refusal_alerts_without_making_the_gateway_unready(settings):
    verdict = readiness(_healthy(circuit="open", read_only_at=NOW - 1.0), settings)
    assert verdict["ready"] is True
    assert verdict["alerts"] == ["database_circuit_open", "database_read_only"]
    assert verdict["db"]["circuit"] == "open"
    assert readiness(_healthy(read_only_at=NOW - 2.5), settings)["alerts"] == []


def test_a_closed_pool_is_not_ready(settings):
    verdict = readiness(_healthy(pool_open=False), settings)
    assert verdict["ready"] is False and verdict["alerts"] == []


def test_every_alert_at_once_comes_in_the_documented_order(settings):
    stats = {**_GOOD_STATS, "outbox_oldest_age_s": 3.5, "oldest_unfilled_market_age_s": 4.0,
             "router_heartbeat_age_s": None}
    seen = _healthy(db_ok_at=NOW - 5, circuit="open", failed_requests=40, failed_at=NOW - 0.2,
                    read_only_at=NOW - 0.2, stats=stats)
    verdict = readiness(seen, settings)
    assert verdict["alerts"] == ["database_unreachable", "database_circuit_open", "order_intake_failing",
                                 "database_read_only", "outbox_backlog_age", "execution_delay", "router_down"]
    assert verdict["exchange_link"] == "degraded"


def test_stale_statistics_leave_the_exchange_link_unknown_and_raise_none_of_its_alerts(settings):
    stats = {**_GOOD_STATS, "outbox_oldest_age_s": 60.0, "router_heartbeat_age_s": None}
    fresh_enough = readiness(_healthy(stats=stats, stats_at=NOW - 3.9), settings)
    assert fresh_enough["exchange_link"] == "degraded"
    assert fresh_enough["alerts"] == ["outbox_backlog_age", "router_down"]
    stale = readiness(_healthy(stats=stats, stats_at=NOW - 4.1), settings)
    assert stale["exchange_link"] == "unknown" and stale["alerts"] == []
    assert stale["outbox_oldest_age_s"] == 60.0


def test_monitoring_stats_of_a_quiet_stack_without_a_batch():
    row = {"backlog": 0, "outbox_age": None, "unfilled_age": None, "router_age": None, "exec_seq": 0}
    assert monitoring_stats(row, None) == {"outbox_backlog": 0, "outbox_oldest_age_s": 0.0,
                                           "oldest_unfilled_market_age_s": 0.0, "router_heartbeat_age_s": None}


def test_a_running_batch_reports_its_projected_margin_and_a_finished_one_its_recorded_margin():
    row = {"backlog": 7, "outbox_age": 1.5, "unfilled_age": 0.25, "router_age": 0.4, "exec_seq": 12}
    running = {"status": "running", "processed": 10, "total": None, "window_s": 60, "margin_s": None,
               "left_s": 42.0}
    stats = monitoring_stats(row, running)
    assert stats["outbox_backlog"] == 7 and stats["outbox_oldest_age_s"] == 1.5
    assert stats["batch"] == {"status": "running", "processed": 10, "total": 0, "margin_s": 42.0}
    finished = {**running, "status": "finished", "total": 10, "margin_s": 31.5, "left_s": -3.0}
    assert monitoring_stats(row, finished)["batch"] == {"status": "finished", "processed": 10, "total": 10,
                                                        "margin_s": 31.5}


def test_a_scrape_sees_the_database_as_readiness_does_at_that_moment(settings):
    """The gauge Prometheus' DatabaseUnreachable alert reads is brought up to date at every
    scrape: a probe of a frozen database waits its whole timeout before it would set it."""
    outcomes = SimpleNamespace(answered_at=0.0, failed_requests=0, failed_at=0.0, read_only_at=0.0)
    store = SimpleNamespace(outcomes=outcomes, breaker=SimpleNamespace(state="closed", code=0), pool=object(),
                            pool_sizes=lambda: (4, 2), waiting=0)
    health = Health(settings, store, GatewayMetrics())  # type: ignore[arg-type]

    def db_up() -> float:
        families = text_string_to_metric_families(health.exposition().decode())
        return next(s.value for f in families for s in f.samples if s.name == "gateway_db_up")

    health.probe_ok_at = time.monotonic()
    assert db_up() == 1.0
    health.m.db_up.set(1)  # what the last probe left, before the database froze
    health.probe_ok_at = time.monotonic() - settings.ready_stale - 0.1
    assert db_up() == 0.0


def test_a_restart_is_an_alert_for_a_while_without_making_the_gateway_unready(settings):
    restarted = readiness(_healthy(restarted_at={"database": NOW - 1.0}), settings)
    assert restarted["ready"] is True and restarted["alerts"] == ["database_restarted"]
    assert readiness(_healthy(restarted_at={"database": NOW - settings.restart_alert - 0.1}), settings)["alerts"] == []
    assert readiness(_healthy(restarted_at={}), settings)["alerts"] == []
    both = readiness(_healthy(restarted_at={"exchange": NOW - 2.0, "router": NOW - 5.0}), settings)
    assert both["alerts"] == ["router_restarted", "exchange_restarted"] and both["exchange_link"] == "ok"


def test_few_free_connection_slots_are_an_alert(settings):
    low = readiness(_healthy(stats={**_GOOD_STATS, "database_connections_free": 0}), settings)
    assert low["ready"] is True and low["alerts"] == ["database_connections_low"]
    assert low["exchange_link"] == "ok"  # the database's slots say nothing of the exchange link
    plenty = readiness(_healthy(stats={**_GOOD_STATS, "database_connections_free": 60}), settings)
    assert plenty["alerts"] == []


def test_monitoring_stats_carry_the_free_connection_slots():
    row = {"backlog": 0, "outbox_age": None, "unfilled_age": None, "router_age": 0.2, "exec_seq": 0,
           "server_started": 1.0e9, "connections_free": 12}
    assert monitoring_stats(row, None)["database_connections_free"] == 12


def test_the_monitor_sees_a_restart_when_an_instance_changes_and_not_at_first_sight(settings):
    from tradingstack.health import GatewayMetrics, Health

    metrics = GatewayMetrics()
    health = Health(settings, store=None, metrics=metrics)  # the store is not needed to watch instances
    health._saw_instance("router", "2026-11-30 10:00:00+00")
    health._saw_instance("exchange", "")                     # no fill cursor yet: nothing known
    health._saw_instance("router", "2026-11-30 10:00:00+00")
    assert health.restarted_at == {}
    health._saw_instance("router", "2026-11-30 10:00:07+00")
    health._saw_instance("database", 1.0e9)
    health._saw_instance("database", 1.0e9 + 12)
    assert set(health.restarted_at) == {"router", "database"}
    assert metrics.restarts.labels("router")._value.get() == 1
    assert metrics.restarts.labels("exchange")._value.get() == 0
