"""The embeddable fault proxy server: API and data plane on background threads."""

from __future__ import annotations

import threading
from pathlib import Path
from types import TracebackType

from faultlab.errors import InputError, ServiceFailed
from faultlab.proxy.api import ApiServer
from faultlab.proxy.config import load_config
from faultlab.proxy.loop import Relay, raise_descriptor_limit
from faultlab.proxy.proxy import ApiError, ProxyCollection

__all__ = ["ProxyServer"]


class ProxyServer:
    """A Toxiproxy-compatible server running in this process.

    ::

        with ProxyServer(host="127.0.0.1", port=0) as server:
            server.url        # "http://127.0.0.1:PORT", for any Toxiproxy client

    ``port=0`` picks a free port. ``config`` is a Toxiproxy config file (a JSON array of
    proxies), applied at start as ``POST /populate`` would; unlike Toxiproxy, which logs a
    bad config and serves anyway, a bad entry fails the start (InputError, or ServiceFailed
    when a listen address cannot be bound). Starting twice, or stopping a stopped server,
    does nothing; a failed start stops whatever it had started.

    Starting raises the process's soft descriptor limit to its hard limit (logged), as
    Toxiproxy's Go runtime does: every relayed connection holds two descriptors.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 8474, config: str | Path | None = None):
        self.host = host
        self.port = port
        self.config = Path(config) if config is not None else None
        self._relay: Relay | None = None
        self._http: ApiServer | None = None
        self._thread: threading.Thread | None = None
        self.descriptor_limit: int | None = None
        """The soft descriptor limit obtained at start (raised to the hard limit)."""

    @property
    def url(self) -> str:
        """The API's base URL (valid once started)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def proxies(self) -> ProxyCollection:
        """The proxies this server manages (the same objects the API serves)."""
        if self._http is None:
            raise RuntimeError("the proxy server is not running")
        return self._http.proxies

    def start(self) -> ProxyServer:
        """Bind the API, start the relay and serve on a background thread."""
        if self._thread is not None:
            return self
        entries = load_config(self.config) if self.config is not None else None
        self.descriptor_limit = raise_descriptor_limit()[0]
        relay = Relay()
        relay.start()
        self._relay = relay
        try:
            self._http = ApiServer((self.host, self.port), ProxyCollection(relay))
        except OSError as exc:
            self.stop()
            raise ServiceFailed(f"the proxy API cannot listen on {self.host}:{self.port}: {exc}") from exc
        self.port = self._http.server_address[1]
        if entries is not None:
            try:
                _, error = self._http.proxies.populate(entries)
            except ApiError as exc:
                error = exc
            if error is not None:
                self.stop()
                if error.status < 500:
                    raise InputError(f"{self.config}: {error.message}")
                raise ServiceFailed(f"{self.config}: {error.message}")
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.05}, name="faultlab-proxy-api", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close every proxy and connection, and join every thread."""
        http, self._http = self._http, None
        thread, self._thread = self._thread, None
        if http is not None:
            if thread is not None:
                http.shutdown()
            http.close_idle_connections()
            http.server_close()
            proxies = http.proxies
        else:
            proxies = None
        relay, self._relay = self._relay, None
        if relay is not None:
            if proxies is not None:
                proxies.clear()
            relay.stop()
        if thread is not None:
            thread.join(5)

    def serve_forever(self) -> None:
        """Block until interrupted (Ctrl-C raises KeyboardInterrupt to the caller)."""
        self.start()
        assert self._thread is not None
        while self._thread.is_alive():
            self._thread.join(0.5)

    def __enter__(self) -> ProxyServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
