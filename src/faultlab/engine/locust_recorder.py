"""A locust plugin recording every request of the load generator to ``requests.jsonl``.

It is loaded *inside locust's process* next to the user's locustfile
(``locust -f locustfile.py,.../locust_recorder.py``); faultlab's own process never imports
locust, which monkey-patches the standard library. Imported anywhere else (locust not
loaded), this module does nothing.

Configuration comes from the environment set by :mod:`faultlab.engine.load`:

- ``FAULTLAB_REQUESTS_FILE``: where to append (one JSON line per request, written with a
  single ``O_APPEND`` write so the workers of a distributed run can share the file);
- ``FAULTLAB_ORIGIN_MONOTONIC``: the run's origin on ``CLOCK_MONOTONIC``, which is
  system-wide on Linux, so ``t`` agrees with the harness's clock;
- ``FAULTLAB_ACK_FIELD``: the JSON field of a successful response holding what the system
  acknowledged, as the stack plugin declares it (empty: none). A locustfile can also pass it
  per request as ``context={"ack": ...}``.

Each line: ``{"t": send time, "name", "ok", "latency_s", "status", "ack", "error"}``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from typing import Any

__all__ = ["RequestRecorder"]


class RequestRecorder:
    """Turns locust ``request`` events into ``requests.jsonl`` lines."""

    def __init__(self, path: str, origin: float, ack_field: str = ""):
        self.path = path
        self.origin = origin
        self.ack_field = ack_field
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def _ack(self, response: Any, context: Any, ok: bool) -> Any:
        if not ok:
            return None
        if isinstance(context, dict) and "ack" in context:
            return context["ack"]
        if response is None or not self.ack_field:
            return None
        try:
            if "json" not in (response.headers.get("content-type") or ""):
                return None
            body = response.json()
        except Exception:
            return None
        ack = body.get(self.ack_field) if isinstance(body, dict) else None
        # The journal's ack is a string: a system whose ids are numbers is read the same way.
        return None if ack is None else str(ack)

    def on_request(self, name: str, response_time: float, response: Any = None, context: Any = None,
                   exception: BaseException | None = None, **_: Any) -> None:
        """The ``request`` event listener (locust passes keyword arguments)."""
        t_done = time.monotonic()
        latency = (response_time or 0.0) / 1000.0
        ok = exception is None
        status = getattr(response, "status_code", None) or None
        line = {
            "t": round(t_done - latency - self.origin, 6),
            "name": name,
            "ok": ok,
            "latency_s": round(latency, 6),
            "status": status,
            "ack": self._ack(response, context, ok),
            "error": None if ok else f"{type(exception).__name__}: {exception}"[:300],
        }
        os.write(self.fd, (json.dumps(line, separators=(",", ":"), default=str) + "\n").encode())

    def close(self, **_: Any) -> None:
        """Close the file (the ``quit`` event)."""
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _install(environment: Any, **_: Any) -> None:
    path = os.environ.get("FAULTLAB_REQUESTS_FILE")
    origin = os.environ.get("FAULTLAB_ORIGIN_MONOTONIC")
    if not path or origin is None:
        return
    recorder = RequestRecorder(path, float(origin), os.environ.get("FAULTLAB_ACK_FIELD", ""))
    environment.events.request.add_listener(recorder.on_request)
    environment.events.quit.add_listener(recorder.close)


if "locust" in sys.modules:  # loaded by locust as a locustfile: hook in when it initialises
    from locust import events as _events

    _events.init.add_listener(_install)
