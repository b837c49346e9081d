"""The drill plugin of your system: the functions faultlab calls, named ``faultlab_*``.

Every hook is optional but ``faultlab_canary``. The full list, with what each receives and
returns, is ``faultlab.plugin.hookspecs``; ``stack`` is the running stack
(``stack.url("app", "/path")``, ``stack.dsn("db")``). Replace the placeholder's words and
checks with your own: a payment and lost payments, a booking and lost bookings...
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable

from faultlab.plugin import CanaryOutcome, Declaration, IntegrityCheck, IntegrityReport, Text, Violation


def faultlab_declare() -> Declaration:
    """Your system's words for the reports and the integrity checks your targets may name."""
    return Declaration(
        request=Text("item"),
        requests=Text("items"),
        ids=Text("Item IDs"),
        integrity_checks=(IntegrityCheck("lost_items", Text("Lost items (acknowledged, then missing)"), loss=True),),
    )


def faultlab_canary(stack) -> Callable[[float], CanaryOutcome]:
    """``place(timeout_s)``: one business request (here: store one item), judged by its answer."""
    import httpx

    url = stack.url("app", "/items")
    client = httpx.Client()

    def place(timeout_s: float) -> CanaryOutcome:
        item = f"canary-{uuid.uuid4().hex[:16]}"
        try:
            response = client.post(url, json={"id": item}, timeout=timeout_s)
        except httpx.HTTPError as exc:
            return CanaryOutcome(ok=False, error=f"{type(exc).__name__}: {exc}", request_id=item)
        ok = response.status_code in (200, 201)
        return CanaryOutcome(ok=ok, status=response.status_code, ack=item if ok else None, request_id=item,
                             error=None if ok else response.text[:200])

    return place


def faultlab_integrity(stack, acknowledged: Iterable[str], settle_s: float) -> IntegrityReport:
    """After the run: every acknowledged item must be in the database."""
    import psycopg

    acked = sorted(set(acknowledged))
    with psycopg.connect(stack.dsn("db"), connect_timeout=10) as conn:
        found = {row[0] for row in conn.execute("SELECT id FROM items WHERE id = ANY(%s)", (acked,))}
    lost = tuple(i for i in acked if i not in found)
    violations = (Violation("lost_items", lost, f"{len(lost)} acknowledged items missing"),) if lost else ()
    return IntegrityReport(acknowledged=len(acked), checked={"lost_items": len(lost)}, violations=violations)
