"""A placeholder service for the skeleton: stores items in PostgreSQL over HTTP.

``POST /items`` with ``{"id": "..."}`` stores the item and answers 201 once it is committed
(200 when it was stored before, 503 when no database connection is free within 2 s);
``GET /health/ready`` answers 200 once the database answers ``SELECT 1`` on the service's
own connection. Replace it with your own system: nothing in faultlab depends on it.
Environment: ``APP_PORT``, ``DATABASE_URL``.
"""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

POOL = ConnectionPool(os.environ["DATABASE_URL"], min_size=2, max_size=10, timeout=2.0, open=False,
                      kwargs={"autocommit": True, "connect_timeout": 1})
_ready_lock = threading.Lock()
_ready_conn: list[psycopg.Connection] = []


class Handler(BaseHTTPRequestHandler):
    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        if self.path != "/items":
            return self._answer(404, {"error": "not_found"})
        try:
            item = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))["id"]
        except (ValueError, KeyError, TypeError):
            return self._answer(400, {"error": 'expected {"id": "..."}'})
        try:
            with POOL.connection() as conn:
                row = conn.execute("INSERT INTO items (id) VALUES (%s) ON CONFLICT DO NOTHING RETURNING id",
                                   (str(item),)).fetchone()
        except (psycopg.Error, PoolTimeout) as exc:
            return self._answer(503, {"error": "database_unavailable", "detail": str(exc)[:200]})
        self._answer(201 if row else 200, {"id": item})

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        if self.path == "/health/live":
            return self._answer(200, {"live": True})
        if self.path != "/health/ready":
            return self._answer(404, {"error": "not_found"})
        with _ready_lock:  # one check at a time, on one connection: a frozen database holds it
            try:
                if not _ready_conn or _ready_conn[0].closed:
                    _ready_conn[:] = [psycopg.connect(os.environ["DATABASE_URL"], connect_timeout=1,
                                                      autocommit=True)]
                _ready_conn[0].execute("SELECT 1")
            except psycopg.Error as exc:
                _ready_conn.clear()
                return self._answer(503, {"ready": False, "error": str(exc)[:200]})
        self._answer(200, {"ready": True})

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS items (id text PRIMARY KEY, created_at timestamptz DEFAULT now())")
    POOL.open()
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["APP_PORT"])), Handler)
    server.daemon_threads = True
    print(f"app ready on 127.0.0.1:{os.environ['APP_PORT']}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
