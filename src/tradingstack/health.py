"""The gateway's health: the readiness verdict and its alerts, monitoring statistics, metrics.

The readiness verdict (the body of ``GET /health/ready``) never touches the database: it is
a pure function (:func:`readiness`) of what was last seen (:class:`Evidence`). Two loops keep
that fresh, each on a connection of its own (not the order pool, so an exhausted pool still
shows): the *probe* runs ``SELECT 1`` every ``READY_INTERVAL`` within ``READY_DB_TIMEOUT``;
the *monitor* reads outbox, execution, router-heartbeat and batch statistics every
``MONITOR_INTERVAL``. A request the order store served counts as much as a probe that
answered. Under the ``strong`` profile a probe that answers also closes the store's circuit.

The verdict's ``alerts``, in this order:

==============================  ===================================================================
``database_unreachable``        no probe or request succeeded within ``READY_STALE``
``database_circuit_open``       the order store's circuit breaker is open
``order_intake_failing``        three or more requests failed in a row, the last under 2 s ago
``database_read_only``          the database refused a write as read-only under 2 s ago
``database_restarted``          the database server started again (its start time changed) under
                                ``RESTART_ALERT`` ago: a restart the pool rode out unseen
``database_connections_low``    ``DB_CONN_FREE_ALERT`` or fewer connection slots are left for
                                ordinary roles (another client is taking them)
``outbox_backlog_age``          the oldest unsent outbox entry is older than ``OUTBOX_AGE_ALERT``
``execution_delay``             the oldest sent, unfilled market order is older than ``EXEC_DELAY_ALERT``
``router_down``                 the router's heartbeat is older than ``ROUTER_STALE_ALERT``, or absent
``router_restarted``            the router started again (its start time changed) under ``RESTART_ALERT`` ago
``exchange_restarted``          the exchange started again (its fill log's epoch changed, as the router
                                recorded it) under ``RESTART_ALERT`` ago
==============================  ===================================================================

A restart is seen by the monitor from what the restarted part leaves behind: the database
server's start time, the router's ``started`` row, the epoch of the exchange's fill log in the
router's cursor; a first sight is no restart. The statistics' alerts (from
``database_connections_low`` to ``router_down``) need statistics younger than
``3 * MONITOR_INTERVAL + 1`` s; without them
``exchange_link`` is ``unknown``, else ``degraded`` when one of its three is raised and ``ok``
otherwise. Ready means: the database is ok, order intake is not failing and the pool is open.
A restart and low connections raise alerts without making the gateway unready: it can still
serve, and its operators must know. The body also carries the statistics themselves
(:func:`monitoring_stats`), and ``outbox_oldest_waiting_s``: how long the oldest unsent
outbox entry has waited at the moment of the answer, at most (the statistics' value aged by
the time since they were taken; 0 when nothing waited then).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from tradingstack.intake import IntakeControl
from tradingstack.orderstore import OrderStore

__all__ = ["Health", "HealthSettings", "Evidence", "GatewayMetrics", "readiness", "monitoring_stats", "RESTARTING"]

log = logging.getLogger("tradingstack.gateway")

# Order requests failing in a row, the last this recently, mean order intake is failing.
_FAILING_STREAK = 3
_FAILING_WITHIN_S = 2.0
# A read-only refusal this recent keeps its alert up.
_READ_ONLY_WITHIN_S = 2.0

RESTARTING = ("database", "router", "exchange")
"""The components whose restarts the monitor sees (the ``<component>_restarted`` alerts)."""

_STATS_SQL = """
    SELECT (SELECT count(*) FROM outbox WHERE sent_at IS NULL) AS backlog,
           (SELECT extract(epoch FROM clock_timestamp() - min(created_at))::float8
              FROM outbox WHERE sent_at IS NULL) AS outbox_age,
           (SELECT extract(epoch FROM clock_timestamp() - min(sent_at))::float8
              FROM orders WHERE status = 'sent' AND type = 'market') AS unfilled_age,
           (SELECT extract(epoch FROM clock_timestamp() - value::timestamptz)::float8
              FROM router_state WHERE name = 'heartbeat') AS router_age,
           (SELECT coalesce(max(seq), 0) FROM executions) AS exec_seq,
           extract(epoch FROM pg_postmaster_start_time())::float8 AS server_started,
           (SELECT value FROM router_state WHERE name = 'started') AS router_started,
           (SELECT split_part(value, ':', 1) FROM router_state WHERE name = 'fill_cursor') AS exchange_epoch,
           current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int
             - coalesce(current_setting('reserved_connections', true)::int, 0)
             - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int
             AS connections_free"""
_DELAYS_SQL = ("SELECT e.seq, extract(epoch FROM e.recorded_at - o.created_at)::float8 AS delay "
               "FROM executions e JOIN orders o ON o.id = e.order_id WHERE e.seq > $1 "
               "ORDER BY e.seq LIMIT 20000")
_BATCH_SQL = ("SELECT status, processed, total, window_s, margin_s, "
              "extract(epoch FROM deadline - clock_timestamp())::float8 AS left_s "
              "FROM batch_runs ORDER BY id DESC LIMIT 1")


class HealthSettings(Protocol):
    """The gateway settings health reads (see the gateway's environment table)."""

    database_url: str
    profile: str
    ready_db_timeout: float
    ready_interval: float
    ready_stale: float
    monitor_interval: float
    outbox_age_alert: float
    exec_delay_alert: float
    router_stale_alert: float
    restart_alert: float
    db_conn_free_alert: float
    probe_closes_circuit: bool


class GatewayMetrics:
    """The gateway's Prometheus metrics, in a registry of their own (served at ``/metrics``)."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
        fine = (.001, .002, .005, .01, .02, .03, .05, .075, .1, .25, .5, 1, 2.5, 5, 10, 30, 60)
        self.requests = Counter("gateway_requests", "HTTP requests by endpoint and outcome",
                                ["endpoint", "outcome"], registry=r)
        self.latency = Histogram("gateway_request_seconds", "Request latency", ["endpoint"],
                                 buckets=fine, registry=r)
        self.inflight = Gauge("gateway_inflight_orders", "Order requests in progress", registry=r)
        self.shed = Counter("gateway_orders_shed", "Orders refused at the door (429) because commits are backed up",
                            registry=r)
        self.batch_size = Histogram("gateway_order_batch_size", "Orders committed per transaction",
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=r)
        self.pool_size = Gauge("gateway_db_pool_size", "Open pooled connections", registry=r)
        self.pool_idle = Gauge("gateway_db_pool_idle", "Idle pooled connections", registry=r)
        self.pool_max = Gauge("gateway_db_pool_max", "Configured pool size", registry=r)
        self.db_up = Gauge("gateway_db_up", "1 when the last readiness probe succeeded", registry=r)
        self.ready = Gauge("gateway_ready", "1 when /health/ready reports ready", registry=r)
        self.circuit = Gauge("gateway_db_circuit_state", "0 closed, 1 half-open, 2 open", registry=r)
        self.circuit_transitions = Counter("gateway_db_circuit_transitions",
                                           "Database circuit breaker transitions by the state entered", ["to"],
                                           registry=r)
        for state in ("closed", "half_open", "open"):
            self.circuit_transitions.labels(state)  # at zero from the start, so the first transition shows
        self.pool_waiting = Gauge("gateway_db_pool_waiting", "Calls waiting for a pooled connection", registry=r)
        self.pool_in_use = Gauge("gateway_db_pool_in_use", "Pooled connections taken by calls", registry=r)
        self.acquire_timeouts = Counter("gateway_db_pool_acquire_timeouts",
                                        "Calls that gave up waiting for a pooled connection", registry=r)
        self.loop_lag = Gauge("gateway_event_loop_lag_seconds",
                              "Worst lateness of the event loop over the last second", registry=r)
        self.restarts = Counter("gateway_restarts_seen", "Restarts the monitor saw, by component", ["component"],
                                registry=r)
        for component in RESTARTING:
            self.restarts.labels(component)  # at zero from the start, so the first restart shows
        self.connections_free = Gauge("gateway_db_connections_free",
                                      "Connection slots the database has left for ordinary roles", registry=r)
        self.outbox_backlog = Gauge("outbox_backlog", "Outbox entries not yet sent", registry=r)
        self.outbox_age = Gauge("outbox_oldest_age_seconds", "Age of the oldest unsent entry", registry=r)
        self.unfilled_age = Gauge("execution_oldest_pending_seconds",
                                  "Age of the oldest sent, unfilled market order", registry=r)
        self.router_age = Gauge("router_heartbeat_age_seconds", "Seconds since the router's heartbeat",
                                registry=r)
        self.exec_delay = Histogram("execution_delay_seconds", "Acceptance to recorded execution",
                                    buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2, 5, 10, 30, 60, 300, 3600),
                                    registry=r)
        self.batch_processed = Gauge("batch_processed_executions", "Executions settled by the latest batch",
                                     registry=r)
        self.batch_total = Gauge("batch_total_executions", "Executions the latest batch must settle",
                                 registry=r)
        self.batch_progress = Gauge("batch_progress_ratio", "processed / total of the latest batch", registry=r)
        self.batch_running = Gauge("batch_running", "1 while the latest batch is running", registry=r)
        self.batch_margin = Gauge("batch_margin_seconds",
                                  "Margin left before the batch window closes (projected while running)",
                                  registry=r)

    def record_stats(self, stats: Mapping[str, Any]) -> None:
        """Set the gauges of the monitoring statistics (:func:`monitoring_stats`)."""
        self.outbox_backlog.set(stats["outbox_backlog"])
        self.outbox_age.set(stats["outbox_oldest_age_s"])
        self.unfilled_age.set(stats["oldest_unfilled_market_age_s"])
        if stats["router_heartbeat_age_s"] is not None:
            self.router_age.set(stats["router_heartbeat_age_s"])
        if stats.get("database_connections_free") is not None:
            self.connections_free.set(stats["database_connections_free"])
        batch = stats.get("batch")
        if batch is not None:
            running = batch["status"] == "running"
            total = batch["total"]
            self.batch_processed.set(batch["processed"])
            self.batch_total.set(total)
            self.batch_progress.set(batch["processed"] / total if total else (0.0 if running else 1.0))
            self.batch_running.set(1 if running else 0)
            self.batch_margin.set(batch["margin_s"] or 0.0)


def monitoring_stats(row: Mapping[str, Any], batch: Mapping[str, Any] | None) -> dict[str, Any]:
    """The statistics the readiness body carries, from the monitor's statistics and latest-batch rows."""
    stats: dict[str, Any] = {"outbox_backlog": row["backlog"], "outbox_oldest_age_s": row["outbox_age"] or 0.0,
                             "oldest_unfilled_market_age_s": row["unfilled_age"] or 0.0,
                             "router_heartbeat_age_s": row["router_age"]}
    if row.get("connections_free") is not None:
        stats["database_connections_free"] = row["connections_free"]
    if batch is not None:
        running = batch["status"] == "running"
        # While the batch runs, its margin is projected: the time left before its deadline.
        stats["batch"] = {"status": batch["status"], "processed": batch["processed"], "total": batch["total"] or 0,
                          "margin_s": batch["left_s"] if running else batch["margin_s"]}
    return stats


@dataclass(frozen=True)
class Evidence:
    """What a readiness verdict rests on, seen at ``now`` (times on the monotonic clock; 0 = never).

    ``db_ok_at``: the database last answered a probe or served a request; ``db_error``: the
    last probe's error ("" after a success); ``circuit``: the order store's breaker state;
    ``failed_requests`` in a row, the last at ``failed_at``; ``read_only_at``: the last
    read-only refusal; ``stats``: the latest :func:`monitoring_stats` ({} before the first),
    taken at ``stats_at``; ``pool_open``: the order pool is open; ``restarted_at``: when the
    monitor last saw each component of :data:`RESTARTING` start again.
    """

    now: float
    db_ok_at: float
    db_error: str
    circuit: str
    failed_requests: int
    failed_at: float
    read_only_at: float
    stats: Mapping[str, Any]
    stats_at: float
    pool_open: bool
    restarted_at: Mapping[str, float] = field(default_factory=dict)


def readiness(seen: Evidence, settings: HealthSettings) -> dict[str, Any]:
    """The readiness verdict and what it is based on: the ``/health/ready`` body (see the module)."""
    db_age = seen.now - seen.db_ok_at if seen.db_ok_at else None
    db_ok = db_age is not None and db_age < settings.ready_stale
    # The database answers probes but not order traffic (locks, exhausted connections):
    # every recent request failed.
    intake_failing = seen.failed_requests >= _FAILING_STREAK and seen.now - seen.failed_at < _FAILING_WITHIN_S
    alerts = []
    if not db_ok:
        alerts.append("database_unreachable")
    if seen.circuit == "open":
        alerts.append("database_circuit_open")
    if intake_failing:
        alerts.append("order_intake_failing")
    if seen.read_only_at and seen.now - seen.read_only_at < _READ_ONLY_WITHIN_S:
        alerts.append("database_read_only")
    if _restarted(seen, "database", settings):
        alerts.append("database_restarted")
    link, link_alerts = _exchange_link(seen, settings)
    alerts += link_alerts
    alerts += [f"{c}_restarted" for c in RESTARTING if c != "database" and _restarted(seen, c, settings)]
    ready = db_ok and not intake_failing and seen.pool_open
    return {"ready": ready, "profile": settings.profile,
            "db": {"ok": db_ok, "last_ok_age_s": None if db_age is None else round(db_age, 3),
                   "error": seen.db_error or None, "circuit": seen.circuit},
            "exchange_link": link, "alerts": alerts, **seen.stats, **_waiting_now(seen)}


def _waiting_now(seen: Evidence) -> dict[str, float]:
    """``outbox_oldest_waiting_s``: how long the oldest unsent outbox entry has waited *now*, at
    most: its age when the statistics were taken plus their age (it may have been sent since).
    A drill measures the drain of a fault's backlog from it: nothing waits from before the fault
    cleared once it is younger than the time since."""
    if not seen.stats_at or "outbox_backlog" not in seen.stats:
        return {}
    waited = seen.stats["outbox_oldest_age_s"] + (seen.now - seen.stats_at) if seen.stats["outbox_backlog"] else 0.0
    return {"outbox_oldest_waiting_s": round(waited, 3)}


def _restarted(seen: Evidence, component: str, settings: HealthSettings) -> bool:
    at = seen.restarted_at.get(component, 0.0)
    return bool(at) and seen.now - at < settings.restart_alert


def _exchange_link(seen: Evidence, settings: HealthSettings) -> tuple[str, list[str]]:
    """The exchange link's state from the monitoring statistics, and the statistics' alerts
    (the database's connection slots, then the exchange link's)."""
    if not seen.stats_at or seen.now - seen.stats_at > 3 * settings.monitor_interval + 1:
        return "unknown", []
    stats = seen.stats
    alerts = []
    free = stats.get("database_connections_free")
    if free is not None and free <= settings.db_conn_free_alert:
        alerts.append("database_connections_low")
    link_alerts = []
    if stats["outbox_oldest_age_s"] > settings.outbox_age_alert:
        link_alerts.append("outbox_backlog_age")
    if stats["oldest_unfilled_market_age_s"] > settings.exec_delay_alert:
        link_alerts.append("execution_delay")
    age = stats.get("router_heartbeat_age_s")
    if age is None or age > settings.router_stale_alert:
        link_alerts.append("router_down")
    return ("degraded" if link_alerts else "ok"), alerts + link_alerts


class Health:
    """The gateway's view of its own health: the probe and monitor loops, readiness, metrics."""

    def __init__(self, settings: HealthSettings, store: OrderStore, metrics: GatewayMetrics,
                 intake: IntakeControl | None = None):
        self.s = settings
        self.store = store
        self.m = metrics
        self.intake = intake
        self.probe_ok_at = 0.0
        self.db_error = "not probed yet"
        self.stats: dict[str, Any] = {}
        self.stats_at = 0.0
        self.exec_seq: int | None = None
        self.instances: dict[str, Any] = {}
        self.restarted_at: dict[str, float] = {}
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start the probe and monitor loops."""
        self.tasks = [asyncio.create_task(self._probe_loop()), asyncio.create_task(self._monitor_loop()),
                      asyncio.create_task(self._lag_loop())]

    async def stop(self) -> None:
        """Stop the loops."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    @property
    def db_ok_at(self) -> float:
        """When the database last answered a probe or served a request (0: never)."""
        return max(self.probe_ok_at, self.store.outcomes.answered_at)

    def evidence(self) -> Evidence:
        """What was last seen, now."""
        outcomes = self.store.outcomes
        return Evidence(now=time.monotonic(), db_ok_at=self.db_ok_at, db_error=self.db_error,
                        circuit=self.store.breaker.state, failed_requests=outcomes.failed_requests,
                        failed_at=outcomes.failed_at, read_only_at=outcomes.read_only_at, stats=self.stats,
                        stats_at=self.stats_at, pool_open=self.store.pool is not None,
                        restarted_at=dict(self.restarted_at))

    def readiness(self) -> dict[str, Any]:
        """The readiness verdict now (never touches the database); also sets the ``gateway_ready`` gauge."""
        verdict = readiness(self.evidence(), self.s)
        self.m.ready.set(1 if verdict["ready"] else 0)
        if self.intake is not None:
            verdict["intake"] = self.intake.state.to_json()
        return verdict

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format, the pool, circuit, database and readiness
        gauges brought up to date: a scrape sees the database as readiness does at that moment,
        not as the last probe left it (a probe of a frozen database waits its full timeout)."""
        sizes = self.store.pool_sizes()
        if sizes is not None:
            self.m.pool_size.set(sizes[0])
            self.m.pool_idle.set(sizes[1])
            self.m.pool_in_use.set(sizes[0] - sizes[1])
        self.m.pool_waiting.set(self.store.waiting)
        self.m.circuit.set(self.store.breaker.code)
        verdict = self.readiness()
        self.m.db_up.set(1 if verdict["db"]["ok"] else 0)
        return generate_latest(self.m.registry)

    async def _probe_loop(self) -> None:
        conn: asyncpg.Connection | None = None
        while True:
            started = time.monotonic()
            try:
                async with asyncio.timeout(self.s.ready_db_timeout):
                    if conn is None or conn.is_closed():
                        conn = await asyncpg.connect(self.s.database_url, timeout=self.s.ready_db_timeout,
                                                     server_settings={"application_name": "gateway-probe"})
                    await conn.fetchval("SELECT 1")
                self.probe_ok_at, self.db_error = time.monotonic(), ""
                if self.s.probe_closes_circuit and self.store.breaker.state != "closed":
                    self.store.breaker.success()
            except asyncio.CancelledError:
                if conn is not None:
                    conn.terminate()
                raise
            except Exception as exc:  # noqa: BLE001  (any probe failure means "not ready")
                self.db_error = f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__
                if conn is not None:
                    conn.terminate()
                    conn = None
            db_ok_at = self.db_ok_at
            self.m.db_up.set(1 if db_ok_at and time.monotonic() - db_ok_at < self.s.ready_stale else 0)
            await asyncio.sleep(max(0.0, self.s.ready_interval - (time.monotonic() - started)))

    async def _monitor_loop(self) -> None:
        conn: asyncpg.Connection | None = None
        while True:
            started = time.monotonic()
            try:
                async with asyncio.timeout(max(1.0, self.s.monitor_interval)):
                    if conn is None or conn.is_closed():
                        conn = await asyncpg.connect(self.s.database_url, timeout=1.0,
                                                     server_settings={"application_name": "gateway-monitor"})
                    row = await conn.fetchrow(_STATS_SQL)
                    if self.exec_seq is None:
                        self.exec_seq = row["exec_seq"]
                    delays = await conn.fetch(_DELAYS_SQL, self.exec_seq)
                    batch = await conn.fetchrow(_BATCH_SQL)
                    if self.intake is not None:
                        await self.intake.refresh(conn)
                for component, column in zip(RESTARTING, ("server_started", "router_started", "exchange_epoch"),
                                             strict=True):
                    self._saw_instance(component, row[column])
                for d in delays:
                    self.m.exec_delay.observe(max(0.0, d["delay"]))
                if delays:
                    self.exec_seq = delays[-1]["seq"]
                stats = monitoring_stats(row, batch)
                self.m.record_stats(stats)
                self.stats, self.stats_at = stats, time.monotonic()
            except asyncio.CancelledError:
                if conn is not None:
                    conn.terminate()
                raise
            except Exception as exc:  # noqa: BLE001  (statistics are best effort)
                log.debug("monitor query failed: %s", exc)
                if conn is not None:
                    conn.terminate()
                    conn = None
            await asyncio.sleep(max(0.0, self.s.monitor_interval - (time.monotonic() - started)))

    def _saw_instance(self, component: str, instance: Any) -> None:
        """Note a restart of ``component`` when what identifies its running instance (a start
        time, an epoch) changed since the last look; the first sight is no restart."""
        if instance is None or instance == "":
            return
        before = self.instances.get(component)
        if before is not None and before != instance:
            self.restarted_at[component] = time.monotonic()
            self.m.restarts.labels(component).inc()
            log.warning("the %s restarted (%s, was %s)", component, instance, before)
        self.instances[component] = instance

    async def _lag_loop(self) -> None:
        """How late the event loop wakes up: the worst of each second, as a gauge."""
        tick, worst, since = 0.05, 0.0, time.monotonic()
        while True:
            before = time.monotonic()
            await asyncio.sleep(tick)
            now = time.monotonic()
            worst = max(worst, now - before - tick)
            if now - since >= 1.0:
                self.m.loop_lag.set(round(worst, 4))
                worst, since = 0.0, now
