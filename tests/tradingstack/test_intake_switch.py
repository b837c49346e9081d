"""The gateway's order-intake switch on the real stack: halted intake refuses new orders (503
intake_halted) while reads still work, a restarted gateway keeps the halt, reopening needs the
database, and a delayed open reopens by itself once the nightly batch finished."""

from __future__ import annotations

import signal
import time

import httpx
import psycopg
import pytest

from tradingstack.drill import place_canary_order

pytestmark = pytest.mark.processes


def _intake(stack, **body):
    return httpx.post(stack.gateway_url + "/admin/intake", json=body, timeout=5)


def _wait_state(stack, state: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = httpx.get(stack.gateway_url + "/admin/intake", timeout=2).json()
        except httpx.HTTPError:
            found = {}
        if found.get("state") == state:
            return found
        time.sleep(0.2)
    raise AssertionError(f"intake not {state} within {timeout} s (last {found})")


def test_halted_intake_refuses_orders_survives_a_restart_and_resumes(stack):
    assert place_canary_order(stack.gateway_url, timeout=5).ok
    answer = _intake(stack, state="halted", reason="drill: recovery in progress")
    assert answer.status_code == 200 and answer.json()["state"] == "halted"
    refused = httpx.post(stack.gateway_url + "/orders", json={
        "client_order_id": "halted-1", "account": 1, "symbol": "T", "side": "buy", "type": "market", "quantity": 1,
    }, timeout=5)
    assert refused.status_code == 503 and refused.json()["error"] == "intake_halted"
    assert refused.json()["detail"] == "drill: recovery in progress"
    assert httpx.get(stack.gateway_url + "/accounts/1", timeout=5).status_code == 200
    ready = httpx.get(stack.gateway_url + "/health/ready", timeout=5).json()
    assert ready["intake"]["state"] == "halted" and ready["ready"] is True
    stack.kill("gateway", signal.SIGKILL)
    stack.start_service("gateway")
    _wait_state(stack, "halted")
    assert not place_canary_order(stack.gateway_url, timeout=5).ok
    assert _intake(stack, state="open").status_code == 200
    assert place_canary_order(stack.gateway_url, timeout=5).ok
    assert _intake(stack, state="paused").status_code == 400


def test_a_delayed_open_reopens_once_the_batch_finished(stack):
    assert _intake(stack, state="halted", reason="open delayed", reopen_when="batch_finished").status_code == 200
    time.sleep(1.5)
    assert httpx.get(stack.gateway_url + "/admin/intake", timeout=5).json()["state"] == "halted"
    with psycopg.connect(stack.dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO batch_runs (business_date, status, deadline, window_s, chunk_size, finished_at) "
                     "VALUES (current_date, 'finished', now(), 60, 20, now())")
    reopened = _wait_state(stack, "open")
    assert "batch finished" in reopened["reason"]
