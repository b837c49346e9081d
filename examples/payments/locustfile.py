"""Load for the payments example: customers paying each other, each at a steady pace.

faultlab runs it in its own locust process (``faultlab_locustfile`` in payments_plugin.py)
and records every request; a payment the API acknowledged is read from the answer's
``idempotency_key`` (``ack_field`` in the plugin's declaration). Now and then a customer
sends a payment again with the same key (a retry after a failure, a double click): the
API must answer with the same payment, and the settler must charge it only once.

Environment: ``PAYMENTS_PER_USER_S`` (2: payments per second of one customer),
``PAYMENTS_CUSTOMERS`` (50).
"""

from __future__ import annotations

import os
import random
import uuid

from locust import HttpUser, constant_throughput, task

_CUSTOMERS = int(os.environ.get("PAYMENTS_CUSTOMERS", "50"))
_DOUBLE_CLICK_SHARE = 0.05


class Customer(HttpUser):
    """One customer paying others small amounts."""

    wait_time = constant_throughput(float(os.environ.get("PAYMENTS_PER_USER_S", "2")))

    def on_start(self) -> None:
        self.name = f"customer-{random.randint(1, _CUSTOMERS)}"
        self.retry: tuple[str, dict[str, object]] | None = None

    @task
    def pay(self) -> None:
        """A new payment; or the last one again under its key when it failed (a retry), and
        now and then when it did not (a double click)."""
        if self.retry is not None:
            key, body = self.retry
        else:
            key = f"load-{uuid.uuid4().hex}"
            body = {"payer": self.name, "payee": f"customer-{random.randint(1, _CUSTOMERS)}",
                    "amount_cents": random.randint(100, 50_000), "currency": "EUR"}
        with self.client.post("/payments", json=body, headers={"Idempotency-Key": key}, name="pay",
                              catch_response=True, timeout=5) as response:
            ok = response.status_code in (200, 201)
            if ok:
                response.success()
            else:
                response.failure(f"HTTP {response.status_code}: {response.text[:120]}")
        again = self.retry is None and (not ok or random.random() < _DOUBLE_CLICK_SHARE)
        self.retry = (key, body) if again else None
