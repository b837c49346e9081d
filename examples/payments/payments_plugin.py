"""The payments example's drill plugin (``plugin: payments_plugin`` in stack.yaml).

faultlab finds this file next to the stack file and calls its ``faultlab_*`` functions (the
hooks of :mod:`faultlab.plugin.hookspecs`):

- :func:`faultlab_declare`: the system's own words (a payment, Payment IDs), its integrity
  checks with their labels in English and Japanese, its completion delay (the settlement
  delay) and the keys of its readiness JSON (``alerts``, ``unsettled``);
- :func:`faultlab_canary`: one small payment, sent as the harness's probe;
- :func:`faultlab_completion_delays`: ``accepted_at`` to ``settled_at`` of each acknowledged
  payment;
- :func:`faultlab_integrity`: the reconciliation queries run after the drill;
- :func:`faultlab_locustfile` / :func:`faultlab_load_host`: the load generator.

``stack`` is faultlab's handle on the running stack: ``stack.url("api")`` is the API,
``stack.dsn("db")`` a direct (unproxied) connection to its database.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg

from faultlab.plugin import (
    CanaryOutcome,
    Completion,
    Declaration,
    IntegrityCheck,
    IntegrityReport,
    MonitorContract,
    Text,
    Violation,
)

__all__ = [
    "DECLARATION",
    "faultlab_declare",
    "faultlab_canary",
    "faultlab_completion_delays",
    "faultlab_integrity",
    "faultlab_locustfile",
    "faultlab_load_host",
]

DECLARATION = Declaration(
    request=Text("payment", "支払"),
    requests=Text("payments", "支払"),
    ids=Text("Payment IDs", "支払 ID"),
    integrity_checks=(
        IntegrityCheck("lost_payments", Text("Lost payments (acknowledged, then missing)",
                                             "消失した支払（受付済みなのに存在しない）"), loss=True),
        IntegrityCheck("duplicate_charges", Text("Duplicate charges (one idempotency key charged twice)",
                                                 "二重請求（同じ冪等キーで二回以上請求）")),
        IntegrityCheck("unsettled_payments", Text("Unsettled payments (accepted, not settled in time)",
                                                  "未決済の支払（受付後、期限内に決済されない）")),
    ),
    completion=Completion("settlement_delay", Text("Settlement delay", "決済遅延")),
    monitor=MonitorContract(alerts="alerts", backlog="unsettled"),
    ack_field="idempotency_key",
    request_names=("pay",),
)
"""What this system is, in its own words; reports and targets read it."""

#: How long :func:`faultlab_completion_delays` waits for payments held by a fault to settle.
SETTLE_WAIT_S = 15.0


def faultlab_declare() -> Declaration:
    """The payments system's words, checks and readiness keys."""
    return DECLARATION


def faultlab_canary(stack: Any) -> Callable[[float], CanaryOutcome]:
    """``place(timeout_s)``: one payment of 1.00 EUR under a fresh idempotency key."""
    url = stack.url("api", "/payments")
    client = httpx.Client(limits=httpx.Limits(max_connections=32, max_keepalive_connections=8))

    def place(timeout_s: float) -> CanaryOutcome:
        key = f"canary-{uuid.uuid4().hex}"
        body = {"payer": "canary", "payee": "faultlab", "amount_cents": 100, "currency": "EUR"}
        try:
            response = client.post(url, json=body, headers={"Idempotency-Key": key}, timeout=timeout_s)
        except httpx.HTTPError as exc:
            return CanaryOutcome(ok=False, error=f"{type(exc).__name__}: {exc}"[:200])
        if response.status_code not in (200, 201):
            return CanaryOutcome(ok=False, status=response.status_code, error=response.text[:200])
        return CanaryOutcome(ok=True, status=response.status_code, ack=response.json()["idempotency_key"])

    return place


def _unsettled(conn: psycopg.Connection[Any], keys: list[str]) -> int:
    row = conn.execute("SELECT count(*) FROM payments WHERE idempotency_key = ANY(%s) AND settled_at IS NULL",
                       (keys,)).fetchone()
    return int(row[0]) if row else 0


def _wait_settled(conn: psycopg.Connection[Any], keys: list[str], timeout_s: float) -> None:
    """Wait up to ``timeout_s`` until none of ``keys`` is accepted but unsettled."""
    deadline = time.monotonic() + timeout_s
    while _unsettled(conn, keys) and time.monotonic() < deadline:
        time.sleep(0.2)


def faultlab_completion_delays(stack: Any, acknowledged: frozenset[str]) -> dict[str, float]:
    """Settlement delay: seconds from ``accepted_at`` to ``settled_at`` of each acknowledged
    payment that was settled (waiting up to :data:`SETTLE_WAIT_S` for those held by a fault)."""
    keys = sorted(acknowledged)
    if not keys:
        return {}
    with psycopg.connect(stack.dsn("db"), connect_timeout=10, autocommit=True) as conn:
        _wait_settled(conn, keys, SETTLE_WAIT_S)
        rows = conn.execute(
            "SELECT idempotency_key, extract(epoch FROM settled_at - accepted_at)::float8 FROM payments"
            " WHERE idempotency_key = ANY(%s) AND settled_at IS NOT NULL", (keys,)).fetchall()
    return {key: float(delay) for key, delay in rows}


_DOUBLE_CHARGES = """
SELECT p.idempotency_key, count(*) FROM charges c JOIN payments p ON p.id = c.payment_id
GROUP BY p.idempotency_key HAVING count(*) > 1 ORDER BY p.idempotency_key
"""


def faultlab_integrity(stack: Any, acknowledged: frozenset[str], settle_s: float) -> IntegrityReport:
    """Reconcile the database with every acknowledgement, after waiting up to ``settle_s``
    for payments in flight to settle:

    - ``lost_payments``: acknowledged, but no payment has that idempotency key;
    - ``duplicate_charges``: a payment (one idempotency key) charged more than once (any
      payment, acknowledged or not: a customer pays twice either way);
    - ``unsettled_payments``: acknowledged and stored, but still not settled.
    """
    keys = sorted(acknowledged)
    with psycopg.connect(stack.dsn("db"), connect_timeout=10, autocommit=True) as conn:
        _wait_settled(conn, keys, settle_s)
        stored: dict[str, bool] = dict(conn.execute(
            "SELECT idempotency_key, settled_at IS NOT NULL FROM payments WHERE idempotency_key = ANY(%s)",
            (keys,)).fetchall())
        doubles = conn.execute(_DOUBLE_CHARGES).fetchall()
    lost = [k for k in keys if k not in stored]
    unsettled = [k for k in keys if stored.get(k) is False]
    violations = []
    if lost:
        violations.append(Violation("lost_payments", tuple(lost), "acknowledged, but not in the payments table"))
    for key, count in doubles:
        violations.append(Violation("duplicate_charges", (key,), f"charged {count} times"))
    if unsettled:
        violations.append(Violation("unsettled_payments", tuple(unsettled),
                                    f"accepted but not settled {settle_s:g} s after the drill"))
    return IntegrityReport(
        acknowledged=len(keys),
        checked={"lost_payments": len(lost), "duplicate_charges": len(doubles), "unsettled_payments": len(unsettled)},
        violations=tuple(violations),
    )


def faultlab_locustfile() -> str:
    """The load generator: customers paying each other (``locustfile.py`` beside this file)."""
    return str(Path(__file__).with_name("locustfile.py"))


def faultlab_load_host(stack: Any) -> str:
    """Load goes to the payments API."""
    return str(stack.url("api"))

