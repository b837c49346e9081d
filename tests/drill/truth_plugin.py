"""Drill plugin of the ground-truth stack: the canary is a plain GET of the service."""

from __future__ import annotations

from typing import Any


def faultlab_canary(stack: Any):
    import httpx

    url = stack.url("svc", "/")
    client = httpx.Client()

    def place(timeout_s: float) -> dict:
        try:
            response = client.get(url, timeout=timeout_s)
        except httpx.HTTPError as exc:
            return {"ok": False, "error": type(exc).__name__}
        return {"ok": response.status_code == 200, "status": response.status_code}

    return place


def faultlab_integrity(stack: Any, acknowledged: Any, settle_s: float) -> dict:
    return {"acknowledged": 0, "checked": {}, "violations": []}
