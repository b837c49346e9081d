"""The trading stack's faultlab drill plugin (named by ``plugin:`` in stacks/trading.yaml).

It adapts :mod:`tradingstack.drill` to the functions faultlab's engine looks up (see
``faultlab.plugin``): the canary order, the integrity check, the load generator and the
batch's progress. ``stack`` is faultlab's runtime handle: ``url(service)``, ``dsn(service)``.
Service names are this stack's own: ``gateway`` and ``db``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tradingstack import drill

__all__ = ["canary", "integrity", "execution_delays", "locustfile", "load_host", "load_env", "job_progress", "market_event"]

#: How far every price drops in a stop-order cascade.
CASCADE_DROP_PCT = -6.0

#: faultlab's integrity categories, and the violation kinds of :func:`drill.check_integrity` in each.
CATEGORIES = {
    "lost": ("lost",),
    "duplicates": ("duplicate",),
    "double_executions": ("double_execution",),
    "stuck": ("stuck",),
    "unreconciled": ("cash_mismatch", "position_mismatch", "settled_cash_mismatch", "settled_position_mismatch"),
}


def canary(stack: Any):
    """``place(timeout_s)``: one small market order through the gateway."""
    import httpx

    base = stack.url("gateway")
    client = httpx.Client(limits=httpx.Limits(max_connections=64, max_keepalive_connections=16))

    def place(timeout_s: float) -> dict:
        return drill.place_canary_order(base, timeout=timeout_s, client=client)._asdict()

    return place


def integrity(stack: Any, acknowledged: Iterable[str], *, settle_s: float) -> dict:
    """Wait (up to ``settle_s``) for the outbox to drain, then reconcile everything."""
    dsn = stack.dsn("db")
    drill.wait_settled(dsn, timeout=settle_s)
    acked = set(acknowledged)
    violations = drill.check_integrity(dsn, acked, settle_s=settle_s)
    checked = {name: 0 for name in CATEGORIES}
    rows = []
    for violation in violations:
        category = next(name for name, kinds in CATEGORIES.items() if violation.kind in kinds)
        ids = [str(i) for i in (violation.client_order_ids or violation.order_ids or violation.account_ids)]
        checked[category] += max(1, len(ids))
        rows.append({"kind": violation.kind, "category": category, "order_ids": ids, "detail": violation.detail})
    return {"acknowledged": len(acked), "checked": checked, "violations": rows}


#: How long :func:`execution_delays` waits for orders held during a fault to be executed.
EXECUTION_SETTLE_S = 15.0

_EXECUTION_DELAYS = """
SELECT o.client_order_id, extract(epoch FROM min(e.executed_at) - o.created_at)::float8
FROM unnest(%s::text[]) AS a(client_order_id)
JOIN orders o ON o.client_order_id = a.client_order_id
JOIN executions e ON e.order_id = o.id
WHERE o.type = 'market'
GROUP BY o.client_order_id, o.created_at
"""


def execution_delays(stack: Any, acknowledged: Iterable[str]) -> dict[str, float]:
    """Seconds from acceptance (``orders.created_at``) to the first fill (``executions.executed_at``)
    of every acknowledged market order that was executed.

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


def locustfile() -> str:
    """The trading stack's locustfile."""
    return drill.locustfile_path()


def load_host(stack: Any) -> str:
    """Load goes to the order gateway."""
    return stack.url("gateway")


#: Requests per second of one simulated user: a trader, not a benchmark loop.
USER_RATE_PER_S = 5


def load_env(stack: Any, shape: str | None) -> dict:
    """Each user paces itself at :data:`USER_RATE_PER_S`; ``LOAD_SHAPE`` selects a
    market-shaped load (see tradingstack.loadshapes)."""
    env = {"LOAD_RATE_PER_USER": str(USER_RATE_PER_S)}
    if shape:
        env["LOAD_SHAPE"] = shape
    return env


def market_event(stack: Any, name: str) -> None:
    """``stop_cascade``: push every price down so resting stop orders trigger at once."""
    import httpx

    if name != "stop_cascade":
        raise ValueError(f"unknown market event {name!r}; known: stop_cascade")
    response = httpx.post(stack.url("exchange", "/admin/price"), json={"symbol": "*", "move_pct": CASCADE_DROP_PCT},
                          timeout=5)
    response.raise_for_status()


def job_progress(stack: Any, job: str) -> float | None:
    """The nightly batch's progress (0..1) from its newest run, or None before it starts."""
    if job != "batch":
        return None
    import psycopg

    try:
        with psycopg.connect(stack.dsn("db"), connect_timeout=2, autocommit=True) as conn:
            row = conn.execute(
                "SELECT processed, total FROM batch_runs ORDER BY id DESC LIMIT 1").fetchone()
    except psycopg.Error:
        return None
    if not row or not row[1]:
        return None
    return float(row[0]) / float(row[1])
