"""``faultlab proxy serve``: run the Toxiproxy-compatible fault proxy in the foreground."""

from __future__ import annotations

import argparse
import sys

from faultlab.errors import ExitCode

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
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


def serve_command(args: argparse.Namespace) -> ExitCode:
    """Serve until interrupted; Ctrl-C is a clean stop (exit 0)."""
    from faultlab.proxy.server import ProxyServer

    server = ProxyServer(host=args.host, port=args.port, config=args.config)
    try:
        server.start()
        print(f"faultlab proxy: API on {server.url} (Toxiproxy 2.12 compatible)", flush=True)
        server.serve_forever()
    except KeyboardInterrupt:
        print("faultlab proxy: stopped", file=sys.stderr, flush=True)
    finally:
        server.stop()
    return ExitCode.OK
