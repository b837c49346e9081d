"""The trading stack's faultlab drill plugin (named by ``plugin:`` in stacks/trading.yaml).

Its ``faultlab_*`` functions are the hooks of :mod:`faultlab.plugin.hookspecs`, adapting
:mod:`tradingstack.drill`: the canary order, the integrity check, execution delays, the load
generator and the batch's progress. :func:`faultlab_declare` gives faultlab the trading
words its reports use: orders, lost orders, execution delay. ``stack`` is faultlab's
:class:`~faultlab.runtime.base.StackHandle`, whichever runtime runs the stack: ``url(service)``,
``dsn(service)``; the service names are this stack's own (``gateway``, ``exchange``, ``db``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from faultlab.plugin import (
    CanaryOutcome,
    Completion,
    Declaration,
    IntegrityCheck,
    IntegrityReport,
    MonitorContract,
    Outcome,
    Text,
    Violation,
)
from tradingstack import drill, endstate

if TYPE_CHECKING:
    from faultlab.runtime.base import StackHandle

__all__ = [
    "DECLARATION",
    "faultlab_declare",
    "faultlab_canary",
    "faultlab_integrity",
    "faultlab_export_state",
    "faultlab_check_state",
    "faultlab_completion_delays",
    "faultlab_locustfile",
    "faultlab_load_host",
    "faultlab_load_env",
    "faultlab_job_progress",
]

#: The integrity checks, and the violation kinds of :func:`drill.check_integrity` in each.
CHECKS: dict[str, tuple[Text, tuple[str, ...]]] = {
    "lost_orders": (Text("Lost orders (acknowledged, then missing)", "消失注文（受付済みなのに存在しない注文）"),
                    ("lost",)),
    "duplicate_orders": (Text("Duplicate orders", "重複注文"), ("duplicate",)),
    "duplicate_executions": (Text("Orders executed twice", "二重約定"), ("double_execution",)),
    "stuck_orders": (Text("Orders stuck unexecuted", "未約定のまま滞留した注文"), ("stuck",)),
    "unreconciled": (Text("Cash and positions not reconciled", "資金・残高（預り）の不整合"),
                     ("cash_mismatch", "position_mismatch", "settled_cash_mismatch", "settled_position_mismatch")),
}

DECLARATION = Declaration(
    request=Text("order", "注文"),
    requests=Text("orders", "注文"),
    ids=Text("Order IDs", "注文 ID"),
    integrity_checks=tuple(IntegrityCheck(name, label, loss=name == "lost_orders")
                           for name, (label, _) in CHECKS.items()),
    completion=Completion("execution_delay", Text("Execution delay", "約定遅延")),
    monitor=MonitorContract(alerts="alerts", backlog="outbox_backlog", backlog_age="outbox_oldest_waiting_s",
                            intake_alert="order_intake_failing"),
    ack_field="client_order_id",
    request_names=("place_order",),
    shed_statuses=(429,),
    outcomes=(
        Outcome("executed", Text("executed", "約定済み")),
        Outcome("resting", Text("resting (an open limit or stop order)", "待機中（未約定の指値・逆指値注文）")),
        Outcome("open", Text("open (a market order not executed yet)", "未約定（成行注文）")),
        Outcome("cancelled", Text("cancelled", "取消済み")),
        Outcome("rejected", Text("rejected", "受付拒否")),
    ),
)


def faultlab_declare() -> Declaration:
    """The trading stack's words and checks."""
    return DECLARATION


def faultlab_canary(stack: StackHandle) -> Callable[[float], CanaryOutcome]:
    """``place(timeout_s)``: one small market order through the gateway."""
    import httpx

    base = stack.url("gateway")
    client = httpx.Client(limits=httpx.Limits(max_connections=64, max_keepalive_connections=16))

    def place(timeout_s: float) -> CanaryOutcome:
        result = drill.place_canary_order(base, timeout=timeout_s, client=client)
        return CanaryOutcome(ok=result.ok, status=result.status, ack=result.ack, error=result.error,
                             request_id=result.client_order_id)

    return place


def _check_of(kind: str) -> str:
    return next(name for name, (_, kinds) in CHECKS.items() if kind in kinds)


def faultlab_integrity(stack: StackHandle, acknowledged: Iterable[str], settle_s: float) -> IntegrityReport:
    """Wait (up to ``settle_s``) for the outbox to drain, then reconcile everything, on the
    live database (faultlab uses the end-state hooks below when it can; this one serves a
    caller without a run directory)."""
    dsn = stack.dsn("db")
    drill.wait_settled(dsn, timeout=settle_s)
    acked = set(acknowledged)
    checked = dict.fromkeys(CHECKS, 0)
    violations = []
    for violation in drill.check_integrity(dsn, acked, settle_s=settle_s):
        check = _check_of(violation.kind)
        ids = [str(i) for i in (violation.client_order_ids or violation.order_ids or violation.account_ids)]
        checked[check] += max(1, len(ids))
        violations.append(Violation(check, tuple(ids), f"{violation.kind}: {violation.detail}"))
    return IntegrityReport(acknowledged=len(acked), checked=checked, violations=tuple(violations))


#: How long :func:`faultlab_export_state` waits for the outbox to drain before exporting.
EXPORT_SETTLE_S = 10.0


def faultlab_export_state(stack: StackHandle, directory: Path) -> None:
    """Orders, executions, accounts and positions, once the outbox drained (up to
    :data:`EXPORT_SETTLE_S`), from one snapshot (see :mod:`tradingstack.endstate`)."""
    dsn = stack.dsn("db")
    drill.wait_settled(dsn, timeout=EXPORT_SETTLE_S)
    endstate.export_state(dsn, directory)


def faultlab_check_state(directory: Path, acknowledged: Iterable[str], attempted: Iterable[str],
                         settle_s: float) -> IntegrityReport:
    """The integrity check on the exported end state alone, and every order's outcome."""
    acked = set(acknowledged)
    findings, outcomes = endstate.check_state(directory, acked, attempted, settle_s=settle_s)
    checked = dict.fromkeys(CHECKS, 0)
    violations = []
    for finding in findings:
        check = _check_of(finding.kind)
        checked[check] += max(1, len(finding.ids))
        violations.append(Violation(check, finding.ids, f"{finding.kind}: {finding.detail}"))
    return IntegrityReport(acknowledged=len(acked), checked=checked, violations=tuple(violations), outcomes=outcomes)


#: How long :func:`faultlab_completion_delays` waits for orders held during a fault to be executed.
EXECUTION_SETTLE_S = 15.0

_EXECUTION_DELAYS = """
SELECT o.client_order_id, extract(epoch FROM min(e.executed_at) - o.created_at)::float8
FROM unnest(%s::text[]) AS a(client_order_id)
JOIN orders o ON o.client_order_id = a.client_order_id
JOIN executions e ON e.order_id = o.id
WHERE o.type = 'market'
GROUP BY o.client_order_id, o.created_at
"""


def faultlab_completion_delays(stack: StackHandle, acknowledged: Iterable[str]) -> dict[str, float]:
    """Execution delay: seconds from acceptance (``orders.created_at``) to the first fill
    (``executions.executed_at``) of every acknowledged market order that was executed.

    Waits (up to :data:`EXECUTION_SETTLE_S`) for the outbox to drain first, so orders held by
    a fault count with their real delay. Limit and stop orders are left out: they wait for
    their price by design, which is not a delay of the system.
    """
    import psycopg

    dsn = stack.dsn("db")
    drill.wait_settled(dsn, timeout=EXECUTION_SETTLE_S)
    acked = sorted(set(acknowledged))
    if not acked:
        return {}
    with psycopg.connect(dsn, connect_timeout=10, autocommit=True) as conn:
        rows = conn.execute(_EXECUTION_DELAYS, (acked,)).fetchall()
    return {coid: float(delay) for coid, delay in rows if delay is not None}


def faultlab_locustfile() -> str:
    """The trading stack's locustfile."""
    return drill.locustfile_path()


def faultlab_load_host(stack: StackHandle) -> str:
    """Load goes to the order gateway."""
    return str(stack.url("gateway"))


#: Requests per second of one simulated user: a trader, not a benchmark loop.
USER_RATE_PER_S = 5


def faultlab_load_env(stack: StackHandle, shape: str | None) -> dict[str, str]:
    """Each user paces itself at :data:`USER_RATE_PER_S`; ``LOAD_SHAPE`` selects a
    market-shaped load (see tradingstack.loadshapes)."""
    env = {"LOAD_RATE_PER_USER": str(USER_RATE_PER_S)}
    if shape:
        env["LOAD_SHAPE"] = shape
    return env


def faultlab_job_progress(stack: StackHandle, job: str) -> float | None:
    """The nightly batch's progress (0..1) from its newest run, or None before it starts."""
    if job != "batch":
        return None
    import psycopg

    try:
        with psycopg.connect(stack.dsn("db"), connect_timeout=2, autocommit=True) as conn:
            row = conn.execute("SELECT processed, total FROM batch_runs ORDER BY id DESC LIMIT 1").fetchone()
    except psycopg.Error:
        return None
    if not row or not row[1]:
        return None
    return float(row[0]) / float(row[1])
