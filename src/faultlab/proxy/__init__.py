"""faultlab's fault proxy: a Toxiproxy-v2-compatible server (API, relay and toxics).

Any Toxiproxy client works against it; faultlab itself drives proxies only through the
HTTP API, so a real Toxiproxy can take its place. Embed it with :class:`ProxyServer`::

    with ProxyServer(host="127.0.0.1", port=0) as server:
        server.url                     # http://127.0.0.1:PORT

The ``toxiproxy-python`` client keeps its server address in class attributes shared by the
whole process (``toxiproxy.api.APIConsumer.host`` / ``.port``, default 127.0.0.1:8474);
point it at a server on another port with ``Toxiproxy().update_api_consumer(host, port)``.
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
