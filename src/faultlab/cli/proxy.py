"""``faultlab proxy serve``: run the Toxiproxy-compatible fault proxy in the foreground."""

from __future__ import annotations

import argparse
import signal
import sys

from faultlab.errors import ExitCode

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``proxy serve`` to the command line."""
    parser = subparsers.add_parser("proxy", help="the Toxiproxy-compatible fault proxy")
    commands = parser.add_subparsers(dest="proxy_command", metavar="COMMAND", required=True)
    serve = commands.add_parser(
        "serve",
        help="serve the Toxiproxy v2 API until Ctrl-C",
        description="Serve the Toxiproxy v2 HTTP API (any Toxiproxy client works against it).",
    )
    serve.add_argument("--host", default="127.0.0.1", help="API address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8474, help="API port (default 8474; 0 picks one)")
    serve.add_argument("--config", help="Toxiproxy config file: a JSON array of proxies to create")
    serve.set_defaults(handler=serve_command)


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def serve_command(args: argparse.Namespace) -> ExitCode:
    """Serve until interrupted; Ctrl-C or SIGTERM is a clean stop (exit 0): stopping is how
    a server's work ends, not a failure."""
    from faultlab.proxy.server import ProxyServer

    server = ProxyServer(host=args.host, port=args.port, config=args.config)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        server.start()
        print(f"faultlab proxy: API on {server.url} (Toxiproxy 2.12 compatible; "
              f"descriptor limit {server.descriptor_limit})", flush=True)
        server.serve_forever()
    except KeyboardInterrupt:
        print("faultlab proxy: stopped", file=sys.stderr, flush=True)
    finally:
        server.stop()
    return ExitCode.OK
