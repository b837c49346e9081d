"""faultlab's fault proxy: a Toxiproxy-v2-compatible server (API, relay and toxics).

Any Toxiproxy client works against it; faultlab itself drives proxies only through the
HTTP API, so a real Toxiproxy can take its place. Embed it with :class:`ProxyServer`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["ProxyServer", "TOXIPROXY_VERSION"]

if TYPE_CHECKING:
    from faultlab.proxy.api import TOXIPROXY_VERSION
    from faultlab.proxy.server import ProxyServer


def __getattr__(name: str) -> Any:
    # Lazy, so importing the package (e.g. for the CLI's --help) binds and starts nothing.
    if name == "ProxyServer":
        from faultlab.proxy.server import ProxyServer

        return ProxyServer
    if name == "TOXIPROXY_VERSION":
        from faultlab.proxy.api import TOXIPROXY_VERSION

        return TOXIPROXY_VERSION
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
