"""The unmodified ``toxiproxy-python`` client against our server.

That client keeps its server address in class attributes of ``toxiproxy.api.APIConsumer``
(``host = "127.0.0.1"``, ``port = 8474``), shared by every ``Toxiproxy``/``Proxy`` object
in the process. Point it at a server on another port with
``Toxiproxy().update_api_consumer(host, port)`` (or set ``APIConsumer.host``/``.port``);
the fixture below does that and restores the defaults afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from proxy_helpers import port_of, round_trip

from faultlab.proxy import ProxyServer

toxiproxy = pytest.importorskip("toxiproxy")
from toxiproxy.api import APIConsumer  # noqa: E402
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists  # noqa: E402


@pytest.fixture
def client(server: ProxyServer) -> Iterator[toxiproxy.Toxiproxy]:
    saved = (APIConsumer.host, APIConsumer.port)
    tp = toxiproxy.Toxiproxy()
    tp.update_api_consumer(server.host, server.port)
    yield tp
    APIConsumer.host, APIConsumer.port = saved


def test_running_and_version(client: toxiproxy.Toxiproxy) -> None:
    assert client.running()
    assert client.version() == b'{"version": "2.12.0"}\n'


def test_create_list_get_destroy(client: toxiproxy.Toxiproxy, echo_upstream) -> None:
    proxy = client.create(upstream=echo_upstream.address, name="echo")
    assert proxy.listen.startswith("127.0.0.1:") and port_of(proxy.listen) > 0
    assert proxy.enabled is True
    assert set(client.proxies()) == {"echo"}
    assert client.get_proxy("echo").upstream == echo_upstream.address
    with pytest.raises(ProxyExists):
        client.create(upstream=echo_upstream.address, name="echo")
    assert client.destroy(proxy) is True
    assert client.proxies() == {}
    with pytest.raises(NotFound):
        proxy.destroy()


def test_toxics_through_the_client(client: toxiproxy.Toxiproxy, echo_upstream, sockets) -> None:
    proxy = client.create(upstream=echo_upstream.address, name="echo", listen="127.0.0.1:0")
    conn = sockets(port_of(proxy.listen))
    proxy.add_toxic(type="latency", attributes={"latency": 100})
    assert set(proxy.toxics()) == {"latency_downstream"}
    toxic = proxy.get_toxic("latency_downstream")
    assert (toxic.type, toxic.stream, toxic.toxicity, toxic.attributes) == (
        "latency", "downstream", 1, {"latency": 100, "jitter": 0})
    assert round_trip(conn) >= 0.1
    with pytest.raises(ProxyExists):
        proxy.add_toxic(type="latency", attributes={"latency": 100})
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="nonsense")
    with pytest.raises(InvalidToxic):
        proxy.add_toxic(type="bandwidth", name="bw", attributes={"rate": -1})
    proxy.destroy_toxic("latency_downstream")
    assert proxy.toxics() == {}
    assert round_trip(conn) < 0.1
    with pytest.raises(NotFound):
        proxy.destroy_toxic("latency_downstream")


def test_disable_enable_and_down(client: toxiproxy.Toxiproxy, echo_upstream, sockets) -> None:
    proxy = client.create(upstream=echo_upstream.address, name="echo")
    port = port_of(proxy.listen)
    with proxy.down():
        assert client.get_proxy("echo").enabled is False
        with pytest.raises(ConnectionRefusedError):
            sockets(port)
    assert client.get_proxy("echo").enabled is True
    assert round_trip(sockets(port)) < 1


def test_reset_and_populate(client: toxiproxy.Toxiproxy, echo_upstream) -> None:
    proxy = client.create(upstream=echo_upstream.address, name="one")
    proxy.add_toxic(type="latency", attributes={"latency": 10})
    proxy.disable()
    assert client.reset() is True
    again = client.get_proxy("one")
    assert again.enabled is True and again.toxics() == {}
    made = client.populate([
        {"name": "one", "upstream": echo_upstream.address, "listen": again.listen},
        {"name": "two", "upstream": echo_upstream.address, "listen": "127.0.0.1:0"},
    ])
    assert [p.name for p in made] == ["two"], "the client skips an identical proxy itself"
    assert set(client.proxies()) == {"one", "two"}
    client.destroy_all()
    assert client.proxies() == {}
